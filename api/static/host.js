// Hosts' view: the token is kept in sessionStorage (this tab only) and sent as a bearer token to the
// API; the page itself is the same with or without one. Spaces update live from /v1/stream.
"use strict";

(() => {
  const KEY = "tila-host-token";
  const ICON = { free: "✓ free", occupied: "✕ in use", unknown: "? unknown" };
  const $ = (id) => document.getElementById(id);
  const spaces = new Map();
  let source = null;
  let timer = null;

  const cell = (text, cls) => {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "—" : String(text);
    if (cls) td.className = cls;
    return td;
  };
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : null);
  const token = () => sessionStorage.getItem(KEY);

  async function api(path) {
    const r = await fetch(path, { headers: { Authorization: `Bearer ${token()}` }, cache: "no-store" });
    if (r.status === 401 || r.status === 403) {
      const body = await r.json().catch(() => ({}));
      throw Object.assign(new Error(body.detail || r.statusText), { auth: true });
    }
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    return r.json();
  }

  function renderSpaces() {
    const body = $("spaces").tBodies[0];
    body.replaceChildren(...[...spaces.values()].map((s) => {
      const tr = document.createElement("tr");
      tr.append(cell(s.id), cell(s.kind), cell(s.zone), cell(ICON[s.state] || s.state, s.state), cell(s.count), cell(when(s.since)));
      return tr;
    }));
  }

  async function refresh() {
    try {
      const [sensors, gateways] = await Promise.all([api("v1/sensors"), api("v1/gateways")]);
      $("sensors").tBodies[0].replaceChildren(...sensors.map((s) => {
        const tr = document.createElement("tr");
        const online = s.online === null ? "?" : s.online ? "online" : "offline";
        const low = s.battery !== null && s.battery < 20;
        tr.append(cell(s.id), cell(s.space), cell(online, s.online === false ? "warn" : s.online === null ? "unknown" : ""),
          cell(s.battery === null ? null : `${Math.round(s.battery)} %`, low ? "warn" : ""), cell(s.linkquality), cell(when(s.last_seen)));
        return tr;
      }));
      $("gateways").tBodies[0].replaceChildren(...gateways.map((g) => {
        const tr = document.createElement("tr");
        tr.append(cell(g.id), cell(g.status, g.status === "online" ? "" : "warn"), cell(g.health ? JSON.stringify(g.health) : null));
        return tr;
      }));
      $("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      if (e.auth) { logout(e.message); return; }
      $("status").textContent = `not updated: ${e.message}`;
    }
  }

  async function start() {
    try {
      const site = await fetch("v1/site").then((r) => r.json());
      $("site-name").textContent = `${(site.name && (site.name.en || site.name.fi)) || site.id} — hosts' view`;
    } catch (e) { /* keep the default title */ }
    $("login").hidden = true;
    $("view").hidden = false;
    await refresh();
    if (!token()) return;
    timer = setInterval(refresh, 30000);
    source = new EventSource("v1/stream");
    source.addEventListener("space", (ev) => { const s = JSON.parse(ev.data); spaces.set(s.id, s); renderSpaces(); });
  }

  function logout(message) {
    sessionStorage.removeItem(KEY);
    clearInterval(timer);
    if (source) source.close();
    $("view").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
  }

  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $("token").value.trim());
    $("token").value = "";
    start();
  });
  $("logout").addEventListener("click", () => logout(""));
  if (token()) start(); else logout("");
})();
