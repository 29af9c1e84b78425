// Hosts' view: every space with its state and since when, sensors and gateways, and the alerts
// a host acts on. The token is kept in sessionStorage (this tab only) and sent as a bearer token to
// the API; the page itself is the same with or without one. Spaces update live from /v1/stream;
// sensors and gateways are read every 5 s (the API has no stream for them).
"use strict";

(() => {
  const KEY = "tila-host-token";
  // How often sensors and gateways are read again.
  const POLL_MS = 5000;
  // Below this battery level a sensor is listed for a battery change (percent).
  const LOW_BATTERY = 20;
  // A sensor not heard from for this long is silent: the Zigbee2MQTT heartbeat allowance, the
  // longest of tila's formats (sensors/formats); a sensor the aggregator no longer trusts also
  // shows as its space turning unknown.
  const SILENT_MS = 2 * 3600 * 1000;
  // A gateway whose oldest unsent event is older than this is falling behind: twice its
  // --live-after (30 s), after which it already interleaves backlog and live events.
  const BEHIND_S = 60;
  // A gateway reports its health every 30 s (--health-interval): four missed reports is an alert.
  const HEALTH_STALE_MS = 120 * 1000;
  // After this long without the stream, the spaces' states are no longer trusted.
  const STALE_MS = 30 * 1000;

  const STATE = { free: ["✓", "free"], occupied: ["✕", "in use"], unknown: ["?", "unknown"] };
  const KIND = { desk: "desk", room: "meeting room", booth: "phone booth", event: "event hall" };

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };
  const token = () => sessionStorage.getItem(KEY);

  let site = null;
  const spaces = new Map();      // id → /v1/spaces document, live from the stream
  let sensors = [];
  let gateways = [];
  let source = null;
  let timers = [];
  let streamUp = false;
  let lostAt = null;
  let polledAt = null;
  let pollError = "";

  // ------------------------------------------------------------------------------------ time

  const tz = () => (site && site.timezone) || undefined;
  function clock(iso) {
    if (!iso) return "—";
    const t = new Date(iso);
    const opts = { hour: "2-digit", minute: "2-digit", timeZone: tz() };
    const sameDay = new Intl.DateTimeFormat("en-CA", { timeZone: tz() }).format(t) ===
      new Intl.DateTimeFormat("en-CA", { timeZone: tz() }).format(new Date());
    if (!sameDay) Object.assign(opts, { day: "numeric", month: "numeric" });
    return new Intl.DateTimeFormat("en-GB", { ...opts, hourCycle: "h23" }).format(t);
  }
  function span(ms) {
    const m = Math.max(0, Math.round(ms / 60000));
    if (m < 1) return "< 1 min";
    if (m < 60) return `${m} min`;
    const h = Math.floor(m / 60);
    if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
    return h % 24 ? `${Math.floor(h / 24)} d ${h % 24} h` : `${Math.floor(h / 24)} d`;
  }
  const ago = (iso) => (iso ? Date.now() - new Date(iso).getTime() : null);
  const secs = (s) => (s === null || s === undefined ? "—" : s < 90 ? `${Math.round(s)} s` : span(s * 1000));
  const num = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-GB").replace(/,/g, " "));

  const nameOf = (names, fallback) => (names && (names.en || names.fi || names.sv)) || fallback;
  const spaceName = (id) => { const s = spaces.get(id); return s ? nameOf(s.name, s.id) : id; };
  const zoneName = (id) => { const z = site && site.zones.find((x) => x.id === id); return z ? nameOf(z.name, id) : id; };

  // ------------------------------------------------------------------------------------- API

  async function api(path) {
    const r = await fetch(path, { headers: { Authorization: `Bearer ${token()}` }, cache: "no-store" });
    if (r.status === 401 || r.status === 403) {
      const body = await r.json().catch(() => ({}));
      throw Object.assign(new Error(body.message || body.detail || r.statusText), { auth: true });
    }
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }

  // ---------------------------------------------------------------------------------- alerts

  function alerts() {
    const out = [];
    const add = (severity, kind, subject, what, detail) => out.push({ severity, kind, subject, what, detail });
    for (const s of spaces.values()) {
      if (s.state === "occupied" && s.count > s.capacity) {
        add("critical", "over-capacity", s.id, `${spaceName(s.id)} over capacity`, `${s.count} people in ${s.capacity} seats, since ${clock(s.since)}`);
      }
    }
    for (const g of gateways) {
      const h = g.health || {};
      if (g.status === "offline") add("critical", "gateway-offline", g.id, `Gateway ${g.id} offline`, h.time ? `last report ${clock(h.time)}` : "no health report");
      else if (g.status !== "online") add("warning", "gateway-unknown", g.id, `Gateway ${g.id}: status unknown`, "no retained status");
      if (g.status !== "offline" && h.time && ago(h.time) > HEALTH_STALE_MS) {
        add("warning", "gateway-silent", g.id, `Gateway ${g.id} has not reported for ${span(ago(h.time))}`, `last report ${clock(h.time)}`);
      }
      if (h.oldest_unsent_age_s > BEHIND_S) {
        add("warning", "gateway-behind", g.id, `Gateway ${g.id} falling behind`, `${num(h.outbox_depth)} events waiting, the oldest for ${secs(h.oldest_unsent_age_s)}`);
      }
      const dropped = Object.values(h.dropped || {}).reduce((a, b) => a + b, 0);
      if (dropped) add("critical", "gateway-dropped", g.id, `Gateway ${g.id} dropped ${num(dropped)} events`, "its outbox was full");
      if (h.local_connected === false && g.status === "online") add("warning", "gateway-local", g.id, `Gateway ${g.id} lost its local broker`, "device messages are not being read");
    }
    const never = [];
    for (const s of sensors) {
      const where = spaceName(s.space);
      if (s.online === false) add("warning", "sensor-offline", s.id, `Sensor ${s.id} offline`, `${where}; last seen ${clock(s.last_seen)}`);
      else if (s.last_seen && ago(s.last_seen) > SILENT_MS) add("warning", "sensor-silent", s.id, `Sensor ${s.id} silent for ${span(ago(s.last_seen))}`, `${where}; last seen ${clock(s.last_seen)}`);
      else if (!s.last_seen && s.online === null) never.push(s.id);
      if (s.battery !== null && s.battery < LOW_BATTERY) add("warning", "sensor-battery", s.id, `Sensor ${s.id} battery low: ${Math.round(s.battery)} %`, where);
    }
    if (never.length) {
      add("warning", "sensor-never", never.join(" "), `${never.length} sensor${never.length > 1 ? "s" : ""} never heard from`,
        never.slice(0, 8).join(", ") + (never.length > 8 ? ", …" : ""));
    }
    const rank = { critical: 0, warning: 1 };
    return out.sort((a, b) => rank[a.severity] - rank[b.severity]);
  }

  // ------------------------------------------------------------------------------- rendering

  function cell(text, cls) {
    const td = el("td", cls, text === null || text === undefined ? "—" : text);
    return td;
  }

  function stateCell(st) {
    const [icon, word] = STATE[st] || STATE.unknown;
    const td = el("td", `nowrap ${st in STATE ? st : "unknown"}`);
    const i = el("span", null, icon);
    i.setAttribute("aria-hidden", "true");
    td.append(i, ` ${word}`);
    return td;
  }

  function render() {
    const list = alerts();
    const problems = new Map(list.map((a) => [a.subject, a.severity]));
    $("alert-count").textContent = `(${list.length})`;
    $("alerts").replaceChildren(...(list.length ? list.map((a) => {
      const li = el("li", `alert ${a.severity}`);
      li.dataset.alert = a.kind;
      li.dataset.subject = a.subject;
      const icon = el("span", "icon", a.severity === "critical" ? "✖" : "⚠");
      icon.setAttribute("aria-hidden", "true");
      li.append(icon, el("span", "what", `${a.severity === "critical" ? "Critical" : "Warning"}: ${a.what}`), el("span", "detail", a.detail));
      return li;
    }) : [(() => {
      const li = el("li", "alert ok");
      const icon = el("span", "icon", "✓");
      icon.setAttribute("aria-hidden", "true");
      li.append(icon, el("span", "what", "No alerts"), el("span", "detail", "every sensor and gateway reports, no room is over capacity"));
      return li;
    })()]));

    // Summary
    const desks = [...spaces.values()].filter((s) => s.kind === "desk");
    const rooms = [...spaces.values()].filter((s) => s.kind !== "desk");
    const countBy = (xs, st) => xs.filter((s) => s.state === st).length;
    const items = [
      ["Desks free", `${countBy(desks, "free")} / ${desks.length}`],
      ["Desks unknown", countBy(desks, "unknown")],
      ["Rooms in use", `${countBy(rooms, "occupied")} / ${rooms.length}`],
      ["People in rooms", rooms.reduce((a, s) => a + (s.state === "occupied" ? s.count : 0), 0)],
      ["Sensors online", `${sensors.filter((s) => s.online).length} / ${sensors.length}`],
      ["Gateways online", `${gateways.filter((g) => g.status === "online").length} / ${gateways.length}`],
    ];
    $("summary").replaceChildren(...items.map(([k, v]) => {
      const d = el("div");
      d.append(el("dt", null, k), el("dd", null, v));
      return d;
    }));

    // Spaces
    // Rooms, booths and the event hall first (where people gather), then the desks; site order within.
    const listed = [...spaces.values()].sort((a, b) => (a.kind === "desk") - (b.kind === "desk"));
    $("spaces").tBodies[0].replaceChildren(...listed.map((s) => {
      const tr = el("tr");
      tr.dataset.space = s.id;
      tr.dataset.state = s.state;
      if (problems.has(s.id)) tr.classList.add("problem", problems.get(s.id));
      const nameTd = el("td", null, nameOf(s.name, s.id));
      nameTd.append(el("span", "sub", KIND[s.kind] || s.kind));
      nameTd.title = s.id;
      const people = s.capacity > 1 || s.kind !== "desk" ? `${s.state === "occupied" ? s.count : 0} / ${s.capacity}` : (s.state === "occupied" ? "1" : "0");
      const since = el("td", "nowrap", clock(s.since));
      if (s.since) since.append(el("span", "sub", span(ago(s.since))));
      tr.append(nameTd, cell(zoneName(s.zone), "wide nowrap"), stateCell(s.state),
        cell(people, s.count > s.capacity ? "num bad" : "num"), since);
      return tr;
    }));

    // Sensors
    $("sensors").tBodies[0].replaceChildren(...sensors.map((s) => {
      const tr = el("tr");
      tr.dataset.sensor = s.id;
      if (problems.has(s.id)) tr.classList.add("problem");
      const silent = s.online !== false && s.last_seen && ago(s.last_seen) > SILENT_MS;
      const status = s.online === false ? ["✕ offline", "bad"] : silent ? ["⚠ silent", "warn"] : s.online ? ["✓ online", ""] : ["? unknown", "unknown"];
      const low = s.battery !== null && s.battery < LOW_BATTERY;
      const seen = el("td", "nowrap", s.last_seen ? `${span(ago(s.last_seen))} ago` : "never");
      if (s.last_seen) seen.title = clock(s.last_seen);
      tr.append(cell(s.id), cell(spaceName(s.space), "wide"), cell(status[0], `nowrap ${status[1]}`),
        cell(s.battery === null ? null : `${low ? "⚠ " : ""}${Math.round(s.battery)} %`, low ? "num warn" : "num"),
        cell(s.linkquality, "num wide"), seen);
      return tr;
    }));

    // Gateways
    $("gateways").tBodies[0].replaceChildren(...(gateways.length ? gateways.map((g) => {
      const h = g.health || {};
      const tr = el("tr");
      tr.dataset.gateway = g.id;
      if (problems.has(g.id)) tr.classList.add("problem");
      const quarantined = Object.values(h.quarantined || {}).reduce((a, b) => a + b, 0);
      const status = g.status === "online" ? ["✓ online", ""] : g.status === "offline" ? ["✕ offline", "bad"] : ["? unknown", "unknown"];
      const behind = h.oldest_unsent_age_s > BEHIND_S;
      const report = el("td", "nowrap", clock(h.time));
      if (h.time) report.append(el("span", "sub", `${span(ago(h.time))} ago`));
      const idTd = cell(g.id);
      if (g.health) idTd.append(el("span", "sub", `${num(h.forwarded)} sent · ${num(quarantined)} quarantined`));
      const backlog = cell(`${num(h.outbox_depth)} events`, behind ? "nowrap warn" : "nowrap");
      backlog.append(el("span", "sub", h.oldest_unsent_age_s === null || h.oldest_unsent_age_s === undefined ? "nothing waiting" : `oldest ${secs(h.oldest_unsent_age_s)}`));
      tr.append(idTd, cell(status[0], `nowrap ${status[1]}`), backlog, report);
      return tr;
    }) : [(() => { const tr = el("tr"); const td = cell("No gateway has reported yet."); td.colSpan = 4; tr.append(td); return tr; })()]));

    renderStatus();
  }

  function renderStatus() {
    const s = $("status");
    const lost = !streamUp && lostAt !== null && Date.now() - lostAt > STALE_MS;
    s.classList.toggle("lost", !streamUp || !!pollError);
    const parts = [streamUp ? "● live" : lost ? "✕ no connection: states may be out of date" : "… reconnecting"];
    if (pollError) parts.push(`sensors not updated: ${pollError}`);
    else if (polledAt) parts.push(`sensors and gateways read ${new Date(polledAt).toLocaleTimeString("en-GB", { timeZone: tz(), hourCycle: "h23" })}`);
    s.textContent = parts.join(" · ");
  }

  let pendingRender = null;
  const scheduleRender = () => { if (pendingRender === null) pendingRender = setTimeout(() => { pendingRender = null; render(); }, 25); };

  // ------------------------------------------------------------------------------- lifecycle

  async function poll() {
    try {
      [sensors, gateways] = await Promise.all([api("v1/sensors"), api("v1/gateways")]);
      polledAt = Date.now();
      pollError = "";
    } catch (e) {
      if (e.auth) { logout(e.message); return; }
      pollError = e.message;
    }
    render();
  }

  function connect() {
    source = new EventSource("v1/stream");
    source.addEventListener("open", () => { streamUp = true; lostAt = null; renderStatus(); });
    source.addEventListener("space", (ev) => {
      try { const s = JSON.parse(ev.data); spaces.set(s.id, s); scheduleRender(); } catch (e) { /* skip a bad event */ }
    });
    source.addEventListener("error", () => {
      streamUp = false;
      if (lostAt === null) lostAt = Date.now();
      if (source.readyState === EventSource.CLOSED) { source.close(); timers.push(setTimeout(connect, 5000)); }
      renderStatus();
    });
  }

  async function start() {
    try {
      site = await fetch("v1/site", { cache: "no-store" }).then((r) => r.json());
      $("site-name").textContent = `${nameOf(site.name, site.id)} — hosts' view`;
    } catch (e) { /* keep the default title */ }
    $("login").hidden = true;
    $("view").hidden = false;
    await poll();
    if (!token()) return;
    connect();
    timers.push(setInterval(poll, POLL_MS), setInterval(render, 30000));
  }

  function logout(message) {
    sessionStorage.removeItem(KEY);
    timers.forEach((t) => { clearInterval(t); clearTimeout(t); });
    timers = [];
    if (source) source.close();
    source = null;
    $("view").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("status").textContent = "";
    $("token").focus();
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
