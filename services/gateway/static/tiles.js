/* The tiles: which engine section feeds each, which group carries its provenance, what its
   numbers mean and in which unit (``meaning``, shown on the face), and how its body is
   drawn. Pure functions of the document; app.js owns the DOM updates. */
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
  const HORIZON_SESSIONS = { t1: 1, t3: 3, t5: 5, t10: 10, t20: 20, t40: 40 };
  // India VIX regime, the same thresholds as the engines (shared/models/api.py vix_regime)
  const VIX_LOW = 13; const VIX_HIGH = 20;
  const vixRegime = (v) => (!ok(v) ? "—" : v < VIX_LOW ? "LOW" : v < VIX_HIGH ? "NORMAL" : "HIGH");
  /** 1σ move in index points over ``sessions`` sessions implied by VIX: S·VIX/100·√(n/252). */
  const sigmaMove = (doc, sessions) => {
    const m = doc.market || {};
    return ok(m.spot) && ok(m.vix) ? m.spot * (m.vix / 100) * Math.sqrt(sessions / 252) : null;
  };
  const moveText = (doc, sessions, drift, over = "") =>
    `1σ move ±${num(sigmaMove(doc, sessions), 0)} pts (VIX${over}) · model drift ${signed(drift, 0)} pts`;
  const words = (key) => String(key).replace(/_/g, " ");
  /** An annualised volatility difference (0.0378) in volatility points (3.78). */
  const volPoints = (v) => (ok(v) ? v * 100 : null);
  const SKEW_METHODS = {
    chain_iv: "<b>option IV skew</b>: implied volatility of out-of-the-money puts and calls minus the at-the-money IV",
    return_distribution: "<b>return skew</b> (NIFTY daily returns, not options): downside and upside semi-volatility minus the total volatility",
  };
  /** Numbers in [0, 1] an engine wrote into a sentence ("percentile 0.77"), in % as the
      tiles show every probability and percentile. */
  const percentsIn = (text) => String(text).replace(/\b(?:0\.\d+|1\.0+)\b/g, (v) => pct(Number(v)));
  const RISK_PARTS = {
    iv_level: "VIX, 1-y pctile", rv_level: "realised vol, 1-y pctile",
    drawdown: "off the 20-d high", downside: "P(down), 5 sessions",
  };
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
      const line = (m.sparkline || []).filter((p) => Array.isArray(p) && ok(p[0]) && ok(p[1]));
      return big(id, num(m.spot)) +
        sub(`<span class="${cls(m.spot_change)}">${signed(m.spot_change)} (${signed(m.spot_change_pct)}%)</span>` +
          (ok(m.session_high) ? ` · H ${num(m.session_high)} · L ${num(m.session_low)}` : "")) +
        Charts.sparkline(line, m.prev_close) +
        `<div class="sub" data-testid="${id}-caption">chart: ${esc(Charts.seriesCaption(line))}</div>`;
    },
    meaning: "NIFTY 50 index in points; change against the previous session's close (the dashed line in the chart of the engine's recent closes).",
  });

  const vixBand = (vix) => Charts.band(VIX_LOW, VIX_HIGH, [{ value: vix, label: "VIX", cls: "spot" }], { pad: 0.6, zoneClass: "band-zone soft" });
  const vixTile = (id, tab, title = "India VIX") => ({
    id, tab, title, engines: ["market"], group: "market",
    render: (doc) => {
      const m = doc.market;
      return big(id, `${num(m.vix)} · ${vixRegime(m.vix)}`) +
        sub(`<span class="${cls(m.vix_change)}">${signed(m.vix_change)}</span> vs previous close · VIX of ${esc(m.vix_as_of || "—")}`) +
        vixBand(m.vix) + sub(`shaded: NORMAL regime ${VIX_LOW}–${VIX_HIGH}`);
    },
    meaning: `India VIX: the market's implied annual volatility of NIFTY, in %. Regime: LOW below ${VIX_LOW}, NORMAL ${VIX_LOW}–${VIX_HIGH}, HIGH from ${VIX_HIGH}.`,
  });

  const helpTile = (id, tab, text) => ({
    id, tab, title: "How to read this", engines: [], group: null, render: () => `<div class="help" data-testid="${id}-value">${text}</div>`,
    meaning: "What the tiles on this tab mean.",
  });

  /** A call is a forecast unless its probabilities are base rates (DOCUMENT.md: a horizon's
      ``forecast``). Today carries no flag: its provenance decides, by the engine's own rule
      for the horizons (a forecast only from a model, not climatology or a heuristic). */
  const isForecast = (call) => (typeof call.forecast === "boolean" ? call.forecast : get(call, "provenance.source") === "model");

  const climatologyChip = (call) => {
    if (get(call, "provenance.in_sample") === true) return "";
    if (call.beats_climatology === false) return `<span class="chip warn">≈ climatology: no better than base rates</span>`;
    return call.beats_climatology ? `<span class="chip good">beats climatology out of sample</span>` : "";
  };

  function probabilityLine(id, p, forecast) {
    const text = forecast
      ? `<span class="up">up ${pct(p.up)}</span> · neutral ${pct(p.neutral)} · <span class="down">down ${pct(p.down)}</span>`
      : `base rates: up ${pct(p.up)} · neutral ${pct(p.neutral)} · down ${pct(p.down)}`;
    return `<div class="sub" data-testid="${id}-probabilities">${text}</div>`;
  }

  /** A direction call's face, the same on Today and every horizon: the call, or "no forecast"
      with its no-edge mark when the probabilities are base rates; the 1σ move over the time
      the call covers; and the three probabilities in %. */
  function callFace(id, call, doc, move) {
    const p = call.probabilities || {};
    const forecast = isForecast(call);
    const head = forecast
      ? big(id, `${arrow(call.direction)} ${call.direction}`, dirClass(call.direction)) +
        sub(`conviction ${pct(call.conviction)} ${climatologyChip(call)}`)
      : big(id, "no forecast", "neutral") +
        sub(`<span class="chip warn" data-testid="${id}-no-edge">no edge over base rates</span> (${esc(get(call, "provenance.source") || "?")})`);
    return head + sub(moveText(doc, move.sessions, call.expected_move_points, move.over)) +
      Charts.probs(p) + probabilityLine(id, p, forecast);
  }

  const horizonTile = (key) => {
    const n = HORIZON_SESSIONS[key];
    return {
      id: `dir-${key}`, tab: "direction", title: `Next ${n} session${n > 1 ? "s" : ""}`, engines: ["direction"], group: `direction.horizons.${key}`,
      render: (doc) => {
        const h = get(doc, `direction.horizons.${key}`);
        return h ? callFace(`dir-${key}`, h, doc, { sessions: n }) : big(`dir-${key}`, "—");
      },
      meaning: "Most likely direction of NIFTY over these sessions (UP, DOWN, or NEUTRAL within ¼σ), or \"no forecast\" where the model shows no edge over base rates. Conviction and probabilities: %. 1σ move: VIX-implied, index points.",
    };
  };

  /** The time today's call covers: the rest of the open session after an intraday block
      (its ``as_of`` is a minute's close; the engine says so in ``basis``), else the whole
      next session (a daily block, after the close). */
  function todaySpan(section, call) {
    const rest = call.basis ? /^rest of today/.test(call.basis) : section.kind === "intraday";
    const span = Pictures.sessionSpan(section.session_date);
    const asOf = Date.parse(section.as_of) / 1000;
    if (!rest || !span || !ok(asOf)) return { sessions: 1, over: "" };
    const left = Math.min(Math.max(span[1] - asOf, 0), span[1] - span[0]);
    return { sessions: left / (span[1] - span[0]), over: `, ${Math.round(left / 60)} min of the session left` };
  }

  /** A measured rate; ``counted`` says what each of its ``samples`` is (a past session). */
  const rateTile = (id, tab, title, path, counted, meaning) => ({
    id, tab, title, engines: [path.split(".")[0]], group: path,
    render: (doc) => {
      const r = get(doc, path) || {};
      return big(id, pct(r.value, 1)) +
        `<div class="sub" data-testid="${id}-samples">of ${esc(r.samples ?? "—")} sessions (${esc(counted)})</div>` +
        sub(`measured ${esc(r.window || "—")} · VIX regime ${esc(r.regime || "all")}`);
    },
    meaning,
  });

  const labelTile = (id, tab, title, path, engine, meaning) => ({
    id, tab, title, engines: [engine], group: path, meaning,
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
        const gauge = isForecast(t)
          ? Charts.gauge(t.conviction, { fill: dirClass(t.direction) || "neutral", label: `conviction of the ${t.direction} call` }) : "";
        return gauge + callFace("dir-today", t, doc, todaySpan(doc.direction, t)) +
          (t.basis ? sub(`covers: ${esc(t.basis)}`) : "");
      },
      meaning: "Most likely direction of NIFTY for the rest of today's session (after the close: the next session), or \"no forecast\" where it is only base rates. Gauge, conviction and probabilities: % (coloured as the call). 1σ move: VIX-implied over the time the call covers, index points.",
    },
    spotTile("dir-spot", "direction"),
    vixTile("dir-vix", "direction", "India VIX"),
    Pictures.priceTile("dir-price", "direction"),
    Pictures.historyTile("dir-history", "direction"),
    ...["t1", "t3", "t5", "t10", "t20", "t40"].map(horizonTile),
    {
      id: "dir-risk", tab: "direction", title: "Risk score", engines: ["direction"], group: "direction.risk_score",
      render: (doc) => {
        const r = doc.direction.risk_score;
        const parts = Object.entries(r.components || {}).map(([k, v]) => ({ label: RISK_PARTS[k] || words(k), value: v, text: ok(v) ? pct(v) : "—", cls: "accent" }));
        return Charts.dial(r.value) + big("dir-risk", ok(r.value) ? `${Math.round(r.value)} / 100` : "—") +
          Charts.bars(parts, { labelWidth: 112 });
      },
      meaning: "Market risk 0–100 (higher = riskier): a weighted mix of the components below, each 0–100 %.",
    },
    labelTile("dir-regime", "direction", "Trend regime", "market.regime", "market",
      "How the index has been trending (moving averages and ADX); not a volatility regime."),
    helpTile("dir-help", "direction",
      "<p><b>Today</b> and the <b>t1…t40</b> tiles give the most likely direction of NIFTY over that many sessions: UP / DOWN, or NEUTRAL when the move is expected to stay within a quarter of a normal day's volatility.</p>" +
      "<p><b>Conviction</b> is the probability of the called class. Daily direction is close to a coin flip: a tile marked <i>≈ climatology</i> does not beat plain historical frequencies out of sample.</p>" +
      "<p>Open <b>source</b> under a tile (tap or keyboard) for where its value came from. <span class=\"chip bad\">stale</span> and <span class=\"chip bad\">degraded</span> badges mean: do not trust it as current.</p>"),
  ];

  // Sellers ------------------------------------------------------------------------------
  const sellers = [
    {
      id: "sel-range", tab: "sellers", title: "Safe range to expiry", engines: ["seller", "market"], group: "seller.safe_range",
      render: (doc) => {
        const r = doc.seller.safe_range;
        const spot = get(doc, "market.spot");
        const chain = get(doc, "seller.chain") || {};
        const priced = get(chain, "straddle.band");
        const market = priced && chain.status === "fresh" && chain.expiry === r.expiry && priced.coverage === r.coverage_target
          ? `<div class="sub" data-testid="sel-range-straddle">the market's priced band (ATM straddle, same target): ${num(priced.lower, 0)} – ${num(priced.upper, 0)}</div>` : "";
        return big("sel-range", `${num(r.lower, 0)} – ${num(r.upper, 0)}`) +
          Charts.band(r.lower, r.upper, [{ value: spot, label: "spot", cls: "spot" }]) +
          sub(`target: holds the expiry close ${pct(r.coverage_target)} of the time · expiry ${esc(r.expiry || "—")} (${esc(r.days_to_expiry ?? "—")} d)`) +
          market;
      },
      meaning: "Index points between which the next weekly expiry's close is expected, calibrated to the target coverage; beside it, with a fresh chain of that expiry, the band the ATM straddle prices at the same target (the range's market baseline).",
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
      meaning: "Strike (index points) where option writers would pay least at expiry, from an option chain's open interest.",
    },
    {
      id: "sel-stress", tab: "sellers", title: "Expiry stress", engines: ["seller"], group: "seller.expiry_stress",
      render: (doc) => {
        const s = doc.seller.expiry_stress;
        const p = s.probabilities || {};
        return big("sel-stress", `${s.label || "—"} · ${pct(s.score)}`, `label ${labelClass(s.label)}`) +
          Charts.bars([{ label: "stress", value: s.score, text: pct(s.score), cls: labelClass(s.label) }]) +
          sub(`realised vol until expiry: low ${pct(p.low)} · medium ${pct(p.medium)} · high ${pct(p.high)}`);
      },
      meaning: "Expiry stress, %: 0.5 × P(medium) + P(high) realised-volatility regime until expiry.",
    },
    {
      id: "sel-trap", tab: "sellers", title: "Volatility trap", engines: ["seller"], group: "seller.trap",
      render: (doc) => {
        const t = doc.seller.trap;
        return Charts.gauge(t.score, { label: "volatility trap" }) +
          big("sel-trap", `${pct(t.score)} · ${t.label || "—"}`, labelClass(t.label)) +
          sub(`VIX 1-y percentile ${pct(t.iv_percentile)} · realised vol 1-y percentile ${pct(t.rv_percentile)}`);
      },
      meaning: "Probability, %, that realised volatility over the next 5 sessions exceeds today's VIX.",
    },
    {
      id: "sel-skew", tab: "sellers", title: "Skew", engines: ["seller"], group: "seller.skew",
      render: (doc) => {
        const s = doc.seller.skew;
        const chain = s.method === "chain_iv";
        const [left, right] = chain ? ["puts", "calls"] : ["falls", "rises"];
        const [put, call, net] = [s.put, s.call, s.net].map(volPoints);
        const scale = Charts.niceCeiling(Math.max(...[put, call, net].filter(ok).map(Math.abs)));
        const bar = (label, v, barClass) => ({ label, value: v, text: signed(v), cls: barClass });
        return big("sel-skew", ok(net) ? `net ${signed(net)} vol pts` : "—") +
          sub(SKEW_METHODS[s.method] || `no skew: ${esc(get(s, "provenance.note") || "no method")}`) +
          Charts.bars([bar(left, put, "down"), bar(right, call, "up"), bar("net", net, ok(net) && net > 0 ? "down" : "up")],
            { signed: true, scale, labelWidth: 40 }) +
          sub(`vol points (1 = 1 % annualised volatility); bars to ±${scale} · net > 0: ${chain ? "puts priced richer than calls" : "falls have been larger than rises"}`);
      },
      meaning: "Down-side minus up-side volatility, in volatility points (annualised, %): from the option chain's implied volatilities when a chain is fresh, else from NIFTY's daily returns.",
    },
    Pictures.priceTile("sel-price", "sellers"),
    labelTile("sel-regime", "sellers", "VIX regime", "seller.regime", "seller",
      `India VIX regime the seller statistics are split by: LOW below ${VIX_LOW}, NORMAL ${VIX_LOW}–${VIX_HIGH}, HIGH from ${VIX_HIGH}.`),
    {
      id: "sel-breach", tab: "sellers", title: "Breach probability at expiry", engines: ["seller", "market"], group: "seller.breach_probabilities",
      render: (doc) => {
        const pts = get(doc, "seller.breach_probabilities.points") || [];
        // per side, the strike nearest 1 % from spot
        const near = ["below", "above"].map((side) => pts.filter((p) => p.side === side && ok(p.distance_pct))
          .sort((a, b) => Math.abs(a.distance_pct - 1) - Math.abs(b.distance_pct - 1))[0]).filter(Boolean);
        const text = near.map((p) => `${p.side} ${num(p.strike, 0)}: ${pct(p.probability, 1)}`).join(" · ");
        return Charts.breachCurve(pts, get(doc, "market.spot")) +
          `<div class="sub" data-testid="sel-breach-value">about 1 % away: ${esc(text || "—")}</div>`;
      },
      meaning: "Probability, %, that the expiry close lands beyond each strike (index points); red below spot, green above.",
    },
    rateTile("sel-hitrate", "sellers", "Historical hit rate", "seller.historical_hit_rate",
      "day–expiry pairs: each session's safe range against the close of its next expiry",
      "Share, %, of past sessions whose safe range held the close of their next expiry, measured out of sample."),
    {
      id: "sel-flag", tab: "sellers", title: "Seller daily flag", engines: ["seller"], group: "seller.seller_flag",
      render: (doc) => {
        const fl = doc.seller.seller_flag;
        return big("sel-flag", fl.label || "—", `label ${labelClass(fl.label)}`) +
          `<ul class="reasons" data-testid="sel-flag-reasons">${(fl.reasons || []).map((r) => `<li>${esc(percentsIn(r))}</li>`).join("")}</ul>`;
      },
      meaning: "Overall context for option sellers today from the tiles on this tab, with its reasons. Not advice.",
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
        return Charts.gauge(b.score, { fill: "accent", label: "breakout probability" }) +
          big("buy-breakout", `${pct(b.score)} · ${b.label || "—"}`) +
          sub(b.broken ? `broken ${esc(b.broken)}: beyond the prior ${b.broken === "up" ? "high" : "low"} by ¼ ATR or more`
            : "no breakout yet: price has not gone ¼ ATR beyond the prior high or low") +
          (b.basis ? sub(`covers ${esc(b.basis)}`) : "");
      },
      meaning: "Probability, %, that today's range breaks the prior session's high or low by at least ¼ ATR14 (14-day average true range).",
    },
    {
      id: "buy-spike", tab: "buyers", title: "Spike direction", engines: ["buyer"], group: "buyer.spike_direction_bias",
      render: (doc) => {
        const s = doc.buyer.spike_direction_bias;
        return Charts.split(s.up_prob, s.down_prob, `▲ up ${pct(s.up_prob)}`, `down ${pct(s.down_prob)} ▼`) +
          `<div class="sub" data-testid="buy-spike-value">if the next session moves > 1.5σ: up ${esc(pct(s.up_prob))} / down ${esc(pct(s.down_prob))}</div>`;
      },
      meaning: "If the next session moves more than 1.5σ (σ: 20-day daily volatility), the probability, %, that the move is up or down.",
    },
    {
      id: "buy-theta", tab: "buyers", title: "Theta edge", engines: ["buyer"], group: "buyer.theta_edge",
      render: (doc) => {
        const t = doc.buyer.theta_edge;
        return big("buy-theta", t.label || "—", `label ${labelClass(t.label)}`) +
          Charts.bars([{ label: "edge", value: t.score, cls: "accent" }]) +
          sub(`predicted ±${num(t.predicted_move_points, 0)} vs implied ±${num(t.implied_move_points, 0)} pts to expiry`);
      },
      meaning: "Predicted move to expiry against the move option prices imply (index points); edge score 0–1.",
    },
    {
      id: "buy-next", tab: "buyers", title: "Next 5 days: breakout map", engines: ["buyer"], group: "buyer.breakout_next",
      render: (doc) => {
        const days = get(doc, "buyer.breakout_next.days") || [];
        const scores = days.map((d) => d.score).filter(ok);
        const same = scores.length > 1 && Math.max(...scores) - Math.min(...scores) < 0.005;
        const text = !scores.length ? "—" : same
          ? `${pct(scores[0])} for each session: the model has no day-by-day view`
          : `${pct(Math.min(...scores))}–${pct(Math.max(...scores))} across the next ${days.length} sessions`;
        return Charts.strip(days.map((d) => ({ label: d.date ? Charts.dayOf(d.date, { year: false }) : `+${d.day_offset}`, score: d.score, title: d.date && Charts.dayOf(d.date) }))) +
          `<div class="sub" data-testid="buy-next-value">${esc(text)}</div>`;
      },
      meaning: "Breakout probability, %, for each of the next sessions (cells: % per session, labelled with its date).",
    },
    {
      id: "buy-gamma", tab: "buyers", title: "Active half-hours (IST)", engines: ["buyer"], group: "buyer.gamma_windows",
      render: (doc) => {
        const w = get(doc, "buyer.gamma_windows.windows") || [];
        const best = w.reduce((a, b) => (ok(b.score) && (!a || b.score > a.score) ? b : a), null);
        return Charts.strip(w.map((x) => ({ label: x.block.slice(0, 5), score: x.score, title: x.block })), { labelEvery: 3 }) +
          `<div class="sub" data-testid="buy-gamma-value">most active: ${esc(best ? `${best.block} IST (${pct(best.score)} of sessions)` : "—")}</div>`;
      },
      meaning: "Share, %, of past sessions whose largest 30-minute index move fell in each half-hour (IST). About the index, not option gamma.",
    },
    Pictures.priceTile("buy-price", "buyers"),
    labelTile("buy-regime", "buyers", "Price behaviour", "buyer.regime", "buyer",
      "Whether recent daily moves followed through (trend-following), reversed (mean-reverting) or neither (choppy)."),
    rateTile("buy-spikerate", "buyers", "Historical spike rate", "buyer.historical_spike_rate",
      "each against the move of the session after it",
      "Share, %, of past sessions followed by a session moving more than 1.5σ, in the current VIX regime."),
    {
      id: "buy-levels", tab: "buyers", title: "Breakout levels", engines: ["buyer", "market"], group: "buyer.breakout_levels",
      render: (doc) => {
        const l = doc.buyer.breakout_levels;
        return big("buy-levels", `${num(l.lower, 0)} / ${num(l.upper, 0)}`) +
          Charts.band(l.lower, l.upper, [{ value: get(doc, "market.spot"), label: "spot", cls: "spot" }], { zoneClass: "band-zone soft" }) +
          sub("a move outside the band is a breakout");
      },
      meaning: "Prior session's low − ¼ ATR14 and high + ¼ ATR14, in index points.",
    },
    {
      id: "buy-env", tab: "buyers", title: "Environment", engines: ["buyer"], group: "buyer.environment",
      render: (doc) => {
        const e = doc.buyer.environment;
        return big("buy-env", e.label || "—", `label ${labelClass(e.label)}`) + sub(esc(e.text || "")) + sub("<i>context, not advice</i>");
      },
      meaning: "Context wording for option buyers from theta edge, breakout and VIX percentile; never advice.",
    },
    spotTile("buy-spot", "buyers"),
    {
      ...vixTile("buy-vix", "buyers", "VIX / shock risk"),
      engines: ["market", "seller"],
      render: (doc) => {
        const m = doc.market;
        const trap = get(doc, "seller.trap");
        return big("buy-vix", `${num(m.vix)} · ${vixRegime(m.vix)}`) +
          sub(`<span class="${cls(m.vix_change)}">${signed(m.vix_change)}</span> · shock risk ${trap ? `${pct(trap.score)} (${esc(trap.label)})` : "—"}`) +
          vixBand(m.vix);
      },
      meaning: `India VIX, %, with its regime (NORMAL ${VIX_LOW}–${VIX_HIGH}); shock risk: the volatility-trap probability, %.`,
    },
    helpTile("buy-help", "buyers",
      "<p><b>Breakout</b>: chance today's range breaks the prior session's high or low by at least a quarter of the average true range. The <b>map</b> shows the same for the next five sessions.</p>" +
      "<p><b>Theta edge</b> compares the predicted move to expiry with the move option prices imply: below it, time decay tends to win.</p>" +
      "<p><b>Active half-hours</b> rank the half-hour blocks of the session by how often they held the day's largest index move.</p>"),
  ];

  const all = [...direction, ...sellers, ...buyers];
  return { all, get, vixRegime };
})();
