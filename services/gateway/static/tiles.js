/* The thirty-six tiles: which engine section feeds each, which group carries its provenance,
   and how its body is drawn. Pure functions of the document; app.js owns the DOM updates. */
"use strict";

const Tiles = (() => {
  const { esc, ok } = Charts;
  const num = (v, d = 2) => (ok(v) ? v.toLocaleString("en-IN", { minimumFractionDigits: d, maximumFractionDigits: d }) : "—");
  const pct = (v, d = 0) => (ok(v) ? (v * 100).toFixed(d) + "%" : "—");
  const signed = (v, d = 2) => (ok(v) ? (v > 0 ? "+" : "") + num(v, d) : "—");
  const cls = (v) => (ok(v) ? (v > 0 ? "up" : v < 0 ? "down" : "") : "");
  const dirClass = (d) => ({ UP: "up", DOWN: "down", NEUTRAL: "neutral" }[d] || "");
  const arrow = (d) => ({ UP: "▲", DOWN: "▼", NEUTRAL: "◆" }[d] || "");
  const big = (id, text, extra = "") => `<div class="big ${extra}" data-testid="${id}-value">${esc(text)}</div>`;
  const sub = (html) => `<div class="sub">${html}</div>`;
  const get = (obj, path) => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
  const labelClass = (label) => {
    const l = String(label || "").toUpperCase();
    if (/(HIGH|STRESS|RISKY|AVOID|TRENDING_DOWN|HIGH_VOLATILITY|DON'T)/.test(l)) return "bad";
    if (/(ELEVATED|CAUTION|MODERATE|NEUTRAL|CAUTIOUS|CHOPPY|RANGE)/.test(l)) return "warn";
    return "good";
  };

  // Tiles shared by several tabs ---------------------------------------------------------
  const spotTile = (id, tab) => ({
    id, tab, title: "NIFTY 50 spot", engines: ["market"], group: "market",
    render: (doc) => {
      const m = doc.market;
      return big(id, num(m.spot)) +
        sub(`<span class="${cls(m.spot_change)}">${signed(m.spot_change)} (${signed(m.spot_change_pct)}%)</span>` +
          (ok(m.session_high) ? ` · H ${num(m.session_high)} · L ${num(m.session_low)}` : "")) +
        Charts.sparkline(m.sparkline);
    },
  });

  const vixBand = (vix) => Charts.band(12, 20, [{ value: vix, label: "VIX", cls: "spot" }], { pad: 0.6, zoneClass: "band-zone soft" });
  const vixTile = (id, tab, title = "India VIX") => ({
    id, tab, title, engines: ["market"], group: "market",
    render: (doc) => {
      const m = doc.market;
      return big(id, num(m.vix)) +
        sub(`<span class="${cls(m.vix_change)}">${signed(m.vix_change)}</span> · band 12–20 (calm–normal) · VIX bar ${esc(m.vix_as_of || "—")}`) +
        vixBand(m.vix);
    },
  });

  const helpTile = (id, tab, text) => ({
    id, tab, title: "How to read this", engines: [], group: null, render: () => `<div class="help" data-testid="${id}-value">${text}</div>`,
  });

  const horizonTile = (key) => ({
    id: `dir-${key}`, tab: "direction", title: "", engines: ["direction"], group: `direction.horizons.${key}`,
    titleOf: (doc) => `Next ${get(doc, `direction.horizons.${key}.label`) || key}`,
    render: (doc) => {
      const h = get(doc, `direction.horizons.${key}`);
      if (!h) return big(`dir-${key}`, "—");
      const clim = h.beats_climatology === false
        ? `<span class="chip warn" title="Out of sample this horizon does not beat the training-period class frequencies">≈ climatology</span>`
        : h.beats_climatology ? `<span class="chip good">beats climatology</span>` : "";
      return big(`dir-${key}`, `${arrow(h.direction)} ${h.direction}`, dirClass(h.direction)) +
        sub(`conviction ${pct(h.conviction)} · move ±${num(h.expected_move_points, 0)} pts ${clim}`) +
        Charts.probs(h.probabilities) +
        sub(`<span class="up">↑ ${pct(get(h, "probabilities.up"))}</span> · ${pct(get(h, "probabilities.neutral"))} · <span class="down">↓ ${pct(get(h, "probabilities.down"))}</span>`);
    },
  });

  const rateTile = (id, tab, title, path, noun) => ({
    id, tab, title, engines: [path.split(".")[0]], group: path,
    render: (doc) => {
      const r = get(doc, path) || {};
      return big(id, pct(r.value, 1)) +
        sub(`${esc(noun)} over ${esc(r.samples ?? "—")} samples`) +
        sub(`window ${esc(r.window || "—")} · regime ${esc(r.regime || "all")}`);
    },
  });

  const labelTile = (id, tab, title, path, engine) => ({
    id, tab, title, engines: [engine], group: path,
    render: (doc) => {
      const g = get(doc, path);
      const label = g ? g.label : null;
      return big(id, label ? String(label).replace(/_/g, " ") : "—", `label ${labelClass(label)}`);
    },
  });

  // Direction ----------------------------------------------------------------------------
  const direction = [
    {
      id: "dir-today", tab: "direction", title: "Today", engines: ["direction"], group: "direction.today",
      render: (doc) => {
        const t = doc.direction.today;
        return Charts.gauge(t.conviction, { zones: [0.4, 0.6], label: "conviction" }) +
          big("dir-today", `${arrow(t.direction)} ${t.direction}`, dirClass(t.direction)) +
          sub(`conviction ${pct(t.conviction)} · expected move ±${num(t.expected_move_points, 0)} pts`) +
          Charts.probs(t.probabilities);
      },
    },
    spotTile("dir-spot", "direction"),
    vixTile("dir-vix", "direction", "India VIX band"),
    ...["t1", "t3", "t5", "t10", "t20", "t40"].map(horizonTile),
    {
      id: "dir-risk", tab: "direction", title: "Risk score", engines: ["direction"], group: "direction.risk_score",
      render: (doc) => {
        const r = doc.direction.risk_score;
        const parts = Object.entries(r.components || {}).map(([k, v]) => `${esc(k)} ${ok(v) ? v.toFixed(2) : "—"}`).join(" · ");
        return Charts.dial(r.value) + big("dir-risk", ok(r.value) ? `${Math.round(r.value)} / 100` : "—") + sub(parts);
      },
    },
    labelTile("dir-regime", "direction", "Market regime", "market.regime", "market"),
    helpTile("dir-help", "direction",
      "<p><b>Today</b> and the <b>t1…t40</b> tiles give the most likely direction of NIFTY over that many sessions: UP / DOWN, or NEUTRAL when the move is expected to stay within a quarter of a normal day's volatility.</p>" +
      "<p><b>Conviction</b> is the probability of the called class. Daily direction is close to a coin flip: a tile marked <i>≈ climatology</i> does not beat plain historical frequencies out of sample.</p>" +
      "<p>Hover a tile for where its value came from. <span class=\"chip bad\">stale</span> and <span class=\"chip bad\">degraded</span> badges mean: do not trust it as current.</p>"),
  ];

  // Sellers ------------------------------------------------------------------------------
  const sellers = [
    {
      id: "sel-range", tab: "sellers", title: "Safe range to expiry", engines: ["seller", "market"], group: "seller.safe_range",
      render: (doc) => {
        const r = doc.seller.safe_range;
        const spot = get(doc, "market.spot");
        return big("sel-range", `${num(r.lower, 0)} – ${num(r.upper, 0)}`) +
          Charts.band(r.lower, r.upper, [{ value: spot, label: "spot", cls: "spot" }]) +
          sub(`holds the expiry close ${pct(r.coverage_target)} of the time · expiry ${esc(r.expiry || "—")} (${esc(r.days_to_expiry ?? "—")} d)`);
      },
    },
    {
      id: "sel-maxpain", tab: "sellers", title: "Max-pain zone", engines: ["seller"], group: "seller.max_pain",
      render: (doc) => {
        const m = doc.seller.max_pain;
        if (!m || !ok(m.strike)) return big("sel-maxpain", "n/a", "muted") + sub(esc(m && m.reason ? m.reason : "no option chain"));
        return big("sel-maxpain", num(m.strike, 0)) +
          Charts.band(m.lower, m.upper, [{ value: m.strike, label: "max pain", cls: "accent" }, { value: get(doc, "market.spot"), label: "spot", cls: "spot" }]) +
          sub(`zone ${num(m.lower, 0)}–${num(m.upper, 0)} · chain ${esc(m.chain_as_of || "—")}`);
      },
    },
    {
      id: "sel-stress", tab: "sellers", title: "Expiry stress", engines: ["seller"], group: "seller.expiry_stress",
      render: (doc) => {
        const s = doc.seller.expiry_stress;
        const p = s.probabilities || {};
        return big("sel-stress", s.label || "—", `label ${labelClass(s.label)}`) +
          Charts.bars([{ label: "stress", value: s.score, cls: labelClass(s.label) }]) +
          sub(`vol regime to expiry: low ${pct(p.low)} · medium ${pct(p.medium)} · high ${pct(p.high)}`);
      },
    },
    {
      id: "sel-trap", tab: "sellers", title: "Volatility trap", engines: ["seller"], group: "seller.trap",
      render: (doc) => {
        const t = doc.seller.trap;
        return Charts.gauge(t.score, { label: "volatility trap" }) +
          big("sel-trap", `${pct(t.score)} · ${t.label || "—"}`, labelClass(t.label)) +
          sub(`P(realised vol next 5 sessions > VIX) · IV pct ${pct(t.iv_percentile)} · RV pct ${pct(t.rv_percentile)}`);
      },
    },
    {
      id: "sel-skew", tab: "sellers", title: "Skew", engines: ["seller"], group: "seller.skew",
      render: (doc) => {
        const s = doc.seller.skew;
        return `<div data-testid="sel-skew-value" class="sr-only">${esc(ok(s.net) ? s.net.toFixed(2) : "—")}</div>` +
          Charts.bars([{ label: "put", value: s.put, cls: "down" }, { label: "call", value: s.call, cls: "up" },
            { label: "net", value: s.net, cls: ok(s.net) && s.net > 0 ? "down" : "up" }], { signed: true }) +
          sub(`method: ${esc(String(s.method || "—").replace(/_/g, " "))} · net > 0 = puts richer`);
      },
    },
    labelTile("sel-regime", "sellers", "Seller regime", "seller.regime", "seller"),
    {
      id: "sel-breach", tab: "sellers", title: "Breach probability at expiry", engines: ["seller", "market"], group: "seller.breach_probabilities",
      render: (doc) => {
        const pts = get(doc, "seller.breach_probabilities.points") || [];
        const near = pts.filter((p) => p.distance_pct === 1 || p.distance_pct === 1.0);
        const text = near.map((p) => `${p.side} ${num(p.strike, 0)}: ${pct(p.probability, 1)}`).join(" · ");
        return Charts.breachCurve(pts, get(doc, "market.spot")) +
          `<div class="sub" data-testid="sel-breach-value">${esc(text || `${pts.length} strikes`)}</div>`;
      },
    },
    rateTile("sel-hitrate", "sellers", "Historical hit rate", "seller.historical_hit_rate", "expiry closes inside the safe range"),
    {
      id: "sel-flag", tab: "sellers", title: "Seller daily flag", engines: ["seller"], group: "seller.seller_flag",
      render: (doc) => {
        const fl = doc.seller.seller_flag;
        return big("sel-flag", fl.label || "—", `label ${labelClass(fl.label)}`) +
          `<ul class="reasons">${(fl.reasons || []).map((r) => `<li>${esc(r)}</li>`).join("")}</ul>`;
      },
    },
    spotTile("sel-spot", "sellers"),
    vixTile("sel-vix", "sellers"),
    helpTile("sel-help", "sellers",
      "<p>The <b>safe range</b> is where the index closed on expiry day in the target share of past out-of-sample weeks; its <b>hit rate</b> is measured, not assumed.</p>" +
      "<p><b>Volatility trap</b>: chance that realised volatility over the next five sessions exceeds what VIX implies. <b>Expiry stress</b> weighs the odds of a medium or high volatility regime until expiry.</p>" +
      "<p><b>Breach curve</b>: probability that the expiry close lands beyond each strike. Context only — never advice.</p>"),
  ];

  // Buyers -------------------------------------------------------------------------------
  const buyers = [
    {
      id: "buy-breakout", tab: "buyers", title: "Breakout today", engines: ["buyer"], group: "buyer.breakout_today",
      render: (doc) => {
        const b = doc.buyer.breakout_today;
        return Charts.gauge(b.score, { invert: true, label: "breakout" }) +
          big("buy-breakout", `${pct(b.score)} · ${b.label || "—"}`) +
          sub(b.broken ? `range already broken <b class="${b.broken === "up" ? "up" : "down"}">${esc(b.broken)}</b>` : `prior range not yet broken · ${esc(b.basis || "")}`);
      },
    },
    {
      id: "buy-spike", tab: "buyers", title: "Spike direction", engines: ["buyer"], group: "buyer.spike_direction_bias",
      render: (doc) => {
        const s = doc.buyer.spike_direction_bias;
        return Charts.split(s.up_prob, s.down_prob, `▲ up ${pct(s.up_prob)}`, `down ${pct(s.down_prob)} ▼`) +
          `<div class="sub" data-testid="buy-spike-value">if the next session moves > 1.5σ: up ${esc(pct(s.up_prob))} / down ${esc(pct(s.down_prob))}</div>`;
      },
    },
    {
      id: "buy-theta", tab: "buyers", title: "Theta edge", engines: ["buyer"], group: "buyer.theta_edge",
      render: (doc) => {
        const t = doc.buyer.theta_edge;
        return big("buy-theta", t.label || "—", `label ${labelClass(t.label)}`) +
          Charts.bars([{ label: "edge", value: t.score, cls: "accent" }]) +
          sub(`predicted ±${num(t.predicted_move_points, 0)} vs implied ±${num(t.implied_move_points, 0)} pts to expiry`);
      },
    },
    {
      id: "buy-next", tab: "buyers", title: "Next 5 days: breakout map", engines: ["buyer"], group: "buyer.breakout_next",
      render: (doc) => {
        const days = get(doc, "buyer.breakout_next.days") || [];
        return Charts.strip(days.map((d) => ({ label: d.date ? d.date.slice(5) : `+${d.day_offset}`, score: d.score, title: d.date }))) +
          `<div class="sub" data-testid="buy-next-value">${esc(days.map((d) => pct(d.score)).join(" · "))}</div>`;
      },
    },
    {
      id: "buy-gamma", tab: "buyers", title: "Gamma windows (IST)", engines: ["buyer"], group: "buyer.gamma_windows",
      render: (doc) => {
        const w = get(doc, "buyer.gamma_windows.windows") || [];
        const best = w.reduce((a, b) => (ok(b.score) && (!a || b.score > a.score) ? b : a), null);
        return Charts.strip(w.map((x) => ({ label: x.block.slice(0, 5), score: x.score, title: x.block })), { labelEvery: 3 }) +
          `<div class="sub" data-testid="buy-gamma-value">most active: ${esc(best ? best.block : "—")}</div>`;
      },
    },
    labelTile("buy-regime", "buyers", "Buyer regime", "buyer.regime", "buyer"),
    rateTile("buy-spikerate", "buyers", "Historical spike rate", "buyer.historical_spike_rate", "sessions moving > 1.5σ"),
    {
      id: "buy-levels", tab: "buyers", title: "Breakout levels", engines: ["buyer", "market"], group: "buyer.breakout_levels",
      render: (doc) => {
        const l = doc.buyer.breakout_levels;
        return big("buy-levels", `${num(l.lower, 0)} / ${num(l.upper, 0)}`) +
          Charts.band(l.lower, l.upper, [{ value: get(doc, "market.spot"), label: "spot", cls: "spot" }], { zoneClass: "band-zone soft" }) +
          sub("a close outside the band is a breakout");
      },
    },
    {
      id: "buy-env", tab: "buyers", title: "Environment", engines: ["buyer"], group: "buyer.environment",
      render: (doc) => {
        const e = doc.buyer.environment;
        return big("buy-env", e.label || "—", `label ${labelClass(e.label)}`) + sub(esc(e.text || "")) + sub("<i>context, not advice</i>");
      },
    },
    spotTile("buy-spot", "buyers"),
    {
      ...vixTile("buy-vix", "buyers", "VIX / shock risk"),
      engines: ["market", "seller"],
      render: (doc) => {
        const m = doc.market;
        const trap = get(doc, "seller.trap");
        return big("buy-vix", num(m.vix)) +
          sub(`<span class="${cls(m.vix_change)}">${signed(m.vix_change)}</span> · shock risk ${trap ? `${pct(trap.score)} (${esc(trap.label)})` : "—"}`) +
          vixBand(m.vix);
      },
    },
    helpTile("buy-help", "buyers",
      "<p><b>Breakout</b>: chance today's range breaks the prior session's high or low by at least a quarter of the average true range. The <b>map</b> shows the same for the next five sessions.</p>" +
      "<p><b>Theta edge</b> compares the predicted move to expiry with the move option prices imply: below it, time decay tends to win.</p>" +
      "<p><b>Gamma windows</b> rank the half-hour blocks of the session by how much the index has tended to move in them.</p>"),
  ];

  const all = [...direction, ...sellers, ...buyers];
  return { all, get };
})();
