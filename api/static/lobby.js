// Lobby screen: site name, free desks per zone, a floor plan (or a list) and the rooms, live from
// /v1/stream. Languages alternate fi → sv → en every 10 s (?every=S), or stay fixed with
// ?lang=fi|sv|en. After ?stale=S seconds (30) without the stream every space shows as unknown.
// Paths are relative so the page also works behind a proxy under a prefix.
//
// The plan is drawn from the spaces' positions in HTML (not SVG) so that names wrap and are fitted
// to their tiles like any text. It keeps the site's layout (order, neighbours, relative sizes) but
// not its exact proportions: long empty bands (a corridor, an unsensed corner) are drawn short, a
// band beside nothing but a big space (the event hall) may be drawn at half length when that makes
// the whole plan clearly larger, and a floor much wider than the screen is tall is turned a quarter.
"use strict";

(() => {
  const T = {
    fi: {
      freeDesks: "Vapaita työpisteitä", plan: "Pohjapiirros", rooms: "Huoneet ja tilat", legend: "Selite",
      free: "Vapaa", occupied: "Käytössä", unknown: "Ei tietoa",
      total: (n) => `/ ${n}`,
      totalLong: (f, n) => `${f} vapaana, yhteensä ${n}`,
      unknownDesks: (n) => `${n} ilman tietoa`,
      people: (n, c) => `${n}/${c} hlö`,
      offline: "Yhteys palvelimeen katkesi – yritetään uudelleen…",
      stale: "Ei yhteyttä palvelimeen – tilatiedot eivät ole saatavilla.",
      kinds: { desk: "Työpiste", room: "Neuvotteluhuone", booth: "Puhelinkoppi", event: "Tapahtumatila" },
    },
    sv: {
      freeDesks: "Lediga arbetsplatser", plan: "Planritning", rooms: "Rum och utrymmen", legend: "Förklaring",
      free: "Ledig", occupied: "Upptagen", unknown: "Okänt",
      total: (n) => `/ ${n}`,
      totalLong: (f, n) => `${f} lediga av ${n}`,
      unknownDesks: (n) => `${n} utan uppgift`,
      people: (n, c) => `${n}/${c} pers.`,
      offline: "Anslutningen till servern bröts – försöker igen…",
      stale: "Ingen anslutning till servern – statusuppgifter saknas.",
      kinds: { desk: "Arbetsplats", room: "Mötesrum", booth: "Telefonhytt", event: "Evenemangsrum" },
    },
    en: {
      freeDesks: "Free desks", plan: "Floor plan", rooms: "Rooms and spaces", legend: "Key",
      free: "Free", occupied: "In use", unknown: "Unknown",
      total: (n) => `/ ${n}`,
      totalLong: (f, n) => `${f} free of ${n}`,
      unknownDesks: (n) => `${n} without data`,
      people: (n, c) => `${n}/${c} people`,
      offline: "Lost the connection to the server – retrying…",
      stale: "No connection to the server – status not available.",
      kinds: { desk: "Desk", room: "Meeting room", booth: "Phone booth", event: "Event hall" },
    },
  };
  const LANGS = ["fi", "sv", "en"];
  const LOCALE = { fi: "fi-FI", sv: "sv-FI", en: "en-GB" };
  // Icons go with the colours and shapes so that state never depends on colour alone.
  const ICON = { free: "✓", occupied: "✕", unknown: "?" };
  // The phone layout (lobby.css uses the same query): the page scrolls, the plan fits the width.
  const PHONE = matchMedia("(max-width: 700px), (max-height: 420px)");
  // An empty band across the whole floor (a corridor, an unsensed corner) longer than this share of
  // the floor's size is drawn this long: the plan's space goes to the desks and rooms instead.
  const MAX_GAP_SHARE = 0.02;
  // A room's name on the plan is shown only at this size (px) or larger; smaller, the tile keeps its
  // icon and the list (phone) or its accessible name carries the name.
  const MIN_LABEL_PX = 13;

  const params = new URLSearchParams(location.search);
  const fixedLang = LANGS.includes(params.get("lang")) ? params.get("lang") : null;
  const every = Math.max(1, Number(params.get("every")) || 10) * 1000;
  // After this long without the stream, every space is shown as unknown: never a stale "free".
  const STALE_MS = Math.max(1, Number(params.get("stale")) || 30) * 1000;
  // A screen reloads itself this often (only when the server answers) to pick up a new release.
  const RELOAD_MS = 6 * 3600 * 1000;

  let lang = fixedLang || "fi";
  let site = null;                  // /v1/site
  const spaces = new Map();         // id → space as in /v1/spaces (arrival order = site order)
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
  const icon = (st) => {
    const i = el("span", "icon", ICON[st]);
    i.setAttribute("aria-hidden", "true");
    return i;
  };
  const srOnly = (text) => el("span", "sr-only", text);
  const kindWord = (s) => T[lang].kinds[s.kind] || s.kind;
  const crowd = (s, st) => (st === "occupied" && s.capacity > 1 && s.count > 0 ? T[lang].people(s.count, s.capacity) : "");

  function chip(st) {
    const c = el("span", `chip ${st}`);
    c.append(icon(st), el("span", "word", T[lang][st]));
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
    const langs = $("lang-label");
    langs.replaceChildren(...(fixedLang ? [] : LANGS.map((l) => el("span", l === lang ? "current" : "", l.toUpperCase()))));
    renderZones();
    renderRooms();
    renderPlan();
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
    const items = [];
    for (const z of zonesList()) {
      const desks = [...spaces.values()].filter((s) => s.zone === z.id && s.kind === "desk");
      if (!desks.length) continue;
      const free = desks.filter((s) => state(s) === "free").length;
      const unknown = desks.filter((s) => state(s) === "unknown").length;
      const li = el("li", `zone${free ? "" : " none-free"}`);
      li.dataset.zone = z.id;
      const number = el("span", "zone-free", String(free));
      const total = el("span", "zone-total", T[lang].total(desks.length));
      number.setAttribute("aria-hidden", "true");
      total.setAttribute("aria-hidden", "true");
      const words = el("div", "zone-words");
      const what = el("span", "zone-what", T[lang].freeDesks);
      what.setAttribute("aria-hidden", "true");
      words.append(el("span", "zone-name", name(z.name, z.id)), what,
        el("span", "zone-unknown", unknown ? T[lang].unknownDesks(unknown) : ""));
      const count = el("div", "zone-count");
      count.append(number, total);
      li.append(words, count, srOnly(T[lang].totalLong(free, desks.length)));
      items.push(li);
    }
    ul.replaceChildren(...items);
  }

  function renderRooms() {
    const order = { event: 0, room: 1, booth: 2 };
    const rooms = [...spaces.values()].filter((s) => s.kind !== "desk")
      .sort((a, b) => (order[a.kind] ?? 9) - (order[b.kind] ?? 9) || name(a.name, a.id).localeCompare(name(b.name, b.id), LOCALE[lang], { numeric: true }));
    $("rooms").replaceChildren(...rooms.map((s) => {
      const st = state(s);
      const li = el("li", "room");
      li.dataset.space = s.id;
      li.dataset.state = st;
      const label = el("div", "room-name", name(s.name, s.id));
      const extra = crowd(s, st);
      label.append(el("span", "room-kind", kindWord(s) + (extra ? ` · ${extra}` : "")));
      li.append(label, chip(st));
      return li;
    }));
    const lower = $("lower");
    $("rooms-wrap").hidden = rooms.length === 0;
    // When every room is on the plan with its name and state, the big screen does not repeat them.
    lower.classList.toggle("rooms-on-plan", rooms.length > 0 && rooms.every((s) => s.position));
    const ul = $("rooms");
    ul.style.fontSize = "";
    if (rooms.length && !PHONE.matches && getComputedStyle($("rooms-wrap")).display !== "none") {
      shrinkToFit(ul, (k) => { ul.style.fontSize = `${unit() * 1.6 * k}px`; }, 0.5);
    }
  }

  function renderLegend() {
    const ul = $("legend");
    ul.setAttribute("aria-label", T[lang].legend);
    ul.replaceChildren(...["free", "occupied", "unknown"].map((st) => {
      const li = el("li");
      li.append(chip(st));
      return li;
    }));
  }

  function renderBanner() {
    const b = $("banner");
    if (stale) { b.textContent = T[lang].stale; b.hidden = false; }
    else if (!connected && site) { b.textContent = T[lang].offline; b.hidden = false; }
    else b.hidden = true;
  }

  // ---------------------------------------------------------------------------------- the plan

  function renderPlan() {
    const box = $("plan");
    const all = [...spaces.values()];
    const placed = all.filter((s) => s.position);
    const parts = [];
    if (placed.length) {
      const floorBox = el("div", "floor-box");
      parts.push(floorBox);
    }
    // Desks the site file gives no position (all of them, without a plan): tiles per zone.
    const zones = el("div", "desk-zones");
    for (const z of zonesList()) {
      const desks = all.filter((s) => s.zone === z.id && s.kind === "desk" && !s.position);
      if (!desks.length) continue;
      const wrap = el("div", "desk-zone");
      const tiles = el("ul", "tiles");
      for (const s of desks) {
        const st = state(s);
        const tile = el("li", `tile ${st}`);
        tile.dataset.space = s.id;
        tile.dataset.state = st;
        tile.append(icon(st), srOnly(`${name(s.name, s.id)}: ${T[lang][st]}`));
        tiles.append(tile);
      }
      wrap.append(el("h3", "desk-zone-name", name(z.name, z.id)), tiles);
      zones.append(wrap);
    }
    if (zones.childElementCount) parts.push(zones);
    box.replaceChildren(...parts);
    $("lower").classList.toggle("no-plan", parts.length === 0);
    box.style.removeProperty("--tile");
    if (zones.childElementCount && !PHONE.matches) {
      // Desk tiles as large as the panel allows, so that every desk shows without scrolling.
      shrinkToFit(box, (k) => box.style.setProperty("--tile", `${unit() * 4.4 * k}px`), 0.3);
    }
    if (placed.length) drawFloor(parts[0], placed);
  }

  // --u of lobby.css in px: 1/100 of the width of a 16:9 screen.
  const unit = () => Math.min(innerWidth, innerHeight * 1.778) / 100;
  const overflows = (e) => e.scrollHeight > e.clientHeight + 0.5 || e.scrollWidth > e.clientWidth + 0.5;

  // Shrink what `apply(k)` sizes (k from 1 down to `min`) until `box` no longer overflows.
  function shrinkToFit(box, apply, min) {
    for (let k = 1; ; k *= 0.92) {
      apply(Math.max(k, min));
      if (k <= min || !overflows(box)) return;
    }
  }

  // One axis of the plan: the site's coordinates → drawing units. Bands of the axis that no space
  // covers (a corridor, an unsensed corner), longer than a small share of the floor, are drawn
  // short; with `soft`, bands that only a big space (the event hall) covers are drawn at half their
  // length too, when that lets the plan be drawn larger. Order and adjacency are kept.
  function axisMap(spans, maxGap, soft) {
    const cuts = [...new Set(spans.flatMap(([a, b]) => [a, b]))].sort((a, b) => a - b);
    const pts = [[cuts[0], 0]];
    let d = 0;
    for (let i = 1; i < cuts.length; i++) {
      const a = cuts[i - 1], b = cuts[i], mid = (a + b) / 2;
      const over = spans.filter(([p, q]) => p <= mid && mid <= q);
      let len = b - a;
      if (!over.length) len = Math.min(len, maxGap);
      else if (soft && over.every(([, , big]) => big)) len *= 0.5;
      d += len;
      pts.push([b, d]);
    }
    const map = (v) => {
      for (let i = 1; i < pts.length; i++) {
        if (v <= pts[i][0] + 1e-9) {
          const [s0, d0] = pts[i - 1];
          const [s1, d1] = pts[i];
          return s1 === s0 ? d1 : d0 + ((v - s0) * (d1 - d0)) / (s1 - s0);
        }
      }
      return d;
    };
    return { map, size: d };
  }

  // Scale (px per drawing unit) and orientation that draw the floor largest in a W × H box.
  function fit(xs, ys, W, H) {
    const pad = Math.max(xs.size, ys.size) * 0.006;
    const pw = xs.size + 2 * pad, ph = ys.size + 2 * pad;
    if (PHONE.matches) {
      // The page scrolls on a phone: fill the width, turning a wide floor a quarter.
      const rotate = pw > ph;
      return { rotate, scale: W / (rotate ? ph : pw), pad, pw, ph };
    }
    const s0 = Math.min(W / pw, H / ph);
    const s1 = Math.min(W / ph, H / pw);
    const rotate = s1 > s0 * 1.15;
    return { rotate, scale: rotate ? s1 : s0, pad, pw, ph };
  }

  function drawFloor(box, placed) {
    const x0 = Math.min(...placed.map((s) => s.position.x)), x1 = Math.max(...placed.map((s) => s.position.x + s.position.w));
    const y0 = Math.min(...placed.map((s) => s.position.y)), y1 = Math.max(...placed.map((s) => s.position.y + s.position.h));
    // A "big" space (a tenth of the floor or more) may be drawn shorter where nothing else is beside it.
    const big = (p) => p.w * p.h >= 0.1 * (x1 - x0) * (y1 - y0);
    const xSpans = placed.map(({ position: p }) => [p.x, p.x + p.w, big(p)]);
    const ySpans = placed.map(({ position: p }) => [p.y, p.y + p.h, big(p)]);
    const maxGap = Math.max(x1 - x0, y1 - y0) * MAX_GAP_SHARE;

    box.style.height = "";
    const W = box.clientWidth;
    let best = null;
    for (const [softX, softY] of [[false, false], [false, true], [true, false], [true, true]]) {
      const xs = axisMap(xSpans, maxGap, softX), ys = axisMap(ySpans, maxGap, softY);
      const f = fit(xs, ys, W, box.clientHeight);
      // Shorten the big spaces only for a clearly larger drawing.
      if (!best || f.scale > best.f.scale * 1.04) best = { xs, ys, f };
    }
    const { xs, ys, f: { rotate, pad, pw, ph } } = best;
    // A plan of a few spaces is not blown up: its smallest space is drawn at most ~6 --u across.
    const tiniest = Math.min(...placed.map(({ position: p }) =>
      Math.min(xs.map(p.x + p.w) - xs.map(p.x), ys.map(p.y + p.h) - ys.map(p.y))));
    const scale = Math.min(best.f.scale, (unit() * 6) / tiniest);
    if (!(scale > 0)) return;
    const fw = (rotate ? ph : pw) * scale;
    const fh = (rotate ? pw : ph) * scale;
    if (PHONE.matches) box.style.height = `${Math.ceil(fh)}px`;
    const H = box.clientHeight;
    const floor = el("ul", "floor");
    floor.setAttribute("aria-label", T[lang].plan);
    Object.assign(floor.style, { width: `${fw}px`, height: `${fh}px`, left: `${(W - fw) / 2}px`, top: `${Math.max(0, (H - fh) / 2)}px` });

    // Site rectangle → pixel rectangle in the floor.
    const rectOf = (p) => {
      const ax = pad + xs.map(p.x), bx = pad + xs.map(p.x + p.w);
      const ay = pad + ys.map(p.y), by = pad + ys.map(p.y + p.h);
      const r = rotate
        ? { x: ph - by, y: ax, w: by - ay, h: bx - ax }   // a quarter turn clockwise
        : { x: ax, y: ay, w: bx - ax, h: by - ay };
      return { x: r.x * scale, y: r.y * scale, w: r.w * scale, h: r.h * scale };
    };
    const inset = Math.max(1, Math.min(3, scale * 0.04));
    const tiles = [];
    for (const s of placed) {
      const st = state(s);
      const r = rectOf(s.position);
      const li = el("li", `sp k-${s.kind} ${st}`);
      li.dataset.space = s.id;
      li.dataset.state = st;
      const w = Math.max(r.w - 2 * inset, 1);
      const h = Math.max(r.h - 2 * inset, 1);
      Object.assign(li.style, { left: `${r.x + inset}px`, top: `${r.y + inset}px`, width: `${w}px`, height: `${h}px` });
      // Free: round; in use: square; unknown: square, hatched, dashed (lobby.css).
      li.style.borderRadius = st === "free" ? `${Math.min(w, h) * 0.35}px` : `${Math.max(2, Math.min(w, h) * 0.04)}px`;
      li.append(icon(st));
      tiles.push({ li, r, s, st, w, h });
      floor.append(li);
    }
    box.append(floor);

    // Rooms: icon, name, state word and head count, each at the largest size that fits its tile, but
    // within 1.5× of the smallest room of its kind (a plan of wildly different type sizes reads
    // badly); the icon alone where even MIN_LABEL_PX does not fit.
    const labelled = [];
    for (const t of tiles) {
      const { li, s, st, w, h } = t;
      if (s.kind === "desk") {
        li.querySelector(".icon").style.fontSize = `${Math.min(w, h) * 0.72}px`;
        li.append(srOnly(`${name(s.name, s.id)}: ${T[lang][st]}`));
        continue;
      }
      const label = el("span", "label");
      label.append(el("span", "name", name(s.name, s.id)), el("span", "word", T[lang][st]));
      if (crowd(s, st)) label.append(el("span", "word", crowd(s, st)));
      li.append(label);
      t.label = label;
      t.px = fitRoom(li, label, w, h);
      if (t.px) labelled.push(t);
      else {
        label.remove();
        li.querySelector(".icon").style.fontSize = `${Math.min(w, h) * 0.6}px`;
        li.append(srOnly(`${name(s.name, s.id)}: ${T[lang][st]}${crowd(s, st) ? `, ${crowd(s, st)}` : ""}`));
      }
    }
    const smallest = {};
    for (const t of labelled) smallest[t.s.kind] = Math.min(smallest[t.s.kind] ?? Infinity, t.px);
    for (const t of labelled) setRoomSize(t.li, Math.min(t.px, smallest[t.s.kind] * 1.5), t.h);
    drawZoneAreas(floor, placed, tiles, rectOf, scale);
  }

  const inside = (inner, outer) => inner.left >= outer.left - 0.5 && inner.right <= outer.right + 0.5 &&
    inner.top >= outer.top - 0.5 && inner.bottom <= outer.bottom + 0.5;

  function setRoomSize(li, px, h) {
    li.style.fontSize = `${px}px`;
    li.querySelector(".icon").style.fontSize = `${Math.min(px * 2, h * 0.3)}px`;
  }

  // The largest type (up to about 2 --u) at which the room's icon, name and state fit its tile;
  // 0 when even MIN_LABEL_PX does not.
  function fitRoom(li, label, w, h) {
    const bigScreen = !PHONE.matches;
    let px = Math.min(h * 0.16, w * 0.16, bigScreen ? Math.max(28, innerWidth * 0.018) : 19);
    for (let i = 0; i < 40 && px >= MIN_LABEL_PX; i++, px *= 0.93) {
      setRoomSize(li, px, h);
      const box = li.getBoundingClientRect();
      const ok = [li.querySelector(".icon"), ...label.children].every((c) => inside(c.getBoundingClientRect(), box)) &&
        li.scrollWidth <= li.clientWidth + 0.5 && li.scrollHeight <= li.clientHeight + 0.5;
      if (ok) return px;
    }
    li.style.fontSize = "";
    return 0;
  }

  // A dashed outline around each zone's desks, with the zone's name where it fits without covering
  // any space: what the counts above refer to.
  function drawZoneAreas(floor, placed, tiles, rectOf, scale) {
    const margin = Math.max(3, scale * 0.25);
    const fr = { left: 0, top: 0, right: floor.clientWidth, bottom: floor.clientHeight };
    const taken = tiles.map(({ r }) => ({ left: r.x, top: r.y, right: r.x + r.w, bottom: r.y + r.h }));
    const overlaps = (a) => taken.some((b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom);
    for (const z of zonesList()) {
      const desks = placed.filter((s) => s.zone === z.id && s.kind === "desk");
      if (desks.length < 2) continue;
      const rs = desks.map((s) => rectOf(s.position));
      const a = {
        left: Math.min(...rs.map((r) => r.x)) - margin, top: Math.min(...rs.map((r) => r.y)) - margin,
        right: Math.max(...rs.map((r) => r.x + r.w)) + margin, bottom: Math.max(...rs.map((r) => r.y + r.h)) + margin,
      };
      const area = el("div", "zone-area");
      area.setAttribute("aria-hidden", "true");
      Object.assign(area.style, { left: `${a.left}px`, top: `${a.top}px`, width: `${a.right - a.left}px`, height: `${a.bottom - a.top}px` });
      floor.append(area);
      const tag = el("div", "zone-tag", name(z.name, z.id));
      tag.setAttribute("aria-hidden", "true");
      floor.append(tag);
      const tw = tag.offsetWidth, th = tag.offsetHeight;
      const spots = [
        { left: a.left, top: a.top - th - 2 },   // above, then below the outline
        { left: a.left, top: a.bottom + 2 },
      ].map((p) => ({ ...p, right: p.left + tw, bottom: p.top + th }));
      const spot = spots.find((p) => inside(p, fr) && !overlaps(p));
      if (spot) {
        Object.assign(tag.style, { left: `${spot.left}px`, top: `${spot.top}px` });
        taken.push(spot);
      } else tag.remove();
    }
  }

  // ----------------------------------------------------------------------------------- clock

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

  // The first picture without waiting for the stream (a proxy may hold it back); what the stream
  // has already said is newer and stays.
  async function loadSpaces() {
    try {
      const r = await fetch("v1/spaces", { cache: "no-store" });
      if (!r.ok) return;
      for (const s of await r.json()) if (!spaces.has(s.id)) spaces.set(s.id, s);
      scheduleRender();
    } catch (e) { /* the stream's error handling shows the banner */ }
  }

  function connect() {
    source = new EventSource("v1/stream");
    source.addEventListener("open", () => {
      connected = true;
      clearTimeout(staleTimer);
      staleTimer = null;
      stale = false;
      loadSite();
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
      if (!staleTimer && !stale) staleTimer = setTimeout(() => { staleTimer = null; stale = true; render(); }, STALE_MS);
      if (source.readyState === EventSource.CLOSED) {
        // The browser gives up after an HTTP error (e.g. 502/503 from a proxy): start again.
        source.close();
        setTimeout(connect, 5000);
      }
      render();
    });
  }

  // Many events arrive together (the snapshot on connect): render once for the burst. A timer, not
  // requestAnimationFrame, so a screen that is not painting (hidden, asleep) still keeps up.
  let pending = null;
  function scheduleRender() {
    if (pending === null) pending = setTimeout(() => { pending = null; render(); }, 25);
  }

  function rotate() {
    if (fixedLang) return;
    lang = LANGS[(LANGS.indexOf(lang) + 1) % LANGS.length];
    render();
    tick();
  }

  async function maybeReload() {
    try {
      const r = await fetch(location.pathname, { method: "HEAD", cache: "no-store" });
      if (r.ok) location.reload();
    } catch (e) { /* server away: keep showing what we have */ }
  }

  let resizeTimer = null;
  new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(renderPlan, 50);
  }).observe($("lower"));

  render();
  tick();
  loadSite();
  loadSpaces();
  connect();
  setInterval(rotate, every);
  setInterval(tick, 5000);
  setInterval(maybeReload, RELOAD_MS);
})();
