// Lobby screen: site name, free desks per zone, rooms and a floor plan, live from /v1/stream.
// Languages alternate fi → sv → en every 10 s, or stay fixed with ?lang=fi|sv|en (?every=S changes
// the period). Paths are relative so the page also works behind a proxy under a prefix.
"use strict";

(() => {
  const T = {
    fi: {
      freeDesks: "Vapaita työpisteitä", plan: "Pohjapiirros", rooms: "Huoneet ja tilat",
      free: "Vapaa", occupied: "Käytössä", unknown: "Ei tietoa", of: "/",
      unknownDesks: (n) => `${n} ilman tietoa`,
      people: (n, c) => `${n}/${c} hlö`,
      offline: "Yhteys palvelimeen katkesi – yritetään uudelleen…",
      stale: "Ei yhteyttä palvelimeen – tilatiedot eivät ole saatavilla.",
      kinds: { desk: "Työpiste", room: "Neuvotteluhuone", booth: "Puhelinkoppi", event: "Tapahtumatila" },
    },
    sv: {
      freeDesks: "Lediga arbetsplatser", plan: "Planritning", rooms: "Rum och utrymmen",
      free: "Ledig", occupied: "Upptagen", unknown: "Okänt", of: "/",
      unknownDesks: (n) => `${n} utan uppgift`,
      people: (n, c) => `${n}/${c} pers.`,
      offline: "Anslutningen till servern bröts – försöker igen…",
      stale: "Ingen anslutning till servern – statusuppgifter saknas.",
      kinds: { desk: "Arbetsplats", room: "Mötesrum", booth: "Telefonbås", event: "Evenemangsrum" },
    },
    en: {
      freeDesks: "Free desks", plan: "Floor plan", rooms: "Rooms and spaces",
      free: "Free", occupied: "In use", unknown: "Unknown", of: "/",
      unknownDesks: (n) => `${n} without data`,
      people: (n, c) => `${n}/${c} people`,
      offline: "Lost the connection to the server – retrying…",
      stale: "No connection to the server – status not available.",
      kinds: { desk: "Desk", room: "Meeting room", booth: "Phone booth", event: "Event hall" },
    },
  };
  const LANGS = ["fi", "sv", "en"];
  const LOCALE = { fi: "fi-FI", sv: "sv-FI", en: "en-GB" };
  // Icons go with the colours so that state never depends on colour alone.
  const ICON = { free: "✓", occupied: "✕", unknown: "?" };
  // After this long without the stream, every space is shown as unknown: never a stale "free".
  const STALE_MS = 30000;
  // A screen reloads itself this often (only when the server answers) to pick up a new release.
  const RELOAD_MS = 6 * 3600 * 1000;

  const params = new URLSearchParams(location.search);
  const fixedLang = LANGS.includes(params.get("lang")) ? params.get("lang") : null;
  const every = Math.max(3, Number(params.get("every")) || 10) * 1000;

  let lang = fixedLang || "fi";
  let site = null;                  // /v1/site
  const spaces = new Map();         // id → space as in /v1/spaces
  let connected = false;
  let stale = false;
  let staleTimer = null;
  let source = null;

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const name = (names, fallback) => (names && (names[lang] || names.en || names.fi || names.sv)) || fallback;
  const state = (s) => (stale ? "unknown" : (s.state in ICON ? s.state : "unknown"));

  function chip(st) {
    const c = el("span", `chip ${st}`);
    c.append(el("span", "icon", ICON[st]), el("span", "word", T[lang][st]));
    c.setAttribute("aria-label", T[lang][st]);
    return c;
  }

  // --------------------------------------------------------------------------------- rendering

  function render() {
    const t = T[lang];
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-t]").forEach((e) => { e.textContent = t[e.dataset.t]; });
    if (site) {
      const siteName = name(site.name, site.id);
      $("site-name").textContent = siteName;
      document.title = siteName;
    }
    $("lang-label").textContent = fixedLang ? "" : LANGS.map((l) => (l === lang ? `[${l}]` : l)).join(" ");
    renderZones();
    renderPlan();
    renderRooms();
    renderLegend();
    renderBanner();
  }

  function zonesList() {
    if (site) return site.zones;
    const ids = [...new Set([...spaces.values()].map((s) => s.zone))];
    return ids.map((id) => ({ id, name: null }));
  }

  function renderZones() {
    const ul = $("zones");
    ul.replaceChildren();
    for (const z of zonesList()) {
      const desks = [...spaces.values()].filter((s) => s.zone === z.id && s.kind === "desk");
      if (!desks.length) continue;
      const free = desks.filter((s) => state(s) === "free").length;
      const unknown = desks.filter((s) => state(s) === "unknown").length;
      const li = el("li", `zone${free ? "" : " none-free"}`);
      const count = el("div", "zone-count");
      count.append(el("span", "zone-free", String(free)), el("span", "zone-total", `${T[lang].of} ${desks.length}`));
      li.append(el("div", "zone-name", name(z.name, z.id)), count,
        el("div", "zone-unknown", unknown ? T[lang].unknownDesks(unknown) : ""));
      ul.append(li);
    }
  }

  function renderRooms() {
    const ul = $("rooms");
    ul.replaceChildren();
    const order = { event: 0, room: 1, booth: 2 };
    const rooms = [...spaces.values()].filter((s) => s.kind !== "desk")
      .sort((a, b) => (order[a.kind] ?? 9) - (order[b.kind] ?? 9) || a.id.localeCompare(b.id));
    for (const s of rooms) {
      const st = state(s);
      const li = el("li", "room");
      const label = el("div", "room-name", name(s.name, s.id));
      const kind = T[lang].kinds[s.kind] || s.kind;
      const extra = st === "occupied" && s.capacity > 1 && s.count > 0 ? ` · ${T[lang].people(s.count, s.capacity)}` : "";
      label.append(el("span", "room-kind", kind + extra));
      li.append(label, chip(st));
      ul.append(li);
    }
    $("rooms-title").parentElement.hidden = rooms.length === 0;
  }

  const SVG = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  };

  function renderPlan() {
    const box = $("plan");
    box.replaceChildren();
    const all = [...spaces.values()];
    const placed = all.filter((s) => s.position);
    if (placed.length) box.append(floorPlan(placed));
    // Desks the site file gives no position (all of them, without a plan): tiles per zone.
    for (const z of zonesList()) {
      const desks = all.filter((s) => s.zone === z.id && s.kind === "desk" && !s.position);
      if (!desks.length) continue;
      const wrap = el("div", "desk-zone");
      const tiles = el("ul", "tiles");
      for (const s of desks) {
        const st = state(s);
        const tile = el("li", `tile ${st}`, ICON[st]);
        tile.title = `${name(s.name, s.id)}: ${T[lang][st]}`;
        tile.setAttribute("aria-label", tile.title);
        tiles.append(tile);
      }
      wrap.append(el("div", "desk-zone-name", name(z.name, z.id)), tiles);
      box.append(wrap);
    }
    const section = box.parentElement;
    section.hidden = box.childElementCount === 0;
    section.parentElement.classList.toggle("no-plan", section.hidden);
  }

  function floorPlan(placed) {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const s of placed) {
      const p = s.position;
      x0 = Math.min(x0, p.x); y0 = Math.min(y0, p.y);
      x1 = Math.max(x1, p.x + p.w); y1 = Math.max(y1, p.y + p.h);
    }
    const pad = 0.2;
    const root = svg("svg", {
      viewBox: `${x0 - pad} ${y0 - pad} ${x1 - x0 + 2 * pad} ${y1 - y0 + 2 * pad}`,
      role: "img",
      "aria-label": T[lang].plan,
    });
    const defs = svg("defs");
    const hatch = svg("pattern", { id: "hatch", width: "0.3", height: "0.3", patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
    hatch.append(svg("rect", { width: "0.3", height: "0.3", fill: "#666b73" }), svg("rect", { width: "0.15", height: "0.3", fill: "#4e535a" }));
    defs.append(hatch);
    root.append(defs);
    for (const s of placed) {
      const p = s.position;
      const st = state(s);
      const g = svg("g", { class: `sp ${st}` });
      const title = svg("title");
      title.textContent = `${name(s.name, s.id)}: ${T[lang][st]}`;
      const rect = svg("rect", {
        x: p.x + 0.04, y: p.y + 0.04, width: Math.max(p.w - 0.08, 0.05), height: Math.max(p.h - 0.08, 0.05),
        rx: Math.min(p.w, p.h) * (st === "free" ? 0.3 : 0.06),  // free: rounded; in use: square
      });
      // As an attribute: a url(#…) in the external stylesheet could resolve against the CSS file.
      if (st === "unknown") rect.setAttribute("fill", "url(#hatch)");
      g.append(title, rect);
      const size = Math.min(p.w, p.h);
      const icon = svg("text", { x: p.x + p.w / 2, y: p.y + p.h / 2, "font-size": size * 0.55 });
      icon.textContent = ICON[st];
      g.append(icon);
      if (s.kind !== "desk" && p.h >= 1.2 && p.w >= 2) {
        icon.setAttribute("y", p.y + p.h * 0.4);
        const label = svg("text", { class: "label", x: p.x + p.w / 2, y: p.y + p.h * 0.78, "font-size": Math.min(p.h * 0.2, p.w * 0.11) });
        label.textContent = name(s.name, s.id);
        g.append(label);
      }
      root.append(g);
    }
    return root;
  }

  function renderLegend() {
    const f = $("legend");
    f.replaceChildren(...["free", "occupied", "unknown"].map((st) => chip(st)));
  }

  function renderBanner() {
    const b = $("banner");
    if (stale) { b.textContent = T[lang].stale; b.hidden = false; }
    else if (!connected && site) { b.textContent = T[lang].offline; b.hidden = false; }
    else b.hidden = true;
  }

  function tick() {
    const tz = site && site.timezone;
    try {
      $("clock").textContent = new Intl.DateTimeFormat(LOCALE[lang], { hour: "2-digit", minute: "2-digit", timeZone: tz || undefined }).format(new Date());
    } catch (e) {
      $("clock").textContent = new Date().toTimeString().slice(0, 5);
    }
  }

  // ------------------------------------------------------------------------------------- data

  async function loadSite() {
    try {
      const r = await fetch("v1/site", { cache: "no-store" });
      if (r.ok) { site = await r.json(); render(); tick(); }
    } catch (e) { /* the stream's error handling shows the banner */ }
  }

  function connect() {
    source = new EventSource("v1/stream");
    source.addEventListener("open", () => {
      connected = true;
      clearTimeout(staleTimer);
      staleTimer = null;
      loadSite();
      if (stale) { stale = false; }
      render();
    });
    source.addEventListener("space", (ev) => {
      try {
        const s = JSON.parse(ev.data);
        spaces.set(s.id, s);
        scheduleRender();
      } catch (e) { /* ignore a bad event rather than stop the screen */ }
    });
    source.addEventListener("error", () => {
      connected = false;
      if (!staleTimer) staleTimer = setTimeout(() => { stale = true; render(); }, STALE_MS);
      if (source.readyState === EventSource.CLOSED) {
        // The browser gives up after an HTTP error (e.g. 502/503 from a proxy): start again.
        source.close();
        setTimeout(connect, 5000);
      }
      render();
    });
  }

  // Many events arrive together (the snapshot on connect): render once per frame.
  let pending = false;
  function scheduleRender() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; render(); });
  }

  function rotate() {
    if (fixedLang) return;
    lang = LANGS[(LANGS.indexOf(lang) + 1) % LANGS.length];
    render();
  }

  async function maybeReload() {
    try {
      const r = await fetch(location.pathname, { method: "HEAD", cache: "no-store" });
      if (r.ok) location.reload();
    } catch (e) { /* server away: keep showing what we have */ }
  }

  render();
  tick();
  loadSite();
  connect();
  setInterval(rotate, every);
  setInterval(tick, 5000);
  setInterval(maybeReload, RELOAD_MS);
})();
