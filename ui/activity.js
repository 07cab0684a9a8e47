// The settings page's Activity view: the delivery log of the URL call notifications (GET
// /api/v1/deliveries), newest first, with each delivery's status, attempts and last error, and a
// Retry button on the ones not yet delivered (POST /api/v1/deliveries/{id}/retry). It refreshes on
// call events, every few seconds while shown, and on Refresh.

import { api, byId, show } from "./api.js";

const LIMIT = 50;
const EVERY_MS = 4000;

function text(tag, value, testid, className) {
  const el = document.createElement(tag);
  el.textContent = value == null ? "" : String(value);
  if (testid) el.setAttribute("data-testid", testid);
  if (className) el.className = className;
  return el;
}

function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso || "") : d.toLocaleString();
}

/** The last error as people read it: what went wrong, else the CRM's HTTP status. */
function problem(entry) {
  if (entry.last_error) return entry.last_error;
  return entry.last_http_status && entry.status !== "delivered" ? `HTTP ${entry.last_http_status}` : "";
}

function row(entry) {
  const tr = document.createElement("tr");
  tr.setAttribute("data-testid", "delivery-row");
  tr.dataset.deliveryId = String(entry.id);
  tr.dataset.status = entry.status;
  const cells = [
    text("span", when(entry.created_at), "delivery-time"),
    text("span", entry.event, "delivery-event"),
    text("span", entry.rule_id, "delivery-rule"),
    text("span", `${entry.method} ${entry.url}`, "delivery-url", "result"),
    text("span", entry.status, "delivery-status"),
    text("span", entry.attempts, "delivery-attempts"),
    text("span", problem(entry), "delivery-error", "result"),
  ];
  cells[4].dataset.kind = { delivered: "ok", failed: "error", pending: "busy" }[entry.status] || "";
  for (const c of cells) {
    const td = document.createElement("td");
    td.append(c);
    tr.append(td);
  }
  const action = document.createElement("td");
  if (entry.status !== "delivered") {
    const retry = text("button", "Retry", "delivery-retry", "small");
    retry.type = "button";
    retry.addEventListener("click", () => retryDelivery(entry.id, retry));
    action.append(retry);
  }
  tr.append(action);
  return tr;
}

let loading = null;

/** Loads the newest deliveries (of the chosen status) into the table. */
export function refreshActivity() {
  // One load at a time: a timer tick during a slow load waits for it instead of racing it.
  if (!loading) loading = load().finally(() => (loading = null));
  return loading;
}

async function load() {
  const status = byId("activity-status").value;
  const query = `?limit=${LIMIT}${status ? `&status=${encodeURIComponent(status)}` : ""}`;
  try {
    const { status: code, body } = await api("GET", `/deliveries${query}`);
    if (code !== 200) {
      show("activity-result", `Cannot read the delivery log: ${body.message || code}`, "error");
      return;
    }
    const entries = body.deliveries || [];
    byId("deliveries").replaceChildren(...entries.map(row));
    byId("activity-empty").hidden = entries.length > 0;
    byId("activity").dataset.loaded = "true";
  } catch (e) {
    show("activity-result", `Cannot read the delivery log: ${e}`, "error");
  }
}

async function retryDelivery(id, button) {
  button.disabled = true;
  show("activity-result", `Retrying delivery ${id}…`, "busy");
  try {
    const { status, body } = await api("POST", `/deliveries/${encodeURIComponent(id)}/retry`);
    if (status === 200) show("activity-result", `Delivery ${id} is being sent again.`, "ok");
    else show("activity-result", `Delivery ${id} not retried: ${body.message || status}`, "error");
  } catch (e) {
    show("activity-result", `Delivery ${id} not retried: ${e}`, "error");
  }
  await refreshActivity();
}

/** Wires the view's controls and starts refreshing it. */
export function wireActivity() {
  byId("activity-refresh").addEventListener("click", refreshActivity);
  byId("activity-status").addEventListener("change", refreshActivity);
  setInterval(() => {
    if (!document.hidden) refreshActivity();
  }, EVERY_MS);
  refreshActivity();
}
