/* The live dashboard: builds the tiles once, keeps the document current over the websocket
   (snapshot, then updates; a sequence gap asks for a resync; reconnects with exponential
   backoff), and shows freshness, provenance, stale and degraded state on every tile. */
"use strict";

(() => {
  const { esc } = Charts;
  const SERVICE_OF = { market: "features", direction: "direction", seller: "seller", buyer: "buyer" };
  const WATCHDOG_MS = 45000;       // no message (not even a heartbeat) for this long: reconnect
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 30000;

  const state = {
    doc: null, sequence: -1, ws: null, conn: "connecting", backoff: BACKOFF_MIN_MS,
    lastMessageAt: 0, awaitingSnapshot: false, resyncs: 0, connects: 0, updates: 0,
  };
  window.aegis = state; // for tests and debugging

  // Layout ---------------------------------------------------------------------------------
  const nodes = {};
  for (const tile of Tiles.all) {
    const el = document.createElement("article");
    el.className = "tile empty";
    el.id = `tile-${tile.id}`;
    el.setAttribute("data-testid", `tile-${tile.id}`);
    el.dataset.engines = tile.engines.join(" ");
    el.innerHTML = `<header><h3>${esc(tile.title)}</h3><span class="badges" data-testid="${tile.id}-badges"></span></header>
      <div class="body" data-testid="${tile.id}-body"><div class="waiting">waiting for data…</div></div>
      <footer><span class="prov" data-testid="${tile.id}-prov"></span><span class="fresh" data-testid="${tile.id}-fresh"></span></footer>`;
    document.getElementById(`panel-${tile.tab}`).appendChild(el);
    nodes[tile.id] = {
      el, title: el.querySelector("h3"), badges: el.querySelector(".badges"), body: el.querySelector(".body"),
      prov: el.querySelector(".prov"), fresh: el.querySelector(".fresh"), html: null,
    };
    el.addEventListener("mouseenter", () => showTooltip(tile, el));
    el.addEventListener("mouseleave", hideTooltip);
  }

  // Provenance, freshness, badges ----------------------------------------------------------
  function provenanceText(p) {
    if (!p) return "";
    if (p.source === "model") {
      return `model ${p.model || "?"} v${p.version || "?"}${p.in_sample ? " (in sample!)" : p.in_sample === false ? " (out of sample)" : ""}`;
    }
    if (p.source === "formula") return `formula: ${p.formula || "?"}`;
    if (p.source === "data") return `data window: ${p.window || "?"}`;
    if (p.source === "heuristic") return `heuristic: ${p.note || "fallback rule"}`;
    if (p.source === "climatology") return `climatology (no model skill): ${p.window || "?"}`;
    return p.source || "";
  }

  function groupOf(tile, doc) {
    return tile.group ? Tiles.get(doc, tile.group) : null;
  }

  function ageText(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 90) return `${s} s ago`;
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    if (s < 172800) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  }

  function istTime(iso) {
    const d = new Date(iso);
    const date = d.toLocaleDateString("en-GB", { timeZone: "Asia/Kolkata", day: "2-digit", month: "short" });
    const time = d.toLocaleTimeString("en-GB", { timeZone: "Asia/Kolkata", hour12: false });
    return `${date} ${time} IST`;
  }

  function freshnessText(tile, doc) {
    const primary = tile.engines.length ? doc[tile.engines[0]] : null;
    if (!primary) return tile.engines.length ? "no data yet" : "";
    return `as of ${istTime(primary.as_of)}, ${ageText(Date.now() - Date.parse(primary.as_of))}`;
  }

  function tileStatus(tile, doc) {
    const sections = tile.engines.map((e) => doc[e]);
    const missing = sections.some((s) => !s);
    const stale = sections.filter(Boolean).some((s) => s.stale);
    const reasons = [];
    for (const engine of tile.engines) {
      const s = doc[engine];
      if (s && s.degraded && s.degraded.length) reasons.push(...s.degraded);
      const h = doc.health && doc.health.engines ? doc.health.engines[SERVICE_OF[engine]] : null;
      if (h && h.status !== "ok") reasons.push(`${SERVICE_OF[engine]} ${h.status}${h.degraded_reasons.length ? ": " + h.degraded_reasons.join("; ") : ""}`);
    }
    const group = missing ? null : groupOf(tile, doc);
    const heuristic = !!(group && group.provenance && group.provenance.source === "heuristic");
    return { missing, stale, reasons: [...new Set(reasons)], heuristic, group };
  }

  function badge(cls, text, title) {
    return `<span class="chip ${cls}" data-badge="${cls}" title="${esc(title || text)}">${esc(text)}</span>`;
  }

  // Rendering ------------------------------------------------------------------------------
  function renderTile(tile) {
    const n = nodes[tile.id];
    const doc = state.doc;
    const st = tileStatus(tile, doc);
    const offline = state.conn !== "open";
    n.el.classList.toggle("empty", st.missing);
    n.el.classList.toggle("stale", st.stale);
    n.el.classList.toggle("degraded", st.reasons.length > 0);
    n.el.classList.toggle("heuristic", st.heuristic);
    n.el.classList.toggle("offline", offline);
    if (tile.titleOf) n.title.textContent = tile.titleOf(doc);
    let badges = "";
    if (st.stale) badges += badge("stale", "STALE", "newer data was due longer ago than its freshness limit");
    if (st.reasons.length) badges += badge("degraded", "DEGRADED", st.reasons.join("\n"));
    if (st.heuristic) badges += badge("heuristic", "HEURISTIC", "fallback rule, not a trained model");
    if (offline && tile.engines.length) badges += badge("offline", "OFFLINE", "live connection lost");
    n.badges.innerHTML = badges;
    let html;
    if (st.missing && tile.engines.length) {
      html = `<div class="waiting">waiting for data…</div>`;
    } else {
      try {
        html = tile.render(doc);
      } catch (err) {
        html = `<div class="waiting">cannot show: ${esc(err.message)}</div>`;
      }
    }
    if (html !== n.html) {
      n.body.innerHTML = html;
      n.html = html;
    }
    const prov = st.group && st.group.provenance;
    n.prov.innerHTML = prov ? `<span class="chip src-${esc(prov.source)}">${esc(prov.source)}</span>` : "";
    n.el.dataset.provenance = prov ? provenanceText(prov) : "";
    n.el.dataset.stale = String(st.stale);
    n.el.dataset.degraded = String(st.reasons.length > 0);
    n.fresh.textContent = freshnessText(tile, doc);
  }

  function renderBanners() {
    const doc = state.doc;
    const conn = document.getElementById("banner-conn");
    conn.hidden = state.conn === "open";
    conn.textContent = state.conn === "connecting" && !doc
      ? "Connecting to the live feed…"
      : "Live connection lost — reconnecting. Values shown may be outdated.";
    const stale = doc ? Object.keys(SERVICE_OF).filter((e) => doc[e] && doc[e].stale) : [];
    const staleEl = document.getElementById("banner-stale");
    staleEl.hidden = !stale.length;
    staleEl.textContent = stale.length ? `Stale data: ${stale.join(", ")} — newer data was due longer ago than the freshness limit (NSE calendar).` : "";
    const degraded = [];
    if (doc && doc.health) {
      for (const [svc, h] of Object.entries(doc.health.engines || {})) {
        if (h.status !== "ok") degraded.push(`${svc} ${h.status}${h.degraded_reasons.length ? " (" + h.degraded_reasons.join("; ") + ")" : ""}`);
      }
      for (const e of Object.keys(SERVICE_OF)) {
        if (doc[e] && doc[e].degraded && doc[e].degraded.length) degraded.push(`${e}: ${doc[e].degraded.join("; ")}`);
      }
    }
    const degEl = document.getElementById("banner-degraded");
    degEl.hidden = !degraded.length;
    degEl.textContent = degraded.length ? `Degraded: ${[...new Set(degraded)].join(" · ")}` : "";
    const health = document.getElementById("health-status");
    const hs = doc && doc.health ? doc.health.status : "unknown";
    health.textContent = `health ${hs}`;
    health.className = `pill ${hs === "ok" ? "good" : hs === "degraded" ? "warn" : "bad"}`;
    const connPill = document.getElementById("conn-status");
    connPill.textContent = state.conn === "open" ? "live" : state.conn;
    connPill.className = `pill ${state.conn === "open" ? "good" : "bad"}`;
    document.getElementById("doc-sequence").textContent = state.sequence >= 0 ? String(state.sequence) : "—";
    document.body.dataset.conn = state.conn;
    document.body.dataset.sequence = String(state.sequence);
  }

  function renderAll() {
    if (state.doc) Tiles.all.forEach(renderTile);
    renderBanners();
  }

  function refreshFreshness() {
    if (!state.doc) return;
    for (const tile of Tiles.all) nodes[tile.id].fresh.textContent = freshnessText(tile, state.doc);
  }

  // Tooltip --------------------------------------------------------------------------------
  const tooltip = document.getElementById("tooltip");
  function showTooltip(tile, el) {
    if (!state.doc || !tile.engines.length) return;
    const st = tileStatus(tile, state.doc);
    const lines = [];
    const prov = st.group && st.group.provenance;
    lines.push(`<b>Source</b> ${esc(prov ? provenanceText(prov) : "—")}`);
    for (const e of tile.engines) {
      const s = state.doc[e];
      if (!s) continue;
      lines.push(`<b>${esc(e)}</b> as of ${esc(istTime(s.as_of))} · computed ${esc(istTime(s.computed_at))} · ${esc(s.kind)} · limit ${esc(s.freshness_limit_s)} s${s.stale ? " · <span class=\"bad\">stale</span>" : ""}`);
      for (const m of s.models || []) lines.push(`model ${esc(m.name)} v${esc(m.version)} trained ${esc(m.trained_at)}${m.training_window ? " on " + esc(m.training_window) : ""}`);
    }
    st.reasons.forEach((r) => lines.push(`<span class="bad">degraded:</span> ${esc(r)}`));
    tooltip.innerHTML = lines.join("<br>");
    const r = el.getBoundingClientRect();
    tooltip.hidden = false;
    tooltip.style.left = `${Math.max(8, Math.min(window.innerWidth - tooltip.offsetWidth - 8, r.left))}px`;
    tooltip.style.top = `${r.bottom + window.scrollY + 6}px`;
  }
  function hideTooltip() { tooltip.hidden = true; }

  // Live feed ------------------------------------------------------------------------------
  function send(obj) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(obj));
  }

  function resync() {
    if (state.awaitingSnapshot) return;
    state.awaitingSnapshot = true;
    state.resyncs += 1;
    send({ type: "resync" });
  }

  function onMessage(event) {
    state.lastMessageAt = Date.now();
    let msg;
    try { msg = JSON.parse(event.data); } catch (e) { return; }
    if (msg.type === "snapshot") {
      state.doc = msg.document;
      state.sequence = msg.sequence;
      state.awaitingSnapshot = false;
      state.backoff = BACKOFF_MIN_MS;
      renderAll();
    } else if (msg.type === "update") {
      if (state.awaitingSnapshot || msg.sequence <= state.sequence) return;
      if (msg.sequence !== state.sequence + 1 || !state.doc) { resync(); return; }
      Object.assign(state.doc, msg.blocks);
      if (msg.health) state.doc.health = msg.health;
      state.doc.generated_at = msg.generated_at;
      state.doc.sequence = msg.sequence;
      state.sequence = msg.sequence;
      state.updates += 1;
      renderAll();
    } else if (msg.type === "heartbeat") {
      if (msg.sequence > state.sequence) resync();
    }
  }

  function connect() {
    const token = new URLSearchParams(location.search).get("token");
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws${token ? "?token=" + encodeURIComponent(token) : ""}`);
    state.ws = ws;
    state.connects += 1;
    ws.onopen = () => {
      state.conn = "open";
      state.awaitingSnapshot = true; // the server sends one on connect
      state.lastMessageAt = Date.now();
      renderAll();
    };
    ws.onmessage = onMessage;
    ws.onclose = () => {
      if (state.ws !== ws) return;
      state.conn = "reconnecting";
      state.ws = null;
      renderAll();
      const wait = state.backoff * (0.8 + Math.random() * 0.4);
      state.backoff = Math.min(state.backoff * 2, BACKOFF_MAX_MS);
      setTimeout(connect, wait);
    };
  }

  setInterval(() => {
    refreshFreshness();
    if (state.ws && state.conn === "open" && Date.now() - state.lastMessageAt > WATCHDOG_MS) state.ws.close();
  }, 1000);

  // Tabs and theme -------------------------------------------------------------------------
  const tabs = document.querySelectorAll("[data-tab]");
  function selectTab(name) {
    tabs.forEach((b) => b.setAttribute("aria-selected", String(b.dataset.tab === name)));
    document.querySelectorAll(".panel").forEach((p) => { p.hidden = p.id !== `panel-${name}`; });
    try { localStorage.setItem("aegis-tab", name); } catch (e) { /* private mode */ }
  }
  tabs.forEach((b) => b.addEventListener("click", () => selectTab(b.dataset.tab)));
  let savedTab = null;
  try { savedTab = localStorage.getItem("aegis-tab"); } catch (e) { /* private mode */ }
  if (savedTab && document.getElementById(`panel-${savedTab}`)) selectTab(savedTab);

  document.getElementById("theme-toggle").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try { localStorage.setItem("aegis-theme", next); } catch (e) { /* private mode */ }
  });

  renderBanners();
  connect();
})();
