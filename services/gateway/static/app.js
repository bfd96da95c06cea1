/* The live dashboard: builds the tiles once, keeps the document current over the websocket
   (snapshot, then updates; a sequence gap asks for a resync; reconnects with exponential
   backoff), and shows freshness, provenance, stale, degraded and in-sample state on every
   tile. Ages are measured on the server's clock (the messages' ``clock``: live, or the
   replay's own time at its speed), never on this browser's wall clock. */
"use strict";

(() => {
  const { esc } = Charts;
  const SERVICE_OF = { market: "features", direction: "direction", seller: "seller", buyer: "buyer" };
  const HISTORY_EVERY_MS = 10000; // how often the history strip and price chart refetch
  const WATCHDOG_MS = 45000;       // no message (not even a heartbeat) for this long: reconnect
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 30000;

  const state = {
    doc: null, sequence: -1, ws: null, conn: "connecting", backoff: BACKOFF_MIN_MS,
    lastMessageAt: 0, awaitingSnapshot: false, resyncs: 0, connects: 0, updates: 0,
    clock: null, history: null, historyFetches: 0, tab: "direction",
  };
  window.aegis = state; // for tests and debugging

  // Layout ---------------------------------------------------------------------------------
  const nodes = {};
  for (const tile of Tiles.all) {
    const el = document.createElement("article");
    el.className = `tile empty${tile.wide ? " wide" : ""}`;
    el.id = `tile-${tile.id}`;
    el.setAttribute("data-testid", `tile-${tile.id}`);
    el.dataset.engines = tile.engines.join(" ");
    const source = tile.engines.length
      ? `<details class="source" data-testid="${tile.id}-source"><summary><span class="prov" data-testid="${tile.id}-prov"></span> source</summary><div class="source-body"></div></details>`
      : "<span></span>";
    el.innerHTML = `<header><h3>${esc(tile.title)}</h3><span class="badges" data-testid="${tile.id}-badges"></span></header>
      <p class="meaning" data-testid="${tile.id}-meaning">${esc(tile.meaning || "")}</p>
      <div class="body" data-testid="${tile.id}-body"><div class="waiting">waiting for data…</div></div>
      <footer>${source}<span class="fresh" data-testid="${tile.id}-fresh"></span></footer>`;
    document.getElementById(`panel-${tile.tab}`).appendChild(el);
    nodes[tile.id] = {
      el, badges: el.querySelector(".badges"), body: el.querySelector(".body"),
      prov: el.querySelector(".prov"), sourceBody: el.querySelector(".source-body"),
      fresh: el.querySelector(".fresh"), html: null,
    };
    el.addEventListener("mouseenter", () => showTooltip(tile, el));
    el.addEventListener("mouseleave", hideTooltip);
    const panel = el.querySelector("details.source");
    if (panel) panel.addEventListener("toggle", () => { if (panel.open) hideTooltip(); });
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

  // The server's clock --------------------------------------------------------------------
  function setClock(clock) {
    if (!clock || !clock.now) return;
    state.clock = { ...clock, nowMs: Date.parse(clock.now), at: performance.now() };
  }

  /** The server clock's time now: its last reading moved on at its rate (replay speed). */
  function serverNow() {
    const c = state.clock;
    if (!c || !Number.isFinite(c.nowMs)) return null;
    return c.nowMs + (performance.now() - c.at) * (c.rate || 0);
  }

  /** Why the feed is down, in a few words (the raw error goes to the tooltip), or null. */
  function feedProblem(doc) {
    const feed = doc && doc.health && doc.health.engines ? doc.health.engines.ingest : null;
    if (!feed) return null;
    const reasons = feed.degraded_reasons || [];
    if (feed.status === "down" || reasons.some((r) => /no live report/.test(r))) {
      return { words: "no report", detail: reasons.join("; ") || "the feed stopped reporting" };
    }
    const failing = reasons.find((r) => /^source \S+: feed (failing|stale)/.test(r));
    if (!failing) return null;
    const failures = /(\d+) consecutive failures/.exec(failing);
    const words = /rate limited/.test(failing) ? "rate limited"
      : /feed stale/.test(failing) ? "no new bars"
      : failures ? `${failures[1]} failed requests` : "failing";
    return { words, detail: failing };
  }

  function opensText(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    const day = d.toLocaleDateString("en-GB", { timeZone: "Asia/Kolkata", weekday: "short", day: "2-digit", month: "short" });
    return ` · opens ${day} ${d.toLocaleTimeString("en-GB", { timeZone: "Asia/Kolkata", hour: "2-digit", minute: "2-digit" })}`;
  }

  /** Header: what the page shows — LIVE, REPLAY <date> · <speed>×, FEED DOWN, MARKET CLOSED,
   *  OFFLINE — from facts: LIVE only while the market is open and every block is fresh. */
  function runStatus(doc) {
    const c = state.clock;
    if (state.past) return { text: `PAST ${istTime(new Date(state.past.atMs).toISOString())}`, cls: "warn" };
    if (state.conn !== "open" && state.tokenDeclined) return { text: "TOKEN NEEDED", cls: "bad", title: "this gateway asks for its access token: reload the page to enter it" };
    if (state.conn !== "open") return { text: state.conn === "connecting" ? "CONNECTING" : "OFFLINE", cls: "bad" };
    const feed = feedProblem(doc);
    if (feed) return { text: `FEED DOWN · ${feed.words}`, cls: "bad", title: feed.detail };
    if (c && c.mode === "replay") {
      if (c.finished) return { text: `REPLAY ENDED ${c.replay_date}`, cls: "warn" };
      const pace = c.rate > 0 ? `${c.speed}×` : "fast-forward";
      return { text: `REPLAY ${c.replay_date} · ${pace}`, cls: "warn" };
    }
    if (c && c.mode === "event") return { text: `REPLAY ${c.replay_date || ""} · event clock`, cls: "warn" };
    if (c && c.market_open === false) return { text: `MARKET CLOSED${opensText(c.next_open)}`, cls: "" };
    const sections = Object.keys(SERVICE_OF).filter((e) => doc && doc[e]);
    if (!sections.length) return { text: "LIVE · WAITING FOR DATA", cls: "warn" };
    const stale = sections.some((e) => doc[e].stale);
    return stale ? { text: "LIVE · STALE DATA", cls: "warn" } : { text: "LIVE", cls: "good" };
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
    const date = d.toLocaleDateString("en-GB", { timeZone: "Asia/Kolkata", day: "2-digit", month: "short", year: "numeric" });
    const time = d.toLocaleTimeString("en-GB", { timeZone: "Asia/Kolkata", hour12: false });
    return `${date} ${time} IST`;
  }

  function freshnessText(tile, doc) {
    const primary = tile.engines.length ? doc[tile.engines[0]] : null;
    if (!primary) return tile.engines.length ? "no data yet" : "";
    const now = state.past ? state.past.atMs : serverNow();
    const age = now === null ? "" : `, ${ageText(now - Date.parse(primary.as_of))}${state.past ? " before the moment shown" : ""}`;
    const replay = state.clock && state.clock.mode !== "live" ? " (replay time)" : "";
    return `as of ${istTime(primary.as_of)}${age}${replay}`;
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
    const inSample = !!(group && group.provenance && group.provenance.in_sample === true);
    return { missing, stale, reasons: [...new Set(reasons)], heuristic, inSample, group };
  }

  function badge(cls, text, title) {
    return `<span class="chip ${cls}" data-badge="${cls}" title="${esc(title || text)}">${esc(text)}</span>`;
  }

  // Rendering ------------------------------------------------------------------------------
  /** What the tiles show: the live document, or the one time travel asked for. */
  const shown = () => (state.past ? state.past.doc : state.doc);

  function renderTile(tile) {
    const n = nodes[tile.id];
    const doc = shown();
    const st = tileStatus(tile, doc);
    const offline = state.conn !== "open";
    n.el.classList.toggle("empty", st.missing);
    n.el.classList.toggle("stale", st.stale);
    n.el.classList.toggle("degraded", st.reasons.length > 0);
    n.el.classList.toggle("heuristic", st.heuristic);
    n.el.classList.toggle("offline", offline);
    n.el.classList.toggle("in-sample", st.inSample);
    let badges = "";
    if (st.stale) badges += badge("stale", "STALE", "newer data was due longer ago than its freshness limit");
    if (st.reasons.length) badges += badge("degraded", "DEGRADED", st.reasons.join("\n"));
    if (st.heuristic) badges += badge("heuristic", "HEURISTIC", "fallback rule, not a trained model");
    if (st.inSample) badges += badge("in-sample", "IN SAMPLE", "the model was trained on this date: not a forecast");
    if (offline && tile.engines.length) badges += badge("offline", "OFFLINE", "live connection lost");
    n.badges.innerHTML = badges;
    let html;
    if (st.missing && tile.engines.length) {
      html = `<div class="waiting">waiting for data…</div>`;
    } else if (tile.draw) {
      try {
        n.body.dataset.testid = tile.id;
        tile.draw(n.body, doc, state.history);
      } catch (err) {
        n.body.innerHTML = `<div class="waiting">cannot show: ${esc(err.message)}</div>`;
      }
      html = null;
    } else {
      try {
        html = tile.render(doc);
      } catch (err) {
        html = `<div class="waiting">cannot show: ${esc(err.message)}</div>`;
      }
    }
    if (st.inSample && html) {
      html = `<div class="insample-note" data-testid="${tile.id}-in-sample">IN SAMPLE: the model saw this date in training — not a forecast</div>` + html;
    }
    if (html !== null && html !== n.html) {
      n.body.innerHTML = html;
      n.html = html;
    }
    const prov = st.group && st.group.provenance;
    if (n.prov) n.prov.innerHTML = prov ? `<span class="chip src-${esc(prov.source)}">${esc(prov.source)}</span>` : `<span class="chip">${tile.engines.length ? "data" : ""}</span>`;
    if (n.sourceBody) {
      const text = sourceLines(tile, doc, st).join("<br>");
      if (n.sourceBody.innerHTML !== text) n.sourceBody.innerHTML = text;
    }
    n.el.dataset.provenance = prov ? provenanceText(prov) : tile.sourceNote || "";
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
    const onClock = state.clock && state.clock.mode === "replay" ? "the replay's clock" : "the NSE calendar";
    staleEl.textContent = stale.length ? `Stale data: ${stale.join(", ")} — newer data was due longer ago than the freshness limit (${onClock}).` : "";
    const degraded = [];
    if (doc && doc.health) {
      for (const [svc, h] of Object.entries(doc.health.engines || {})) {
        if (h.status !== "ok") degraded.push(`${svc} ${h.status}${h.degraded_reasons.length ? " (" + h.degraded_reasons.join("; ") + ")" : ""}`);
      }
      for (const e of Object.keys(SERVICE_OF)) {
        if (doc[e] && doc[e].degraded && doc[e].degraded.length) degraded.push(`${e}: ${doc[e].degraded.join("; ")}`);
      }
    }
    const past = document.getElementById("banner-past");
    past.hidden = !state.past;
    document.body.classList.toggle("past", !!state.past);
    if (state.past) {
      document.getElementById("past-text").textContent = `PAST: the tiles show the dashboard as it was at ${istTime(new Date(state.past.atMs).toISOString())} (history database); live updates continue underneath; the charts of the day below stay live.`;
    }
    const degEl = document.getElementById("banner-degraded");
    degEl.hidden = !degraded.length;
    degEl.textContent = degraded.length ? `Degraded: ${[...new Set(degraded)].join(" · ")}` : "";
    const health = document.getElementById("health-status");
    const hs = doc && doc.health ? doc.health.status : "unknown";
    health.textContent = `health ${hs}`;
    health.className = `pill ${hs === "ok" ? "good" : hs === "degraded" ? "warn" : "bad"}`;
    const connPill = document.getElementById("conn-status");
    connPill.textContent = state.conn === "open" ? "connected" : state.conn;
    connPill.className = `pill ${state.conn === "open" ? "" : "bad"}`;
    const run = runStatus(doc);
    const runPill = document.getElementById("run-status");
    runPill.textContent = run.text;
    runPill.className = `pill run ${run.cls}`;
    runPill.title = run.title || "";
    document.getElementById("doc-sequence").textContent = state.sequence >= 0 ? String(state.sequence) : "—";
    document.body.dataset.conn = state.conn;
    document.body.dataset.sequence = String(state.sequence);
  }

  /** Renders the tiles of the tab on screen (the others render when their tab opens). */
  function renderAll() {
    if (shown()) Tiles.all.filter((t) => t.tab === state.tab).forEach(renderTile);
    renderBanners();
  }

  // Updates arrive several times a second in a replay: draw at most once per frame.
  let renderQueued = false;
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => { renderQueued = false; renderAll(); });
  }

  function refreshFreshness() {
    if (!shown()) return;
    for (const tile of Tiles.all) {
      if (tile.tab === state.tab) nodes[tile.id].fresh.textContent = freshnessText(tile, shown());
    }
  }

  // Time travel ------------------------------------------------------------------------------
  /** The tiles show the document as it was at ``epochS`` (GET /api/v1/document/at, the history
      database) until backToLive(); live updates keep arriving underneath. */
  async function showAt(epochS) {
    const res = await fetch(`/api/v1/document/at?t=${Math.floor(epochS)}`, { credentials: "same-origin" });
    if (!res.ok) throw new Error(`time travel: HTTP ${res.status}`);
    state.past = { doc: await res.json(), atMs: Math.floor(epochS) * 1000 };
    renderAll();
  }
  function backToLive() {
    state.past = null;
    if (location.hash.startsWith("#at=")) history.replaceState(null, "", location.pathname + location.search);
    renderAll();
  }
  /** An alert's link (#at=<epoch ms>) opens the dashboard at its moment. */
  function travelFromHash() {
    const at = /^#at=(\d+)$/.exec(location.hash);
    if (at) showAt(Number(at[1]) / 1000).catch(() => { /* no history store: stay live */ });
  }
  state.showAt = showAt;
  state.backToLive = backToLive;
  window.addEventListener("hashchange", travelFromHash);
  document.getElementById("past-back").addEventListener("click", backToLive);

  // Tooltip --------------------------------------------------------------------------------
  const tooltip = document.getElementById("tooltip");
  /** Where a tile's values came from and how fresh they are: the source panel and tooltip. */
  function sourceLines(tile, doc, st) {
    const lines = [];
    const prov = st.group && st.group.provenance;
    lines.push(`<b>Source</b> ${esc(prov ? provenanceText(prov) : tile.sourceNote || "—")}`);
    for (const e of tile.engines) {
      const s = doc[e];
      if (!s) continue;
      lines.push(`<b>${esc(e)}</b> as of ${esc(istTime(s.as_of))} · computed ${esc(istTime(s.computed_at))} · ${esc(s.kind)} · limit ${esc(s.freshness_limit_s)} s${s.stale ? " · <span class=\"bad\">stale</span>" : ""}`);
      for (const m of s.models || []) lines.push(`model ${esc(m.name)} v${esc(m.version)} trained ${esc(m.trained_at)}${m.training_window ? " on " + esc(m.training_window) : ""}`);
    }
    st.reasons.forEach((r) => lines.push(`<span class="bad">degraded:</span> ${esc(r)}`));
    return lines;
  }

  /** The source lines on hover, unless the tile's source panel already shows them. */
  function showTooltip(tile, el) {
    if (!shown() || !tile.engines.length || el.querySelector("details.source[open]")) return;
    const st = tileStatus(tile, shown());
    tooltip.innerHTML = sourceLines(tile, shown(), st).join("<br>");
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
    if (msg.clock || (msg.document && msg.document.clock)) setClock(msg.clock || msg.document.clock);
    if (msg.type === "snapshot") {
      state.doc = msg.document;
      state.sequence = msg.sequence;
      state.awaitingSnapshot = false;
      state.backoff = BACKOFF_MIN_MS;
      renderAll();
    } else if (msg.type === "update") {
      if (state.awaitingSnapshot || msg.sequence <= state.sequence) return;
      // an update folds the changes first_sequence..sequence (a burst read in one batch)
      const first = msg.first_sequence ?? msg.sequence;
      if (first !== state.sequence + 1 || !state.doc) { resync(); return; }
      Object.assign(state.doc, msg.blocks);
      if (msg.health) state.doc.health = msg.health;
      if (msg.clock) state.doc.clock = msg.clock;
      state.doc.generated_at = msg.generated_at;
      state.doc.sequence = msg.sequence;
      state.sequence = msg.sequence;
      state.updates += 1;
      scheduleRender();
    } else if (msg.type === "heartbeat") {
      if (msg.sequence > state.sequence) resync();
    }
  }

  // Auth: the gateway never takes a token in a URL. A token given once as #token=... (a URL
  // fragment never reaches the server) or typed when asked is exchanged at /api/v1/login for
  // an HttpOnly session cookie, which the websocket handshake then carries.
  async function ensureSession() {
    let token = new URLSearchParams(location.hash.slice(1)).get("token");
    if (token) history.replaceState(null, "", location.pathname + location.search);
    const session = await (await fetch("/api/v1/session", { credentials: "same-origin" })).json();
    if (!session.auth_required || session.authenticated) return;
    while (!state.tokenDeclined) {
      token = token || window.prompt("AegisMatrix access token");
      if (!token) { state.tokenDeclined = true; renderAll(); return; }
      const reply = await fetch("/api/v1/login", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }),
      });
      if (reply.ok) return;
      token = null;
    }
  }

  async function connect() {
    try { await ensureSession(); } catch (e) { /* gateway unreachable: the socket retries */ }
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws`);
    state.ws = ws;
    state.connects += 1;
    ws.onopen = () => {
      state.conn = "open";
      state.awaitingSnapshot = true; // the server sends one on connect
      state.lastMessageAt = Date.now();
      renderAll();
      fetchHistory(); // now that the session (cookie) is settled
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

  // History (price chart, history strip) ---------------------------------------------------
  async function fetchHistory() {
    try { // the session cookie authorizes it, as it does the websocket
      const res = await fetch("/api/v1/history?sessions=20", { credentials: "same-origin" });
      if (!res.ok) return;
      state.history = await res.json();
      state.historyFetches += 1;
      if (state.doc) Tiles.all.filter((t) => t.draw && t.tab === state.tab).forEach(renderTile);
    } catch (e) { /* offline: the next round tries again */ }
  }
  setInterval(fetchHistory, HISTORY_EVERY_MS);
  fetchHistory();
  let lastSession = null;

  setInterval(() => {
    refreshFreshness();
    renderBanners();
    const session = state.doc && state.doc.market ? state.doc.market.session_date : null;
    if (session !== lastSession) { lastSession = session; fetchHistory(); }
    if (state.ws && state.conn === "open" && Date.now() - state.lastMessageAt > WATCHDOG_MS) state.ws.close();
  }, 1000);

  // Tabs and theme -------------------------------------------------------------------------
  const tabs = document.querySelectorAll("[data-tab]");
  function selectTab(name) {
    state.tab = name;
    tabs.forEach((b) => b.setAttribute("aria-selected", String(b.dataset.tab === name)));
    document.querySelectorAll(".panel").forEach((p) => { p.hidden = p.id !== `panel-${name}`; });
    try { localStorage.setItem("aegis-tab", name); } catch (e) { /* private mode */ }
  }
  tabs.forEach((b) => b.addEventListener("click", () => { selectTab(b.dataset.tab); renderAll(); }));
  let savedTab = null;
  try { savedTab = localStorage.getItem("aegis-tab"); } catch (e) { /* private mode */ }
  if (savedTab && document.getElementById(`panel-${savedTab}`)) selectTab(savedTab);

  document.getElementById("theme-toggle").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try { localStorage.setItem("aegis-theme", next); } catch (e) { /* private mode */ }
    renderAll(); // canvases take their colours from the theme
  });

  renderBanners();
  connect().then(travelFromHash);
})();
