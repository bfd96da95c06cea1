/* Pictures a trader would rather look at than read: today's price with the safe range, the
   breakout levels and the expiry (uPlot, vendored), and a history strip of the main signals
   over recent sessions (inline SVG). Data: the document plus GET /api/v1/history. */
"use strict";

const Pictures = (() => {
  const { esc, ok } = Charts;
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const istDate = (epochS) => uPlot.tzDate(new Date(epochS * 1000), "Asia/Kolkata");
  const plots = new WeakMap(); // container -> {plot, key}

  /** The session's prices: the history's points of it (else the document's recent closes
      that fall inside it), topped up with the document's newest spot. */
  function pricePoints(doc, history) {
    const m = doc.market || {};
    const span = sessionSpan(m.session_date);
    const inSession = (p) => Array.isArray(p) && ok(p[0]) && ok(p[1]) && span && p[0] >= span[0] && p[0] <= span[1];
    const intra = (history && history.intraday) || {};
    let pts = intra.session_date === m.session_date ? (intra.points || []).filter(inSession) : [];
    if (pts.length < 2) pts = (m.sparkline || []).filter(inSession);
    const newest = [Date.parse(m.as_of) / 1000, m.spot];
    if (inSession(newest) && (!pts.length || newest[0] > pts[pts.length - 1][0])) pts.push(newest);
    return pts;
  }

  function levelsOf(doc) {
    const r = (doc.seller && doc.seller.safe_range) || {};
    const b = (doc.buyer && doc.buyer.breakout_levels) || {};
    return {
      range_lower: r.lower, range_upper: r.upper, expiry: r.expiry, days: r.days_to_expiry,
      breakout_lower: b.lower, breakout_upper: b.upper, prev_close: doc.market && doc.market.prev_close,
    };
  }

  /** 09:15 and 15:30 IST of an ISO session date, epoch seconds. */
  function sessionSpan(sessionDate) {
    const [y, m, d] = String(sessionDate || "").split("-").map(Number);
    if (!y) return null;
    const open = Date.UTC(y, m - 1, d, 3, 45) / 1000; // 09:15 IST = 03:45 UTC
    return [open, open + 375 * 60];
  }

  /** On expiry day, a dashed line at the close labelled "expiry 15:30". */
  function markExpiry(u) {
    const close = u.aegisExpiryAt;
    if (!ok(close)) return;
    const x = u.valToPos(close, "x", true);
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = css("--bad"); ctx.fillStyle = css("--bad"); ctx.lineWidth = 2 * devicePixelRatio;
    ctx.setLineDash([5 * devicePixelRatio, 4 * devicePixelRatio]);
    ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
    ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`; ctx.textAlign = "right";
    ctx.fillText("expiry 15:30", x - 4 * devicePixelRatio, u.bbox.top + 12 * devicePixelRatio);
    ctx.restore();
  }

  /** The y axis fits the day's prices: a level within the day's range (at least 0.2 % of the
      price) of them is drawn on the chart, a farther one only named in the caption (it would
      squash the price line), so a day's moves fill about a third of the height or more.
      Returns the axis range and the test for a level. */
  function priceAxis(prices, levels) {
    if (!prices.length) return { range: null, onChart: () => true };
    const [lo, hi] = [Math.min(...prices), Math.max(...prices)];
    const reach = Math.max(hi - lo, hi * 0.002);
    const onChart = (v) => ok(v) && v >= lo - reach && v <= hi + reach;
    const shown = [lo, hi, ...levels.filter(onChart)];
    const [min, max] = [Math.min(...shown), Math.max(...shown)];
    const pad = (max - min) * 0.06;
    return { range: [min - pad, max + pad], onChart };
  }

  const PRICE_STEPS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000];
  const ticksOf = (u) => u.aegisTicks || (u.aegisTicks = {});
  /** Tick labels: index points with Indian digit grouping; IST clock times (the date is in the
      caption, one format). Each axis keeps its labels on the chart for tests. */
  const pointTicks = (u, splits) => (ticksOf(u).y = splits.map((v) => Math.round(v).toLocaleString("en-IN")));
  const clockTicks = (u, splits) => (ticksOf(u).x = splits.map((t) => Charts.istClock(t)));
  function recordTicks(u) {
    const holder = u.root.parentElement;
    holder.dataset.xTicks = (ticksOf(u).x || []).join("|");
    holder.dataset.yTicks = (ticksOf(u).y || []).join("|");
    holder.dataset.yRange = [u.scales.y.min, u.scales.y.max].map(Math.round).join(" ");
  }

  function newPricePlot(width, data, holder) {
    const line = (label, stroke, dash, w = 1.5) => ({ label, stroke, width: w, dash, points: { show: false }, spanGaps: true });
    const axis = { stroke: css("--muted"), grid: { stroke: css("--line"), width: 1 }, ticks: { stroke: css("--line") } };
    const opts = {
      width, height: 170, tzDate: istDate, legend: { show: false }, cursor: { show: true, y: false },
      scales: { x: { time: true }, y: { range: (u, min, max) => u.aegisYRange || uPlot.rangeNum(min, max, 0.1, true) } },
      hooks: { draw: [markExpiry, recordTicks] },
      axes: [{ ...axis, values: clockTicks }, { ...axis, size: 60, space: 18, incrs: PRICE_STEPS, values: pointTicks }],
      series: [{}, line("NIFTY", css("--text"), undefined, 2),
        line("safe range low", css("--good"), [6, 3]), line("safe range high", css("--good"), [6, 3]),
        line("breakout low", css("--warn"), [2, 3]), line("breakout high", css("--warn"), [2, 3]),
        line("previous close", css("--muted"), [1, 4], 1)],
    };
    return new uPlot(opts, data, holder);
  }

  const n0 = (v) => (ok(v) ? Math.round(v).toLocaleString("en-IN") : "—");
  /** Levels as text, naming those beyond the y axis (not drawn). */
  function levelsText(values, onChart, separator) {
    const beyond = values.filter((v) => ok(v) && !onChart(v));
    const text = values.map(n0).join(separator);
    if (!beyond.length) return text;
    return text + (beyond.length === values.length ? " (beyond the y axis)" : ` (${beyond.map(n0).join(", ")} beyond the y axis)`);
  }

  /** The caption: each level (and whether it lies beyond the y axis), what the line draws. */
  function priceCaption(id, lv, pts, expiryAt, onChart) {
    const expiry = lv.expiry ? Charts.dayOf(lv.expiry) : "—";
    return `<span class="key good">- - safe range ${levelsText([lv.range_lower, lv.range_upper], onChart, "–")} to expiry ${esc(expiry)}${expiryAt !== null ? " (today, 15:30)" : ` (${esc(lv.days ?? "—")} d)`}</span>` +
      ` · <span class="key warn">·· breakout ${levelsText([lv.breakout_lower, lv.breakout_upper], onChart, " / ")}</span>` +
      ` · <span class="key">prev close ${levelsText([lv.prev_close], onChart, "")}</span>` +
      ` · <span data-testid="${esc(id)}-caption">line: ${esc(Charts.seriesCaption(pts))}</span>`;
  }

  function drawPrice(body, doc, history) {
    const pts = pricePoints(doc, history);
    const lv = levelsOf(doc);
    const session = doc.market && doc.market.session_date;
    const span = sessionSpan(session);
    const width = Math.max(240, body.clientWidth || 300);
    // the whole session on the x axis: what is left of the day is visible
    const raw = span ? [[span[0], null], ...pts, [span[1], null]] : pts;
    const xs = raw.map((p) => p[0]);
    const levels = [lv.range_lower, lv.range_upper, lv.breakout_lower, lv.breakout_upper, lv.prev_close];
    const axis = priceAxis(pts.map((p) => p[1]), levels);
    const flat = (v) => xs.map(() => (ok(v) && axis.onChart(v) ? v : null));
    const data = [xs, raw.map((p) => p[1]), ...levels.map(flat)];
    const key = `${document.documentElement.dataset.theme}|${width}`;
    let holder = body.querySelector(".price-chart");
    if (!holder) {
      body.innerHTML = `<div class="price-chart" data-testid="${esc(body.dataset.testid || "")}-chart"></div><div class="sub legend-text"></div>`;
      holder = body.querySelector(".price-chart");
    }
    const known = plots.get(holder);
    if (known && known.key !== key) known.plot.destroy(); // another theme or width
    const plot = known && known.key === key ? known.plot : newPricePlot(width, data, holder);
    plots.set(holder, { plot, key });
    const expiryAt = span && lv.expiry === session ? span[1] : null;
    Object.assign(plot, { aegisExpiryAt: expiryAt, aegisYRange: axis.range });
    plot.setData(data); // rescales y to the range above and redraws the expiry mark
    holder.dataset.points = String(pts.length);
    holder.dataset.expiryToday = String(expiryAt !== null);
    body.querySelector(".legend-text").innerHTML = priceCaption(body.dataset.testid, lv, pts, expiryAt, axis.onChart);
  }

  const HISTORY_ROWS = [
    { key: "trap", label: "vol trap", cls: "bad" },
    { key: "stress", label: "expiry stress", cls: "warn" },
    { key: "up", label: "P(up) last call", cls: "up" },
    { key: "down", label: "P(down) last call", cls: "down" },
  ];
  const RANGE_ROW = { key: "close_in_range", label: "close in range" };
  const hasValue = (s, key) => (key === RANGE_ROW.key
    ? [s.close, s.range_lower, s.range_upper].every(ok) : ok(s[key]));

  /** Why a session has no value for a row (its empty cell's tooltip and the caption). */
  function whyEmpty(s, key) {
    if (key === RANGE_ROW.key) return ok(s.close) ? "no safe range in the stored blocks" : "no NIFTY close in the stored blocks";
    return s.in_sample_left_out ? "left out: in sample, the model was trained on this session" : "none in the stored blocks";
  }

  /** Per row with empty cells: how many sessions lack a value, and why. */
  function emptyCells(sessions) {
    return [...HISTORY_ROWS, RANGE_ROW].map((row) => {
      const empty = sessions.filter((s) => !hasValue(s, row.key));
      if (!empty.length) return "";
      const reasons = {};
      empty.forEach((s) => { const why = whyEmpty(s, row.key); reasons[why] = (reasons[why] || 0) + 1; });
      const why = Object.entries(reasons).map(([text, count]) => `${count} ${text}`).join(", ");
      return `${row.label}: ${empty.length} of ${sessions.length} empty (${why})`;
    }).filter(Boolean).join(" · ");
  }

  function historyCaption(id, sessions) {
    const span = `${sessions.length} sessions, ${Charts.dayOf(sessions[0].session_date)} – ${Charts.dayOf(sessions[sessions.length - 1].session_date)}`;
    const empty = emptyCells(sessions);
    return `<div class="sub" data-testid="${esc(id)}-caption">${esc(span)}: cells % per session (darker = higher); ` +
      "P(up) / P(down) last call: the Today tile's probabilities as last published in the session, after its close the next session's call (base rates where the model shows no skill); " +
      "dots: close inside (green) or outside (red) that session's safe range</div>" +
      (empty ? `<div class="sub" data-testid="${esc(id)}-empty">empty cells · ${esc(empty)}</div>` : "");
  }

  function drawHistory(body, doc, history) {
    if (body.historyShown === history && body.querySelector(".history-strip")) return; // unchanged
    body.historyShown = history;
    const id = body.dataset.testid || "";
    const sessions = (history && history.sessions) || [];
    body.innerHTML = `<div class="history-strip" data-testid="${esc(id)}-strip" data-sessions="${sessions.length}">` +
      (sessions.length ? Charts.historyStrip(sessions, HISTORY_ROWS, whyEmpty) : `<div class="waiting">no history yet</div>`) + "</div>" +
      (sessions.length ? historyCaption(id, sessions) : "");
  }

  const priceTile = (id, tab) => ({
    id, tab, title: "NIFTY today with its levels", engines: ["market", "seller", "buyer"], group: "market", wide: true,
    draw: drawPrice,
    meaning: "NIFTY's prices in this session (index points, IST; the caption says how many and how often) against the safe range to expiry, the breakout levels and the previous close.",
  });
  const historyTile = (id, tab) => ({
    id, tab, title: "Signals over recent sessions", engines: ["market", "direction", "seller"], group: null, wide: true,
    draw: drawHistory,
    sourceNote: "data: GET /api/v1/history, the newest block per engine and session on the aegis:blocks stream",
    meaning: "Per session, the last stored value of the volatility trap, expiry stress and the Today tile's direction probabilities (%), and the close against the safe range.",
  });

  return { priceTile, historyTile, sessionSpan };
})();
