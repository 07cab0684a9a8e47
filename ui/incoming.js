// The incoming-call popup: the caller's number at once, and the name and company when the CRM's caller
// lookup answers (an `updated` call event); Answer and Decline where the phone system can; and "Open in
// CRM", which opens the caller's own record when the lookup gave its URL, else the `[desktop] crm_url`
// template filled in, in the default browser. It closes itself when the call is answered somewhere else
// or ends.

import { api, onEvent, desktop, openInCrm, param, show, byId } from "./api.js";

const callId = param("call");
let answeringHere = false;
// Set once a call event was shown: the first load's answer may be older than the event.
let followed = false;

function render(call) {
  show("incoming-number", call.remote_number);
  show("incoming-name", [call.remote_name, call.company].filter(Boolean).join(" — "));
  const live = call.state !== "ended";
  byId("incoming-answer").hidden = !(call.state === "ringing");
  byId("incoming-decline").hidden = !(call.state === "ringing");
  byId("incoming-hangup").hidden = !(live && call.state === "active");
  show("incoming-title", call.state === "active" ? "In call" : "Incoming call");
}

/** Disables what the provider cannot do, with its reason as the tooltip. */
async function applyCapabilities() {
  const { status, body } = await api("GET", "/status");
  if (status !== 200) return;
  const caps = body.status.provider.capabilities;
  for (const [action, id] of [["answer", "incoming-answer"], ["hangup", "incoming-decline"], ["hangup", "incoming-hangup"]]) {
    const support = caps[action];
    byId(id).disabled = !support.supported;
    byId(id).title = support.reason || "";
  }
}

async function command(path, label) {
  if (path === "/answer") answeringHere = true;
  show("incoming-status", `${label}…`, "busy");
  const { status, body } = await api("POST", path, { call_id: callId });
  if (status !== 200) {
    answeringHere = false;
    show("incoming-status", body.message || `${label} failed (${status}).`, "error");
    return;
  }
  show("incoming-status", "", "");
  render(body.call);
  if (body.call.state === "ended") desktop.close();
}

function follow(event) {
  if (event.call.id !== callId) return;
  if (event.kind === "ended" || (event.kind === "answered" && !answeringHere)) {
    desktop.close();
    return;
  }
  followed = true;
  render(event.call);
}

async function openCrm() {
  show("incoming-status", "Opening the CRM…", "busy");
  try {
    const url = await openInCrm(callId);
    show("incoming-status", `Opened ${url}`, "ok");
  } catch (e) {
    show("incoming-status", String(e.message || e), "error");
  }
}

async function load() {
  if (!callId) {
    show("incoming-status", "No call given.", "error");
    return;
  }
  const { status, body } = await api("GET", `/calls/${encodeURIComponent(callId)}`);
  if (status !== 200) {
    show("incoming-status", body.message || "The call is gone.", "error");
    return;
  }
  if (body.call.state === "ended") {
    desktop.close();
    return;
  }
  if (!followed) render(body.call);
  await applyCapabilities();
}

byId("incoming-answer").addEventListener("click", () => command("/answer", "Answering"));
byId("incoming-decline").addEventListener("click", () => command("/hangup", "Declining"));
byId("incoming-hangup").addEventListener("click", () => command("/hangup", "Hanging up"));
byId("incoming-open-crm").addEventListener("click", openCrm);
onEvent((kind, data) => {
  if (kind === "call") follow(data);
});
load().finally(() => (document.body.dataset.ready = "true"));
