// The approval dialog (tray app only): a web page that is not trusted asked CallBridge to dial. It
// shows the site and the number; Call, Block or Always allow this site answers, and the app closes the
// window. Nothing here decides anything: the app holds the request and takes the answer.
//
// A page can make the dialog appear just where the user is about to click or while they type, so the
// window is created hidden, asks to be shown and focused only once its content is in place, and its
// buttons stay disabled — clicks and key presses ignored — for its first second on screen, as browsers
// do with their permission prompts. `<body data-armed="true">` says the buttons now take answers.

import { byId, show } from "./api.js";

const tauri = window.__TAURI__;

/** How long the dialog must have been on screen before it takes an answer. */
const ARM_DELAY_MS = 1000;

/** When the buttons start taking answers (performance.now() time); never until shown. */
let armedAt = Infinity;

function buttons() {
  return document.querySelectorAll("[data-answer]");
}

async function load() {
  let request;
  try {
    request = await tauri.core.invoke("approval_request");
  } catch (e) {
    show("approve-status", String(e), "error");
    return;
  }
  show("approve-number", request.number);
  show("approve-origin", request.origin || "a page that did not say where it is");
  show("approve-reason", request.reason);
  // Without an origin there is no site to remember.
  byId("approve-always").hidden = !request.origin;
  for (const button of buttons()) {
    button.addEventListener("click", () => {
      if (performance.now() >= armedAt) answer(button.dataset.answer);
    });
  }
  try {
    await tauri.core.invoke("approval_shown");
  } catch (e) {
    show("approve-status", String(e), "error");
    return;
  }
  arm();
  document.body.dataset.ready = "true";
}

/** Enables the buttons once the dialog has been on screen for ARM_DELAY_MS. */
function arm() {
  const shownAt = performance.now();
  setTimeout(() => {
    armedAt = shownAt + ARM_DELAY_MS;
    for (const b of buttons()) b.disabled = false;
    document.body.dataset.armed = "true";
  }, ARM_DELAY_MS);
}

async function answer(choice) {
  armedAt = Infinity;
  for (const b of buttons()) b.disabled = true;
  try {
    await tauri.core.invoke("approval_answer", { answer: choice });
    show("approve-status", choice === "deny" ? "Blocked." : "Calling…", "ok");
  } catch (e) {
    show("approve-status", String(e), "error");
  }
}

load();
