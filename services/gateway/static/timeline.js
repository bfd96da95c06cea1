/* Through the day: the chain's signals over one session, from the history store (GET
   /api/v1/series/{name}, one point a minute): max pain and the OI walls against spot, the
   put/call ratio, ATM IV and the straddle-implied move. Earlier sessions are one click away;
   the live session refetches while it is shown. Above them, the live scorecard (GET
   /api/v1/scorecard) and a time scrubber that shows the whole dashboard as it was at a
   minute of the session (app.js showAt). Text only (no markup from the data). */
"use strict";

(() => {
  const EVERY_MS = 15000;
  const DAY_S = 86400;
  const LOOK_S = 14 * DAY_S; // how far back or forward "previous"/"next" look for a session
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const istDate = (epochS) => uPlot.tzDate(new Date(epochS * 1000), "Asia/Kolkata");
  const CHARTS = [
    { id: "levels", title: "Max pain and OI walls against spot (index points)",
      lines: [["spot", "NIFTY", "--text"], ["max_pain", "max pain", "--accent"],
        ["call_wall", "call wall", "--bad"], ["put_wall", "put wall", "--good"]] },
    { id: "pcr", title: "Put/call ratio (open interest)", lines: [["pcr_oi", "PCR", "--accent"]] },
    { id: "iv", title: "ATM implied volatility (%)", lines: [["atm_iv", "ATM IV", "--warn"]], scale: 100 },
    { id: "straddle", title: "Straddle-implied move to expiry (index points)",
      lines: [["straddle_move", "straddle", "--accent"]] },
  ];
  const WEEKS = { id: "weeks", title: "Safe range at each close against spot, last 8 weeks (settled expiry closes marked)",
    lines: [["spot", "NIFTY close", "--text"], ["safe_lower", "safe range low", "--good"],
      ["safe_upper", "safe range high", "--good"], ["expiry_close", "expiry close", "--bad", "marker"]] };
  const state = { session: null, follow: true, plots: {}, fetched: 0, expiries: new Set() };
  window.aegisTimeline = state; // for tests and debugging

  const section = document.createElement("section");
  section.className = "chain-section";
  section.setAttribute("data-testid", "timeline-section");
  const heading = document.createElement("h2");
  heading.textContent = "Through the day (history)";
  const nav = document.createElement("div");
  nav.className = "timeline-nav";
  const button = (label, testid) => {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = label; b.setAttribute("data-testid", testid);
    return b;
  };
  const prev = button("◀ previous session", "timeline-prev");
  const next = button("next session ▶", "timeline-next");
  const live = button("live", "timeline-live");
  const day = document.createElement("strong");
  day.setAttribute("data-testid", "timeline-day");
  const status = document.createElement("span");
  status.className = "muted";
  status.setAttribute("data-testid", "timeline-status");
  nav.append(prev, day, next, live, status);
  // the scrubber: a minute of the shown session, then the whole dashboard as it was then
  const scrub = document.createElement("div");
  scrub.className = "timeline-nav";
  const slider = document.createElement("input");
  slider.type = "range"; slider.step = "60";
  slider.setAttribute("data-testid", "timeline-scrub");
  slider.setAttribute("aria-label", "moment of the session to travel to");
  const moment = document.createElement("span");
  moment.setAttribute("data-testid", "timeline-moment");
  const travel = button("show the dashboard at this moment", "timeline-travel");
  scrub.append("Time travel:", slider, moment, travel);
  const hhmm = (epochS) => new Date((epochS + 19800) * 1000).toISOString().slice(11, 16);
  const grid = document.createElement("div");
  grid.className = "timeline-grid";
  const holders = {};
  for (const chart of [...CHARTS, WEEKS]) {
    const box = document.createElement("figure");
    box.className = chart === WEEKS ? "timeline-chart wide" : "timeline-chart";
    const caption = document.createElement("figcaption");
    caption.textContent = chart.title;
    const holder = document.createElement("div");
    holder.setAttribute("data-testid", `timeline-${chart.id}`);
    holder.dataset.points = "0";
    box.append(caption, holder);
    grid.appendChild(box);
    holders[chart.id] = holder;
  }
  const scorecard = document.createElement("p");
  scorecard.setAttribute("data-testid", "timeline-scorecard");
  const note = document.createElement("p");
  note.className = "muted";
  note.textContent = "Each point is the value the engines published at that minute (history database, IST). " +
    "Source: GET /api/v1/series/{spot, max_pain, call_wall, put_wall, pcr_oi, atm_iv, straddle_move, safe_lower, safe_upper}; " +
    "the weeks chart: each session's last value; expiry closes from GET /api/v1/scorecard.";
  section.append(heading, scorecard, nav, scrub, grid, note);
  const anchor = document.querySelector('[data-testid="depth-section"]');
  if (anchor) anchor.after(section); else (document.querySelector("main") || document.body).appendChild(section);

  const span = Pictures.sessionSpan; // 09:15 and 15:30 IST of a session, epoch seconds
  const isoDay = (epochS) => new Date((epochS + 19800) * 1000).toISOString().slice(0, 10); // IST

  async function series(name, start, end, step) {
    const res = await fetch(`/api/v1/series/${name}?start=${start}&end=${end}&step=${step}`, { credentials: "same-origin" });
    if (!res.ok) throw new Error(res.status === 503 ? "history store unavailable" : `HTTP ${res.status}`);
    return (await res.json()).points;
  }

  /** The nearest session with spot points before (direction -1) or after (+1) ``session``. */
  async function neighbour(session, direction) {
    const [open, close] = span(session);
    const range = direction < 0 ? [open - LOOK_S, open - 1] : [close + 1, close + LOOK_S];
    const days = await series("spot", range[0], range[1], DAY_S); // one point per UTC day
    if (!days.length) return null;
    return isoDay((direction < 0 ? days[days.length - 1] : days[0])[0]);
  }

  function draw(chart, points, [open, close]) {
    const holder = holders[chart.id];
    const times = [...new Set([open, ...Object.values(points).flat().map((p) => p[0]), close])].sort((a, b) => a - b);
    const at = (pts) => { const m = new Map(pts.map((p) => [p[0], p[1] * (chart.scale || 1)])); return times.map((t) => m.has(t) ? m.get(t) : null); };
    const data = [times, ...chart.lines.map(([name]) => at(points[name] || []))];
    const width = Math.max(240, holder.clientWidth || 300);
    const key = `${document.documentElement.dataset.theme}|${width}`;
    const known = state.plots[chart.id];
    if (known && known.key === key) known.plot.setData(data);
    else {
      if (known) known.plot.destroy();
      const axis = { stroke: css("--muted"), grid: { stroke: css("--line"), width: 1 }, ticks: { stroke: css("--line") } };
      // one unambiguous format: "14:55" through a session, "27 Jan" across weeks (IST)
      const fmt = chart === WEEKS ? { day: "2-digit", month: "short" } : { hour: "2-digit", minute: "2-digit", hour12: false };
      const xValues = (u, splits) => splits.map((s) => new Date(s * 1000).toLocaleString("en-GB", { timeZone: "Asia/Kolkata", ...fmt }));
      const plot = new uPlot({
        width, height: 150, tzDate: istDate, cursor: { y: false }, legend: { live: false }, scales: { x: { time: true } },
        axes: [{ ...axis, values: xValues }, { ...axis, size: 56 }],
        series: [{}, ...chart.lines.map(([, label, color, marker], i) => marker
          ? { label, stroke: css(color), width: 0, points: { show: true, size: 9, fill: css(color) } }
          : { label, stroke: css(color), width: i ? 1.5 : 2, spanGaps: true, points: { show: false } })],
      }, data, holder);
      state.plots[chart.id] = { plot, key };
    }
    holder.dataset.points = String(chart.lines.reduce((n, [name]) => n + (points[name] || []).length, 0));
  }

  async function refresh() {
    const doc = window.aegis && window.aegis.doc;
    const today = doc && doc.market && doc.market.session_date;
    if (state.follow && today) state.session = today;
    if (!state.session) { setTimeout(refresh, 1000); return; } // no document yet
    day.textContent = state.session + (state.session === today ? " (live session)" : "");
    live.disabled = state.follow;
    const [open, close] = span(state.session);
    if (Number(slider.min) !== open) {
      slider.min = String(open); slider.max = String(close - 60); slider.value = String(close - 60);
      moment.textContent = `${state.session} ${hhmm(close - 60)} IST`;
    }
    const names = [...new Set(CHARTS.flatMap((c) => c.lines.map(([name]) => name)))];
    try {
      const got = await Promise.all(names.map((n) => series(n, open, close, 60)));
      const points = Object.fromEntries(names.map((n, i) => [n, got[i]]));
      for (const chart of CHARTS) draw(chart, points, [open, close]);
      const weeks = [close - 56 * DAY_S, close];
      const daily = await Promise.all(["spot", "safe_lower", "safe_upper"].map((n) => series(n, ...weeks, DAY_S)));
      const closes = { spot: daily[0], safe_lower: daily[1], safe_upper: daily[2] };
      closes.expiry_close = daily[0].filter((p) => state.expiries.has(isoDay(p[0])));
      draw(WEEKS, closes, weeks);
      const chainPoints = (points.pcr_oi || []).length;
      status.textContent = chainPoints ? "" : " · no option-chain values stored for this session";
      state.fetched += 1;
    } catch (e) {
      status.textContent = ` · ${e.message}`;
      if (state.follow) setTimeout(refresh, 2000); // not signed in yet, or the store is away
    }
  }

  async function move(direction) {
    if (!state.session) return;
    try {
      const target = await neighbour(state.session, direction);
      if (!target) { status.textContent = ` · no ${direction < 0 ? "earlier" : "later"} session stored`; return; }
      const today = window.aegis && window.aegis.doc && window.aegis.doc.market && window.aegis.doc.market.session_date;
      state.follow = target === today;
      state.session = target;
      await refresh();
    } catch (e) { status.textContent = ` · ${e.message}`; }
  }

  const pct = (v) => `${Math.round(v * 100)} %`;
  /** "live: 18 of the last 20 closes' ranges held at expiry", beside the VIX band's count. */
  async function refreshScorecard() {
    try {
      const res = await fetch("/api/v1/scorecard?last=20", { credentials: "same-origin" });
      if (!res.ok) return;
      const body = await res.json();
      const card = body.safe_range, trap = body.trap.all, stress = body.stress.all;
      state.expiries = new Set(body.expiries.map((e) => e.expiry));
      const { all, last } = card;
      if (!all.scored) { scorecard.textContent = "Live scorecard: no expiry has settled in the stored history yet."; return; }
      const regimes = Object.entries(card.by_regime).map(([k, r]) => `${k} ${pct(r.hit_rate)} of ${r.scored}`).join(" · ");
      scorecard.textContent = `Live scorecard: ${last.inside} of the last ${last.scored} session closes' safe ranges held at their expiry ` +
        `(target ${pct(card.coverage_target)}; VIX band at the same target: ${last.vix_band_inside} of ${last.vix_band_scored}` +
        (last.straddle_band_scored ? `; the straddle's priced band: ${last.straddle_band_inside} of the ${last.straddle_band_scored} closes with a chain of that expiry, where the range held ${last.inside_where_straddle_scored}` : "") + "). " +
        `Since ${card.window.split("..")[0]}: ${pct(all.hit_rate)} of ${all.scored} closes over ${all.expiries} expiries (${regimes})` +
        (body.in_sample_left_out ? `; ${body.in_sample_left_out} in-sample closes left out.` : ".") +
        (card.breach.all.strikes ? ` Breach probabilities: Brier ${card.breach.all.brier.toFixed(4)} against the VIX lognormal's ${card.breach.all.brier_lognormal.toFixed(4)} (${card.breach.all.strikes} strikes).` : "") +
        (trap.scored ? ` Trap: Brier ${trap.brier.toFixed(4)} against ${trap.brier_observed_rate.toFixed(4)} for the observed rate ${pct(trap.event_rate)}${trap.auc !== null ? `, AUC ${trap.auc.toFixed(2)} (a constant: 0.50)` : ""} (${trap.scored} closes).` : "") +
        (stress.spearman !== null ? ` Stress: rank correlation with the realised vol to expiry ${stress.spearman.toFixed(2)}, VIX's ${stress.spearman_vix.toFixed(2)}.` : "") +
        (Object.keys(body.direction).length ? ` Direction, Brier skill against climatology: ${Object.entries(body.direction).map(([h, d]) => `${h} ${d.skill >= 0 ? "+" : ""}${(d.skill * 100).toFixed(1)} % (${d.scored})`).join(" · ")}.` : "");
    } catch (e) { /* the next poll tries again */ }
  }

  slider.oninput = () => { moment.textContent = `${state.session} ${hhmm(Number(slider.value))} IST`; };
  travel.onclick = () => window.aegis.showAt(Number(slider.value)).catch((e) => { status.textContent = ` · ${e.message}`; });
  prev.onclick = () => move(-1);
  next.onclick = () => move(1);
  live.onclick = () => { state.follow = true; refresh(); };
  setTimeout(async () => { await refreshScorecard(); refresh(); }, 500); // expiries, then charts
  // the charts take their colours from the theme: redraw when it changes
  new MutationObserver(() => { if (state.session) refresh(); })
    .observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  setInterval(refreshScorecard, 60000);
  setInterval(() => { if (state.follow) refresh(); }, EVERY_MS);
})();
