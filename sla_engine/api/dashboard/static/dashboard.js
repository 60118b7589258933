// sla_engine operator dashboard: plain JavaScript, no dependencies, no build step.
//
// Every piece of data reaches the page through textContent or setAttribute (never innerHTML),
// so a ticket id or a calendar title cannot inject markup. The page polls the /v1 API: the
// queue and the escalations every second, policies and calendars every minute, attainment
// every five minutes.
// A panel whose endpoint this service lacks says so and leaves the others working.
(() => {
  "use strict";

  const TOKEN_KEY = "sla_engine.api_token";
  const FAST_MS = 1000;
  const HIDDEN_MS = 5000;
  const SLOW_MS = 60000;
  const REPORT_MS = 300000; // a 30-day chart moves slowly, and its report is the costliest call
  const QUEUE_STEP = 100;
  const QUEUE_MAX = 500;
  const ESC_SHOWN = 60;
  const REPORT_DAYS = 30;
  const REPORT_METRICS = ["first_response", "next_response", "resolution"];
  const RUNNING = new Set(["active", "paused", "breached"]);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const DAY_MS = 86400000;
  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- small helpers

  /** An element; string children become text nodes, attributes go through setAttribute. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function svg(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.setAttribute("class", value);
      else if (key === "text") el.textContent = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
  }

  function setText(el, value) {
    const text = value === null || value === undefined ? "" : String(value);
    if (el.textContent !== text) el.textContent = text;
  }

  function show(el, visible) {
    el.hidden = !visible;
  }

  /** Milliseconds since the epoch of an ISO 8601 instant (microseconds are cut to millis). */
  function instant(iso) {
    if (!iso) return NaN;
    return Date.parse(String(iso).replace(/(\.\d{3})\d+/, "$1"));
  }

  const pad = (n) => String(Math.floor(n)).padStart(2, "0");

  /** Seconds as H:MM:SS (hours unbounded: this is business time, not calendar days). */
  function clockText(seconds) {
    const s = Math.max(0, Math.floor(Math.abs(seconds)));
    return `${Math.floor(s / 3600)}:${pad((s % 3600) / 60)}:${pad(s % 60)}`;
  }

  /** Seconds as a short duration: 45s, 12m, 3h 10m, 2d 4h. */
  function shortDuration(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
    const s = Math.round(Math.abs(seconds));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.round(s / 60)}m`;
    if (s < 86400) {
      const m = Math.round((s % 3600) / 60);
      return m ? `${Math.floor(s / 3600)}h ${m}m` : `${Math.floor(s / 3600)}h`;
    }
    const hrs = Math.round((s % 86400) / 3600);
    return hrs ? `${Math.floor(s / 86400)}d ${hrs}h` : `${Math.floor(s / 86400)}d`;
  }

  /** A policy duration ("4h", "1h30m", "45s", "2d", or seconds) in seconds; null if unknown. */
  function durationSeconds(value) {
    if (typeof value === "number" && Number.isFinite(value)) return value;
    if (typeof value !== "string") return null;
    const text = value.trim().toLowerCase();
    if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
    const units = { d: 86400, h: 3600, m: 60, s: 1 };
    let total = 0;
    let rest = text;
    const part = /^\s*(\d+(?:\.\d+)?)\s*([dhms])/;
    while (rest.length) {
      const match = part.exec(rest);
      if (!match) return null;
      total += Number(match[1]) * units[match[2]];
      rest = rest.slice(match[0].length).trim();
    }
    return text ? total : null;
  }

  const LOCAL_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  const fmtTime = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
  const fmtWeekday = new Intl.DateTimeFormat(undefined, { weekday: "short" });
  const fmtClock = new Intl.DateTimeFormat(undefined, {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
  const fmtDay = new Intl.DateTimeFormat(undefined, {
    weekday: "short",
    day: "numeric",
    month: "short",
  });
  const fmtFull = new Intl.DateTimeFormat(undefined, {
    dateStyle: "full",
    timeStyle: "long",
  });
  const fmtShortDate = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });

  function localDayKey(ms) {
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }

  /** A breach time in the viewer's zone: "Today 14:32", "Wed 08:00", "2 Dec 08:00". */
  function localWhen(ms) {
    if (!Number.isFinite(ms)) return "–";
    const time = fmtTime.format(ms);
    if (localDayKey(ms) === localDayKey(Date.now())) return `Today ${time}`;
    if (Math.abs(ms - Date.now()) < 6 * DAY_MS) return `${fmtWeekday.format(ms)} ${time}`;
    return `${fmtShortDate.format(ms)} ${time}`;
  }

  function relative(ms) {
    if (!Number.isFinite(ms)) return "–";
    const delta = (ms - Date.now()) / 1000;
    if (Math.abs(delta) < 5) return "just now";
    return delta < 0 ? `${shortDuration(-delta)} ago` : `in ${shortDuration(delta)}`;
  }

  function humanMetric(name) {
    const text = String(name || "").replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function percent(share) {
    return typeof share === "number" && Number.isFinite(share)
      ? `${Math.round(share * 1000) / 10}%`
      : "–";
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function announce(text) {
    const region = $("announce");
    region.textContent = "";
    setTimeout(() => {
      region.textContent = text;
    }, 50);
  }

  // ---------------------------------------------------------------- API access and the token

  const auth = { locked: false };

  function storedToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || "";
    } catch {
      return "";
    }
  }

  /** One API call. Resolves to {ok, status, data, problem}; never throws. */
  async function api(path, options = {}) {
    const token = storedToken();
    const headers = { Accept: options.accept || "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(path, {
        method: options.method || "GET",
        headers,
        cache: "no-store",
        credentials: "omit",
      });
    } catch {
      return { ok: false, status: 0, data: null, problem: "the service cannot be reached" };
    }
    const type = response.headers.get("content-type") || "";
    let data = null;
    try {
      data = type.includes("json") ? await response.json() : await response.text();
    } catch {
      data = null;
    }
    if (response.status === 401) {
      unauthorized(token);
      return { ok: false, status: 401, data, problem: "unauthorized", type };
    }
    const problem = response.ok
      ? null
      : (data && typeof data === "object" && (data.detail || data.title)) ||
        `HTTP ${response.status}`;
    return { ok: response.ok, status: response.status, data, problem, type };
  }

  /** An endpoint this service does not have (an older or partial build). */
  function missingRoute(result) {
    return (
      result.status === 405 ||
      (result.status === 404 && (!result.data || result.data.field === "path"))
    );
  }

  function unauthorized(tokenUsed) {
    if (auth.locked || tokenUsed !== storedToken()) return;
    if (tokenUsed) {
      try {
        sessionStorage.removeItem(TOKEN_KEY);
      } catch {
        /* private mode: nothing stored */
      }
      lock(
        "The service refused this token (HTTP 401). Check it against SLA_ENGINE_API_TOKEN " +
          "on the server and enter it again."
      );
    } else {
      lock("");
    }
  }

  function lock(message) {
    auth.locked = true;
    clearData();
    show($("main"), false);
    show($("auth"), true);
    show($("forget-token"), false);
    const error = $("auth-error");
    setText(error, message);
    show(error, Boolean(message));
    setLive("locked", "Token required");
    $("auth-token").value = "";
    $("auth-token").focus();
  }

  function unlock() {
    auth.locked = false;
    show($("auth"), false);
    show($("main"), true);
    show($("forget-token"), Boolean(storedToken()));
    wakeAll();
  }

  function setupAuth() {
    $("auth-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("auth-token").value.trim();
      if (!token) return;
      try {
        sessionStorage.setItem(TOKEN_KEY, token);
      } catch {
        /* ignore: the token then lasts until reload */
      }
      setLive("connecting", "Checking the token…");
      unlock();
    });
    $("forget-token").addEventListener("click", () => {
      try {
        sessionStorage.removeItem(TOKEN_KEY);
      } catch {
        /* nothing stored */
      }
      lock("");
    });
    show($("forget-token"), Boolean(storedToken()));
  }

  function clearData() {
    queue.rows.forEach((row) => row.tr.remove());
    queue.rows.clear();
    queue.rendered = false;
    esc.rows.forEach((row) => row.tr.remove());
    esc.rows.clear();
    $("att-body").replaceChildren();
    $("cal-body").replaceChildren();
    calendars.intervals.clear();
    setText($("queue-summary"), "");
    setText($("esc-summary"), "");
    show($("queue-empty"), false);
    show($("esc-empty"), false);
  }

  // ---------------------------------------------------------------- live indicator and clock

  const live = { lastOk: 0, failing: false };

  function setLive(kind, text) {
    $("live").dataset.state = kind;
    setText($("live-text"), text);
  }

  function liveTick() {
    setText($("clock-time"), fmtClock.format(Date.now()));
    if (auth.locked) return;
    const age = (Date.now() - live.lastOk) / 1000;
    if (live.failing) setLive("down", "Cannot reach the service; retrying");
    else if (!live.lastOk) setLive("connecting", "Connecting…");
    else if (age > 5) setLive("stale", `Stale: last update ${fmtClock.format(live.lastOk)}`);
    else setLive("ok", "Live, updated every second");
  }

  // ---------------------------------------------------------------- policies

  /** name -> Map(metric -> {breach_s, target_s, calendar, fixed}) from GET /v1/policies. */
  const policies = new Map();
  const seen = { policies: new Set(), calendars: new Set() };

  function readPolicies(data) {
    const list = data && typeof data === "object" && "policies" in data ? data.policies : data;
    const out = new Map();
    const add = (name, body) => {
      if (!name) return;
      const metrics = new Map();
      let raw = body && typeof body === "object" ? body.metrics || {} : {};
      if (Array.isArray(raw)) raw = Object.fromEntries(raw.map((m) => [m.metric || m.name, m]));
      for (const [metric, m] of Object.entries(raw)) {
        if (!m || typeof m !== "object") continue;
        metrics.set(metric, {
          breach_s: durationSeconds(m.breach_s ?? m.breach),
          target_s: durationSeconds(m.target_s ?? m.target),
          calendar: m.calendar || null,
          fixed: Boolean(m.fixed_calendar),
        });
      }
      out.set(String(name), metrics);
    };
    if (Array.isArray(list)) {
      for (const p of list) typeof p === "string" ? add(p, {}) : add(p && p.name, p);
    } else if (list && typeof list === "object") {
      for (const [name, p] of Object.entries(list)) add((p && p.name) || name, p);
    }
    return out;
  }

  async function loadPolicies() {
    const result = await api("/v1/policies");
    if (!result.ok) return;
    policies.clear();
    for (const [name, metrics] of readPolicies(result.data)) policies.set(name, metrics);
    fillSelect($("filter-policy"), [...policies.keys(), ...seen.policies], "All policies");
  }

  function fillSelect(select, values, allLabel) {
    const names = [...new Set(values)].filter(Boolean).sort();
    const current = select.value;
    const have = [...select.options].map((o) => o.value);
    const want = ["", ...names];
    if (current && !want.includes(current)) want.push(current);
    if (have.length === want.length && have.every((v, i) => v === want[i])) return;
    select.replaceChildren(
      ...want.map((v) => h("option", { value: v }, v === "" ? allLabel : v))
    );
    select.value = current;
  }

  // ---------------------------------------------------------------- the queue

  const queue = {
    rows: new Map(),
    limit: QUEUE_STEP,
    generation: 0,
    rendered: false,
    firstDone: false,
  };
  const STANDING_TEXT = { ok: "On track", risk: "At risk", breached: "Breached" };
  const STANDING_ICON = { ok: "●", risk: "▲", breached: "✖" };

  function filters() {
    return { policy: $("filter-policy").value, calendar: $("filter-calendar").value };
  }

  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    for (const key of ["policy", "calendar"]) {
      const value = params.get(key);
      if (!value) continue;
      const select = $(`filter-${key}`);
      if (![...select.options].some((o) => o.value === value)) {
        select.append(h("option", { value }, value));
      }
      select.value = value;
    }
  }

  function writeHash() {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(filters())) if (value) params.set(key, value);
    const text = params.toString();
    history.replaceState(null, "", text ? `#${text}` : location.pathname + location.search);
  }

  /** One queue poll; the first one's rows wait for `ready` (the policies) to be loaded. */
  async function pollQueue(ready) {
    const generation = queue.generation;
    const params = new URLSearchParams({ order: "breach_at", limit: String(queue.limit) });
    const f = filters();
    if (f.policy) params.set("policy", f.policy);
    if (f.calendar) params.set("calendar", f.calendar);
    const result = await api(`/v1/tickets?${params}`);
    if (ready) await ready.catch(() => null);
    if (auth.locked || generation !== queue.generation) return result.status !== 0;
    const note = $("queue-note");
    if (!result.ok || !result.data || !Array.isArray(result.data.items)) {
      if (result.status === 401) return true;
      if (result.status === 0) return false;
      const why = missingRoute(result)
        ? "The queue is not available: this service has no ticket list (GET /v1/tickets)."
        : `The queue could not be loaded: ${result.problem || "unexpected answer"}`;
      setText(note, why);
      show(note, true);
      renderQueue([]);
      show($("queue-empty"), false);
      return true;
    }
    show(note, false);
    const items = result.data.items.filter(isRunning);
    renderQueue(items);
    const more = Boolean(result.data.next_cursor);
    show($("queue-more"), more && queue.limit < QUEUE_MAX);
    if (more && queue.limit >= QUEUE_MAX) {
      setText(note, `Showing the ${QUEUE_MAX} tickets nearest to breach; filter to see others.`);
      show(note, true);
    }
    if (!queue.firstDone) {
      queue.firstDone = true;
      performance.mark("queue-rendered");
      document.documentElement.dataset.queueRendered = String(Math.round(performance.now()));
    }
    return true;
  }

  function isRunning(item) {
    if (!item || item.id === undefined || item.id === null) return false;
    if (item.next_breach_at !== undefined) return item.next_breach_at !== null;
    return Object.values(item.metrics || {}).some((m) => RUNNING.has(m.status));
  }

  /** The metric that sets the ticket's next breach, and the other running ones. */
  function runningMetrics(item) {
    const next = instant(item.next_breach_at);
    const entries = Object.entries(item.metrics || {}).filter(
      ([, m]) => m && RUNNING.has(m.status) && !m.stopped_at
    );
    entries.sort((a, b) => {
      const da = Math.abs(instant(a[1].breach_at) - next) || 0;
      const db = Math.abs(instant(b[1].breach_at) - next) || 0;
      return da - db || instant(a[1].breach_at) - instant(b[1].breach_at);
    });
    return entries;
  }

  function metricPolicy(item, metric) {
    const policy = policies.get(item.policy);
    return policy ? policy.get(metric) || null : null;
  }

  function makeQueueRow(id) {
    const cells = {
      standing: h("span", { class: "pill" }),
      ticket: h("span", { class: "ticket-id" }),
      policy: h("span", { class: "policy" }),
      calendar: h("span", { class: "calendar" }),
      metric: h("span"),
      more: h("span", { class: "more" }),
      countdown: h("span", { class: "countdown" }),
      state: h("span", { class: "count-state" }),
      when: h("time"),
    };
    const tr = h(
      "tr",
      { "data-ticket-id": id },
      h("td", null, cells.standing),
      h("th", { scope: "row" }, cells.ticket),
      h("td", null, cells.metric, cells.more),
      h(
        "td",
        { class: "where" },
        cells.policy,
        h("span", { class: "sep", "aria-hidden": "true" }, " · "),
        cells.calendar
      ),
      h("td", { class: "num" }, cells.state, cells.countdown),
      h("td", { class: "when" }, cells.when)
    );
    setText(cells.ticket, id);
    return { tr, cells, model: null, standing: null };
  }

  function updateQueueRow(row, item, fetchedAt) {
    const metrics = runningMetrics(item);
    const [name, m] = metrics[0] || [null, {}];
    const pm = name ? metricPolicy(item, name) : null;
    const calendar = pm && pm.fixed ? pm.calendar : item.calendar || (pm && pm.calendar) || null;
    row.model = {
      status: m.status,
      remaining: Number(m.business_remaining_s),
      fetchedAt,
      breachAt: instant(m.breach_at || item.next_breach_at),
      calendar,
      budget: pm,
    };
    const c = row.cells;
    setText(c.policy, item.policy);
    setText(c.calendar, calendar || "–");
    setText(c.metric, humanMetric(name));
    const others = metrics.slice(1).map(([n, o]) => `${humanMetric(n)} (${o.status})`);
    setText(c.more, others.length ? `+${others.length}` : "");
    if (others.length) c.more.title = `Also running: ${others.join(", ")}`;
    else c.more.removeAttribute("title");
    const when = row.model.breachAt;
    c.when.setAttribute("datetime", m.breach_at || "");
    c.when.title = Number.isFinite(when) ? fmtFull.format(when) : "";
    setText(c.when, localWhen(when));
    paintCountdown(row, Date.now());
  }

  function renderQueue(items) {
    const body = $("queue-body");
    const fetchedAt = Date.now();
    const keep = new Set();
    let previous = null;
    const announceNew = queue.rendered;
    for (const item of items) {
      const id = String(item.id);
      if (keep.has(id)) continue;
      keep.add(id);
      seen.policies.add(item.policy);
      let row = queue.rows.get(id);
      if (!row) {
        row = makeQueueRow(id);
        queue.rows.set(id, row);
        if (announceNew) {
          row.tr.classList.add("fresh");
          setTimeout(() => row.tr.classList.remove("fresh"), 2500);
        }
      }
      updateQueueRow(row, item, fetchedAt);
      const wanted = previous ? previous.nextSibling : body.firstChild;
      if (wanted !== row.tr) body.insertBefore(row.tr, wanted);
      previous = row.tr;
    }
    for (const [id, row] of queue.rows) {
      if (!keep.has(id)) {
        row.tr.remove();
        queue.rows.delete(id);
      }
    }
    queue.rendered = true;
    show($("queue-empty"), items.length === 0 && $("queue-note").hidden);
    summarise();
  }

  /** Business seconds between two instants in `calendar`, from its fetched open intervals. */
  function businessBetween(calendar, from, to) {
    if (to <= from) return 0;
    const known = calendar ? calendars.intervals.get(calendar) : null;
    if (!known || from < known.from || to > known.to) return (to - from) / 1000;
    let total = 0;
    for (const [start, end] of known.list) {
      if (end <= from) continue;
      if (start >= to) break;
      total += Math.min(end, to) - Math.max(start, from);
    }
    return total / 1000;
  }

  function standingOf(model, remaining) {
    if (model.status === "breached" || remaining < 0) return "breached";
    const budget = model.budget;
    if (budget && budget.breach_s) {
      const spent = budget.breach_s - remaining;
      if (budget.target_s !== null && budget.target_s !== undefined && spent >= budget.target_s) {
        return "risk";
      }
      if (spent >= 0.75 * budget.breach_s) return "risk";
    }
    return "ok";
  }

  function paintCountdown(row, now) {
    const model = row.model;
    if (!model) return;
    const ticking = model.status === "active" || model.status === "breached";
    const remaining = ticking
      ? model.remaining - businessBetween(model.calendar, model.fetchedAt, now)
      : model.remaining;
    const standing = Number.isFinite(remaining) ? standingOf(model, remaining) : "ok";
    const c = row.cells;
    if (!Number.isFinite(remaining)) setText(c.countdown, "–");
    else setText(c.countdown, clockText(remaining));
    const state = model.status === "paused" ? "paused" : remaining < 0 ? "over" : "";
    setText(c.state, state);
    c.state.className = `count-state ${state}`;
    c.countdown.className = `countdown${ticking ? "" : " still"}`;
    if (row.standing !== standing) {
      row.standing = standing;
      row.tr.dataset.standing = standing;
      const fresh = row.tr.classList.contains("fresh") ? " fresh" : "";
      row.tr.className = `standing-${standing}${fresh}`;
      setText(c.standing, `${STANDING_ICON[standing]} ${STANDING_TEXT[standing]}`);
      c.standing.className = `pill pill-${standing}`;
    }
    row.tr.dataset.remaining = Number.isFinite(remaining) ? String(Math.round(remaining)) : "";
  }

  function summarise() {
    const counts = { breached: 0, risk: 0, ok: 0 };
    for (const row of queue.rows.values()) counts[row.standing || "ok"] += 1;
    const total = queue.rows.size;
    const summary = $("queue-summary");
    summary.replaceChildren(
      h("span", { class: "count count-breached" }, `${counts.breached} breached`),
      h("span", { class: "count count-risk" }, `${counts.risk} at risk`),
      h("span", { class: "count count-ok" }, `${counts.ok} on track`),
      h("span", { class: "muted" }, total === 1 ? "1 ticket shown" : `${total} tickets shown`)
    );
  }

  function tickCountdowns() {
    const now = Date.now();
    for (const row of queue.rows.values()) paintCountdown(row, now);
    if (queue.rows.size) summarise();
  }

  function setupQueue() {
    for (const id of ["filter-policy", "filter-calendar"]) {
      $(id).addEventListener("change", () => {
        queue.generation += 1;
        queue.limit = QUEUE_STEP;
        writeHash();
        wake("fast");
      });
    }
    $("queue-more").addEventListener("click", () => {
      queue.limit = Math.min(QUEUE_MAX, queue.limit + QUEUE_STEP);
      queue.generation += 1;
      wake("fast");
    });
    $("breach-head").title = `Breach time in your time zone, ${LOCAL_ZONE}`;
  }

  // ---------------------------------------------------------------- escalations

  const esc = { rows: new Map(), replaying: new Set() };
  const ESC_LABEL = {
    pending: "Pending",
    sending: "Sending",
    retrying: "Retrying",
    delivered: "Delivered",
    dead: "Dead",
    skipped: "Skipped",
    cancelled: "Cancelled",
  };

  function deliveryStatus(d) {
    switch (d.status) {
      case "queued":
        return d.attempts > 0 ? "retrying" : "pending";
      case "sending":
        return d.attempts > 1 ? "retrying" : "sending";
      case "sent":
        return "delivered";
      default:
        return ESC_LABEL[d.status] ? d.status : "pending";
    }
  }

  function deliveryTime(d) {
    return instant(d.sent_at) || instant(d.not_before) || instant(d.due_at) || 0;
  }

  async function pollEscalations() {
    const params = new URLSearchParams({ limit: "500" });
    const status = $("filter-esc").value;
    if (status) params.set("status", status);
    const result = await api(`/v1/escalations?${params}`);
    if (auth.locked) return result.status !== 0;
    const note = $("esc-note");
    if (!result.ok || !result.data || !Array.isArray(result.data.escalations)) {
      if (result.status === 401) return true;
      if (result.status === 0) return false;
      const why = missingRoute(result)
        ? "Escalations are not available in this service."
        : `Escalations could not be loaded: ${result.problem || "unexpected answer"}`;
      setText(note, why);
      show(note, true);
      renderEscalations([]);
      return true;
    }
    show(note, false);
    const list = [...result.data.escalations].sort((a, b) => deliveryTime(b) - deliveryTime(a));
    renderEscalations(list.slice(0, ESC_SHOWN), list);
    return true;
  }

  function makeEscRow(id) {
    const cells = {
      status: h("span", { class: "pill" }),
      ticket: h("span", { class: "ticket-id" }),
      metric: h("span", { class: "what" }),
      when: h("time"),
      detail: h("span", { class: "detail" }),
      action: h("td", { class: "action" }),
    };
    const button = h("button", { type: "button", class: "btn btn-small btn-replay" }, "Replay");
    button.addEventListener("click", () => replay(id));
    const tr = h(
      "tr",
      { "data-escalation-id": id },
      h("td", null, cells.status),
      h("th", { scope: "row" }, cells.ticket, cells.metric),
      h("td", { class: "when" }, cells.when, cells.detail),
      cells.action
    );
    return { tr, cells, button, status: null };
  }

  function updateEscRow(row, d) {
    const status = esc.replaying.has(d.id) && d.status === "dead" ? "dead" : deliveryStatus(d);
    const c = row.cells;
    if (row.status !== status) {
      row.status = status;
      row.tr.dataset.status = status;
      c.status.className = `pill esc-${status}`;
      setText(c.status, ESC_LABEL[status]);
    }
    setText(c.ticket, d.ticket);
    const kind = d.kind === "resolve" ? " (resolve)" : "";
    setText(c.metric, `${humanMetric(d.metric)} · ${d.threshold} → ${d.destination}${kind}`);
    const at = deliveryTime(d);
    c.when.setAttribute("datetime", d.sent_at || d.not_before || d.due_at || "");
    c.when.title = at ? fmtFull.format(at) : "";
    const verb = { delivered: "sent", retrying: "next try", pending: "due", sending: "sending" };
    const word = at > Date.now() + 2000 || status === "delivered" ? verb[status] || "" : "";
    setText(c.when, at ? `${word} ${relative(at)}`.trim() : "–");
    const tries = d.attempts === 1 ? "1 try" : `${d.attempts || 0} tries`;
    const last = d.last_status ? `HTTP ${d.last_status}` : d.last_error ? "error" : "";
    const quiet = status === "delivered" || !d.attempts;
    const detail = quiet ? "" : [last, tries].filter(Boolean).join(", ");
    setText(c.detail, detail);
    c.detail.title = d.last_error || "";
    const canReplay = status === "dead";
    if (canReplay && !esc.replaying.has(d.id)) {
      row.button.disabled = false;
      setText(row.button, "Replay");
      row.button.setAttribute("aria-label", `Replay the escalation for ticket ${d.ticket}`);
    }
    if (canReplay && row.button.parentNode !== c.action) c.action.replaceChildren(row.button);
    if (!canReplay && !esc.replaying.has(d.id)) c.action.replaceChildren();
  }

  function renderEscalations(shown, all = shown) {
    const body = $("esc-body");
    const keep = new Set();
    let previous = null;
    for (const d of shown) {
      const id = String(d.id);
      keep.add(id);
      let row = esc.rows.get(id);
      if (!row) {
        row = makeEscRow(id);
        esc.rows.set(id, row);
      }
      updateEscRow(row, d);
      const wanted = previous ? previous.nextSibling : body.firstChild;
      if (wanted !== row.tr) body.insertBefore(row.tr, wanted);
      previous = row.tr;
    }
    for (const [id, row] of esc.rows) {
      if (!keep.has(id)) {
        row.tr.remove();
        esc.rows.delete(id);
      }
    }
    show($("esc-empty"), shown.length === 0 && $("esc-note").hidden);
    const counts = {};
    for (const d of all) {
      const s = deliveryStatus(d);
      counts[s] = (counts[s] || 0) + 1;
    }
    const parts = ["dead", "retrying", "pending", "delivered"]
      .filter((s) => counts[s])
      .map((s) => h("span", { class: `count esc-count-${s}` }, `${counts[s]} ${s}`));
    $("esc-summary").replaceChildren(...parts);
  }

  async function replay(id) {
    const row = esc.rows.get(id);
    if (!row || esc.replaying.has(id)) return;
    esc.replaying.add(id);
    row.button.disabled = true;
    setText(row.button, "Replaying…");
    const result = await api(`/v1/escalations/${encodeURIComponent(id)}/replay`, {
      method: "POST",
    });
    esc.replaying.delete(id);
    if (result.ok && result.data) {
      updateEscRow(row, result.data);
      announce(`Escalation for ticket ${result.data.ticket} queued again.`);
      wake("fast");
    } else if (result.status !== 401) {
      row.button.disabled = false;
      setText(row.button, "Replay");
      const note = $("esc-note");
      setText(note, `Replay failed: ${result.problem || "unexpected answer"}`);
      show(note, true);
      announce(`Replay failed: ${result.problem || "unexpected answer"}`);
    }
  }

  // ---------------------------------------------------------------- attainment

  function parseCsv(text) {
    const rows = [];
    let row = [];
    let field = "";
    let quoted = false;
    for (let i = 0; i < text.length; i += 1) {
      const ch = text[i];
      if (quoted) {
        if (ch === '"' && text[i + 1] === '"') {
          field += '"';
          i += 1;
        } else if (ch === '"') quoted = false;
        else field += ch;
      } else if (ch === '"') quoted = true;
      else if (ch === ",") {
        row.push(field);
        field = "";
      } else if (ch === "\n" || ch === "\r") {
        if (ch === "\r" && text[i + 1] === "\n") i += 1;
        row.push(field);
        rows.push(row);
        row = [];
        field = "";
      } else field += ch;
    }
    if (field || row.length) {
      row.push(field);
      rows.push(row);
    }
    const [header, ...body] = rows.filter((r) => r.length > 1 || r[0]);
    if (!header) return [];
    return body.map((r) => Object.fromEntries(header.map((k, i) => [k.trim(), r[i] ?? ""])));
  }

  /** 30 local days, each {key, label, target, late, breached, open}. */
  function dailySeries(rows, now) {
    const days = [];
    const index = new Map();
    for (let i = REPORT_DAYS - 1; i >= 0; i -= 1) {
      const ms = now - i * DAY_MS;
      const day = { key: localDayKey(ms), ms, target: 0, late: 0, breached: 0, open: 0 };
      days.push(day);
      index.set(day.key, day);
    }
    for (const r of rows) {
      const day = index.get(localDayKey(instant(r.started_at || r.created_at)));
      if (!day) continue;
      const stopped = instant(r.stopped_at);
      const target = instant(r.target_at);
      if (r.status === "achieved") {
        if (Number.isFinite(target) && stopped > target) day.late += 1;
        else day.target += 1;
      } else if (r.status === "breached") day.breached += 1;
      else if (r.status === "active" || r.status === "paused") day.open += 1;
    }
    return days;
  }

  function attainmentChart(metric, days) {
    const W = 420;
    const H = 96;
    const top = 6;
    const bottom = 16;
    const left = 20;
    const plotH = H - top - bottom;
    const max = Math.max(1, ...days.map((d) => d.target + d.late + d.breached + d.open));
    const step = (W - left) / days.length;
    const barW = Math.max(2, step - 2);
    const scale = (n) => (n / max) * plotH;
    const total = days.reduce((n, d) => n + d.target + d.late + d.breached + d.open, 0);
    const breached = days.reduce((n, d) => n + d.breached, 0);
    const chart = svg("svg", {
      viewBox: `0 0 ${W} ${H}`,
      class: "chart",
      role: "img",
      "aria-label":
        `${humanMetric(metric)}: ${total} ticket metrics started in the last ${REPORT_DAYS} ` +
        `days, ${breached} breached. Daily bars: within target, within breach, breached, open.`,
    });
    chart.append(
      svg("line", { x1: left, x2: W, y1: top + plotH, y2: top + plotH, class: "axis" }),
      svg("line", { x1: left, x2: W, y1: top, y2: top, class: "grid" }),
      svg("text", { x: left - 4, y: top + 4, class: "tick", "text-anchor": "end" }, String(max)),
      svg("text", { x: left - 4, y: top + plotH, class: "tick", "text-anchor": "end" }, "0")
    );
    days.forEach((d, i) => {
      const x = left + i * step + 1;
      let y = top + plotH;
      const group = svg("g", { class: "bar" });
      const parts = [
        ["open", d.open],
        ["breached", d.breached],
        ["late", d.late],
        ["target", d.target],
      ];
      for (const [kind, n] of parts.reverse()) {
        if (!n) continue;
        const height = scale(n);
        y -= height;
        group.append(svg("rect", { x, y, width: barW, height, class: `seg-${kind}` }));
      }
      group.append(
        svg(
          "title",
          null,
          `${fmtDay.format(d.ms)}: ${d.target} within target, ${d.late} within breach, ` +
            `${d.breached} breached, ${d.open} open`
        )
      );
      group.append(
        svg("rect", { x: x - 1, y: top, width: step, height: plotH, class: "hit" })
      );
      chart.append(group);
    });
    for (const i of [0, Math.floor(days.length / 2), days.length - 1]) {
      const x = left + i * step + step / 2;
      const anchor = i === 0 ? "start" : i === days.length - 1 ? "end" : "middle";
      chart.append(
        svg(
          "text",
          { x: i === 0 ? left : x, y: H - 3, class: "tick", "text-anchor": anchor },
          fmtShortDate.format(days[i].ms)
        )
      );
    }
    return chart;
  }

  function legend() {
    return h(
      "ul",
      { class: "legend", "aria-hidden": "true" },
      h("li", { class: "lg-target" }, "within target"),
      h("li", { class: "lg-late" }, "within breach"),
      h("li", { class: "lg-breached" }, "breached"),
      h("li", { class: "lg-open" }, "running")
    );
  }

  function weeklyChart(metric, perWeek) {
    const weeks = Object.entries(perWeek || {}).sort();
    if (!weeks.length) return h("p", { class: "muted small" }, "No breach in the window.");
    return h(
      "ul",
      { class: "weeks", "aria-label": `${humanMetric(metric)}: breaches per ISO week` },
      weeks.map(([week, n]) => h("li", null, h("span", null, week), h("strong", null, String(n))))
    );
  }

  function stat(label, value, cls) {
    return h("div", { class: `stat ${cls || ""}` }, h("dt", null, label), h("dd", null, value));
  }

  async function loadAttainment() {
    const now = Date.now();
    const window = {
      from: new Date(now - REPORT_DAYS * DAY_MS).toISOString(),
      to: new Date(now + 60000).toISOString(),
    };
    const cards = await Promise.all(REPORT_METRICS.map((m) => attainmentCard(m, window, now)));
    if (auth.locked) return;
    $("att-body").replaceChildren(...cards);
  }

  async function attainmentCard(metric, window, now) {
    const heading = h("h3", null, humanMetric(metric));
    const card = h("article", { class: "att-card", "data-metric": metric }, heading);
    const params = new URLSearchParams({ ...window, metric });
    const summary = await api(`/v1/reports/attainment?${params}`);
    const s = summary.data;
    if (!summary.ok || !s || typeof s !== "object" || (s.metric && s.metric !== metric)) {
      const why = summary.ok
        ? "Not available: this service reports first response only."
        : missingRoute(summary)
          ? "Not available in this service."
          : `Not available: ${summary.problem}`;
      card.classList.add("unavailable");
      card.append(h("p", { class: "muted small" }, why));
      return card;
    }
    const median = s.median_s ?? s.median_response_s ?? s.median_business_s;
    const p90 = s.p90_s ?? s.p90_response_s ?? s.p90_business_s;
    heading.remove();
    card.append(
      h(
        "div",
        { class: "att-side" },
        heading,
        h(
          "dl",
          { class: "stats" },
          stat("Within target", percent(s.within_target && s.within_target.share)),
          stat("Within breach", percent(s.within_breach && s.within_breach.share)),
          stat("Tickets", String(s.count ?? "–")),
          stat("Median", shortDuration(median)),
          stat("p90", shortDuration(p90))
        )
      )
    );
    const plot = h("div", { class: "att-plot" });
    card.append(plot);
    if (!s.count) {
      const none = `No ticket started this metric in the last ${REPORT_DAYS} days.`;
      plot.append(h("p", { class: "muted small" }, none));
      return card;
    }
    params.set("format", "csv");
    const csv = await api(`/v1/reports/attainment?${params}`, { accept: "text/csv" });
    if (csv.ok && typeof csv.data === "string" && /csv/.test(csv.type || "")) {
      const rows = parseCsv(csv.data).filter((r) => !r.metric || r.metric === metric);
      plot.append(attainmentChart(metric, dailySeries(rows, now)), legend());
    } else {
      plot.append(weeklyChart(metric, s.breaches_per_week));
    }
    return card;
  }

  // ---------------------------------------------------------------- calendars

  const calendars = { intervals: new Map(), names: [] };
  const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

  /** Today's date (YYYY-MM-DD) in a time zone, and the Monday of that week. */
  function weekIn(zone) {
    let today;
    try {
      today = new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(Date.now());
    } catch {
      today = localDayKey(Date.now());
    }
    const [y, m, d] = today.split("-").map(Number);
    const noon = Date.UTC(y, m - 1, d, 12);
    const weekday = (new Date(noon).getUTCDay() + 6) % 7;
    const dates = [];
    for (let i = 0; i < 7; i += 1) {
      dates.push(new Date(noon + (i - weekday) * DAY_MS).toISOString().slice(0, 10));
    }
    return { today, dates };
  }

  /** Wall-clock minutes of an ISO text in its own offset: {date, minutes}. */
  function wallClock(iso) {
    const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})/.exec(iso || "");
    return match ? { date: match[1], minutes: Number(match[2]) * 60 + Number(match[3]) } : null;
  }

  function nextDate(date) {
    return new Date(Date.parse(`${date}T12:00:00Z`) + DAY_MS).toISOString().slice(0, 10);
  }

  /** Open intervals split into per-date wall-clock spans (minutes from midnight). */
  function spansByDate(intervals) {
    const out = new Map();
    const add = (date, a, b) => {
      if (b <= a) return;
      if (!out.has(date)) out.set(date, []);
      out.get(date).push([a, b]);
    };
    for (const iv of intervals) {
      const start = wallClock(iv.start);
      const end = wallClock(iv.end);
      if (!start || !end) continue;
      let date = start.date;
      let from = start.minutes;
      for (let guard = 0; date < end.date && guard < 400; guard += 1) {
        add(date, from, 1440);
        date = nextDate(date);
        from = 0;
      }
      add(date, from, end.minutes);
    }
    return out;
  }

  function hm(minutes) {
    return `${pad(minutes / 60)}:${pad(minutes % 60)}`;
  }

  function weekRows(cal, data) {
    const { today, dates } = weekIn(cal.timezone);
    const spans = spansByDate(data.intervals || []);
    let nowMinutes = null;
    try {
      const parts = new Intl.DateTimeFormat("en-GB", {
        timeZone: cal.timezone,
        hour: "2-digit",
        minute: "2-digit",
        hourCycle: "h23",
      }).format(Date.now());
      const [hh, mm] = parts.split(":").map(Number);
      nowMinutes = hh * 60 + mm;
    } catch {
      nowMinutes = null;
    }
    let total = 0;
    const rows = dates.map((date, i) => {
      const day = spans.get(date) || [];
      const track = svg("svg", {
        viewBox: "0 0 1440 10",
        preserveAspectRatio: "none",
        class: "track",
        "aria-hidden": "true",
      });
      track.append(svg("rect", { x: 0, y: 0, width: 1440, height: 10, class: "track-bg" }));
      for (const hour of [360, 720, 1080]) {
        track.append(svg("rect", { x: hour - 2, y: 0, width: 4, height: 10, class: "track-tick" }));
      }
      for (const [a, b] of day) {
        total += b - a;
        track.append(svg("rect", { x: a, y: 0, width: b - a, height: 10, class: "track-open" }));
      }
      if (date === today && nowMinutes !== null) {
        const now = { x: nowMinutes - 4, y: 0, width: 8, height: 10, class: "track-now" };
        track.append(svg("rect", now));
      }
      const text = day.length
        ? day.map(([a, b]) => (a === 0 && b === 1440 ? "all day" : `${hm(a)}–${hm(b)}`)).join(", ")
        : "closed";
      return h(
        "li",
        { class: date === today ? "today" : "" },
        h("span", { class: "day" }, `${WEEKDAYS[i]} ${Number(date.slice(8))}`),
        track,
        h("span", { class: day.length ? "hours" : "hours closed" }, text)
      );
    });
    const label = `${cal.name} open hours this week`;
    return { list: h("ul", { class: "week", "aria-label": label }, rows), total };
  }

  function versionList(result) {
    if (!result.ok) {
      const why = missingRoute(result)
        ? "Versions: not available in this service."
        : `Versions: ${result.problem}`;
      return h("p", { class: "versions muted small" }, why);
    }
    const data = result.data;
    const list = Array.isArray(data) ? data : (data && data.versions) || [];
    if (!list.length) return h("p", { class: "versions muted small" }, "Versions: none stored.");
    const items = [...list]
      .sort((a, b) => (a.version || 0) - (b.version || 0))
      .map((v) => {
        const from = v.effective_from ? instant(v.effective_from) : null;
        const label =
          from === null
            ? "from the beginning"
            : `from ${fmtDay.format(from)} ${fmtTime.format(from)}`;
        const li = h(
          "li",
          { title: from === null ? "in force from the beginning of time" : fmtFull.format(from) },
          h("strong", null, `v${v.version}`),
          ` ${label}`,
          v.retroactive ? h("span", { class: "tag" }, "retroactive") : null
        );
        if (from !== null && from > Date.now()) {
          li.append(h("span", { class: "tag tag-future" }, "upcoming"));
        }
        return li;
      });
    const title = h("span", { class: "muted small" }, "Versions");
    return h("div", { class: "versions" }, title, h("ol", null, items));
  }

  async function loadCalendars() {
    const result = await api("/v1/calendars");
    if (auth.locked) return;
    const body = $("cal-body");
    if (!result.ok || !result.data) {
      if (result.status !== 401) {
        const why = `Calendars are not available: ${result.problem}`;
        body.replaceChildren(h("p", { class: "note" }, why));
      }
      return;
    }
    const list = Array.isArray(result.data) ? result.data : result.data.calendars || [];
    calendars.names = list.map((c) => c.name);
    fillSelect($("filter-calendar"), [...calendars.names, ...seen.calendars], "All calendars");
    const from = Date.now() - 8 * DAY_MS;
    const to = Date.now() + 8 * DAY_MS;
    const cards = await Promise.all(
      list.map(async (cal) => {
        const range = new URLSearchParams({
          from: new Date(from).toISOString(),
          to: new Date(to).toISOString(),
        });
        const name = encodeURIComponent(cal.name);
        const [intervals, versions] = await Promise.all([
          api(`/v1/calendars/${name}/intervals?${range}`),
          api(`/v1/calendars/${name}/versions`),
        ]);
        const card = h("article", { class: "cal-card", "data-calendar": cal.name });
        const title = h("h3", null, cal.title || cal.name);
        const meta = h(
          "p",
          { class: "cal-meta" },
          h("span", { class: "mono" }, cal.name),
          ` · ${cal.timezone}`
        );
        card.append(h("header", null, title, meta));
        if (intervals.ok && intervals.data && Array.isArray(intervals.data.intervals)) {
          const list2 = intervals.data.intervals
            .map((iv) => [instant(iv.start), instant(iv.end)])
            .filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
          calendars.intervals.set(cal.name, { from, to, list: list2 });
          const now = Date.now();
          const open = list2.some(([a, b]) => a <= now && now < b);
          const week = weekRows(cal, intervals.data);
          title.after(
            h(
              "span",
              { class: `badge ${open ? "badge-open" : "badge-closed"}` },
              open ? "Open now" : "Closed now"
            )
          );
          meta.append(` · ${Math.round(week.total / 6) / 10} h open this week`);
          card.append(week.list);
        } else {
          const why = `Hours not available: ${intervals.problem}`;
          card.append(h("p", { class: "muted small" }, why));
        }
        card.append(versionList(versions));
        return card;
      })
    );
    if (auth.locked) return;
    body.replaceChildren(...cards);
  }

  // ---------------------------------------------------------------- scheduling

  const feeds = {
    fast: {
      ms: FAST_MS,
      run: async () => {
        const [a, b] = await Promise.all([pollQueue(null), pollEscalations()]);
        const ok = a && b;
        live.failing = !ok;
        if (ok) live.lastOk = Date.now();
      },
    },
    policies: { ms: SLOW_MS, run: loadPolicies },
    calendars: { ms: SLOW_MS, run: loadCalendars },
    attainment: { ms: REPORT_MS, run: loadAttainment },
  };

  function wake(name) {
    const feed = feeds[name];
    if (feed.wake) feed.wake();
  }

  function wakeAll() {
    for (const name of Object.keys(feeds)) wake(name);
  }

  async function runFeed(feed, skipFirst) {
    for (let turn = 0; ; turn += 1) {
      if (!auth.locked && !(skipFirst && turn === 0)) {
        try {
          await feed.run();
        } catch (error) {
          console.error(error);
        }
      }
      const wait = document.hidden ? Math.max(feed.ms, HIDDEN_MS) : feed.ms;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, auth.locked ? 3600000 : wait);
        feed.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      feed.wake = null;
    }
  }

  function start() {
    setText($("clock-zone"), LOCAL_ZONE);
    setupAuth();
    setupQueue();
    $("filter-esc").addEventListener("change", () => wake("fast"));
    readHash();
    liveTick();
    setInterval(liveTick, 500);
    setInterval(tickCountdowns, 250);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) wakeAll();
    });
    // The queue and the policies (its standings need each policy's budget) go first, in
    // parallel; the heavier panels start once the queue is on screen.
    const policiesLoaded = loadPolicies();
    Promise.all([pollQueue(policiesLoaded), pollEscalations()])
      .then(([queueOk, escOk]) => {
        live.failing = !(queueOk && escOk);
        if (!live.failing) live.lastOk = Date.now();
      })
      .catch((error) => console.error(error))
      .finally(() => {
        for (const [name, feed] of Object.entries(feeds)) {
          runFeed(feed, name === "fast" || name === "policies");
        }
      });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
