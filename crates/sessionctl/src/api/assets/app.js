// The lab's page over the local API. Everything taken from a session is set with
// textContent, never as markup; there is no inline script (the CSP forbids it).
"use strict";

const PAGE_SIZE = 25;
const STATUSES = ["pending", "inFlight", "submitted", "failed", "ignored"];
const $ = (id) => document.getElementById(id);
let offset = 0;
let current = null; // the session shown in the detail view
let refreshTimer = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else node.setAttribute(key, String(value));
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
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

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

// A time that must be past (a start, a save) but lies ahead says so: only a wrong
// clock, now or when it was stored, makes it.
function when(ms, mustBePast) {
  const future = mustBePast && ms && ms - Date.now() > 5 * 60 * 1000;
  return el("time", { datetime: ms ? new Date(ms).toISOString() : null, title: ms ? new Date(ms).toISOString() : null,
    class: future ? "implausible" : null, text: relative(ms) + (future ? " (clock?)" : "") });
}

function badge(status) {
  return el("span", { class: `badge badge-${status || "unknown"}`, text: status || "?" });
}

function settled(status) {
  return status === "submitted" || status === "ignored";
}

// ---- navigation -------------------------------------------------------------

function route() {
  const match = location.pathname.match(/^\/sessions\/([^/]+)$/);
  const params = new URLSearchParams(location.search);
  $("status-filter").value = params.get("status") || "";
  offset = Number(params.get("offset") || 0) || 0;
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

async function confirmClock() {
  $("confirm-text").textContent = `Does this computer's clock show the right date and time now (${new Date().toLocaleString()})? Cleanup will then delete and expire by it.`;
  const dialog = $("confirm");
  dialog.returnValue = "";
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  if (dialog.returnValue !== "ok") return;
  try {
    await api("POST", "/api/clock/confirm");
    say("The clock is confirmed.");
  } catch (e) {
    say(`Could not confirm the clock: ${e.message}`, true);
  }
  loadCounts();
}

function go(url) {
  history.pushState(null, "", url);
  say("");
  route();
}

function listUrl() {
  const params = new URLSearchParams();
  const status = $("status-filter").value;
  if (status) params.set("status", status);
  if (offset) params.set("offset", offset);
  const query = params.toString();
  return query ? `/?${query}` : "/";
}

// ---- counts and list --------------------------------------------------------

async function loadCounts() {
  try {
    const status = await api("GET", "/api/status");
    const counts = $("counts");
    counts.replaceChildren();
    counts.append(el("span", { class: "count", text: `${status.total} ${status.total === 1 ? "session" : "sessions"}` }));
    for (const name of STATUSES) {
      const button = el("button", { type: "button", class: `count badge-${name}`, "data-status": name },
        `${name} ${status.counts[name] || 0}`);
      button.addEventListener("click", () => { $("status-filter").value = name; offset = 0; go(listUrl()); });
      counts.append(button);
    }
    if (status.incomplete) counts.append(el("span", { class: "count warn", text: `${status.incomplete} incomplete (never sent)` }));
    if (status.problems) counts.append(el("span", { class: "count error", text: `${status.problems} damaged or stray files: run sessionctl verify` }));
    if (status.recordingStalled) counts.append(el("span", { class: "count error", text: `${status.recordingStalled} captures could not be recorded yet (disk full?): stored as soon as space allows` }));
    if (status.notReceivedByLis) counts.append(el("span", { class: "count error", text: `${status.notReceivedByLis} did not reach the LIS` }));
    if (status.endpointAttention) counts.append(el("span", { class: "count error", text: `The delivery endpoint needs attention: ${status.endpointAttention.error} (${status.endpointAttention.sessions} waiting)` }));
    if (status.retriesPulledIn) counts.append(el("span", { class: "count warn", text: `${status.retriesPulledIn} waiting retries were set by a clock that was ahead: sent now` }));
    const clock = status.clock || {};
    $("clock-banner").hidden = !clock.suspect;
    $("clock-reason").textContent = clock.suspect ? `${clock.reason}.` : "";
  } catch (e) {
    say(`Could not load the counts: ${e.message}`, true);
  }
}

async function loadList() {
  const status = $("status-filter").value;
  const params = new URLSearchParams({ limit: PAGE_SIZE, offset });
  if (status) params.set("status", status);
  let data;
  try {
    data = await api("GET", `/api/sessions?${params}`);
  } catch (e) {
    say(`Could not load the sessions: ${e.message}`, true);
    return;
  }
  const body = $("sessions").tBodies[0];
  body.replaceChildren();
  for (const row of data.sessions) {
    const link = el("a", { href: `/sessions/${encodeURIComponent(row.id)}`, class: "session-link", text: row.id });
    link.addEventListener("click", (event) => { event.preventDefault(); go(link.getAttribute("href")); });
    const expired = row.persistedUntil !== null && row.persistedUntil <= Date.now() && !settled(row.submissionStatus);
    const tr = el("tr", { class: [row.isComplete === false ? "incomplete" : "", row.submissionStatus === "failed" ? "failed" : ""].join(" ").trim() || null, "data-id": row.id },
      el("th", { scope: "row" }, link),
      el("td", {}, badge(row.submissionStatus)),
      el("td", { text: row.notReceivedByLis ? "did not reach the LIS" : row.interrupted ? "cut off: never sent" : row.isComplete === false ? "no: never sent" : row.isComplete ? "yes" : "?" }),
      el("td", { text: row.messageCount ?? "?" }),
      el("td", {}, when(row.startTime, true)),
      el("td", {}, expired ? "expired, kept: not delivered" : when(row.persistedUntil)),
      el("td", { class: "last-error", text: row.lastError || "" }));
    body.append(tr);
  }
  const empty = $("empty");
  empty.hidden = data.sessions.length > 0;
  empty.textContent = status ? `No sessions with status ${status} (${data.total} match).` : "No sessions.";
  const pages = Math.max(1, Math.ceil(data.total / PAGE_SIZE));
  $("page-info").textContent = `page ${Math.floor(offset / PAGE_SIZE) + 1} of ${pages} (${data.total} sessions)`;
  $("prev").disabled = offset === 0;
  $("next").disabled = offset + PAGE_SIZE >= data.total;
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

// HL7 v2: segments end in CR; fields split on the separator MSH declares.
function hl7Table(text) {
  const segments = text.split(/\r\n|\r|\n/).filter((s) => s.length > 0);
  const msh = segments.find((s) => s.startsWith("MSH"));
  const sep = msh && msh.length > 3 ? msh[3] : "|";
  const table = el("table", { class: "hl7" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Field" }), el("th", { scope: "col", text: "Value" }))));
  const body = el("tbody");
  for (const segment of segments) {
    const name = segment.slice(0, 3);
    const fields = segment.split(sep);
    const values = name === "MSH" ? [sep, ...fields.slice(1)] : fields.slice(1);
    body.append(el("tr", { class: "segment" }, el("th", { scope: "row", colspan: 2, text: name })));
    values.forEach((value, i) => {
      if (value === "") return;
      body.append(el("tr", {}, el("td", { text: `${name}-${i + 1}` }), el("td", { text: value })));
    });
  }
  table.append(body);
  return table;
}

function facts(list, pairs) {
  list.replaceChildren();
  for (const [term, value] of pairs) {
    list.append(el("dt", { text: term }), el("dd", {}, value === null || value === undefined || value === "" ? "–" : value));
  }
}

async function loadDetail(id) {
  let session;
  try {
    session = await api("GET", `/api/sessions/${encodeURIComponent(id)}`);
  } catch (e) {
    $("detail-title").textContent = id;
    say(`Could not load ${id}: ${e.message}`, true);
    return;
  }
  current = session;
  const sub = session.submission || {};
  $("detail-title").replaceChildren(`Session ${session.id} `, badge(sub.status));
  facts($("delivery"), [
    ["Status", badge(sub.status)],
    ["Attempts", String(sub.attempts ?? 0)],
    ["Last attempt", sub.lastAttemptAt ? when(sub.lastAttemptAt, true) : null],
    ["Next attempt", sub.nextAttemptAt ? when(sub.nextAttemptAt) : null],
    ["Delivered", sub.submittedAt ? when(sub.submittedAt, true) : null],
    ["Last error", sub.lastError || null],
    ["Idempotency key", sub.idempotencyKey ? el("code", { text: sub.idempotencyKey }) : null],
    ["Earlier deliveries", (sub.earlierDeliveries || []).map((d) => `${d.key || "no key"} ${d.at ? new Date(d.at).toISOString() : ""}`).join("; ") || null],
  ]);
  facts($("facts"), [
    ["Analyzer", session.deviceIP || null],
    ["LIS", session.lisIP || null],
    ["Started", when(session.startTime, true)],
    ["Ended", session.endTime ? when(session.endTime, true) : null],
    ["Complete", session.isComplete ? "yes" : session.interrupted
      ? "cut off (" + session.interrupted.reason + "): kept with every element recorded, never sent"
      : "no: capture never finished, never sent"],
    ["Kept until", when(session.persistedUntil)],
  ]);
  const timeline = $("timeline");
  timeline.replaceChildren();
  for (const element of session.elements || []) {
    const bytes = bytesOf(element.data);
    const toLis = element.direction === "device-to-pc";
    const item = el("li", { class: `element ${toLis ? "from-device" : "from-lis"}` },
      el("span", { class: "direction", text: toLis ? "analyzer → LIS" : "LIS → analyzer" }), " ",
      el("span", { class: "kind", text: element.type }), " ",
      when(element.timestamp, true));
    if (element.type === "message") {
      const text = new TextDecoder("utf-8").decode(bytes);
      item.append(hl7Table(text),
        el("details", {}, el("summary", { text: "Raw" }), el("pre", { class: "raw", text })),
        el("details", {}, el("summary", { text: "Hex" }), el("pre", { class: "hex", text: hex(bytes) })));
    } else {
      item.append(" ", el("code", { class: "hex", text: hex(bytes) }));
    }
    timeline.append(item);
  }
  $("retry").disabled = sub.status === "submitted" || sub.status === "inFlight";
  $("ignore").disabled = sub.status === "submitted";
}

async function act(action) {
  if (!current) return;
  const id = current.id;
  try {
    if (action === "delete") {
      $("confirm-text").textContent = `Move session ${id} to the trash?`;
      const dialog = $("confirm");
      dialog.returnValue = "";
      dialog.showModal();
      await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
      if (dialog.returnValue !== "ok") return;
      await api("DELETE", `/api/sessions/${encodeURIComponent(id)}`);
      go("/");
      say(`Moved ${id} to the trash.`);
      return;
    }
    const result = await api("POST", `/api/sessions/${encodeURIComponent(id)}/${action}`);
    say(`${id}: ${result.submissionStatus}`);
    loadDetail(id);
    loadCounts();
  } catch (e) {
    say(`${action} ${id}: ${e.message}`, true);
  }
}

// ---- settings ---------------------------------------------------------------

async function showSettings() {
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
  const keys = Object.keys(data.sources || {});
  for (const key of keys) {
    const id = `setting-${key}`;
    const value = data[key];
    const range = typeof data.allowed[key] === "object" ? data.allowed[key] : null;
    const source = data.sources[key];
    const pinned = source === "env" || source === "flag";
    const input = range
      ? el("input", { id, name: key, type: "number", min: range.min, max: range.max, value: value ?? "", required: "" })
      : el("input", { id, name: key, type: "checkbox" });
    if (!range) input.checked = value === true;
    if (pinned) input.disabled = true;
    const allowed = range ? `${range.min} to ${range.max}` : "on or off";
    fields.append(el("div", { class: "field" },
      el("label", { for: id, text: data.help[key] || key }), input,
      el("span", { class: "hint", text: `${key}: ${allowed}${pinned ? ` (set by the ${source === "env" ? "environment" : "command line"}; not changeable here)` : ""}` })));
  }
  $("settings-file").textContent = data.file ? `Saved to ${data.file}` : "No configuration file: start the daemon with --config FILE to change settings here.";
  $("settings-fields").querySelector("input:not([disabled])")?.focus();
}

async function saveSettings(event) {
  event.preventDefault();
  const changes = {};
  for (const input of $("settings-fields").querySelectorAll("input:not([disabled])")) {
    changes[input.name] = input.type === "checkbox" ? input.checked : Number(input.value);
  }
  try {
    await api("PUT", "/api/settings", changes);
    say("Settings saved.");
  } catch (e) {
    say(`Settings not saved: ${e.message}`, true);
  }
}

// ---- live updates -----------------------------------------------------------

function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    loadCounts();
    if (!$("list-view").hidden) loadList();
    if (!$("detail-view").hidden && current) loadDetail(current.id);
  }, 150);
}

function listen() {
  const source = new EventSource("/api/events");
  source.addEventListener("open", () => { $("live").textContent = "live"; });
  source.addEventListener("session", refreshSoon);
  source.addEventListener("error", () => { $("live").textContent = "reconnecting…"; });
}

document.addEventListener("DOMContentLoaded", () => {
  $("status-filter").addEventListener("change", () => { offset = 0; go(listUrl()); });
  $("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE_SIZE); go(listUrl()); });
  $("next").addEventListener("click", () => { offset += PAGE_SIZE; go(listUrl()); });
  $("nav-list").addEventListener("click", (event) => { event.preventDefault(); go(listUrl()); });
  $("home").addEventListener("click", (event) => { event.preventDefault(); go("/"); });
  $("nav-settings").addEventListener("click", showSettings);
  $("settings-form").addEventListener("submit", saveSettings);
  $("retry").addEventListener("click", () => act("retry"));
  $("ignore").addEventListener("click", () => act("ignore"));
  $("delete").addEventListener("click", () => act("delete"));
  $("confirm-clock").addEventListener("click", confirmClock);
  window.addEventListener("popstate", route);
  route();
  listen();
});
