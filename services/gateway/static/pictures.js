/* Pictures a trader would rather look at than read: today's price with the safe range, the
   breakout levels and the expiry (uPlot, vendored), and a history strip of the main signals
   over recent sessions (inline SVG). Data: the document plus GET /api/v1/history. */
"use strict";

const Pictures = (() => {
  const { esc, ok } = Charts;
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const istDate = (epochS) => uPlot.tzDate(new Date(epochS * 1000), "Asia/Kolkata");
  const plots = new WeakMap(); // container -> {plot, key}

  /** Today's 1-minute prices (history endpoint, topped up with the document's newest spot). */
  function pricePoints(doc, history) {
    const m = doc.market || {};
    const intra = (history && history.intraday) || {};
    let pts = intra.session_date === m.session_date ? (intra.points || []).slice() : [];
    if (pts.length < 2) pts = (m.sparkline || []).filter((p) => Array.isArray(p) && ok(p[0]) && ok(p[1]));
    const asOf = Date.parse(m.as_of) / 1000;
    if (ok(m.spot) && ok(asOf) && (!pts.length || asOf > pts[pts.length - 1][0])) pts.push([asOf, m.spot]);
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

  function drawPrice(body, doc, history) {
    const pts = pricePoints(doc, history);
    const lv = levelsOf(doc);
    const session = doc.market && doc.market.session_date;
    const span = sessionSpan(session);
    const width = Math.max(240, body.clientWidth || 300);
    // the whole session on the x axis: what is left of the day is visible
    const raw = span ? [[span[0], null], ...pts, [span[1], null]] : pts;
    const xs = raw.map((p) => p[0]);
    const flat = (v) => xs.map(() => (ok(v) ? v : null));
    const data = [xs, raw.map((p) => p[1]), flat(lv.range_lower), flat(lv.range_upper),
      flat(lv.breakout_lower), flat(lv.breakout_upper), flat(lv.prev_close)];
    const theme = document.documentElement.dataset.theme;
    const key = `${theme}|${width}`;
    let holder = body.querySelector(".price-chart");
    if (!holder) {
      body.innerHTML = `<div class="price-chart" data-testid="${esc(body.dataset.testid || "")}-chart"></div><div class="sub legend-text"></div>`;
      holder = body.querySelector(".price-chart");
    }
    const known = plots.get(holder);
    const expiryAt = span && lv.expiry === session ? span[1] : null;
    if (known && known.key === key) {
      known.plot.aegisExpiryAt = expiryAt;
      known.plot.setData(data);
    } else {
      if (known) known.plot.destroy();
      const line = (label, stroke, dash, w = 1.5) => ({ label, stroke, width: w, dash, points: { show: false }, spanGaps: true });
      const opts = {
        width, height: 170, tzDate: istDate, legend: { show: false }, cursor: { show: true, y: false },
        scales: { x: { time: true } }, hooks: { draw: [markExpiry] },
        axes: [
          { stroke: css("--muted"), grid: { stroke: css("--line"), width: 1 }, ticks: { stroke: css("--line") } },
          { stroke: css("--muted"), grid: { stroke: css("--line"), width: 1 }, ticks: { stroke: css("--line") }, size: 60,
            values: (u, vals) => vals.map((v) => Math.round(v).toLocaleString("en-IN")) },
        ],
        series: [{}, line("NIFTY", css("--text"), undefined, 2),
          line("safe range low", css("--good"), [6, 3]), line("safe range high", css("--good"), [6, 3]),
          line("breakout low", css("--warn"), [2, 3]), line("breakout high", css("--warn"), [2, 3]),
          line("previous close", css("--muted"), [1, 4], 1)],
      };
      const plot = new uPlot(opts, data, holder);
      plot.aegisExpiryAt = expiryAt;
      plot.redraw(false, false);
      plots.set(holder, { plot, key });
    }
    holder.dataset.points = String(pts.length);
    holder.dataset.expiryToday = String(expiryAt !== null);
    const n0 = (v) => (ok(v) ? Math.round(v).toLocaleString("en-IN") : "—");
    body.querySelector(".legend-text").innerHTML =
      `<span class="key good">- - safe range ${n0(lv.range_lower)}–${n0(lv.range_upper)} to expiry ${esc(lv.expiry || "—")}${expiryAt !== null ? " (today, 15:30)" : ` (${esc(lv.days ?? "—")} d)`}</span>` +
      ` · <span class="key warn">·· breakout ${n0(lv.breakout_lower)} / ${n0(lv.breakout_upper)}</span>` +
      ` · <span class="key">prev close ${n0(lv.prev_close)}</span> · ${pts.length} one-minute points, IST`;
  }

  const HISTORY_ROWS = [
    { key: "trap", label: "vol trap", cls: "bad" },
    { key: "stress", label: "expiry stress", cls: "warn" },
    { key: "up", label: "P(up) today", cls: "up" },
    { key: "down", label: "P(down) today", cls: "down" },
  ];

  function drawHistory(body, doc, history) {
    if (body.historyShown === history && body.querySelector(".history-strip")) return; // unchanged
    body.historyShown = history;
    const sessions = (history && history.sessions) || [];
    const left = sessions.reduce((a, s) => a + (s.in_sample_left_out || 0), 0);
    body.innerHTML = `<div class="history-strip" data-testid="${esc(body.dataset.testid || "")}-strip" data-sessions="${sessions.length}">` +
      (sessions.length ? Charts.historyStrip(sessions, HISTORY_ROWS) : `<div class="waiting">no history yet</div>`) + "</div>" +
      `<div class="sub">cells: % per session (darker = higher); dots: close inside (green) or outside (red) that session's safe range` +
      (left ? ` · ${left} in-sample model values left out` : "") + "</div>";
  }

  const priceTile = (id, tab) => ({
    id, tab, title: "NIFTY today with its levels", engines: ["market", "seller", "buyer"], group: "market", wide: true,
    draw: drawPrice,
    meaning: "NIFTY 1-minute prices today (index points, IST) against the safe range to expiry, the breakout levels and the previous close.",
  });
  const historyTile = (id, tab) => ({
    id, tab, title: "Signals over recent sessions", engines: ["market", "direction", "seller"], group: null, wide: true,
    draw: drawHistory,
    sourceNote: "data: GET /api/v1/history, the newest block per engine and session on the aegis:blocks stream",
    meaning: "Per session, the day's last value of the volatility trap, expiry stress and today's direction probabilities (%), and the close against the safe range.",
  });

  return { priceTile, historyTile, sessionSpan };
})();
