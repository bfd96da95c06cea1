/* The option-chain section: open interest by strike (calls vs puts, change since the previous
   snapshot or since the session's first chain, spot and max pain marked), PCR and OI-wall
   tiles, the straddle-implied move beside the model's, and the IV smile. Reads the document app.js keeps in window.aegis; bundled, no
   CDN. A missing or stale chain shows its reason, never old numbers as current. */
"use strict";

(() => {
  const root = document.getElementById("chain-panel");
  if (!root) return;
  const { ok, esc, num, pct, tile, onDocument } = window.aegisChainKit;
  const big = (v) => (!ok(v) ? "—" : Math.abs(v) >= 1e7 ? `${(v / 1e7).toFixed(2)} cr`
    : Math.abs(v) >= 1e5 ? `${(v / 1e5).toFixed(2)} L` : num(v));
  const signed = (v) => (ok(v) ? `${v >= 0 ? "+" : "−"}${big(Math.abs(v))}` : "n/a");

  /** OI by strike: call bars up, put bars down, the change (since the previous snapshot, or
      since the open: ``since``) as an outline; dashed lines at spot and max pain. */
  function oiChart(rows, spot, maxPain, since) {
    const W = 760, H = 260, mid = H / 2, pad = 28;
    if (!rows.length) return "";
    const lo = rows[0].strike, hi = rows[rows.length - 1].strike, span = Math.max(1, hi - lo);
    const top = Math.max(1, ...rows.map((r) => Math.max(r.ce_oi || 0, r.pe_oi || 0)));
    const x = (k) => pad + ((k - lo) / span) * (W - 2 * pad);
    const h = (v) => (Math.abs(v) / top) * (mid - 14);
    const bw = Math.max(2, ((W - 2 * pad) / rows.length) * 0.7);
    const bars = rows.map((r) => {
      const cx = x(r.strike) - bw / 2;
      const parts = [
        `<rect class="oi-ce" x="${cx.toFixed(1)}" y="${(mid - h(r.ce_oi || 0)).toFixed(1)}" width="${bw.toFixed(1)}" height="${h(r.ce_oi || 0).toFixed(1)}"><title>${r.strike} CE OI ${big(r.ce_oi)} (${signed(r.ce_change)})</title></rect>`,
        `<rect class="oi-pe" x="${cx.toFixed(1)}" y="${mid.toFixed(1)}" width="${bw.toFixed(1)}" height="${h(r.pe_oi || 0).toFixed(1)}"><title>${r.strike} PE OI ${big(r.pe_oi)} (${signed(r.pe_change)})</title></rect>`,
      ];
      if (ok(r.ce_change) && r.ce_change) parts.push(`<rect class="oi-chg" x="${cx.toFixed(1)}" y="${(mid - h(r.ce_change)).toFixed(1)}" width="${bw.toFixed(1)}" height="${h(r.ce_change).toFixed(1)}"/>`);
      if (ok(r.pe_change) && r.pe_change) parts.push(`<rect class="oi-chg" x="${cx.toFixed(1)}" y="${mid.toFixed(1)}" width="${bw.toFixed(1)}" height="${h(r.pe_change).toFixed(1)}"/>`);
      return parts.join("");
    }).join("");
    const mark = (k, cls, label, ty) => (ok(k) && k >= lo && k <= hi
      ? `<line class="${cls}" x1="${x(k).toFixed(1)}" x2="${x(k).toFixed(1)}" y1="8" y2="${H - 16}"/><text class="${cls}-label" x="${(x(k) + 3).toFixed(1)}" y="${ty}">${esc(label)}</text>` : "");
    return `<svg viewBox="0 0 ${W} ${H}" class="chart oi-chart" role="img" aria-label="open interest by strike"
      data-testid="chain-oi-chart" data-strikes="${rows.length}" data-spot="${ok(spot) ? spot : ""}" data-since="${since}">
      <line class="axis" x1="${pad}" x2="${W - pad}" y1="${mid}" y2="${mid}"/>${bars}
      ${mark(spot, "mk-spot", `spot ${num(spot, 1)}`, 16)}${mark(maxPain, "mk-pain", `max pain ${num(maxPain)}`, H - 20)}
      <text class="tick" x="${pad}" y="${H - 2}">${num(lo)}</text><text class="tick" x="${W - pad - 40}" y="${H - 2}">${num(hi)}</text>
      <text class="tick" x="${pad}" y="12">calls ↑</text><text class="tick" x="${pad}" y="${H - 18}">puts ↓</text></svg>`;
  }

  function smileChart(points) {
    const W = 260, H = 120, pad = 18;
    const pts = (points || []).filter((p) => ok(p.strike) && ok(p.iv));
    if (pts.length < 2) return `<div class="muted">no usable IVs</div>`;
    const ks = pts.map((p) => p.strike), vs = pts.map((p) => p.iv);
    const kx = [Math.min(...ks), Math.max(...ks)], vy = [Math.min(...vs), Math.max(...vs)];
    const x = (k) => pad + ((k - kx[0]) / Math.max(1, kx[1] - kx[0])) * (W - 2 * pad);
    const y = (v) => H - pad - ((v - vy[0]) / Math.max(1e-6, vy[1] - vy[0])) * (H - 2 * pad);
    const path = pts.map((p, i) => `${i ? "L" : "M"}${x(p.strike).toFixed(1)} ${y(p.iv).toFixed(1)}`).join(" ");
    return `<svg viewBox="0 0 ${W} ${H}" class="chart smile" data-testid="chain-smile-chart" data-points="${pts.length}">
      <path d="${path}" class="smile-line"/><text class="tick" x="${pad}" y="12">${pct(vy[1])}</text>
      <text class="tick" x="${pad}" y="${H - 2}">${pct(vy[0])}</text></svg>`;
  }

  function walls(list, side) {
    if (!list || !list.length) return `<div class="muted">none</div>`;
    return list.map((w) => `<div class="wall ${side}"><b>${num(w.strike)}</b> ${big(w.oi)}
      <span class="muted">${signed(w.change_since_previous)}</span></div>`).join("");
  }

  // OI change since the previous snapshot (in the block), or since the session's first chain
  // (GET /api/v1/chain/at, the history database), per seller block
  let since = "previous", lastDoc = null;
  const fromOpen = new Map();
  const epochOf = (doc) => Math.floor(Date.parse(doc.seller.as_of) / 1000);
  async function loadFromOpen(t) {
    if (fromOpen.has(t)) return;
    fromOpen.set(t, null);
    if (fromOpen.size > 50) fromOpen.delete(fromOpen.keys().next().value);
    let found = { unavailable: true };
    try {
      const res = await fetch(`/api/v1/chain/at?t=${t}`, { credentials: "same-origin" });
      if (res.ok) found = await res.json();
    } catch (e) { /* no history store: the toggle says so */ }
    fromOpen.set(t, found);
    render(lastDoc);
  }
  root.addEventListener("click", (event) => {
    if (event.target.dataset.testid !== "chain-oi-since") return;
    since = since === "open" ? "previous" : "open";
    render(lastDoc);
  });
  function sinceLabel(doc) {
    if (since !== "open") return "the previous snapshot";
    const found = fromOpen.get(epochOf(doc));
    if (!found) return "the open (loading from the history…)";
    if (found.unavailable) return "the open: no history of this chain stored";
    const ist = (iso) => new Date(iso).toLocaleTimeString("en-GB", { timeZone: "Asia/Kolkata", hour: "2-digit", minute: "2-digit" });
    return found.since ? `the session's first chain, ${ist(found.since)} IST` : "the open (no earlier chain stored)";
  }

  function render(doc) {
    lastDoc = doc;
    const seller = doc && doc.seller, chain = seller && seller.chain;
    const edge = doc && doc.buyer && doc.buyer.theta_edge;
    if (!chain) { root.innerHTML = `<div class="muted" data-testid="chain-status">no option-chain data yet</div>`; return; }
    if (chain.status !== "fresh") {
      root.innerHTML = `<div class="chain-status warn" data-testid="chain-status" data-status="${esc(chain.status)}">
        option chain unavailable: ${esc(chain.reason)}</div>`;
      return;
    }
    const mp = chain.max_pain && chain.max_pain.strike;  // of this chain's expiry
    if (since === "open") loadFromOpen(epochOf(doc));
    const found = since === "open" ? fromOpen.get(epochOf(doc)) : null;
    const opened = found && !found.unavailable ? found : null;
    const rows = opened ? opened.strikes : chain.oi_by_strike || [];
    const pcr = chain.pcr || {}, st = chain.straddle || {}, atm = chain.atm_iv || {}, rr = chain.delta_skew || {};
    root.innerHTML = `<div class="chain-status" data-testid="chain-status" data-status="fresh">
        chain ${esc(chain.expiry)} · as of ${esc(chain.chain_as_of)} · ${esc(chain.source)} · age ${num(chain.age_s)} s
        · <button type="button" data-testid="chain-oi-since">OI change since ${esc(sinceLabel(doc))}</button></div>
      <div class="chain-chart">${oiChart(rows, chain.spot, mp, opened ? "open" : "previous")}</div>
      <div class="grid">
        ${tile("chain-pcr", "Put-call ratio", `<div class="big">${num(pcr.oi, 2)}</div>
          <div class="muted">by volume ${num(pcr.volume, 2)} · near ATM ${num(pcr.oi_near_atm, 2)} (${num(pcr.near_strikes)} strikes)</div>`, pcr)}
        ${tile("chain-walls", "OI walls", `<div class="walls"><div><h4>calls above</h4>${walls(chain.walls && chain.walls.calls, "ce")}</div>
          <div><h4>puts below</h4>${walls(chain.walls && chain.walls.puts, "pe")}</div></div>`, chain.walls)}
        ${tile("chain-straddle", "Market vs model move", `<div class="big">±${num(st.move_points, 1)}</div>
          <div class="muted">ATM ${num(st.strike)} straddle (${pct(st.move_pct, 2)}) · model ${edge ? `±${num(edge.predicted_move_points, 1)}` : "—"}
          · VIX 1σ ${num(st.vix_implied_move_points, 1)}</div>`, st)}
        ${tile("chain-smile", "IV smile", `${smileChart(chain.smile && chain.smile.points)}
          <div class="muted">ATM IV ${pct(atm.value)} · pctile ${ok(atm.percentile) ? pct(atm.percentile, 0) : esc(atm.reason || "—")} · 25Δ RR ${ok(rr.risk_reversal) ? (rr.risk_reversal * 100).toFixed(2) + " vol pts" : "—"}</div>`, chain.smile)}
      </div>`;
  }

  onDocument(render);
  window.aegisChain = { render };
})();
