// The dial popup: type or paste a number (cleaned of `tel:`, spaces and dashes), press Call, follow the
// call's progress; the provider's own error text is shown when it refuses. Opened from the tray's
// "Dial…" and "Missed calls", the global shortcut, a missed-call notification and `tel:`/`callto:`
// links (prefilled, never dialed without a click). Its Recent list marks the calls that were missed.

import { api, onEvent, desktop, param, cleanNumber, show, byId } from "./api.js";

let currentCall = null;

const PROGRESS = {
  outgoing: ["Calling…", "busy"],
  answered: ["Connected", "ok"],
  ended: ["Call ended", ""],
};

function describeEnd(call) {
  const how = call.disposition ? ` (${call.disposition})` : "";
  return `Call to ${call.remote_number} ended${how}`;
}

function follow(event) {
  // "updated" (the caller lookup found a name) changes nothing the dial popup shows.
  if (!currentCall || event.call.id !== currentCall || event.kind === "updated") return;
  const call = event.call;
  if (event.kind === "ended") {
    show("dial-status", describeEnd(call), "");
    byId("dial-hangup").hidden = true;
    currentCall = null;
    loadRecent();
    return;
  }
  const [text, kind] = PROGRESS[event.kind] || ["", ""];
  const state = call.state === "ringing" ? "Ringing…" : text;
  show("dial-status", `${state} ${call.remote_number}`, kind);
}

async function dial(e) {
  e.preventDefault();
  const input = byId("dial-number");
  const number = cleanNumber(input.value);
  input.value = number;
  if (!number.replace(/\D/g, "")) {
    show("dial-status", "Enter a number to call.", "error");
    return;
  }
  show("dial-status", `Dialing ${number}…`, "busy");
  byId("dial-call").disabled = true;
  try {
    const { status, body } = await api("POST", "/dial", { number });
    if (status !== 200) {
      show("dial-status", body.message || `The call failed (${status}).`, "error");
      return;
    }
    currentCall = body.call.id;
    byId("dial-hangup").hidden = false;
    const state = body.call.state === "ringing" ? "Ringing…" : "Calling…";
    show("dial-status", `${state} ${body.call.remote_number}`, "busy");
    byId("dial-status").dataset.callId = currentCall;
  } catch (err) {
    show("dial-status", `CallBridge did not answer: ${err}`, "error");
  } finally {
    byId("dial-call").disabled = false;
  }
}

async function hangup() {
  if (!currentCall) return;
  const { status, body } = await api("POST", "/hangup", { call_id: currentCall });
  if (status !== 200) show("dial-status", body.message, "error");
}

async function loadRecent() {
  const { status, body } = await api("GET", "/calls");
  if (status !== 200) return;
  const seen = new Set();
  const list = byId("dial-recent");
  list.replaceChildren();
  for (const call of body.calls) {
    if (seen.has(call.remote_number) || seen.size >= 8) continue;
    seen.add(call.remote_number);
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("data-testid", "dial-recent-item");
    const arrow = call.direction === "in" ? "↙" : "↗";
    const missed = call.direction === "in" && call.disposition === "missed";
    button.textContent = `${arrow} ${call.remote_number}${call.remote_name ? ` — ${call.remote_name}` : ""}${missed ? " (missed)" : ""}`;
    button.dataset.missed = String(missed);
    if (missed) button.classList.add("missed");
    button.addEventListener("click", () => {
      byId("dial-number").value = call.remote_number;
      byId("dial-number").focus();
    });
    item.append(button);
    list.append(item);
  }
  if (!seen.size) {
    const item = document.createElement("li");
    item.className = "hint";
    item.textContent = "No calls yet.";
    list.append(item);
  }
}

function wire() {
  const input = byId("dial-number");
  input.addEventListener("paste", (e) => {
    const text = (e.clipboardData || window.clipboardData).getData("text");
    e.preventDefault();
    input.value = cleanNumber(text);
  });
  const prefill = param("number");
  if (prefill) input.value = cleanNumber(prefill);
  byId("dial-form").addEventListener("submit", dial);
  byId("dial-hangup").addEventListener("click", hangup);
  byId("dial-close").addEventListener("click", () => desktop.close());
  window.addEventListener("keydown", (e) => {
    if (e.key === "Escape") desktop.close();
  });
  onEvent((kind, data) => {
    if (kind === "call") follow(data);
    if (kind === "prefill") {
      input.value = cleanNumber(data);
      input.focus();
    }
  });
  loadRecent().finally(() => (document.body.dataset.ready = "true"));
  input.focus();
}

wire();
