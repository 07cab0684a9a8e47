// The settings page: mirrors the option tables of the config file (Enreach Contact's "Accept URL Commands" and
// "URL Call Notifications", VoipNow's per-event request table), the phone system's fields and the
// desktop's own settings, and the CRM's caller lookup with its Test button. Validation runs as you type,
// against what the engine serves at GET /api/v1/settings/schema (ui/validate.js); Save sends the whole
// configuration with the revision it was edited from to PUT /api/v1/config, which applies it at once,
// says which field is wrong (the error is shown under that field), or — when the settings changed
// elsewhere meanwhile — refuses with the settings in force, which the form then shows.

import { api, inApp, onEvent, desktop, show, byId } from "./api.js";
import { refreshActivity, wireActivity } from "./activity.js";
import { checkNumber, checkSegment as segmentProblem, checkUrl as urlProblem, limitOf, locate } from "./validate.js";

const EVENTS = [
  ["incoming", "Incoming (Dial-In)"],
  ["outgoing", "Outgoing (Dial-Out)"],
  ["answered", "Answered"],
  ["ended", "Ended (Hangup)"],
];

let config = null;
/** The revision of the configuration the form was filled from; PUT sends it back. */
let revision = null;
/** GET /api/v1/settings/schema: placeholders, reserved segments, limits, provider forms. */
let schema = { placeholders: [], reserved_segments: [], limits: [], providers: [] };
let providers = [];
let secretState = {};
let selected = new Set();
/** The user changed something since the form was filled. */
let dirty = false;
/** A save is under way; settings events that arrive meanwhile are looked at once it is done. */
let saving = false;
let revisionSeenWhileSaving = null;

const SEGMENTS = ["make", "answer", "end"];

// ---- validation -------------------------------------------------------------------------------

function checkPort(value) {
  const limit = limitOf(schema, "listener.port");
  return checkNumber(value, limit) ? `Enter a port between ${limit.min} and ${limit.max}.` : "";
}

function checkSegment(name, value, all) {
  return segmentProblem(name, value, all, schema);
}

/** "" when `value` is a usable URL template, else why not. Empty is allowed when `optional`. */
export function checkUrl(value, optional) {
  return urlProblem(value, optional, schema);
}

function mark(input, errorEl, message) {
  if (input) input.setAttribute("aria-invalid", message ? "true" : "false");
  if (errorEl) errorEl.textContent = message || "";
  return !message;
}

// ---- Accept URL Commands ----------------------------------------------------------------------

function listenerInputs() {
  return {
    port: byId("listen-port").value,
    make: byId("segment-make").value,
    answer: byId("segment-answer").value,
    end: byId("segment-end").value,
  };
}

function validateListener() {
  const v = listenerInputs();
  let ok = mark(byId("listen-port"), byId("error-listener.port"), checkPort(v.port));
  for (const name of SEGMENTS) {
    ok = mark(byId(`segment-${name}`), byId(`error-listener.${name}`), checkSegment(name, v[name], v)) && ok;
  }
  return ok;
}

function renderExamples() {
  const v = listenerInputs();
  const base = `http://localhost:${String(v.port).trim() || "5678"}`;
  const seg = (s) => String(s).trim().replace(/^\/+|\/+$/g, "");
  show("example-make", `${base}/${seg(v.make)}/020123456`);
  show("example-answer", `${base}/${seg(v.answer)}`);
  show("example-end", `${base}/${seg(v.end)}`);
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    // Older webviews: copy through a selected text field.
    const area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const was = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => (button.textContent = was), 1200);
}

// ---- URL Call Notifications -------------------------------------------------------------------

function rules() {
  if (!config.notification) config.notification = [];
  return config.notification;
}

/** The rule an Enreach row edits: the first plain GET rule for the event, for any direction. */
function enreachRule(event) {
  return rules().find((r) => r.event === event && (r.method || "GET") === "GET" && !r.direction && !r.body && !(r.headers && Object.keys(r.headers).length));
}

function newId(event) {
  const taken = new Set(rules().map((r) => r.id));
  for (let n = 1; ; n++) {
    const id = `${event}-${n}`;
    if (!taken.has(id)) return id;
  }
}

function renderEnreach() {
  for (const input of document.querySelectorAll("[data-enreach]")) {
    const rule = enreachRule(input.dataset.enreach);
    if (document.activeElement !== input) input.value = rule ? rule.url : "";
  }
}

function onEnreachInput(input) {
  const event = input.dataset.enreach;
  const url = input.value.trim();
  let rule = enreachRule(event);
  const err = byId(`error-enreach-${event}`);
  mark(input, err, checkUrl(url, true));
  if (!url) {
    if (rule) config.notification = rules().filter((r) => r !== rule);
  } else if (rule) {
    rule.url = url;
  } else {
    rule = { id: newId(event), event, method: "GET", url, active: true, note: "" };
    rules().push(rule);
  }
  renderRules();
}

function option(value, label, current) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  o.selected = value === current;
  return o;
}

function cell(row, child, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (child) td.append(child);
  row.append(td);
  return td;
}

function renderRules() {
  const body = byId("rules");
  body.replaceChildren();
  rules().forEach((rule, index) => {
    const row = document.createElement("tr");
    row.dataset.testid = "rule-row";
    row.setAttribute("data-testid", "rule-row");
    row.dataset.ruleId = rule.id;

    const check = document.createElement("input");
    check.type = "checkbox";
    check.setAttribute("data-testid", "rule-select");
    check.checked = selected.has(rule.id);
    check.addEventListener("change", () => (check.checked ? selected.add(rule.id) : selected.delete(rule.id)));
    cell(row, check);

    const id = document.createElement("span");
    id.textContent = rule.id;
    id.setAttribute("data-testid", "rule-id");
    cell(row, id, "id");

    const event = document.createElement("select");
    event.setAttribute("data-testid", "rule-event");
    for (const [value, label] of EVENTS) event.append(option(value, label, rule.event));
    event.addEventListener("change", () => {
      rule.event = event.value;
      renderEnreach();
    });
    cell(row, event);

    const direction = document.createElement("select");
    direction.setAttribute("data-testid", "rule-direction");
    for (const [value, label] of [["", "all"], ["in", "incoming"], ["out", "outgoing"], ["internal", "internal"]]) direction.append(option(value, label, rule.direction || ""));
    direction.addEventListener("change", () => {
      if (direction.value) rule.direction = direction.value;
      else delete rule.direction;
      renderEnreach();
    });
    cell(row, direction);

    const method = document.createElement("select");
    method.setAttribute("data-testid", "rule-method");
    for (const m of ["GET", "POST"]) method.append(option(m, m, rule.method || "GET"));
    method.addEventListener("change", () => {
      rule.method = method.value;
      if (rule.method === "GET") delete rule.body;
      renderEnreach();
    });
    cell(row, method);

    const url = document.createElement("input");
    url.value = rule.url || "";
    url.setAttribute("data-testid", "rule-url");
    url.placeholder = "https://crm.example.com/calls?number=$callerid";
    const urlError = document.createElement("span");
    urlError.className = "error";
    urlError.setAttribute("data-testid", "rule-error");
    urlError.dataset.error = `notification[${index}]`;
    url.addEventListener("input", () => {
      rule.url = url.value.trim();
      mark(url, urlError, checkUrl(rule.url, false));
      renderEnreach();
    });
    const urlCell = cell(row, url);
    urlCell.append(urlError);
    if (rule.body || (rule.headers && Object.keys(rule.headers).length)) {
      const extra = document.createElement("span");
      extra.className = "hint";
      extra.textContent = "custom body or headers (edit in the config file)";
      urlCell.append(extra);
    }

    const active = document.createElement("input");
    active.type = "checkbox";
    active.checked = rule.active !== false;
    active.setAttribute("data-testid", "rule-active");
    active.addEventListener("change", () => (rule.active = active.checked));
    cell(row, active);

    const note = document.createElement("input");
    note.value = rule.note || "";
    note.setAttribute("data-testid", "rule-note");
    note.addEventListener("input", () => (rule.note = note.value));
    cell(row, note);

    const test = document.createElement("button");
    test.type = "button";
    test.className = "small";
    test.textContent = "Send test";
    test.setAttribute("data-testid", "rule-test");
    const result = document.createElement("output");
    result.className = "result";
    result.setAttribute("data-testid", "rule-test-result");
    test.addEventListener("click", () => sendTest(rule, result));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "small";
    remove.textContent = "Remove";
    remove.setAttribute("data-testid", "rule-remove");
    remove.addEventListener("click", () => {
      config.notification = rules().filter((r) => r !== rule);
      selected.delete(rule.id);
      renderRules();
      renderEnreach();
    });
    const actions = cell(row, test);
    actions.append(" ", remove, result);
    body.append(row);
  });
}

function describeTest(status, body) {
  if (status !== 200) return [`Not sent: ${body.message || "the rule is not valid"}`, "error"];
  const t = body.test;
  const head = `${t.request.method} ${t.request.url}\n`;
  if (t.status) {
    const answer = t.response ? `: ${t.response}` : "";
    return [`${head}The CRM answered ${t.status}${answer}`, t.error ? "error" : "ok"];
  }
  return [`${head}${t.error}`, "error"];
}

async function sendTest(rule, output) {
  const problem = checkUrl(rule.url, false);
  if (problem) {
    output.textContent = problem;
    output.dataset.kind = "error";
    return;
  }
  output.textContent = "Sending…";
  output.dataset.kind = "busy";
  try {
    const { status, body } = await api("POST", "/notifications/test", { rule });
    const [text, kind] = describeTest(status, body);
    output.textContent = text;
    output.dataset.kind = kind;
  } catch (e) {
    output.textContent = `Not sent: ${e}`;
    output.dataset.kind = "error";
  }
}

// ---- Phone system -----------------------------------------------------------------------------

function providerSection(kind) {
  if (!config.provider[kind]) config.provider[kind] = {};
  return config.provider[kind];
}

function renderProvider() {
  const select = byId("provider-kind");
  select.replaceChildren(...providers.map((p) => option(p.kind, p.label, config.provider.kind)));
  const form = providers.find((p) => p.kind === config.provider.kind) || providers[0];
  const box = byId("provider-fields");
  box.replaceChildren();
  if (!form) return;
  show("provider-description", form.description);
  const section = providerSection(form.kind);
  for (const field of form.fields) {
    const label = document.createElement("label");
    label.textContent = field.label;
    label.htmlFor = `provider-${field.key}`;
    const wrap = document.createElement("div");
    const input = document.createElement(field.type === "choice" ? "select" : "input");
    input.id = `provider-${field.key}`;
    const error = document.createElement("span");
    error.className = "error";
    error.dataset.error = `provider.${form.kind}.${field.key}`;
    error.setAttribute("data-testid", `error-provider.${field.key}`);
    const help = document.createElement("span");
    help.className = "hint";
    help.textContent = field.help;
    if (field.type === "secret") {
      input.type = "password";
      input.autocomplete = "off";
      input.setAttribute("data-testid", `provider-secret-${field.key}`);
      input.dataset.secretKey = field.key;
      input.dataset.secretEntry = field.entry;
      input.title = `Kept in the OS keyring under "${field.entry}"`;
      input.placeholder = secretState[field.entry] ? "•••••••• (stored in the keyring; type to replace)" : "not set";
    } else if (field.type === "choice") {
      const current = section[field.key] ?? field.options[0];
      input.replaceChildren(...field.options.map((o) => option(o, o, current)));
      input.setAttribute("data-testid", `provider-field-${field.key}`);
      input.addEventListener("change", () => (section[field.key] = input.value));
    } else if (field.type === "bool") {
      input.type = "checkbox";
      input.checked = Boolean(section[field.key]);
      input.setAttribute("data-testid", `provider-field-${field.key}`);
      input.addEventListener("change", () => (section[field.key] = input.checked));
    } else {
      input.type = field.type === "number" ? "number" : "text";
      if (field.type === "number") {
        input.min = field.min;
        input.max = field.max;
        input.dataset.limit = `provider.${form.kind}.${field.key}`;
      }
      input.placeholder = field.placeholder || "";
      input.value = section[field.key] ?? "";
      input.setAttribute("data-testid", `provider-field-${field.key}`);
      input.addEventListener("input", () => {
        const problem = checkField(field, input.value);
        mark(input, error, problem);
        if (problem) return;
        const value = input.value.trim();
        // An empty optional field means "not set": leave the key out rather than send "".
        if (!field.required && value === "") delete section[field.key];
        else section[field.key] = field.type === "number" ? Number(value) : value;
      });
    }
    wrap.append(input, error);
    box.append(label, wrap, help);
  }
}

function checkField(field, value) {
  const s = String(value).trim();
  if (!s) return field.required ? "Required." : "";
  if (field.type === "number") {
    const limit = { min: field.min, max: field.max };
    const served = limitOf(schema, `provider.${config.provider.kind}.${field.key}`);
    const atMost = served && served.at_most ? Number(providerSection(config.provider.kind)[served.at_most.split(".").pop()]) : undefined;
    return checkNumber(s, limit, Number.isFinite(atMost) ? atMost : undefined);
  }
  if (field.type === "url") return checkUrl(s, !field.required);
  return "";
}

/** The secrets typed in the phone system's form: `[{ kind, key, value }]`. A secret whose keyring
 * entry the configuration does not name yet (the baresip SIP password) gets the form's entry named. */
function typedSecrets() {
  const kind = config.provider.kind;
  const form = providers.find((p) => p.kind === kind);
  const typed = [];
  for (const input of document.querySelectorAll("[data-secret-key]")) {
    if (!input.value) continue;
    const field = form && form.fields.find((f) => f.key === input.dataset.secretKey);
    if (field && field.entry_key) {
      const section = providerSection(kind);
      if (!String(section[field.entry_key] || "").trim()) section[field.entry_key] = field.entry;
    }
    typed.push({ kind, key: input.dataset.secretKey, value: input.value });
  }
  return typed;
}

/** Stores typed secrets under the keyring entries the saved configuration names (the forms are
 * read again after the save, so a changed entry name is the one written). */
async function saveSecrets(typed) {
  for (const { kind, key, value } of typed) {
    const form = providers.find((p) => p.kind === kind);
    const field = form && form.fields.find((f) => f.key === key);
    if (!field) throw new Error(`the ${kind} form has no secret ${key}`);
    const { status, body } = await api("PUT", `/secrets/${encodeURIComponent(field.entry)}`, { value });
    if (status !== 200) throw new Error(body.message || "the keyring refused the secret");
    secretState[field.entry] = true;
  }
}

// ---- Caller lookup ----------------------------------------------------------------------------

const NUMBER_FORM = /^(as-is|e164|00|digits|national|last:(\d+))$/;

function lookupConfig() {
  if (!config.lookup) config.lookup = {};
  return config.lookup;
}

function renderLookup() {
  const l = lookupConfig();
  byId("lookup-url").value = l.url || "";
  byId("lookup-method").value = l.method || "GET";
  byId("lookup-body").value = l.body || "";
  byId("lookup-headers").value = Object.entries(l.headers || {}).map(([k, v]) => `${k}: ${v}`).join("\n");
  byId("lookup-secret-entry").value = l.secret_entry || "";
  byId("lookup-secret-header").value = l.secret_header || "Authorization";
  byId("lookup-secret-prefix").value = l.secret_prefix || "";
  byId("lookup-forms").value = (l.number_forms || ["e164", "national", "digits", "last:9"]).join(", ");
  byId("lookup-name-pointer").value = l.name_pointer ?? "/name";
  byId("lookup-company-pointer").value = l.company_pointer || "";
  byId("lookup-record-pointer").value = l.record_url_pointer || "";
  byId("lookup-timeout").value = l.timeout_ms ?? 1000;
  byId("lookup-ttl").value = l.cache_ttl_secs ?? 600;
  byId("lookup-miss-ttl").value = l.miss_ttl_secs ?? 60;
  byId("lookup-outgoing").checked = Boolean(l.on_outgoing);
  renderLookupSecret();
  renderLookupMethod();
}

function renderLookupSecret() {
  const entry = byId("lookup-secret-entry").value.trim();
  const input = byId("lookup-secret");
  input.disabled = !entry;
  input.placeholder = !entry ? "name a keyring entry first" : secretState[entry] ? "•••••••• (stored in the keyring; type to replace)" : "not set: type the CRM's API key";
}

function renderLookupMethod() {
  const post = byId("lookup-method").value === "POST";
  for (const el of document.querySelectorAll("[data-lookup-post]")) el.hidden = !post;
}

function checkPointer(value) {
  const s = String(value);
  if (s && !s.startsWith("/")) return 'A JSON pointer starts with / ("/name", "/0/company/name").';
  if (/~(?![01])/.test(s)) return "In a JSON pointer ~ must be followed by 0 or 1.";
  return "";
}

/** The numeric inputs of the lookup section and their settings; their bounds come from the schema. */
const LOOKUP_NUMBERS = [["lookup-timeout", "timeout_ms"], ["lookup-ttl", "cache_ttl_secs"], ["lookup-miss-ttl", "miss_ttl_secs"]];

/** `{ headers }` from the "Name: value" lines, or `{ error }`. */
function parseHeaders(text) {
  const headers = {};
  for (const line of String(text).split("\n").map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf(":");
    const name = at > 0 ? line.slice(0, at).trim() : "";
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) return { error: `"${line}" is not a header: write Name: value.` };
    headers[name] = line.slice(at + 1).trim();
  }
  return { headers };
}

function parseForms(text) {
  const forms = String(text).split(/[\s,]+/).map((f) => f.trim().toLowerCase()).filter(Boolean);
  if (!forms.length) return { error: "Name at least one form, e.g. e164." };
  for (const f of forms) {
    const m = f.match(NUMBER_FORM);
    if (!m) return { error: `"${f}" is not a form: use as-is, e164, 00, digits, national or last:N.` };
    if (m[2] && (Number(m[2]) < 4 || Number(m[2]) > 15)) return { error: `${f}: N must be from 4 to 15.` };
  }
  if (new Set(forms).size !== forms.length) return { error: "A form is listed twice." };
  return { forms };
}

/** The [lookup] section from the inputs, marking what is wrong; `null` when something is. */
function readLookup() {
  let ok = true;
  const check = (id, field, message) => (ok = mark(byId(id), byId(`error-lookup.${field}`), message) && ok);
  const l = {};
  const url = byId("lookup-url").value.trim();
  check("lookup-url", "url", checkUrl(url, true));
  if (url) l.url = url;
  l.method = byId("lookup-method").value;
  const body = byId("lookup-body").value.trim();
  if (l.method === "POST" && body) l.body = body;
  const headers = parseHeaders(byId("lookup-headers").value);
  check("lookup-headers", "headers", headers.error || "");
  l.headers = headers.headers || {};
  const entry = byId("lookup-secret-entry").value.trim();
  check("lookup-secret-entry", "secret_entry", entry && !/^\S{1,64}$/.test(entry) ? "1 to 64 characters without spaces, e.g. lookup-api-key." : "");
  if (entry) l.secret_entry = entry;
  l.secret_header = byId("lookup-secret-header").value.trim() || "Authorization";
  l.secret_prefix = byId("lookup-secret-prefix").value;
  const forms = parseForms(byId("lookup-forms").value);
  check("lookup-forms", "number_forms", forms.error || "");
  l.number_forms = forms.forms || [];
  l.name_pointer = byId("lookup-name-pointer").value.trim();
  check("lookup-name-pointer", "name_pointer", checkPointer(l.name_pointer));
  for (const [id, key] of [["lookup-company-pointer", "company_pointer"], ["lookup-record-pointer", "record_url_pointer"]]) {
    const value = byId(id).value.trim();
    check(id, key, checkPointer(value));
    if (value) l[key] = value;
  }
  for (const [id, key] of LOOKUP_NUMBERS) {
    const value = byId(id).value;
    check(id, key, checkNumber(value, limitOf(schema, `lookup.${key}`)));
    l[key] = Number(value);
  }
  l.cache_entries = lookupConfig().cache_entries ?? 1000;
  l.on_outgoing = byId("lookup-outgoing").checked;
  return ok ? l : null;
}

/** Stores a typed API key under the (saved) keyring entry. */
async function saveLookupSecret() {
  const input = byId("lookup-secret");
  const entry = (config.lookup && config.lookup.secret_entry) || "";
  if (!input.value || !entry) return;
  const { status, body } = await api("PUT", `/secrets/${encodeURIComponent(entry)}`, { value: input.value });
  if (status !== 200) throw new Error(body.message || "the keyring refused the API key");
  input.value = "";
  secretState[entry] = true;
  renderLookupSecret();
}

function describeLookup(status, body) {
  if (status !== 200) return [`Not run: ${body.message || "the settings are not valid"}`, "error"];
  const t = body.test;
  const lines = [];
  for (const a of t.attempts) {
    lines.push(`${a.form} → ${a.request.method} ${a.request.url}`);
    for (const [name, value] of a.request.headers) lines.push(`    ${name}: ${value}`);
    if (a.request.body) lines.push(`    ${a.request.body}`);
    if (a.answer) lines.push(`  answered ${a.answer.status}${a.answer.content_type ? ` (${a.answer.content_type})` : ""}: ${a.answer.body_start || "(empty)"}`);
    if (a.contact) lines.push(`  found: ${JSON.stringify(a.contact)}`);
    else if (a.error) lines.push(`  ${a.error}`);
    else if (a.answer) lines.push("  no match");
  }
  const took = ` (${t.elapsed_ms} ms)`;
  if (t.outcome === "found") {
    const c = t.contact;
    const who = [c.name, c.company].filter(Boolean).join(" — ");
    lines.unshift(`Found: ${who || "(no name)"}${c.record_url ? `, record ${c.record_url}` : ""}${took}`);
    return [lines.join("\n"), "ok"];
  }
  if (t.outcome === "no_match") {
    lines.unshift(`The CRM does not know this number in any form${took}`);
    return [lines.join("\n"), ""];
  }
  lines.unshift(`Failed: ${t.error}${took}`);
  return [lines.join("\n"), "error"];
}

async function testLookup() {
  const out = byId("lookup-test-result");
  const lookup = readLookup();
  const number = byId("lookup-test-number").value.trim();
  if (!lookup) return show("lookup-test-result", "Fix the fields marked in red first.", "error");
  if (!lookup.url) return show("lookup-test-result", "Enter the lookup URL first.", "error");
  if (!number) return show("lookup-test-result", "Type a number to look up.", "error");
  show("lookup-test-result", "Asking the CRM…", "busy");
  try {
    const { status, body } = await api("POST", "/lookup/test", { number, lookup });
    const [text, kind] = describeLookup(status, body);
    out.textContent = text;
    out.dataset.kind = kind;
    if (status !== 200 && body.field) showFieldError(body.field, body.message);
  } catch (e) {
    show("lookup-test-result", `Not run: ${e}`, "error");
  }
}

// ---- General ----------------------------------------------------------------------------------

function renderGeneral() {
  const d = config.desktop;
  byId("popups").checked = d.popups;
  byId("notifications").checked = d.notifications;
  byId("dnd").checked = d.do_not_disturb;
  byId("crm-url").value = d.crm_url || "";
  byId("dial-shortcut").value = d.dial_shortcut || "";
  byId("open-crm-on").value = d.open_crm_on || "never";
}

function readGeneral() {
  const d = config.desktop;
  d.popups = byId("popups").checked;
  d.notifications = byId("notifications").checked;
  d.do_not_disturb = byId("dnd").checked;
  const crm = byId("crm-url").value.trim();
  if (crm) d.crm_url = crm;
  else delete d.crm_url;
  d.dial_shortcut = byId("dial-shortcut").value.trim();
  d.open_crm_on = byId("open-crm-on").value;
}

async function setAutostart(enabled) {
  const err = byId("error-autostart");
  err.textContent = "";
  try {
    const on = await desktop.invoke("set_autostart", { enabled });
    byId("autostart").checked = Boolean(on);
    show("save-status", on ? "CallBridge will start when you log in." : "CallBridge will not start at login.", "ok");
  } catch (e) {
    err.textContent = String(e);
    byId("autostart").checked = !enabled;
  }
}

// ---- load, save, status -----------------------------------------------------------------------

function renderListenerStatus(listener) {
  if (!listener) return;
  if (listener.problem) show("listener-status", listener.problem, "error");
  else show("listener-status", listener.url ? `Listening on ${listener.url}` : "Not listening", listener.url ? "ok" : "error");
}

/** What the engine serves that the form shows: the placeholder list and every input's bounds. */
function renderSchema() {
  show("placeholder-list", schema.placeholders.map((p) => `$${p.name}`).join(" "));
  const list = byId("placeholder-list");
  if (list) list.title = schema.placeholders.map((p) => `$${p.name}: ${p.description}`).join("\n");
  const bound = (input, field) => {
    const limit = limitOf(schema, field);
    if (input && limit) {
      input.min = limit.min;
      input.max = limit.max;
    }
  };
  bound(byId("listen-port"), "listener.port");
  for (const [id, key] of LOOKUP_NUMBERS) bound(byId(id), `lookup.${key}`);
}

function render() {
  for (const el of document.querySelectorAll(".error")) el.textContent = "";
  for (const el of document.querySelectorAll("[aria-invalid]")) el.setAttribute("aria-invalid", "false");
  renderSchema();
  byId("listen-port").value = config.listener.port;
  for (const name of SEGMENTS) byId(`segment-${name}`).value = config.listener[name];
  renderExamples();
  validateListener();
  renderEnreach();
  renderRules();
  renderProvider();
  renderLookup();
  renderGeneral();
}

function validateAll() {
  let ok = validateListener();
  for (const input of document.querySelectorAll("[data-enreach]")) {
    ok = mark(input, byId(`error-enreach-${input.dataset.enreach}`), checkUrl(input.value, true)) && ok;
  }
  for (const row of byId("rules").querySelectorAll("tr")) {
    const url = row.querySelector('[data-testid="rule-url"]');
    ok = mark(url, row.querySelector('[data-testid="rule-error"]'), checkUrl(url.value, false)) && ok;
  }
  ok = mark(byId("crm-url"), byId("error-desktop.crm_url"), checkUrl(byId("crm-url").value, true)) && ok;
  const lookup = readLookup();
  if (lookup) config.lookup = lookup;
  return ok && Boolean(lookup);
}

/** Puts an engine error under the field it names (`listener.port`, `notification[2].url`,
 * `provider.kazoo.api_url`); false when the page has no such field. */
function showFieldError(field, message) {
  const where = locate(field);
  let el = null;
  if (where.rule !== undefined) {
    const rows = byId("rules").querySelectorAll('[data-testid="rule-row"]');
    el = rows[where.rule] ? rows[where.rule].querySelector('[data-testid="rule-error"]') : null;
  } else {
    el = document.querySelector(`[data-error="${CSS.escape(where.field)}"]`);
  }
  if (!el) return false;
  el.textContent = message;
  const input = el.parentElement && el.parentElement.querySelector("input, select, textarea");
  if (input) input.setAttribute("aria-invalid", "true");
  el.scrollIntoView({ block: "center" });
  return true;
}

/** Fills the form from a configuration and its revision; nothing is left unsaved afterwards. */
function adopt(newConfig, newRevision) {
  config = newConfig;
  revision = newRevision;
  dirty = false;
  byId("reload").hidden = true;
  render();
}

async function save() {
  readGeneral();
  const v = listenerInputs();
  if (!validateAll()) {
    show("save-status", "Fix the fields marked in red first.", "error");
    return;
  }
  config.listener.port = Number(v.port);
  for (const name of SEGMENTS) config.listener[name] = String(v[name]).trim().replace(/^\/+|\/+$/g, "");
  show("save-status", "Saving…", "busy");
  saving = true;
  revisionSeenWhileSaving = null;
  try {
    const typed = typedSecrets();
    const { status, body } = await api("PUT", "/config", { ...config, revision });
    if (status === 200) {
      adopt(body.config, body.revision);
      let keyProblem = "";
      try {
        // The forms again: their secret fields now name the entries the saved configuration names.
        await loadSchema();
        await saveSecrets(typed);
        await saveLookupSecret();
      } catch (e) {
        keyProblem = String(e.message || e);
      }
      const listener = body.saved.listener;
      renderListenerStatus(listener);
      render();
      const where = body.saved.path ? ` to ${body.saved.path}` : "";
      if (keyProblem) show("save-status", `Saved${where}, but a secret was not stored in the keyring: ${keyProblem}`, "error");
      else show("save-status", `Saved${where} and applied.`, "ok");
      movePageIfListenerMoved(listener);
      return;
    }
    if (status === 409 && body.error === "stale") {
      adopt(body.config, body.revision);
      show(
        "save-status",
        "Not saved: the settings were changed elsewhere while this page was open (for example Do not disturb from the tray, or a site you allowed). The form now shows the settings in force; make your change again and save.",
        "error",
      );
      return;
    }
    const placed = body.field ? showFieldError(body.field, body.message) : false;
    show("save-status", `Not saved: ${body.message}${placed ? "" : body.field ? ` (${body.field})` : ""}`, "error");
  } catch (e) {
    show("save-status", `Not saved: ${e}`, "error");
  } finally {
    saving = false;
    if (revisionSeenWhileSaving && revisionSeenWhileSaving !== revision) onSettingsChanged(revisionSeenWhileSaving);
  }
}

/** Another writer changed the configuration: show it, unless the user has edits, who is then told. */
async function onSettingsChanged(newRevision) {
  if (!newRevision || !revision || newRevision === revision) return;
  if (saving) {
    revisionSeenWhileSaving = newRevision;
    return;
  }
  if (dirty) {
    show("save-status", "The settings were changed elsewhere while you were editing. Saving now would be refused; Reload shows them (your unsaved changes are lost).", "error");
    byId("reload").hidden = false;
    return;
  }
  await reload();
  show("save-status", "The settings were changed elsewhere; the form shows them now.", "ok");
}

async function reload() {
  const [cfg] = await Promise.all([api("GET", "/config"), loadSchema(), loadSecrets()]);
  adopt(cfg.body.config, cfg.body.revision);
  show("save-status", "", "");
}

/** In a browser the page lives on the listener: after a port change, follow it to the new port. */
function movePageIfListenerMoved(listener) {
  if (inApp || !listener || !listener.url) return;
  const target = new URL(listener.url);
  if (target.port !== window.location.port) {
    show("save-status", `Saved. CallBridge now listens on ${listener.url}; opening the settings there…`, "ok");
    setTimeout(() => (window.location.href = `${listener.url}/ui/settings.html`), 800);
  }
}

async function loadSchema() {
  const { status, body } = await api("GET", "/settings/schema");
  if (status !== 200) throw new Error(body.message || `the settings schema answered ${status}`);
  schema = body;
  providers = body.providers || [];
}

async function loadSecrets() {
  const sec = await api("GET", "/secrets");
  secretState = {};
  if (sec.status === 200) for (const s of sec.body.secrets) secretState[s.entry] = s.set;
}

async function load() {
  const [cfg, , , lis] = await Promise.all([api("GET", "/config"), loadSchema(), loadSecrets(), api("GET", "/listener")]);
  renderListenerStatus(lis.body.listener);
  adopt(cfg.body.config, cfg.body.revision);
  if (inApp) {
    byId("autostart").checked = Boolean(await desktop.invoke("autostart_enabled"));
  }
  document.body.dataset.ready = "true";
}

function wire() {
  for (const el of document.querySelectorAll("[data-desktop]")) el.hidden = !inApp;
  for (const id of ["listen-port", "segment-make", "segment-answer", "segment-end"]) {
    byId(id).addEventListener("input", () => {
      validateListener();
      renderExamples();
    });
  }
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", () => copy(byId(button.dataset.copy).textContent, button));
  }
  for (const input of document.querySelectorAll("[data-enreach]")) {
    input.addEventListener("input", () => onEnreachInput(input));
  }
  for (const button of document.querySelectorAll("[data-enreach-test]")) {
    button.addEventListener("click", () => {
      const rule = enreachRule(button.dataset.enreachTest);
      const out = byId("enreach-test-result");
      if (!rule) {
        out.textContent = "Enter a URL first.";
        out.dataset.kind = "error";
        return;
      }
      sendTest(rule, out);
    });
  }
  byId("rule-add").addEventListener("click", () => {
    rules().push({ id: newId("incoming"), event: "incoming", method: "GET", url: "", active: true, note: "" });
    renderRules();
    const urls = byId("rules").querySelectorAll('[data-testid="rule-url"]');
    if (urls.length) urls[urls.length - 1].focus();
  });
  byId("rules-clear-selected").addEventListener("click", () => {
    const count = rules().filter((r) => selected.has(r.id)).length;
    if (!count) {
      show("save-status", "Select the requests to clear first.", "error");
      return;
    }
    show("clear-count", String(count));
    byId("clear-confirm-box").hidden = false;
  });
  byId("clear-confirm").addEventListener("click", () => {
    config.notification = rules().filter((r) => !selected.has(r.id));
    selected = new Set();
    byId("clear-confirm-box").hidden = true;
    renderRules();
    renderEnreach();
  });
  byId("clear-cancel").addEventListener("click", () => (byId("clear-confirm-box").hidden = true));
  byId("provider-kind").addEventListener("change", () => {
    config.provider.kind = byId("provider-kind").value;
    renderProvider();
  });
  byId("crm-url").addEventListener("input", () => mark(byId("crm-url"), byId("error-desktop.crm_url"), checkUrl(byId("crm-url").value, true)));
  byId("autostart").addEventListener("change", () => setAutostart(byId("autostart").checked));
  byId("lookup-method").addEventListener("change", renderLookupMethod);
  byId("lookup-secret-entry").addEventListener("input", renderLookupSecret);
  byId("lookup-test").addEventListener("click", testLookup);
  byId("lookup-test-number").addEventListener("keydown", (e) => {
    if (e.key === "Enter") testLookup();
  });
  byId("save").addEventListener("click", save);
  byId("reload").addEventListener("click", () => reload().catch((e) => show("save-status", `Cannot load the settings: ${e}`, "error")));
  // Any edit of a setting (not the Test number, not the Activity view) is unsaved until Save.
  const edited = (e) => {
    if (e.target.closest("[data-testid=activity]") || e.target === byId("lookup-test-number") || e.target === byId("autostart")) return;
    dirty = true;
  };
  document.querySelector("main").addEventListener("input", edited);
  document.querySelector("main").addEventListener("change", edited);
  onEvent((kind, data) => {
    if (kind === "settings" && data) {
      renderListenerStatus(data.listener);
      onSettingsChanged(data.config_revision).catch((e) => show("save-status", `Cannot load the settings: ${e}`, "error"));
    }
    if (kind === "resync") api("GET", "/config").then(({ body }) => onSettingsChanged(body.revision)).catch(() => {});
    if (kind === "call") refreshActivity();
  });
  wireActivity();
}

wire();
load().catch((e) => show("save-status", `Cannot load the settings: ${e}`, "error"));
