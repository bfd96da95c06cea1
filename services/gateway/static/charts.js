/* Inline SVG charts: small pure functions returning markup strings. Colours come from CSS
   variables so both themes work. Every number passed in is checked; null draws an empty chart. */
"use strict";

const Charts = (() => {
  const ok = (v) => typeof v === "number" && Number.isFinite(v);
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const f = (v) => (Math.round(v * 10) / 10).toString();

  // One date format on every chart, "01 Jun 2022" (never 6/1/22), times in IST.
  const DAY = { day: "2-digit", month: "short", year: "numeric" };
  const istDay = (epochS) => new Date(epochS * 1000).toLocaleDateString("en-GB", { ...DAY, timeZone: "Asia/Kolkata" });
  const istClock = (epochS) => new Date(epochS * 1000).toLocaleTimeString("en-GB", { timeZone: "Asia/Kolkata", hour: "2-digit", minute: "2-digit" });
  /** An ISO date ("2022-06-01", a session or an expiry) as "01 Jun 2022" ("01 Jun" without
      the year). */
  const dayOf = (iso, { year = true } = {}) => {
    const d = new Date(`${iso}T00:00:00Z`);
    const format = { ...DAY, year: year ? "numeric" : undefined, timeZone: "UTC" };
    return Number.isFinite(d.getTime()) ? d.toLocaleDateString("en-GB", format) : String(iso ?? "—");
  };

  const DAILY_GAP_S = 18 * 3600; // closes at least this far apart are a day or more apart
  const minutesOf = (times) => istDay(times[0]) === istDay(times[times.length - 1]) &&
    times.slice(1).every((t, i) => t > times[i] && (t - times[i]) % 60 === 0);
  const dailyOf = (times) => times.slice(1).every((t, i) => t - times[i] >= DAILY_GAP_S && istClock(t) === istClock(times[0]));

  function minutesCaption(times) {
    const [first, last, n] = [times[0], times[times.length - 1], times.length];
    const missing = (last - first) / 60 + 1 - n;
    const clock = n > 1 ? `${istClock(first)}–${istClock(last)}` : istClock(last);
    return `${n} one-minute close${n > 1 ? "s" : ""}, ${clock} IST, ${istDay(last)}` +
      (missing ? ` (${missing} minute${missing > 1 ? "s" : ""} missing)` : "");
  }
  const dailyCaption = (times) => `${times.length} daily closes, ${istDay(times[0])} – ${istDay(times[times.length - 1])}`;

  /** What a series of [epoch_s, close] points is, read from its own timestamps: "34
      one-minute closes, 09:16–09:50 IST, 22 Jan 2026" (with the minutes missing, if any),
      "12 daily closes, 13 Jun 2025 – 30 Jun 2025", daily closes then the last day's minutes,
      else "60 closes at uneven intervals, …". */
  function seriesCaption(points) {
    const times = points.map((p) => p[0]);
    if (!times.length) return "no closes yet";
    if (times.length === 1) return `1 close, ${istClock(times[0])} IST, ${istDay(times[0])}`;
    if (minutesOf(times)) return minutesCaption(times);
    if (dailyOf(times)) return dailyCaption(times);
    const lastDay = times.findIndex((t) => istDay(t) === istDay(times[times.length - 1]));
    const [days, minutes] = [times.slice(0, lastDay), times.slice(lastDay)];
    if (days.length > 1 && dailyOf(days) && minutesOf(minutes)) return `${dailyCaption(days)}, then ${minutesCaption(minutes)}`;
    const [first, last] = [times[0], times[times.length - 1]];
    return `${times.length} closes at uneven intervals, ${istDay(first)} ${istClock(first)} – ${istDay(last)} ${istClock(last)} IST`;
  }

  /** The smallest 1, 2 or 5 × 10^k at or above ``v``: a chart's full scale. */
  function niceCeiling(v) {
    if (!ok(v) || v <= 0) return 1;
    const power = 10 ** Math.floor(Math.log10(v));
    return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= v * (1 - 1e-9));
  }

  function esc(value) {
    return String(value ?? "").replace(/[&<>"']/g, (c) => (
      { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  function polar(cx, cy, r, angle) {
    return [cx + r * Math.cos(angle), cy - r * Math.sin(angle)];
  }

  function arc(cx, cy, r, from, to) {
    const [x1, y1] = polar(cx, cy, r, Math.PI * (1 - from));
    const [x2, y2] = polar(cx, cy, r, Math.PI * (1 - to));
    return `M${f(x1)} ${f(y1)} A${r} ${r} 0 0 1 ${f(x2)} ${f(y2)}`;
  }

  /** Semi-circular gauge for a value in [0, 1]. With ``zones`` the track is coloured low
      (green) → mid (amber) → high (red), one order for every risk gauge; with ``fill`` (a
      class: up, down, neutral, accent) the arc up to the value takes that colour instead, so
      a gauge never contradicts the call it belongs to. */
  function gauge(value, { zones = [0.33, 0.66], fill = null, label = "" } = {}) {
    const v = ok(value) ? clamp(value, 0, 1) : null;
    const colours = ["var(--good)", "var(--warn)", "var(--bad)"];
    const edges = [0, zones[0], zones[1], 1];
    const bands = fill
      ? (v === null ? "" : `<path d="${arc(60, 58, 46, 0, Math.max(v, 0.001))}" class="g-fill ${esc(fill)}"/>`)
      : colours.map((c, i) =>
        `<path d="${arc(60, 58, 46, edges[i], edges[i + 1])}" stroke="${c}" class="g-zone"/>`).join("");
    const needle = v === null ? "" : (() => {
      const [x, y] = polar(60, 58, 40, Math.PI * (1 - v));
      return `<line x1="60" y1="58" x2="${f(x)}" y2="${f(y)}" class="g-needle"/>`;
    })();
    return `<svg viewBox="0 0 120 70" class="chart gauge" role="img" aria-label="${esc(label)}">
      <path d="${arc(60, 58, 46, 0, 1)}" class="g-track"/>${bands}${needle}
      <circle cx="60" cy="58" r="4" class="g-hub"/>
      <text x="12" y="69" class="axis tiny" text-anchor="middle">0</text><text x="108" y="69" class="axis tiny" text-anchor="middle">100</text></svg>`;
  }

  /** Dial 0..100 (risk score) drawn as a gauge with a numeric centre. */
  function dial(value) {
    return gauge(ok(value) ? value / 100 : null, { label: "risk score" });
  }

  /** Sparkline of [[epoch_s, close], ...]; coloured against the previous session's close
      (drawn dashed), not against the first point shown. */
  function sparkline(points, prevClose, { width = 220, height = 48 } = {}) {
    const pts = (points || []).filter((p) => Array.isArray(p) && ok(p[0]) && ok(p[1]));
    if (pts.length < 2) return `<svg viewBox="0 0 ${width} ${height}" class="chart spark"></svg>`;
    const xs = pts.map((p) => p[0]);
    const ys = pts.map((p) => p[1]);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const all = ok(prevClose) ? ys.concat([prevClose]) : ys;
    const [y0, y1] = [Math.min(...all), Math.max(...all)];
    const sx = (x) => 2 + ((x - x0) / (x1 - x0 || 1)) * (width - 4);
    const sy = (y) => height - 3 - ((y - y0) / (y1 - y0 || 1)) * (height - 6);
    const d = pts.map((p, i) => `${i ? "L" : "M"}${f(sx(p[0]))} ${f(sy(p[1]))}`).join("");
    const ref = ok(prevClose) ? prevClose : ys[0];
    const up = ys[ys.length - 1] >= ref;
    const prev = ok(prevClose) ? `<line x1="0" x2="${width}" y1="${f(sy(prevClose))}" y2="${f(sy(prevClose))}" class="spark-prev"/>` : "";
    return `<svg viewBox="0 0 ${width} ${height}" class="chart spark" preserveAspectRatio="none" role="img" aria-label="recent closes, ${up ? "above" : "below"} the previous close">
      ${prev}<path d="${d}" class="spark-line ${up ? "up" : "down"}"/></svg>`;
  }

  /** Horizontal range band [lower, upper] on an axis, with markers (e.g. spot). */
  function band(lower, upper, markers, { pad = 0.35, zoneClass = "band-zone" } = {}) {
    const values = [lower, upper, ...markers.map((m) => m.value)].filter(ok);
    if (!values.length) return `<svg viewBox="0 0 240 46" class="chart band"></svg>`;
    let lo = Math.min(...values); let hi = Math.max(...values);
    const span = (hi - lo) || Math.abs(hi) * 0.01 || 1;
    lo -= span * pad; hi += span * pad;
    const x = (v) => 8 + ((v - lo) / (hi - lo)) * 224;
    const zone = ok(lower) && ok(upper)
      ? `<rect x="${f(x(lower))}" y="14" width="${f(x(upper) - x(lower))}" height="14" rx="3" class="${zoneClass}"/>
         <text x="${f(x(lower))}" y="42" class="axis" text-anchor="middle">${esc(Math.round(lower))}</text>
         <text x="${f(x(upper))}" y="42" class="axis" text-anchor="middle">${esc(Math.round(upper))}</text>` : "";
    const marks = markers.filter((m) => ok(m.value)).map((m) =>
      `<line x1="${f(x(m.value))}" x2="${f(x(m.value))}" y1="6" y2="34" class="marker ${m.cls || ""}"/>
       <text x="${f(x(m.value))}" y="6" class="axis strong" text-anchor="middle" dy="-0.5">${esc(m.label)}</text>`).join("");
    return `<svg viewBox="0 -6 240 52" class="chart band"><line x1="8" x2="232" y1="21" y2="21" class="axis-line"/>${zone}${marks}</svg>`;
  }

  /** Horizontal bars [{label, value, text, cls}]: a bar's length is value / ``scale`` of its
      track (clamped, so it never leaves the track); ``signed`` bars grow either way from the
      middle. The value's text has a column of its own right of the track. */
  function bars(items, { signed = false, scale = 1, labelWidth = 70 } = {}) {
    const track = 196 - labelWidth; // 196..240: the value column
    const half = signed ? track / 2 : track;
    const zero = signed ? labelWidth + half : labelWidth;
    const rows = items.map((it, i) => {
      const v = ok(it.value) ? clamp(it.value / scale, signed ? -1 : 0, 1) : 0;
      const y = 4 + i * 20;
      const w = Math.abs(v) * half;
      const x0 = v < 0 ? zero - w : zero;
      return `<text x="0" y="${y + 11}" class="axis">${esc(it.label)}</text>
        <rect x="${labelWidth}" y="${y}" width="${track}" height="13" rx="2" class="bar-track"/>
        <rect x="${f(x0)}" y="${y}" width="${f(w)}" height="13" rx="2" class="bar ${it.cls || ""}"/>
        <text x="240" y="${y + 11}" class="axis strong" text-anchor="end">${ok(it.value) ? esc(it.text ?? it.value.toFixed(2)) : "—"}</text>`;
    }).join("");
    const middle = signed ? `<line x1="${zero}" x2="${zero}" y1="2" y2="${6 + items.length * 20}" class="axis-line"/>` : "";
    return `<svg viewBox="0 0 240 ${8 + items.length * 20}" class="chart bars">${rows}${middle}</svg>`;
  }

  /** One bar split in two shares (e.g. up vs down probability). */
  function split(left, right, leftLabel, rightLabel) {
    const a = ok(left) ? clamp(left, 0, 1) : 0.5;
    const b = ok(right) ? clamp(right, 0, 1) : 0.5;
    const share = a + b ? a / (a + b) : 0.5;
    return `<svg viewBox="0 0 240 40" class="chart split">
      <rect x="0" y="4" width="${f(share * 240)}" height="18" class="bar up"/>
      <rect x="${f(share * 240)}" y="4" width="${f((1 - share) * 240)}" height="18" class="bar down"/>
      <text x="2" y="36" class="axis strong">${esc(leftLabel)}</text>
      <text x="238" y="36" class="axis strong" text-anchor="end">${esc(rightLabel)}</text></svg>`;
  }

  /** A row of heat cells [{label, score in [0, 1]}]. */
  function strip(cells, { labelEvery = 1, height = 52 } = {}) {
    const n = Math.max(cells.length, 1);
    const w = 240 / n;
    const rects = cells.map((c, i) => {
      const s = ok(c.score) ? clamp(c.score, 0, 1) : null;
      const label = i % labelEvery === 0 ? `<text x="${f(i * w + w / 2)}" y="${height - 2}" class="axis tiny" text-anchor="middle">${esc(c.label)}</text>` : "";
      return `<rect x="${f(i * w + 1)}" y="2" width="${f(w - 2)}" height="${height - 18}" rx="2" class="heat" style="fill-opacity:${s === null ? 0.08 : (0.15 + 0.85 * s).toFixed(2)}"><title>${esc(c.title || c.label)}: ${s === null ? "—" : Math.round(s * 100) + "%"}</title></rect>
        <text x="${f(i * w + w / 2)}" y="${(height - 18) / 2 + 6}" class="axis tiny strong" text-anchor="middle">${s === null ? "—" : Math.round(s * 100)}</text>${label}`;
    }).join("");
    return `<svg viewBox="0 0 240 ${height}" class="chart strip">${rects}</svg>`;
  }

  /** Breach probability against strike: two curves (below / above spot) and the spot line. */
  function breachCurve(points, spot) {
    const pts = (points || []).filter((p) => ok(p.strike) && ok(p.probability));
    if (!pts.length) return `<svg viewBox="0 0 240 114" class="chart curve"></svg>`;
    const strikes = pts.map((p) => p.strike).concat(ok(spot) ? [spot] : []);
    const [x0, x1] = [Math.min(...strikes), Math.max(...strikes)];
    const pmax = Math.max(...pts.map((p) => p.probability), 0.05);
    const sx = (v) => 30 + ((v - x0) / (x1 - x0 || 1)) * 196;
    const sy = (p) => 92 - (p / pmax) * 82;
    const line = (side) => pts.filter((p) => p.side === side).sort((a, b) => a.strike - b.strike)
      .map((p, i) => `${i ? "L" : "M"}${f(sx(p.strike))} ${f(sy(p.probability))}`).join("");
    const dots = pts.map((p) => `<circle cx="${f(sx(p.strike))}" cy="${f(sy(p.probability))}" r="2.4" class="dot ${esc(p.side)}"><title>${esc(p.side)} ${esc(p.strike)}: ${(p.probability * 100).toFixed(1)}%</title></circle>`).join("");
    const spotLine = ok(spot) ? `<line x1="${f(sx(spot))}" x2="${f(sx(spot))}" y1="8" y2="92" class="marker"/><text x="${f(sx(spot))}" y="7" class="axis tiny strong" text-anchor="middle">spot</text>` : "";
    const byStrike = [...new Set(pts.map((p) => p.strike))].sort((a, b) => a - b);
    const ticks = byStrike.map((k, i) => `<line x1="${f(sx(k))}" x2="${f(sx(k))}" y1="92" y2="95" class="axis-line"/><text x="${f(sx(k))}" y="${i % 2 ? 112 : 103}" class="axis tiny" text-anchor="middle" data-strike="${esc(k)}">${esc(Math.round(k))}</text>`).join("");
    return `<svg viewBox="0 0 240 114" class="chart curve" role="img" aria-label="breach probability by strike">${ticks}
      <line x1="30" x2="226" y1="92" y2="92" class="axis-line"/>
      <text x="0" y="14" class="axis tiny">${Math.round(pmax * 100)}%</text><text x="0" y="92" class="axis tiny">0%</text>
      ${spotLine}<path d="${line("below")}" class="curve-line below"/><path d="${line("above")}" class="curve-line above"/>${dots}</svg>`;
  }

  /** Stacked probability bar up / neutral / down. */
  function probs(p) {
    if (!p) return "";
    const parts = [["up", p.up], ["neutral", p.neutral], ["down", p.down]];
    let x = 0;
    const rects = parts.map(([k, v]) => {
      const w = ok(v) ? clamp(v, 0, 1) * 240 : 0;
      const r = `<rect x="${f(x)}" y="0" width="${f(w)}" height="10" class="bar ${k}"><title>${k} ${ok(v) ? Math.round(v * 100) + "%" : "—"}</title></rect>`;
      x += w;
      return r;
    }).join("");
    return `<svg viewBox="0 0 240 10" class="chart probs" preserveAspectRatio="none">${rects}</svg>`;
  }

  /** History strip: one row per signal, one cell per session (opacity = value, the number
      in the cell in %), and a last row with the close against that session's safe range
      (a dot inside the bar, red when outside). ``rows``: [{key, label, cls}]; ``whyEmpty(s,
      key)`` says why a session has no value (an empty cell's tooltip). */
  function historyStrip(sessions, rows, whyEmpty) {
    const n = Math.max(sessions.length, 1);
    const left = 84; const w = (480 - left) / n; const h = 18;
    const empty = (s, x, y, key, label) => `<rect x="${f(x + 1)}" y="${y}" width="${f(w - 2)}" height="${h}" class="heat-none"><title>${esc(dayOf(s.session_date))} ${esc(label)}: none (${esc(whyEmpty(s, key))})</title></rect>`;
    const cells = rows.map((r, j) => {
      const y = 4 + j * (h + 3);
      const label = `<text x="0" y="${y + 13}" class="axis">${esc(r.label)}</text>`;
      return label + sessions.map((s, i) => {
        const v = s[r.key];
        const x = left + i * w;
        if (!ok(v)) return empty(s, x, y, r.key, r.label);
        return `<rect x="${f(x + 1)}" y="${y}" width="${f(w - 2)}" height="${h}" rx="2" class="heat ${esc(r.cls || "")}" style="fill-opacity:${(0.12 + 0.8 * clamp(v, 0, 1)).toFixed(2)}"><title>${esc(dayOf(s.session_date))} ${esc(r.label)}: ${Math.round(v * 100)}%</title></rect>` +
          (w >= 18 ? `<text x="${f(x + w / 2)}" y="${y + 13}" class="axis tiny strong" text-anchor="middle">${Math.round(v * 100)}</text>` : "");
      }).join("");
    }).join("");
    const y = 4 + rows.length * (h + 3);
    const range = `<text x="0" y="${y + 13}" class="axis">close in range</text>` + sessions.map((s, i) => {
      const x = left + i * w;
      if (!ok(s.range_lower) || !ok(s.range_upper) || !ok(s.close)) return empty(s, x, y, "close_in_range", "close in range");
      const inside = s.close >= s.range_lower && s.close <= s.range_upper;
      const pos = clamp((s.close - s.range_lower) / ((s.range_upper - s.range_lower) || 1), -0.15, 1.15);
      const cy = y + h - 2 - pos * (h - 4);
      return `<rect x="${f(x + w / 2 - 3)}" y="${y}" width="6" height="${h}" rx="2" class="band-zone"/><circle cx="${f(x + w / 2)}" cy="${f(cy)}" r="2.6" class="${inside ? "dot-in" : "dot-out"}"><title>${esc(dayOf(s.session_date))}: close ${esc(Math.round(s.close))} vs safe range ${esc(Math.round(s.range_lower))}–${esc(Math.round(s.range_upper))}</title></circle>`;
    }).join("");
    // about six dates, evenly spaced back from the newest (ends at the right edge)
    const every = Math.ceil(n / 6);
    const dates = sessions.map((s, i) => ((n - 1 - i) % every === 0
      ? `<text x="${f(i === n - 1 ? 480 : left + i * w + w / 2)}" y="${y + h + 13}" class="axis tiny" text-anchor="${i === n - 1 ? "end" : "middle"}">${esc(dayOf(s.session_date))}</text>` : "")).join("");
    return `<svg viewBox="0 0 480 ${y + h + 16}" class="chart history" role="img" aria-label="signals over the last ${sessions.length} sessions">${cells}${range}${dates}</svg>`;
  }

  return {
    esc, ok, istDay, istClock, dayOf, seriesCaption, niceCeiling,
    historyStrip, gauge, dial, sparkline, band, bars, split, strip, breachCurve, probs,
  };
})();
