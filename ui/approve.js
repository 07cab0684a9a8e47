// The approval dialog (tray app only): a web page that is not trusted asked CallBridge to dial. It
// shows the site and the number; Call, Block or Always allow this site answers, and the app closes the
// window. Nothing here decides anything: the app holds the request and takes the answer.

import { byId, show } from "./api.js";

const tauri = window.__TAURI__;

async function load() {
  let request;
  try {
    request = await tauri.core.invoke("approval_request");
  } catch (e) {
    show("approve-status", String(e), "error");
    for (const b of document.querySelectorAll("[data-answer]")) b.disabled = true;
    return;
  }
  show("approve-number", request.number);
  show("approve-origin", request.origin || "a page that did not say where it is");
  show("approve-reason", request.reason);
  // Without an origin there is no site to remember.
  byId("approve-always").hidden = !request.origin;
  for (const button of document.querySelectorAll("[data-answer]")) {
    button.addEventListener("click", () => answer(button.dataset.answer));
  }
  document.body.dataset.ready = "true";
}

async function answer(choice) {
  for (const b of document.querySelectorAll("[data-answer]")) b.disabled = true;
  try {
    await tauri.core.invoke("approval_answer", { answer: choice });
    show("approve-status", choice === "deny" ? "Blocked." : "Calling…", "ok");
  } catch (e) {
    show("approve-status", String(e), "error");
  }
}

load();
