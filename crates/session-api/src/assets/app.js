// The lab's page over the local API. Everything taken from a session is set with
// textContent, never as markup; there is no inline script (the CSP forbids it).
"use strict";

const STATUSES = ["pending", "inFlight", "submitted", "failed", "ignored"];
// What a technician reads for each status; the API's words stay in data attributes.
const STATUS_WORDS = {
  pending: "waiting to be sent", inFlight: "being sent", submitted: "delivered",
  failed: "failed", ignored: "ignored",
};
const PAGE_SIZES = [25, 50, 100, 250];
const $ = (id) => document.getElementById(id);

// The list's state, mirrored in the URL so that a link can be shared.
const view = { q: "", from: "", to: "", device: "", status: "", size: 25, sort: "startTime", order: "desc", offset: 0 };
let shown = new Map(); // id -> row element, for live patches
let selected = new Set();
let lastTotal = 0;
let current = null; // the session shown in the detail view
let countsTimer = null;
let listToken = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(method, path, body) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (response.status === 503 && data.starting) {
    startingUp(data.starting);
    throw new Error(data.error);
  }
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

// The daemon answers while it starts (recovery, migration of a large store): say what it
// is doing, and load the view again once it is done.
let startTimer = null;
function startingUp(progress) {
  const done = progress.done.toLocaleString();
  const what = progress.total ? `${progress.phase} ${done} of ${progress.total.toLocaleString()} sessions` : `${progress.phase}: ${done} sessions read`;
  $("starting").hidden = false;
  $("starting").textContent = `The daemon is starting up (${what}). The list appears when it is done.`;
  clearTimeout(startTimer);
  startTimer = setTimeout(() => { say(""); route(); }, 1000);
}

// A message is true when it is said; every navigation clears it.
function say(text, isError) {
  const message = $("message");
  message.textContent = text;
  message.className = isError ? "error" : "note";
  message.hidden = !text;
}

function relative(ms) {
  if (ms === null || ms === undefined) return "–";
  const delta = ms - Date.now();
  const past = delta <= 0;
  const secs = Math.abs(delta) / 1000;
  const [n, unit] = secs < 60 ? [0, ""] : secs < 3600 ? [Math.floor(secs / 60), "minute"]
    : secs < 86400 ? [Math.floor(secs / 3600), "hour"] : secs < 31536000 ? [Math.floor(secs / 86400), "day"]
    : [Math.floor(secs / 31536000), "year"];
  if (n === 0) return past ? "just now" : "in a moment";
  const plural = n === 1 ? "" : "s";
  return past ? `${n} ${unit}${plural} ago` : `in ${n} ${unit}${plural}`;
}

function local(ms) {
  return new Date(ms).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

// A time, relative and absolute (local). One that must be past (a start, a save) but
// lies ahead says so: only a wrong clock, now or when it was stored, makes it.
function when(ms, mustBePast) {
  if (ms === null || ms === undefined) return el("span", { text: "–" });
  const future = mustBePast && ms - Date.now() > 5 * 60 * 1000;
  return el("time", { datetime: new Date(ms).toISOString(), title: new Date(ms).toISOString(),
    class: future ? "implausible" : null },
  el("span", { class: "relative", text: relative(ms) + (future ? " (clock?)" : "") }), " ",
  el("span", { class: "absolute", text: local(ms) }));
}

function badge(status) {
  return el("span", { class: `badge badge-${status || "unknown"}`, "data-status": status || "",
    text: STATUS_WORDS[status] || status || "?" });
}

function capture(row) {
  if (row.notReceivedByLis) return "did not reach the LIS";
  if (row.interrupted) return "cut off: never sent";
  if (row.isComplete === false) return "not finished: never sent";
  return row.isComplete ? "complete" : "?";
}

// ---- the URL ----------------------------------------------------------------

function toLocalInput(iso) {
  if (!iso) return "";
  const date = new Date(/^\d+$/.test(iso) ? Number(iso) : iso);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function fromLocalInput(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

function readUrl() {
  const params = new URLSearchParams(location.search);
  view.q = params.get("q") || "";
  view.from = params.get("from") || "";
  view.to = params.get("to") || "";
  view.device = params.get("device") || "";
  view.status = params.get("status") || "";
  const size = Number(params.get("size"));
  view.size = PAGE_SIZES.includes(size) ? size : 25;
  view.sort = params.get("sort") || "startTime";
  view.order = params.get("order") || (view.sort === "startTime" ? "desc" : "asc");
  view.offset = Math.max(0, Number(params.get("offset") || 0) || 0);
  $("search").value = view.q;
  $("from").value = toLocalInput(view.from);
  $("to").value = toLocalInput(view.to);
  $("device-filter").value = view.device;
  $("status-filter").value = view.status;
  $("page-size").value = String(view.size);
}

function filterParams() {
  const params = new URLSearchParams();
  for (const key of ["q", "from", "to", "device", "status"]) if (view[key]) params.set(key, view[key]);
  return params;
}

function listUrl() {
  const params = filterParams();
  if (view.size !== 25) params.set("size", view.size);
  if (view.sort !== "startTime") params.set("sort", view.sort);
  if (view.order !== (view.sort === "startTime" ? "desc" : "asc")) params.set("order", view.order);
  if (view.offset) params.set("offset", view.offset);
  const query = params.toString();
  return query ? `/?${query}` : "/";
}

function route() {
  const match = location.pathname.match(/^\/sessions\/([^/]+)$/);
  readUrl();
  $("settings").hidden = true;
  if (match) {
    $("list-view").hidden = true;
    $("detail-view").hidden = false;
    loadDetail(decodeURIComponent(match[1]));
  } else {
    $("detail-view").hidden = true;
    $("list-view").hidden = false;
    loadList();
  }
  loadCounts();
}

function go(url) {
  history.pushState(null, "", url);
  say("");
  route();
}

// ---- counts and alerts ------------------------------------------------------

async function loadCounts() {
  try {
    const status = await api("GET", "/api/status");
    $("starting").hidden = true;
    const counts = $("counts");
    counts.replaceChildren();
    counts.append(el("span", { class: "count", text: `${status.total} ${status.total === 1 ? "session" : "sessions"}` }));
    for (const name of STATUSES) {
      const button = el("button", { type: "button", class: `count badge-${name}`, "data-status": name },
        `${STATUS_WORDS[name]} ${status.counts[name] || 0}`);
      button.addEventListener("click", () => { view.status = name; view.offset = 0; go(listUrl()); });
      counts.append(button);
    }
    if (status.incomplete) counts.append(el("span", { class: "count warn", text: `${status.incomplete} not finished (never sent)` }));
    if (status.notReceivedByLis) counts.append(el("span", { class: "count error", text: `${status.notReceivedByLis} did not reach the LIS` }));
    if (status.problems) counts.append(el("span", { class: "count error", text: `${status.problems} damaged or stray files: run sessionctl verify` }));
    if (status.retriesPulledIn) counts.append(el("span", { class: "count warn", text: `${status.retriesPulledIn} retries set by a clock that was ahead: sent now` }));
    if (status.capturing) counts.append(el("span", { class: "count", text: `${status.capturing} being captured now` }));
    const alerts = (status.alerts || []).filter((a) => a.kind !== "clockSuspect");
    const banner = $("alerts");
    banner.replaceChildren(...alerts.map((a) => el("p", { class: `alert alert-${a.kind}`, text: a.message })));
    banner.hidden = alerts.length === 0;
    const clock = status.clock || {};
    $("clock-banner").hidden = !clock.suspect;
    $("clock-reason").textContent = clock.suspect ? `${clock.reason}.` : "";
  } catch (e) {
    if ($("starting").hidden) say(`Could not load the counts: ${e.message}`, true);
  }
}

function countsSoon() {
  clearTimeout(countsTimer);
  countsTimer = setTimeout(loadCounts, 300);
}

// ---- the list ---------------------------------------------------------------

function rowElement(row) {
  const link = el("a", { href: `/sessions/${encodeURIComponent(row.id)}`, class: "session-link", text: row.id });
  link.addEventListener("click", (event) => { event.preventDefault(); go(link.getAttribute("href")); });
  const box = el("input", { type: "checkbox", class: "select", "aria-label": `Select ${row.id}`, checked: selected.has(row.id) });
  box.addEventListener("change", () => {
    if (box.checked) selected.add(row.id); else selected.delete(row.id);
    showSelection();
  });
  const classes = [row.isComplete === false ? "incomplete" : "", row.submissionStatus === "failed" ? "failed" : ""].join(" ").trim();
  return el("tr", { class: classes || null, "data-id": row.id },
    el("td", { class: "select-col" }, box),
    el("th", { scope: "row" }, link),
    el("td", { class: "col-status" }, badge(row.submissionStatus)),
    el("td", { class: "col-complete", text: capture(row) }),
    el("td", { class: "col-messages", text: row.messageCount ?? "?" }),
    el("td", { class: "col-device", text: row.deviceIP || "–" }),
    el("td", { class: "col-started" }, when(row.startTime, true)),
    el("td", { class: "col-attempt" }, when(row.lastAttemptAt, true)),
    el("td", { class: "last-error", text: row.lastError || "" }));
}

function showSelection() {
  $("selected-count").textContent = `${selected.size} selected`;
  $("retry-selected").disabled = selected.size === 0;
  $("ignore-selected").disabled = selected.size === 0;
}

function showSort() {
  for (const th of document.querySelectorAll("#sessions th[data-sort]")) {
    const key = th.getAttribute("data-sort");
    if (key === view.sort) th.setAttribute("aria-sort", view.order === "desc" ? "descending" : "ascending");
    else th.removeAttribute("aria-sort");
  }
}

async function loadList() {
  const token = ++listToken;
  const params = filterParams();
  params.set("limit", view.size);
  params.set("offset", view.offset);
  params.set("sort", view.sort);
  params.set("order", view.order);
  $("list-wrap").setAttribute("aria-busy", "true");
  $("loading").hidden = false;
  $("loading").textContent = view.q ? `Searching the messages for “${view.q}”…` : "Loading…";
  let data;
  try {
    data = await api("GET", `/api/sessions?${params}`);
  } catch (e) {
    if (token === listToken && $("starting").hidden) say(`Could not load the sessions: ${e.message}`, true);
    return;
  } finally {
    if (token === listToken) {
      $("list-wrap").setAttribute("aria-busy", "false");
      $("loading").hidden = true;
    }
  }
  if (token !== listToken) return; // a later request owns the table
  const body = $("sessions").tBodies[0];
  shown = new Map();
  body.replaceChildren(...data.sessions.map((row) => {
    const tr = rowElement(row);
    shown.set(row.id, tr);
    return tr;
  }));
  lastTotal = data.total;
  // For whoever measures the page: when its first rows were in the table.
  if (performance.getEntriesByName("sessions-rendered").length === 0) performance.mark("sessions-rendered");
  $("new-sessions").hidden = true;
  $("select-all").checked = false;
  const devices = new Set([...$("devices").options].map((o) => o.value));
  for (const row of data.sessions) if (row.deviceIP && !devices.has(row.deviceIP)) $("devices").append(el("option", { value: row.deviceIP }));
  const note = $("search-note");
  if (data.search) {
    note.hidden = false;
    note.textContent = data.search.complete
      ? `${data.total} ${data.total === 1 ? "session holds" : "sessions hold"} “${view.q}” (searched ${data.search.searched}).`
      : `${data.total} found so far in the newest ${data.search.searched} of ${data.search.candidates} sessions; narrow the time range or analyzer to search the rest.`;
  } else {
    note.hidden = true;
  }
  const filtered = view.q || view.from || view.to || view.device || view.status;
  const empty = $("empty");
  empty.hidden = data.sessions.length > 0;
  empty.textContent = filtered ? "No session matches these filters." : "No sessions yet.";
  const pages = Math.max(1, Math.ceil(data.total / view.size));
  const page = Math.floor(view.offset / view.size) + 1;
  $("page-info").textContent = `page ${page} of ${pages} (${data.total} ${data.total === 1 ? "session" : "sessions"})`;
  $("page-jump").value = page;
  $("page-jump").max = pages;
  $("prev").disabled = $("first").disabled = view.offset === 0;
  $("next").disabled = $("last").disabled = view.offset + view.size >= data.total;
  $("retry-matching").disabled = $("ignore-matching").disabled = Boolean(view.q) || data.total === 0;
  $("retry-matching").title = view.q ? "Clear the text search to act on every match" : "";
  showSelection();
  showSort();
}

function goPage(page) {
  const pages = Math.max(1, Math.ceil(lastTotal / view.size));
  view.offset = (Math.min(Math.max(1, page), pages) - 1) * view.size;
  go(listUrl());
}

function applyFilter(event) {
  if (event) event.preventDefault();
  view.q = $("search").value.trim();
  view.from = fromLocalInput($("from").value);
  view.to = fromLocalInput($("to").value);
  view.device = $("device-filter").value.trim();
  view.status = $("status-filter").value;
  view.size = Number($("page-size").value) || 25;
  view.offset = 0;
  go(listUrl());
}

function sortBy(key) {
  if (view.sort === key) view.order = view.order === "desc" ? "asc" : "desc";
  else { view.sort = key; view.order = key === "startTime" ? "desc" : "asc"; }
  view.offset = 0;
  go(listUrl());
}

async function confirmed(text, okLabel) {
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = okLabel;
  const dialog = $("confirm");
  dialog.returnValue = "";
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  return dialog.returnValue === "ok";
}

async function bulk(action, which) {
  const verb = action === "retry" ? "Retry" : "Ignore";
  const body = { action };
  let count;
  if (which === "selected") {
    body.ids = [...selected];
    count = body.ids.length;
  } else {
    body.filter = {};
    for (const key of ["status", "device", "from", "to"]) if (view[key]) body.filter[key] = view[key];
    count = lastTotal;
  }
  if (!count) return;
  const words = which === "selected" ? "selected" : "matching the filters";
  if (!await confirmed(`${verb} ${count} ${count === 1 ? "session" : "sessions"} ${words}?`, `${verb} ${count}`)) return;
  try {
    const done = await api("POST", "/api/bulk", body);
    const skipped = done.skippedCount ? `; ${done.skippedCount} could not be (${done.skipped.map((s) => `${s.id}: ${s.error}`).slice(0, 3).join("; ")})` : "";
    selected = new Set();
    loadList();
    loadCounts();
    say(`${verb}: ${done.changed} ${done.changed === 1 ? "session" : "sessions"} changed${skipped}.`, done.skippedCount > 0);
  } catch (e) {
    say(`${verb} failed: ${e.message}`, true);
  }
}

// ---- one session ------------------------------------------------------------

function bytesOf(base64) {
  const binary = atob(base64 || "");
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

function facts(list, pairs) {
  list.replaceChildren();
  for (const [term, value] of pairs) {
    list.append(el("dt", { text: term }), el("dd", {}, value === null || value === undefined || value === "" ? "–" : value));
  }
}

function resultsTable(messages) {
  const rows = [];
  for (const message of messages) {
    const s = message.summary || {};
    for (const r of s.results || []) rows.push([s.sampleId, s.patientId, s.patientName, r]);
  }
  if (rows.length === 0) return el("p", { class: "hint", text: "No results (OBX) in these messages." });
  const table = el("table", { class: "results" },
    el("thead", {}, el("tr", {}, ...["Sample", "Patient", "Test", "Value", "Units", "Reference range", "Flag"].map((h) => el("th", { scope: "col", text: h })))));
  const body = el("tbody");
  for (const [sample, patientId, patientName, r] of rows) {
    const flag = (r.flag || "").toUpperCase();
    const abnormal = flag && flag !== "N";
    body.append(el("tr", { class: abnormal ? "abnormal" : null },
      el("td", { text: sample || "–" }),
      el("td", { text: [patientId, patientName].filter(Boolean).join(" · ") || "–" }),
      el("td", { text: r.test || "–" }),
      el("td", { class: "value", text: r.value || "–" }),
      el("td", { text: r.units || "" }),
      el("td", { text: r.referenceRange || "" }),
      el("td", { class: "flag", text: r.flag || "" })));
  }
  table.append(body);
  return table;
}

function messageBlock(message, open) {
  const title = message.error
    ? `Message ${message.index + 1}: not readable as HL7`
    : `Message ${message.index + 1}: ${message.messageType || "?"}${message.controlId ? `, control ID ${message.controlId}` : ""}`;
  const block = el("details", { class: "message", open }, el("summary", { text: title }));
  const side = el("div", { class: "message-body" });
  if (message.error) {
    side.append(el("p", { class: "error", text: `Shown as received: ${message.error}` }));
  } else {
    const table = el("table", { class: "hl7" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Field" }), el("th", { scope: "col", text: "Name" }), el("th", { scope: "col", text: "Value" }))));
    const body = el("tbody");
    for (const segment of message.segments) {
      body.append(el("tr", { class: "segment" }, el("th", { scope: "rowgroup", colspan: 3, text: segment.name })));
      for (const field of segment.fields) {
        const components = field.repetitions.map((r) => r.filter((c) => c !== "").join(" · ")).join(" ~ ");
        body.append(el("tr", {},
          el("td", { class: "field-id", text: `${segment.name}-${field.number}` }),
          el("td", { class: "field-name", text: field.name || "" }),
          el("td", { class: "field-value", title: field.value, text: components || field.value })));
      }
    }
    table.append(body);
    side.append(table);
  }
  side.append(el("pre", { class: "raw", "aria-label": "As received", text: message.raw.replace(/\r/g, "\n") }));
  block.append(side);
  return block;
}

async function loadDetail(id) {
  let session;
  let hl7 = { messages: [] };
  $("detail-title").textContent = `Session ${id}`;
  $("results").replaceChildren(el("p", { text: "Loading…" }));
  $("messages").replaceChildren();
  try {
    [session, hl7] = await Promise.all([
      api("GET", `/api/sessions/${encodeURIComponent(id)}`),
      api("GET", `/api/sessions/${encodeURIComponent(id)}/hl7`),
    ]);
  } catch (e) {
    $("results").replaceChildren();
    say(`Could not load ${id}: ${e.message}`, true);
    return;
  }
  current = session;
  const sub = session.submission || {};
  $("detail-title").replaceChildren(`Session ${session.id} `, badge(sub.status));
  $("export-hl7").href = `/api/sessions/${encodeURIComponent(id)}/export?format=hl7`;
  $("export-json").href = `/api/sessions/${encodeURIComponent(id)}/export?format=json`;
  $("results").replaceChildren(resultsTable(hl7.messages));
  facts($("delivery"), [
    ["Status", badge(sub.status)],
    ["Attempts", String(sub.attempts ?? 0)],
    ["Last attempt", sub.lastAttemptAt ? when(sub.lastAttemptAt, true) : null],
    ["Next attempt", sub.nextAttemptAt ? when(sub.nextAttemptAt) : null],
    ["Delivered", sub.submittedAt ? when(sub.submittedAt, true) : null],
    ["Last error", sub.lastError || null],
    ["Idempotency key", sub.idempotencyKey ? el("code", { text: sub.idempotencyKey }) : null],
    ["Earlier deliveries", (sub.earlierDeliveries || []).map((d) => `${d.key || "no key"} ${d.at ? local(d.at) : ""}`).join("; ") || null],
  ]);
  const expired = session.persistedUntil <= Date.now();
  facts($("facts"), [
    ["Analyzer", session.deviceIP || null],
    ["LIS", session.lisIP || null],
    ["Started", when(session.startTime, true)],
    ["Ended", session.endTime ? when(session.endTime, true) : null],
    ["Capture", session.isComplete ? "complete" : session.interrupted
      ? `cut off (${session.interrupted.reason}): kept with every element recorded, never sent`
      : "not finished: never sent"],
    ["Kept until", expired && !(sub.status === "submitted" || sub.status === "ignored")
      ? el("span", {}, when(session.persistedUntil), " — past its retention, kept until it is delivered")
      : when(session.persistedUntil)],
  ]);
  const messages = $("messages");
  messages.replaceChildren(...hl7.messages.map((m, i) => messageBlock(m, i < 3)));
  if (hl7.messages.length > 3) messages.prepend(el("p", { class: "hint", text: `${hl7.messages.length} messages; the first three are open.` }));
  const timeline = $("timeline");
  timeline.replaceChildren();
  for (const element of session.elements || []) {
    const bytes = bytesOf(element.data);
    const toLis = element.direction === "device-to-pc";
    timeline.append(el("li", { class: `element ${toLis ? "from-device" : "from-lis"}` },
      el("span", { class: "direction", text: toLis ? "analyzer → LIS" : "LIS → analyzer" }), " ",
      el("span", { class: "kind", text: element.type }), " ",
      when(element.timestamp, true), " ",
      el("code", { class: "hex", text: element.type === "message" ? `${bytes.length} bytes` : hex(bytes) })));
  }
  $("retry").disabled = sub.status === "submitted" || sub.status === "inFlight";
  $("ignore").disabled = sub.status === "submitted";
}

async function act(action) {
  if (!current) return;
  const id = current.id;
  try {
    if (action === "delete") {
      if (!await confirmed(`Move session ${id} to the trash?`, "Delete")) return;
      await api("DELETE", `/api/sessions/${encodeURIComponent(id)}`);
      go("/");
      say(`Moved ${id} to the trash.`);
      return;
    }
    const result = await api("POST", `/api/sessions/${encodeURIComponent(id)}/${action}`);
    say(`${id}: ${STATUS_WORDS[result.submissionStatus] || result.submissionStatus}`);
    loadDetail(id);
    loadCounts();
  } catch (e) {
    say(`${action} ${id}: ${e.message}`, true);
  }
}

async function confirmClock() {
  const ok = await confirmed(`Does this computer's clock show the right date and time now (${new Date().toLocaleString()})? Cleanup will then delete and expire by it.`, "Yes, it is right");
  if (!ok) return;
  try {
    await api("POST", "/api/clock/confirm");
    say("The clock is confirmed.");
  } catch (e) {
    say(`Could not confirm the clock: ${e.message}`, true);
  }
  loadCounts();
}

// ---- settings ---------------------------------------------------------------

async function showSettings() {
  say("");
  $("list-view").hidden = true;
  $("detail-view").hidden = true;
  $("settings").hidden = false;
  let data;
  try {
    data = await api("GET", "/api/settings");
  } catch (e) {
    say(`Could not load the settings: ${e.message}`, true);
    return;
  }
  const fields = $("settings-fields");
  fields.replaceChildren();
  for (const key of Object.keys(data.sources || {})) {
    const id = `setting-${key}`;
    const value = data[key];
    const range = typeof data.allowed[key] === "object" ? data.allowed[key] : null;
    const source = data.sources[key];
    const pinned = source === "env" || source === "flag";
    const input = range
      ? el("input", { id, name: key, type: "number", min: range.min, max: range.max, value: value ?? "", required: true })
      : el("input", { id, name: key, type: "checkbox" });
    if (!range) input.checked = value === true;
    if (pinned) input.disabled = true;
    const allowed = range ? `${range.min} to ${range.max}` : "on or off";
    fields.append(el("div", { class: "field" },
      el("label", { for: id, text: data.help[key] || key }), input,
      el("span", { class: "hint", text: `${key}: ${allowed}${pinned ? ` (set by the ${source === "env" ? "environment" : "command line"}; not changeable here)` : ""}` })));
  }
  $("settings-scope").textContent = "A new retention applies to sessions stored from now on: each stored session keeps the “kept until” date it was given, unless you also apply it to them (offered after saving).";
  $("settings-form").dataset.retention = data.retention_days;
  $("apply-retention").hidden = true;
  $("settings-file").textContent = data.file ? `Read from ${data.file}; a change is written there.` : "No configuration file: start the daemon with --config FILE to change settings here.";
  $("save-settings").disabled = !data.file;
  $("settings-fields").querySelector("input:not([disabled])")?.focus();
}

async function saveSettings(event) {
  event.preventDefault();
  const changes = {};
  for (const input of $("settings-fields").querySelectorAll("input:not([disabled])")) {
    changes[input.name] = input.type === "checkbox" ? input.checked : Number(input.value);
  }
  const before = Number($("settings-form").dataset.retention);
  try {
    const data = await api("PUT", "/api/settings", changes);
    say(data.file ? `Settings saved to ${data.file}.` : "Settings saved.");
    $("settings-form").dataset.retention = data.retention_days;
    $("apply-retention").hidden = data.retention_days === before;
    $("apply-retention").textContent = `Also give the stored sessions ${data.retention_days} days`;
  } catch (e) {
    say(`Settings not saved: ${e.message}`, true);
  }
}

async function applyRetention() {
  let total = 0;
  try { total = (await api("GET", "/api/status")).total; } catch { /* the count is only for the question */ }
  const days = $("settings-form").dataset.retention;
  if (!await confirmed(`Give all ${total} stored sessions a retention of ${days} days from their start? Sessions past it that were delivered are then removed by the next cleanup.`, `Apply to ${total}`)) return;
  try {
    const done = await api("POST", "/api/retention/apply");
    $("apply-retention").hidden = true;
    say(`${done.changed} stored sessions now keep ${done.retentionDays} days${done.skippedCount ? `; ${done.skippedCount} could not be changed` : ""}.`, done.skippedCount > 0);
  } catch (e) {
    say(`Retention not applied: ${e.message}`, true);
  }
}

// ---- live updates -----------------------------------------------------------

// A change patches the row it concerns; the whole list is never fetched again for it.
async function changed(event) {
  countsSoon();
  let change;
  try { change = JSON.parse(event.data); } catch { return; }
  if (!$("detail-view").hidden && current && current.id === change.id) {
    loadDetail(change.id);
    return;
  }
  if ($("list-view").hidden) return;
  const tr = shown.get(change.id);
  if (!tr) {
    if (change.kind === "stored") $("new-sessions").hidden = false;
    return;
  }
  if (change.kind === "deleted") {
    tr.classList.add("gone");
    tr.querySelector(".col-status").replaceChildren(el("span", { class: "badge", text: "deleted" }));
    return;
  }
  try {
    const s = await api("GET", `/api/sessions/${encodeURIComponent(change.id)}`);
    const sub = s.submission || {};
    const row = {
      id: s.id, submissionStatus: sub.status, isComplete: s.isComplete, interrupted: Boolean(s.interrupted),
      notReceivedByLis: s.interrupted && s.interrupted.reason === "lisClosed", messageCount: tr.querySelector(".col-messages").textContent,
      deviceIP: s.deviceIP, startTime: s.startTime, lastAttemptAt: sub.lastAttemptAt, lastError: sub.lastError,
    };
    const fresh = rowElement(row);
    tr.replaceWith(fresh);
    shown.set(change.id, fresh);
  } catch {
    // Gone meanwhile: the next event says so.
  }
}

function listen() {
  const source = new EventSource("/api/events");
  source.addEventListener("open", () => { $("live").textContent = "live"; });
  source.addEventListener("session", changed);
  source.addEventListener("error", () => { $("live").textContent = "reconnecting…"; });
}

document.addEventListener("DOMContentLoaded", () => {
  $("filter").addEventListener("submit", applyFilter);
  $("status-filter").addEventListener("change", applyFilter);
  $("page-size").addEventListener("change", applyFilter);
  $("clear-filter").addEventListener("click", () => go("/"));
  $("first").addEventListener("click", () => goPage(1));
  $("prev").addEventListener("click", () => goPage(Math.floor(view.offset / view.size)));
  $("next").addEventListener("click", () => goPage(Math.floor(view.offset / view.size) + 2));
  $("last").addEventListener("click", () => goPage(Math.ceil(lastTotal / view.size)));
  $("page-jump").addEventListener("change", () => goPage(Number($("page-jump").value) || 1));
  for (const th of document.querySelectorAll("#sessions th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => sortBy(th.getAttribute("data-sort")));
  }
  $("select-all").addEventListener("change", () => {
    for (const box of document.querySelectorAll("#sessions tbody input.select")) {
      box.checked = $("select-all").checked;
      const id = box.closest("tr").getAttribute("data-id");
      if (box.checked) selected.add(id); else selected.delete(id);
    }
    showSelection();
  });
  $("retry-selected").addEventListener("click", () => bulk("retry", "selected"));
  $("ignore-selected").addEventListener("click", () => bulk("ignore", "selected"));
  $("retry-matching").addEventListener("click", () => bulk("retry", "matching"));
  $("ignore-matching").addEventListener("click", () => bulk("ignore", "matching"));
  $("show-new").addEventListener("click", () => { view.offset = 0; go(listUrl()); });
  $("nav-list").addEventListener("click", (event) => { event.preventDefault(); go(listUrl()); });
  $("home").addEventListener("click", (event) => { event.preventDefault(); go("/"); });
  $("nav-settings").addEventListener("click", showSettings);
  $("settings-form").addEventListener("submit", saveSettings);
  $("retry").addEventListener("click", () => act("retry"));
  $("ignore").addEventListener("click", () => act("ignore"));
  $("delete").addEventListener("click", () => act("delete"));
  $("confirm-clock").addEventListener("click", confirmClock);
  $("apply-retention").addEventListener("click", applyRetention);
  window.addEventListener("popstate", () => { say(""); route(); });
  route();
  listen();
});
