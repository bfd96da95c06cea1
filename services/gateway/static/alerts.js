/* Alerts: a log tile (the newest alerts, from GET /api/v1/alerts) and a toast for each alert
   that arrives while the page is open. Polls every few seconds; text only (textContent), so
   nothing in an alert can become markup. In time travel (window.aegis.past) the tile shows the
   alerts raised up to the moment shown, from the history database, and toasts nothing. */
"use strict";

(() => {
  const EVERY_MS = 5000;
  const LIMIT = 20;
  const COLOR = { critical: "var(--bad)", warning: "var(--warn)", info: "var(--accent)" };
  const seen = new Set();
  let first = true;
  let shownAt = null; // the past moment the list shows (epoch s), null live

  const section = document.createElement("section");
  section.className = "alerts-section";
  section.setAttribute("data-testid", "alerts-tile");
  section.style.cssText = "margin:16px 18px;padding:12px 14px;background:var(--panel);border:1px solid var(--line);border-radius:10px";
  section.innerHTML = '<h2 style="margin:0 0 8px;font-size:15px">Alerts</h2><ol data-testid="alerts-list" style="margin:0;padding:0;list-style:none;max-height:260px;overflow:auto"></ol><p class="meaning" data-testid="alerts-empty" style="color:var(--muted);margin:4px 0">No alert yet. Rules: services/alerts/rules.default.toml (docs/ALERTS.md).</p>';
  (document.querySelector("main") || document.body).appendChild(section);
  const title = section.querySelector("h2");
  const list = section.querySelector("ol");
  const empty = section.querySelector("p");

  const toasts = document.createElement("div");
  toasts.setAttribute("aria-live", "polite");
  toasts.style.cssText = "position:fixed;right:16px;bottom:16px;z-index:20;display:flex;flex-direction:column;gap:8px;max-width:380px";
  document.body.appendChild(toasts);

  function line(alert) {
    const li = document.createElement("li");
    li.setAttribute("data-testid", "alert-item");
    li.style.cssText = `padding:6px 0 6px 10px;border-left:3px solid ${COLOR[alert.severity] || "var(--muted)"};margin-bottom:4px`;
    const when = document.createElement("a");
    when.textContent = alert.as_of_ist || "";
    when.href = `#at=${(alert.as_of || 0) * 1000}`;
    when.style.cssText = "color:var(--muted);font-size:12px;margin-right:8px";
    const text = document.createElement("span");
    text.textContent = `${alert.text || ""}${alert.quiet ? " (quiet hours)" : ""}`;
    const rule = document.createElement("span");
    rule.textContent = ` · ${alert.rule || ""} · ${alert.severity || ""}`;
    rule.style.cssText = "color:var(--muted);font-size:12px";
    li.append(when, text, rule);
    return li;
  }

  function toast(alert) {
    const box = document.createElement("div");
    box.setAttribute("data-testid", "alert-toast");
    box.setAttribute("role", "status");
    box.style.cssText = `background:var(--panel-2);color:var(--text);border:1px solid ${COLOR[alert.severity] || "var(--line)"};border-radius:8px;padding:10px 12px;box-shadow:0 4px 16px rgba(0,0,0,.3);font-size:13px;cursor:pointer`;
    box.textContent = `${(alert.severity || "").toUpperCase()}: ${alert.text || ""}`;
    box.onclick = () => box.remove();
    toasts.appendChild(box);
    setTimeout(() => box.remove(), 10000);
  }

  function pastMoment() {
    const past = window.aegis && window.aegis.past;
    return past ? Math.floor(past.atMs / 1000) : null;
  }

  async function refresh() {
    const at = pastMoment();
    shownAt = at; // asked once per moment, even if the answer fails
    try {
      const query = at === null ? "" : `&at=${at}`;
      const res = await fetch(`/api/v1/alerts?limit=${LIMIT}${query}`, { credentials: "same-origin" });
      if (!res.ok) return; // not signed in yet, or the gateway is away: try again later
      const { alerts } = await res.json();
      title.textContent = at === null ? "Alerts" : "Alerts up to the moment shown";
      list.replaceChildren(...alerts.map(line));
      empty.hidden = alerts.length > 0;
      if (at !== null) return; // the past: nothing new to toast
      for (const alert of alerts.slice().reverse()) {
        if (!seen.has(alert.stream_id) && !first) toast(alert);
        seen.add(alert.stream_id);
      }
      first = false;
    } catch (e) { /* offline: the next poll tries again */ }
  }

  refresh();
  setInterval(refresh, EVERY_MS);
  // follow time travel at once, not at the next poll
  setInterval(() => { if (pastMoment() !== shownAt) refresh(); }, 250);
})();
