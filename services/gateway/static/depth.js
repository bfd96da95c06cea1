/* The chain's depth and positioning: dealer gamma exposure by strike (zero-gamma level and
   spot marked), OI build-up by strike since the previous snapshot, Greeks by strike, the IV
   term structure across expiries, the synthetic forward's basis, and what FIIs hold (NSE's
   participant-wise OI) with the near-month future's build-up. Reads window.aegis like
   chain.js; bundled, no CDN. Every value says its unit; a missing one shows its reason. */
"use strict";

(() => {
  const root = document.getElementById("depth-panel");
  if (!root) return;
  const { ok, esc, num, pct, tile, onDocument } = window.aegisChainKit;
  const crore = (v) => (ok(v) ? `₹${(v / 1e7).toLocaleString("en-IN", { maximumFractionDigits: 0 })} cr` : "—");
  const signed = (v, fmt = num) => (ok(v) ? `${v >= 0 ? "+" : "−"}${fmt(Math.abs(v))}` : "—");
  const words = { long_buildup: "long build-up", short_buildup: "short build-up",
    short_covering: "short covering", long_unwinding: "long unwinding", neutral: "neutral" };

  /** Bars up or down from a middle axis per strike; marks as [{at, cls, label}]. */
  function barChart(testid, rows, value, cls, marks, legend) {
    const W = 760, H = 220, mid = H / 2, pad = 28;
    const pts = rows.filter((r) => ok(value(r)));
    if (!pts.length) return `<div class="muted">no values</div>`;
    const lo = rows[0].strike, hi = rows[rows.length - 1].strike, span = Math.max(1, hi - lo);
    const top = Math.max(1e-9, ...pts.map((r) => Math.abs(value(r))));
    const x = (k) => pad + ((k - lo) / span) * (W - 2 * pad);
    const h = (v) => (Math.abs(v) / top) * (mid - 16);
    const bw = Math.max(2, ((W - 2 * pad) / rows.length) * 0.7);
    const bars = pts.map((r) => {
      const v = value(r), y = v >= 0 ? mid - h(v) : mid;
      return `<rect class="${cls(r)}" x="${(x(r.strike) - bw / 2).toFixed(1)}" y="${y.toFixed(1)}" width="${bw.toFixed(1)}" height="${h(v).toFixed(1)}"><title>${r.strike}: ${esc(legend(r))}</title></rect>`;
    }).join("");
    const lines = marks.filter((m) => ok(m.at) && m.at >= lo && m.at <= hi).map((m, i) =>
      `<line class="${m.cls}" x1="${x(m.at).toFixed(1)}" x2="${x(m.at).toFixed(1)}" y1="8" y2="${H - 16}"/>
       <text class="${m.cls}-label" x="${(x(m.at) + 3).toFixed(1)}" y="${16 + 14 * i}">${esc(m.label)}</text>`).join("");
    return `<svg viewBox="0 0 ${W} ${H}" class="chart depth-chart" role="img" data-testid="${testid}" data-bars="${pts.length}">
      <line class="axis" x1="${pad}" x2="${W - pad}" y1="${mid}" y2="${mid}"/>${bars}${lines}
      <text class="tick" x="${pad}" y="${H - 2}">${num(lo)}</text><text class="tick" x="${W - pad - 40}" y="${H - 2}">${num(hi)}</text></svg>`;
  }

  function gexChart(chain) {
    const g = chain.gamma_exposure;
    const rows = (g.by_strike || []);
    return barChart("depth-gex-chart", rows, (r) => r.net_rupees_per_1pct,
      (r) => (r.net_rupees_per_1pct >= 0 ? "gex-pos" : "gex-neg"),
      [{ at: chain.spot, cls: "mk-spot", label: `spot ${num(chain.spot, 1)}` },
        { at: g.zero_gamma_level, cls: "mk-zero", label: `zero gamma ${num(g.zero_gamma_level)}` }],
      (r) => `net GEX ${crore(r.net_rupees_per_1pct)} per 1% (calls ${crore(r.call_rupees_per_1pct)}, puts ${crore(r.put_rupees_per_1pct)})`);
  }

  function buildupChart(since) {
    const rows = (since && since.by_strike) || [];
    // calls above the axis, puts below: bar length = OI change, colour = classification
    const both = rows.flatMap((r) => [
      { strike: r.strike - 4, v: r.call_oi_change_units, kind: r.call, side: "CE" },
      { strike: r.strike + 4, v: ok(r.put_oi_change_units) ? -r.put_oi_change_units : null, kind: r.put, side: "PE" },
    ]);
    return barChart("depth-buildup-chart", both, (r) => r.v, (r) => `bu-${r.kind || "none"}`, [],
      (r) => `${r.side} ${words[r.kind] || "no build-up"} (OI ${signed(r.side === "PE" ? -r.v : r.v)})`);
  }

  function counts(since) {
    if (!since) return "—";
    const c = since.counts || {};
    const line = (side) => Object.entries(c[side] || {}).filter(([k]) => k !== "neutral")
      .map(([k, n]) => `${n} ${words[k] || k}`).join(", ") || "none";
    return `calls: ${esc(line("call"))}<br>puts: ${esc(line("put"))}`;
  }

  function greeksTable(g, spot) {
    const rows = (g.strikes || []).slice();
    const atm = rows.reduce((b, r, i) => (Math.abs(r.strike - g.forward) < Math.abs(rows[b].strike - g.forward) ? i : b), 0);
    const near = rows.slice(Math.max(0, atm - 5), atm + 6);
    const cell = (v, d) => (ok(v) ? v.toFixed(d) : "—");
    const body = near.map((r) => `<tr${r.reason ? ` title="${esc(r.reason)}"` : ""}><td>${num(r.strike)}</td><td>${pct(r.iv)}</td>
      <td>${cell(r.call_delta, 2)}</td><td>${cell(r.put_delta, 2)}</td><td>${cell(r.gamma_per_point * 1e4, 2)}</td>
      <td>${cell(r.vega_points_per_vol_point, 1)}</td><td>${cell(r.theta_points_per_day, 1)}</td></tr>`).join("");
    return `<div class="table-wrap"><table class="greeks" data-testid="depth-greeks-table" data-rows="${near.length}">
      <thead><tr><th>strike</th><th>IV</th><th>call Δ</th><th>put Δ</th><th>Γ ×10⁴/pt</th><th>vega pt/vol pt</th><th>θ pt/day</th></tr></thead>
      <tbody>${body}</tbody></table></div>
      <div class="muted">F ${num(g.forward, 1)} (${g.forward_from_parity ? "put-call parity" : "spot: no parity pair"}) · spot ${num(spot, 1)} · Black-76, r = 0</div>`;
  }

  function termChart(term) {
    const pts = (term.expiries || []).filter((p) => ok(p.atm_iv) && ok(p.days_to_expiry));
    if (pts.length < 1) return `<div class="muted">no expiry with an ATM IV</div>`;
    const W = 300, H = 120, pad = 22;
    const dx = [Math.min(...pts.map((p) => p.days_to_expiry)), Math.max(...pts.map((p) => p.days_to_expiry))];
    const vy = [Math.min(...pts.map((p) => p.atm_iv)), Math.max(...pts.map((p) => p.atm_iv))];
    const x = (d) => pad + ((d - dx[0]) / Math.max(1e-6, dx[1] - dx[0])) * (W - 2 * pad);
    const y = (v) => H - pad - ((v - vy[0]) / Math.max(1e-6, vy[1] - vy[0])) * (H - 2 * pad);
    const path = pts.map((p, i) => `${i ? "L" : "M"}${x(p.days_to_expiry).toFixed(1)} ${y(p.atm_iv).toFixed(1)}`).join(" ");
    const dots = pts.map((p) => `<circle cx="${x(p.days_to_expiry).toFixed(1)}" cy="${y(p.atm_iv).toFixed(1)}" r="3"><title>${esc(p.expiry)}: ATM IV ${pct(p.atm_iv)}, ${num(p.days_to_expiry, 1)} days</title></circle>`).join("");
    const table = (term.expiries || []).map((p) => `<tr${p.reason ? ` title="${esc(p.reason)}"` : ""}><td>${esc(p.expiry)}</td>
      <td>${pct(p.atm_iv)}</td><td>${ok(p.risk_reversal_25d) ? (p.risk_reversal_25d * 100).toFixed(2) : "—"}</td>
      <td>${ok(p.butterfly_25d) ? (p.butterfly_25d * 100).toFixed(2) : "—"}</td></tr>`).join("");
    return `<svg viewBox="0 0 ${W} ${H}" class="chart term" data-testid="depth-term-chart" data-points="${pts.length}">
      <path d="${path}" class="smile-line"/>${dots}<text class="tick" x="${pad}" y="12">${pct(vy[1])}</text>
      <text class="tick" x="${pad}" y="${H - 2}">${pct(vy[0])} · days to expiry →</text></svg>
      <div class="table-wrap"><table class="greeks"><thead><tr><th>expiry</th><th>ATM IV</th><th>25Δ RR vol pts</th><th>25Δ BF vol pts</th></tr></thead><tbody>${table}</tbody></table></div>`;
  }

  function series(s, label) {
    if (!s) return `<div class="muted">${esc(label)}: —</div>`;
    const arrow = s.slope_sign > 0 ? "▲" : s.slope_sign < 0 ? "▼" : "■";
    return `<div><b>${esc(label)}</b> ${signed(s.value_contracts)} contracts
      <span class="muted">day ${signed(s.change_contracts)} · 5-report trend ${signed(s.trend_contracts)} ${ok(s.slope_sign) ? arrow : ""}</span></div>`;
  }

  function positioning(pos) {
    if (!pos) return `<div class="muted">no positioning data yet</div>`;
    const fut = pos.future;
    const future = fut ? `<div><b>Near-month future</b> ${num(fut.close, 1)} (${esc(fut.expiry)}) · basis ${ok(fut.basis_percent) ? fut.basis_percent.toFixed(3) + "%" : "—"}
      <span class="muted">OI ${signed(fut.oi_change_units)} units · ${esc(words[fut.buildup] || fut.buildup_reason || "—")} (${esc(fut.session_date)})</span></div>` : "";
    if (pos.status === "unavailable") {
      return `<div class="chain-status warn" data-testid="depth-positioning-status" data-status="unavailable">${esc(pos.reason)}</div>${future}`;
    }
    return `<div class="chain-status${pos.status === "stale" ? " warn" : ""}" data-testid="depth-positioning-status" data-status="${esc(pos.status)}">
        ${esc(pos.participant)} positions from NSE's participant-wise OI of ${esc(pos.report_date)}${pos.reason ? ` · ${esc(pos.reason)}` : ""}</div>
      ${series(pos.index_futures, "Index futures net")}
      ${series(pos.index_options, "Index options net (calls − puts)")}
      <div class="muted">futures long share ${pct(pos.futures_long_ratio)} ${ok(pos.futures_long_ratio_change) ? `(${signed(pos.futures_long_ratio_change * 100, (v) => v.toFixed(2))} pts)` : ""}</div>
      ${future}`;
  }

  function render(doc) {
    const seller = doc && doc.seller, chain = seller && seller.chain;
    const pos = seller && seller.positioning;
    const parts = [tile("depth-positioning", "Positioning (FII)", positioning(pos), pos)];
    if (chain && chain.status === "fresh" && chain.gamma_exposure) {
      const g = chain.gamma_exposure, b = chain.buildup || {}, f = chain.forward || {};
      parts.unshift(
        tile("depth-gex", `Gamma exposure · ${chain.expiry}`, `${gexChart(chain)}
          <div class="muted">total ${crore(g.total_rupees_per_1pct)} per 1% move (${esc(g.regime || "—")} gamma) · zero gamma ${ok(g.zero_gamma_level) ? num(g.zero_gamma_level) : esc(g.zero_gamma_reason || "—")} · ${esc(g.sign_convention)}</div>`, g, "wide"),
        tile("depth-buildup", `OI build-up · ${chain.expiry}`, `${buildupChart(b.since_previous)}
          <div class="muted">since the previous snapshot${b.since_previous ? ` (${esc(b.since_previous.since)})` : ": none held"}: ${counts(b.since_previous)}</div>
          <div class="muted">since the previous session's last snapshot: ${b.since_close ? counts(b.since_close) : esc(b.since_close_reason || "—")}</div>
          <div class="muted legend-text">OI change by strike, calls above the line, puts below: <span class="key good">long build-up</span> · <span class="key bad">short build-up</span> · <span class="key accent">short covering</span> · <span class="key warn">long unwinding</span></div>`, b, "wide"),
        tile("depth-greeks", `Greeks by strike · ${chain.expiry}`, greeksTable(chain.greeks || {}, chain.spot), chain.greeks, "half"),
        tile("depth-term", "IV term structure", termChart(chain.term_structure || {}), chain.term_structure),
        tile("depth-forward", `Synthetic forward · ${chain.expiry}`, `<div class="big">${num(f.forward, 1)}</div>
          <div class="muted">basis ${signed(f.basis_points, (v) => num(v, 1))} pts (${ok(f.basis_percent) ? f.basis_percent.toFixed(3) + "%" : "—"}) · parity strikes ${esc((f.parity_strikes || []).join(", ") || f.reason || "—")}</div>`, f),
      );
    } else {
      parts.unshift(`<div class="chain-status warn" data-testid="depth-status">chain depth unavailable: ${esc((chain && chain.reason) || "no option chain yet")}</div>`);
    }
    root.innerHTML = `<div class="grid depth-grid">${parts.join("")}</div>`;
  }

  onDocument(render);
  window.aegisDepth = { render };
})();
