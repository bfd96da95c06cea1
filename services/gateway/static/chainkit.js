/* What the option-chain sections (chain.js, depth.js) share: number formats, the tile, and
   re-rendering on each new document. */
"use strict";

window.aegisChainKit = (() => {
  const ok = (v) => typeof v === "number" && Number.isFinite(v);
  const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const num = (v, d = 0) => (ok(v) ? v.toLocaleString("en-IN", { minimumFractionDigits: d, maximumFractionDigits: d }) : "—");
  const pct = (v, d = 1) => (ok(v) ? `${(v * 100).toFixed(d)}%` : "—");

  function prov(group) {
    const p = (group && group.provenance) || {};
    return [p.source, p.formula, p.window, p.note].filter(Boolean).join(" · ");
  }

  /** A chain tile; ``size`` "wide" (the whole row) or "half" (two columns on wide screens). */
  function tile(id, title, body, group, size = "") {
    return `<article class="tile chain-tile${size ? ` depth-${size}` : ""}" data-testid="tile-${id}" title="${esc(prov(group))}">
      <header><h3>${esc(title)}</h3></header>
      <div class="body" data-testid="${id}-value">${body}</div>
      <footer><span class="prov">${esc((group && group.provenance && group.provenance.source) || "")}</span></footer></article>`;
  }

  /** Calls ``render(doc)`` whenever app.js (window.aegis) shows another document: a newer
      live one, or the past one time travel asked for. */
  function onDocument(render) {
    let shown = null;
    setInterval(() => {
      const state = window.aegis;
      const doc = state && (state.past ? state.past.doc : state.doc);
      const key = state && (state.past ? `past ${state.past.atMs}` : state.sequence);
      if (doc && key !== shown) {
        shown = key;
        render(doc);
      }
    }, 250);
  }

  return { ok, esc, num, pct, prov, tile, onDocument };
})();
