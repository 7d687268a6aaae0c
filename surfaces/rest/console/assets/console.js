// rkat console: plain JavaScript over the REST routes and the SSE event streams.
// Views: #/ (sessions), #/session/<id>, #/config, #/models. The bearer token, when the
// server wants one, is asked once and kept in sessionStorage (this tab only).
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "rkat-console-token";
const PAGE_SIZE = 20;
const POLL_MS = 2000;
const VIEWS = ["login-view", "sessions-view", "session-view", "config-view", "models-view"];

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  offset: 0,
  details: new Map(),      // session_id -> {updated_at, model, provider}
  pollTimer: null,
  stream: null,            // AbortController of the open event stream
  adopted: null,           // a new session whose first turn streams on its POST
  sessionId: null,
  running: false,
  configGeneration: null,
  configLoaded: null,      // the document as loaded, to tell your edit from others'
};

class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.error || body.message)) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

function authHeaders(extra) {
  const headers = Object.assign({}, extra);
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  return headers;
}

async function api(method, path, body) {
  const headers = authHeaders({ Accept: "application/json" });
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const reply = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const type = reply.headers.get("content-type") || "";
  const data = type.includes("application/json") ? await reply.json() : null;
  if (reply.status === 401) {
    showLogin(state.token ? "That token was refused." : "");
    throw new ApiError(401, data);
  }
  if (!reply.ok) throw new ApiError(reply.status, data);
  return data;
}

function say(text, isError) {
  const status = $("status");
  status.textContent = text || "";
  status.classList.toggle("error", Boolean(isError));
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function show(viewId) {
  for (const id of VIEWS) $(id).hidden = id !== viewId;
  const nav = { "sessions-view": "sessions", "session-view": "sessions", "config-view": "config", "models-view": "models" };
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === nav[viewId]) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function stopLive() {
  if (state.pollTimer) clearTimeout(state.pollTimer);
  state.pollTimer = null;
  if (state.stream) state.stream.abort();
  state.stream = null;
}

// -- login --------------------------------------------------------------------

function showLogin(message) {
  stopLive();
  show("login-view");
  $("login-error").textContent = message || "";
  $("token").focus();
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, state.token);
  $("token").value = "";
  route();
});

// -- event streams (fetch, so the bearer header goes along) -------------------

function parseFrame(frame) {
  const event = { event: "message", data: "", id: null };
  let hasData = false;
  for (const line of frame.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event.event = value;
    else if (field === "id") event.id = value;
    else if (field === "data") { event.data += (hasData ? "\n" : "") + value; hasData = true; }
  }
  if (!hasData) return null;
  try { event.json = JSON.parse(event.data); } catch (_) { event.json = null; }
  return event;
}

// Reads an SSE response to its end; returns the last event id and the `done` reason.
async function readEvents(reply, onEvent, lastId) {
  const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let reason = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = parseFrame(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
      if (!event) continue;
      if (event.id) lastId = event.id;
      if (event.event === "done") reason = event.json && event.json.reason;
      onEvent(event);
    }
  }
  return { lastId, reason };
}

function openEvents(sessionId, onEvent, resumeAfter) {
  const control = new AbortController();
  let lastId = resumeAfter || null;
  (async () => {
    while (!control.signal.aborted) {
      let reason = null;
      try {
        const headers = authHeaders({ Accept: "text/event-stream" });
        if (lastId) headers["Last-Event-ID"] = lastId;
        const reply = await fetch(`/sessions/${encodeURIComponent(sessionId)}/events`, { headers, signal: control.signal });
        if (reply.status === 401) { showLogin("That token was refused."); return; }
        if (!reply.ok) return;
        ({ lastId, reason } = await readEvents(reply, onEvent, lastId));
      } catch (error) {
        if (control.signal.aborted) return;
      }
      if (reason === "archived" || reason === "shutdown") return;
      await new Promise((resolve) => setTimeout(resolve, 1000));  // reconnect, resuming after lastId
    }
  })();
  return control;
}

// -- sessions list -------------------------------------------------------------

function searchTerms() {
  const labels = [];
  const words = [];
  for (const term of $("search").value.trim().split(/\s+/).filter(Boolean)) {
    if (/^[^=]+=.*$/.test(term)) labels.push(term);
    else words.push(term.toLowerCase());
  }
  return { labels, words };
}

function shortId(id) {
  // UUIDv7s share their leading (time) digits: show both ends, as `rkat --resume` accepts either.
  return id.length > 20 ? `${id.slice(0, 8)}…${id.slice(-8)}` : id;
}

function ago(seconds) {
  const delta = Math.max(0, Date.now() / 1000 - seconds);
  if (delta < 60) return `${Math.round(delta)} s ago`;
  if (delta < 3600) return `${Math.round(delta / 60)} min ago`;
  if (delta < 86400) return `${Math.round(delta / 3600)} h ago`;
  return new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ");
}

async function detailsOf(summaries) {
  // The list has no model/provider: read each session once per change (cached by updated_at).
  await Promise.all(summaries.map(async (s) => {
    const known = state.details.get(s.session_id);
    if (known && known.updated_at === s.updated_at) return;
    try {
      const view = await api("GET", `/sessions/${encodeURIComponent(s.session_id)}`);
      state.details.set(s.session_id, { updated_at: s.updated_at, model: view.model, provider: view.provider });
    } catch (error) {
      if (error.status === 401) throw error;
    }
  }));
}

async function loadSessions() {
  const { labels, words } = searchTerms();
  const query = new URLSearchParams({ limit: String(PAGE_SIZE + 1), offset: String(state.offset) });
  for (const label of labels) query.append("label", label);
  const { sessions } = await api("GET", `/sessions?${query}`);
  const page = sessions.slice(0, PAGE_SIZE);
  await detailsOf(page);
  const rows = page.filter((s) => {
    const d = state.details.get(s.session_id) || {};
    const hay = [s.session_id, d.model, d.provider, ...Object.entries(s.labels || {}).map(([k, v]) => `${k}=${v}`)]
      .join(" ").toLowerCase();
    return words.every((w) => hay.includes(w));
  });
  const body = $("sessions-body");
  body.replaceChildren(...rows.map((s) => {
    const d = state.details.get(s.session_id) || {};
    const labelText = Object.entries(s.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ");
    return el("tr", { "data-session": s.session_id },
      el("td", {}, el("a", { href: `#/session/${s.session_id}`, text: shortId(s.session_id), title: s.session_id,
                            "aria-label": `Open session ${s.session_id}` })),
      el("td", { text: labelText }),
      el("td", { text: d.model || "" }),
      el("td", { text: d.provider || "" }),
      el("td", { class: "num", text: String(s.message_count) }),
      el("td", { class: "num", text: String(s.total_tokens) }),
      el("td", { text: ago(s.updated_at), title: new Date(s.updated_at * 1000).toISOString() }),
      el("td", {}, el("span", { class: s.is_active ? "badge running" : "badge", text: s.is_active ? "running" : "idle" })));
  }));
  $("sessions-empty").hidden = rows.length > 0 || state.offset > 0;
  $("prev-page").disabled = state.offset === 0;
  $("next-page").disabled = sessions.length <= PAGE_SIZE;
  $("page-info").textContent = page.length ? `${state.offset + 1}–${state.offset + page.length}` : "";
}

function pollSessions() {
  state.pollTimer = setTimeout(async () => {
    if (!$("sessions-view").hidden && !document.hidden) {
      try { await loadSessions(); } catch (error) { if (error.status === 401) return; }
    }
    if (!$("sessions-view").hidden) pollSessions();
  }, POLL_MS);
}

async function openSessions() {
  show("sessions-view");
  await loadSessions();
  pollSessions();
}

$("search-form").addEventListener("submit", (event) => { event.preventDefault(); state.offset = 0; loadSessions(); });
$("search").addEventListener("input", () => { state.offset = 0; loadSessions().catch(() => {}); });
$("prev-page").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); loadSessions(); });
$("next-page").addEventListener("click", () => { state.offset += PAGE_SIZE; loadSessions(); });

// A new session's first turn streams on the POST itself (Accept: text/event-stream): the
// page opens the session at `session_created` and follows that stream, then the session's.
$("new-session-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { prompt: $("new-prompt").value };
  if ($("new-model").value.trim()) body.model = $("new-model").value.trim();
  const button = event.submitter || event.target.querySelector("button");
  button.disabled = true;
  say("Starting the session…");
  const control = new AbortController();
  try {
    const reply = await fetch("/sessions", {
      method: "POST", body: JSON.stringify(body), signal: control.signal,
      headers: authHeaders({ "Content-Type": "application/json", Accept: "text/event-stream" }),
    });
    if (reply.status === 401) { showLogin("That token was refused."); return; }
    if (!reply.ok) {
      const type = reply.headers.get("content-type") || "";
      throw new ApiError(reply.status, type.includes("application/json") ? await reply.json() : null);
    }
    $("new-prompt").value = "";
    say("");
    let adopted = null;
    const { lastId } = await readEvents(reply, (frame) => {
      if (frame.event === "session_created" && frame.json) {
        adopted = { sessionId: frame.json.session_id, control, buffer: [], ready: false };
        state.adopted = adopted;
        location.hash = `#/session/${adopted.sessionId}`;
      } else if (adopted && !adopted.ready) {
        adopted.buffer.push(frame);
      } else if (adopted) {
        onSessionEvent(adopted.sessionId, frame);
      }
    }, null);
    if (adopted && state.adopted === adopted) {  // still on its page: follow the session from here on
      state.adopted = null;
      const sessionId = adopted.sessionId;
      state.stream = openEvents(sessionId, (e) => onSessionEvent(sessionId, e), lastId);
    }
  } catch (error) {
    if (control.signal.aborted) return;
    if (error.status !== 401) say(`Could not start: ${error.message}`, true);
  } finally {
    button.disabled = false;
  }
});

// -- one session ----------------------------------------------------------------

function contentText(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((b) => (b && (b.text || (b.type ? `[${b.type}]` : ""))) || "").join("\n");
  return JSON.stringify(content);
}

function toolCall(name, args) {
  return el("div", { class: "tool-call" }, el("div", { class: "who", text: `tool call: ${name}` }),
    el("pre", { text: JSON.stringify(args === undefined ? {} : args, null, 2) }));
}

function renderMessage(message) {
  const role = message.role;
  if (role === "user") {
    return el("li", { class: "message user" }, el("div", { class: "who", text: "user" }),
      el("div", { class: "text", text: contentText(message.content) }));
  }
  if (role === "block_assistant" || role === "assistant") {
    const item = el("li", { class: "message assistant" }, el("div", { class: "who", text: "assistant" }));
    if (message.assistant_message_id) item.dataset.assistantId = message.assistant_message_id;
    for (const block of message.blocks || []) {
      const data = block.data || {};
      if (block.block_type === "text") item.append(el("div", { class: "text", text: data.text || "" }));
      else if (block.block_type === "reasoning") item.append(el("div", { class: "reasoning", text: data.text || "" }));
      else if (block.block_type === "tool_use") item.append(toolCall(data.name, data.args));
      else item.append(el("pre", { text: JSON.stringify(block) }));
    }
    if (message.content) item.append(el("div", { class: "text", text: contentText(message.content) }));
    for (const call of message.tool_calls || []) item.append(toolCall(call.name, call.args));
    if (message.stop_reason) item.append(el("div", { class: "stop", text: `stop: ${message.stop_reason}` }));
    if (message.usage) item.append(el("div", { class: "stop", text: usageText(message.usage) }));
    return item;
  }
  if (role === "tool_results") {
    const item = el("li", { class: "message tool" }, el("div", { class: "who", text: "tool results" }));
    for (const result of message.results || []) {
      item.append(el("div", { class: "who", text: `${result.tool_use_id}${result.is_error ? " (error)" : ""}` }),
        el("pre", { text: contentText(result.content) }));
    }
    return item;
  }
  return el("li", { class: "message" }, el("div", { class: "who", text: role || "message" }),
    el("pre", { text: JSON.stringify(message, null, 2) }));
}

function usageText(usage) {
  const parts = [`in ${usage.input_tokens}`, `out ${usage.output_tokens}`];
  if (usage.cache_read_tokens) parts.push(`cached ${usage.cache_read_tokens}`);
  return `usage: ${parts.join(", ")}`;
}

async function loadTranscript(sessionId) {
  const messages = [];
  for (let offset = 0; ; ) {
    const page = await api("GET", `/sessions/${encodeURIComponent(sessionId)}/history?offset=${offset}&limit=200`);
    messages.push(...page.messages);
    offset += page.messages.length;
    if (!page.has_more || page.messages.length === 0) break;
  }
  if (state.sessionId !== sessionId) return;
  $("transcript").replaceChildren(...messages.map(renderMessage));
  showPastUsage(sessionId).catch(() => {});  // usage is a detail: the transcript stands without it
}

/** Each past model call's usage, from the session's event log (`turn_completed`), under its message. */
async function showPastUsage(sessionId) {
  // Kept per session, so a session's next turn reads only the events after the last one read.
  if (!state.pastUsage || state.pastUsage.sessionId !== sessionId) {
    state.pastUsage = { sessionId, after: 0, usage: new Map() };
  }
  const known = state.pastUsage;
  const usage = known.usage;
  const base = `/events?session_id=${encodeURIComponent(sessionId)}&limit=1000`;
  for (let after = known.after; ; ) {
    let page;
    try {
      page = await api("GET", `${base}&after=${after}`);
    } catch (error) {  // older events were pruned: read what the log still keeps
      const watermark = error.body.details && error.body.details.watermark;
      if (error.status !== 410 || typeof watermark !== "number" || watermark <= after) throw error;
      after = watermark;
      continue;
    }
    for (const envelope of page.events) {
      const payload = envelope.payload;
      if (payload.type === "turn_completed" && payload.usage && payload.assistant_message_id) {
        usage.set(payload.assistant_message_id, payload.usage);
      }
    }
    const last = page.events.length ? page.events[page.events.length - 1].seq : after;
    known.after = last;
    if (!page.has_more || last <= after) break;
    after = last;
  }
  if (state.sessionId !== sessionId) return;
  for (const item of $("transcript").querySelectorAll("li[data-assistant-id]")) {
    const turnUsage = usage.get(item.dataset.assistantId);
    if (turnUsage && !item.querySelector(".usage")) {
      item.append(el("div", { class: "stop usage", text: usageText(turnUsage) }));
    }
  }
}

async function loadFacts(sessionId) {
  const view = await api("GET", `/sessions/${encodeURIComponent(sessionId)}`);
  if (state.sessionId !== sessionId) return view;
  const facts = [["id", view.session_id], ["model", `${view.model} (${view.provider})`],
    ["messages", String(view.message_count)], ["tokens", `${view.usage.total_tokens} (${usageText(view.usage).slice(7)})`],
    ["labels", Object.entries(view.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "none"],
    ["updated", view.updated_at]];
  $("session-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  setRunning(Boolean(view.is_active));
  return view;
}

function setRunning(running) {
  state.running = running;
  $("interrupt").hidden = !running;
  $("send").disabled = running;
}

const live = { text: null, reasoning: null };

function liveBox() {
  const box = $("live");
  if (box.hidden) {
    box.replaceChildren(el("div", { class: "who", text: "assistant (streaming)" }));
    live.text = null;
    live.reasoning = null;
    box.hidden = false;
  }
  return box;
}

function onSessionEvent(sessionId, event) {
  if (state.sessionId !== sessionId || !event.json) return;
  const payload = event.json.payload || {};
  switch (event.event) {
    case "run_started": {
      setRunning(true);
      $("live").hidden = true;
      const prompt = payload.input && payload.input.content;
      if (prompt !== undefined) $("transcript").append(renderMessage({ role: "user", content: prompt }));
      liveBox();
      break;
    }
    case "text_delta": {
      const box = liveBox();
      if (!live.text) { live.text = el("div", { class: "text" }); box.append(live.text); }
      live.text.append(payload.delta);
      break;
    }
    case "reasoning_delta": {
      const box = liveBox();
      if (!live.reasoning) { live.reasoning = el("div", { class: "reasoning" }); box.append(live.reasoning); }
      live.reasoning.append(payload.delta);
      break;
    }
    case "tool_call_requested":
      liveBox().append(toolCall(payload.name, payload.args));
      live.text = null;
      break;
    case "tool_result_received":
      liveBox().append(el("div", { class: "who", text: `result of ${payload.name}${payload.is_error ? " (error)" : ""}` }),
        el("pre", { text: contentText(payload.content) }));
      live.text = null;
      break;
    case "turn_completed":
      if (payload.usage) liveBox().append(el("div", { class: "stop", text: `stop: ${payload.stop_reason}; ${usageText(payload.usage)}` }));
      live.text = null;
      break;
    case "run_completed":
    case "run_failed": {
      setRunning(false);
      if (event.event === "run_failed") {
        const report = payload.error_report || {};
        say(report.class === "cancelled" ? "The turn was interrupted; what was said is kept."
          : `The turn failed (${report.class}): ${report.message}`, report.class !== "cancelled");
      }
      Promise.all([loadTranscript(sessionId), loadFacts(sessionId)])
        .then(() => { if (state.sessionId === sessionId && !state.running) $("live").hidden = true; })
        .catch(() => {});
      break;
    }
    case "done":
      if (event.json.reason === "archived") say("This session was archived.");
      break;
    default:
      break;
  }
}

async function openSession(sessionId) {
  show("session-view");
  state.sessionId = sessionId;
  $("session-title").textContent = `Session ${shortId(sessionId)}`;
  $("transcript").replaceChildren();
  $("live").hidden = true;
  $("archive-confirm").hidden = true;
  say("");
  await loadFacts(sessionId);
  const adopted = state.adopted && state.adopted.sessionId === sessionId ? state.adopted : null;
  if (adopted) {
    // Its first turn is streaming on the request that created it (see the new-session form).
    state.stream = adopted.control;
    await loadTranscript(sessionId);
    adopted.ready = true;
    for (const frame of adopted.buffer.splice(0)) onSessionEvent(sessionId, frame);
  } else {
    // Follow first, then read: a turn that starts in between is in the stream.
    state.stream = openEvents(sessionId, (event) => onSessionEvent(sessionId, event));
    await loadTranscript(sessionId);
  }
  $("prompt").focus();
}

$("prompt-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const sessionId = state.sessionId;
  const prompt = $("prompt").value;
  if (!prompt.trim()) return;
  $("send").disabled = true;
  $("prompt").value = "";
  say("");
  try {
    await api("POST", `/sessions/${encodeURIComponent(sessionId)}/messages`, { prompt });
  } catch (error) {
    if (error.status === 401) return;
    if (error.body.code === "REQUEST_CANCELLED") return;  // interrupted: the stream said so
    if (error.body.code !== "PROVIDER_ERROR" && error.body.code !== "AGENT_ERROR") {
      $("prompt").value = prompt;  // not sent: keep what was typed
    }
    say(`Not done: ${error.message}`, true);
    setRunning(false);
  }
});

$("prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("prompt-form").requestSubmit();
});

$("interrupt").addEventListener("click", async () => {
  try {
    await api("POST", `/sessions/${encodeURIComponent(state.sessionId)}/interrupt`);
  } catch (error) {
    if (error.status !== 401) say(`Could not interrupt: ${error.message}`, true);
  }
});

$("archive").addEventListener("click", () => { $("archive-confirm").hidden = false; $("archive-confirm").focus(); });
$("archive-confirm").addEventListener("click", async () => {
  try {
    await api("DELETE", `/sessions/${encodeURIComponent(state.sessionId)}`);
    say("Session archived.");
    location.hash = "#/";
  } catch (error) {
    if (error.status !== 401) say(`Could not archive: ${error.message}`, true);
  }
});

// -- config ------------------------------------------------------------------------

// Leaf values by dotted path ("agent.max_turns" -> "100"), to tell what changed where.
function flatten(value, prefix, out) {
  out = out || {};
  if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length) {
    for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? `${prefix}.${key}` : key, out);
  } else if (prefix) {
    out[prefix] = JSON.stringify(value);
  }
  return out;
}

function changedPaths(before, after) {
  const a = flatten(before);
  const b = flatten(after);
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((p) => a[p] !== b[p]).sort()
    .map((path) => ({ path, from: a[path], to: b[path] }));
}

function applyPath(document_, path, json) {
  const parts = path.split(".");
  let node = document_;
  for (const part of parts.slice(0, -1)) {
    if (!node[part] || typeof node[part] !== "object") node[part] = {};
    node = node[part];
  }
  if (json === undefined) delete node[parts[parts.length - 1]];
  else node[parts[parts.length - 1]] = JSON.parse(json);
}

function changeList(title, changes) {
  return el("div", {}, el("p", { text: title }), el("ul", {}, ...changes.map((c) =>
    el("li", { text: `${c.path}: ${c.from === undefined ? "(absent)" : c.from} → ${c.to === undefined ? "(removed)" : c.to}` }))));
}

async function loadConfig() {
  const view = await api("GET", "/config");
  state.configLoaded = view.config;
  state.configGeneration = view.generation;
  $("config-generation").textContent = String(view.generation);
  $("config-text").value = JSON.stringify(view.config, null, 2);
  $("realm").textContent = `realm ${view.realm_id}`;
  return view;
}

async function openConfig() {
  show("config-view");
  $("config-conflict").hidden = true;
  await loadConfig();
}

$("config-save").addEventListener("click", async () => {
  const conflict = $("config-conflict");
  conflict.hidden = true;
  let document_;
  try {
    document_ = JSON.parse($("config-text").value);
  } catch (error) {
    say(`Not valid JSON: ${error.message}`, true);
    return;
  }
  try {
    const view = await api("PUT", "/config", { config: document_, expected_generation: state.configGeneration });
    state.configGeneration = view.generation;
    $("config-generation").textContent = String(view.generation);
    $("config-text").value = JSON.stringify(view.config, null, 2);
    say(`Saved: generation ${view.generation}.`);
  } catch (error) {
    if (error.status === 401) return;
    if (error.body.code === "CONFIG_GENERATION_CONFLICT") {
      const details = error.body.details || {};
      const latest = await api("GET", "/config");
      const theirs = changedPaths(state.configLoaded, latest.config);
      const mine = changedPaths(state.configLoaded, document_);
      const clashes = mine.filter((m) => theirs.some((t) => t.path === m.path)).map((m) => m.path);
      const merge = el("button", { type: "button", id: "config-merge" });
      merge.textContent = "Load the latest, keep my edit";
      merge.addEventListener("click", () => {
        const merged = JSON.parse(JSON.stringify(latest.config));
        for (const change of mine) applyPath(merged, change.path, change.to);
        state.configLoaded = latest.config;
        state.configGeneration = latest.generation;
        $("config-generation").textContent = String(latest.generation);
        $("config-text").value = JSON.stringify(merged, null, 2);
        conflict.hidden = true;
        say(`Your edit is applied to generation ${latest.generation}: check it, then Save.`);
        $("config-text").focus();
      });
      conflict.replaceChildren(
        el("p", { text: `Conflict: the config changed elsewhere (now generation ${details.current_generation}; ` +
          `you edited generation ${details.expected_generation}). Nothing was overwritten.` }),
        changeList("Changed elsewhere:", theirs),
        changeList("Your edit:", mine),
        ...(clashes.length ? [el("p", { class: "error", text: `Both changed: ${clashes.join(", ")} (your edit wins).` })] : []),
        el("div", { class: "row" }, merge));
      conflict.hidden = false;
      say("Config conflict: not saved.", true);
      merge.focus();
    } else {
      say(`Not saved: ${error.message}`, true);
    }
  }
});

$("config-reload").addEventListener("click", async () => {
  await loadConfig();
  say(`Loaded generation ${state.configGeneration}.`);
});

// -- models ------------------------------------------------------------------------

async function openModels() {
  show("models-view");
  const [catalog, providers] = await Promise.all([api("GET", "/models/catalog"), api("GET", "/console/api/providers")]);
  $("credentials").replaceChildren(...providers.providers.map((p) => el("li", { "data-provider": p.provider },
    el("strong", { text: p.provider }), ": ",
    p.credentials ? "credentials set" : `no credentials (set ${p.variables.join(" or ")})`)));
  const rows = [];
  for (const provider of catalog.providers) {
    for (const model of provider.models) {
      rows.push(el("tr", {}, el("td", { text: provider.provider }),
        el("td", { text: model.id + (model.id === provider.default_model_id ? " (default)" : "") }),
        el("td", { text: model.display_name || "" }), el("td", { text: model.tier || "" }),
        el("td", { class: "num", text: model.context_window ? String(model.context_window) : "" })));
    }
  }
  $("models-body").replaceChildren(...rows);
}

// -- routing -----------------------------------------------------------------------

async function route() {
  const target = location.hash || "#/";
  if (state.adopted && target !== `#/session/${state.adopted.sessionId}`) {
    state.adopted.control.abort();  // left its page: the turn goes on, the page stops following it
    state.adopted = null;
  }
  stopLive();
  state.sessionId = null;
  const hash = location.hash || "#/";
  try {
    if (hash.startsWith("#/session/")) await openSession(decodeURIComponent(hash.slice("#/session/".length)));
    else if (hash === "#/config") await openConfig();
    else if (hash === "#/models") await openModels();
    else await openSessions();
    if (!$("realm").textContent) api("GET", "/config").then((v) => { $("realm").textContent = `realm ${v.realm_id}`; }).catch(() => {});
  } catch (error) {
    if (error.status !== 401) say(error.message, true);
  }
}

window.addEventListener("hashchange", route);
route();
