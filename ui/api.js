// The one seam between the pages and CallBridge.
//
// Inside the tray app (Tauri) every API call goes over IPC to the `api` command, which hands it to the
// same /api/v1 router in process — so the settings page works even while the listen port is taken —
// and events arrive as Tauri events. In a browser (pages served by `callbridge serve` at /ui/) calls go
// to /api/v1/ over HTTP and events come from the Server-Sent Events stream /api/v1/events.
//
// In a browser, every call sends the page key CallBridge put into this page's HTML (the
// `callbridge-page` meta tag, new at every start): it is what lets the settings page reach the
// configuration and the secrets, which web pages elsewhere — even trusted CRM pages — cannot.

const tauri = window.__TAURI__;

const pageKeyTag = document.querySelector('meta[name="callbridge-page"]');
const pageKey = pageKeyTag ? pageKeyTag.getAttribute("content") : null;

/** True inside the tray app, where the desktop-only settings (start at login…) exist. */
export const inApp = Boolean(tauri && tauri.core);

/** Calls the JSON API: resolves to {status, body} whatever the status; rejects only when unreachable. */
export async function api(method, path, body) {
  if (inApp) {
    return tauri.core.invoke("api", { method, path, body: body === undefined ? null : body });
  }
  const init = { method, headers: {} };
  if (pageKey) init.headers["X-CallBridge-Page"] = pageKey;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`/api/v1${path}`, init);
  let parsed = null;
  try {
    parsed = await response.json();
  } catch (_) {
    parsed = { ok: false, message: `CallBridge answered ${response.status} without JSON` };
  }
  return { status: response.status, body: parsed };
}

/** Calls `handler(kind, data)` for each "call" (a CallEvent), "settings" change and "resync"; in the
 * app also "prefill" (a number for the dial popup, from a tel: link). */
export function onEvent(handler) {
  if (inApp) {
    tauri.event.listen("callbridge://call", (e) => handler("call", e.payload));
    tauri.event.listen("callbridge://settings", (e) => handler("settings", e.payload));
    tauri.event.listen("callbridge://prefill", (e) => handler("prefill", e.payload));
    return;
  }
  const source = new EventSource("/api/v1/events");
  for (const kind of ["call", "settings", "resync"]) {
    source.addEventListener(kind, (e) => handler(kind, JSON.parse(e.data || "{}")));
  }
}

/** Desktop-only commands; each returns null in a browser. */
export const desktop = {
  invoke(command, args) {
    return inApp ? tauri.core.invoke(command, args || {}) : Promise.resolve(null);
  },
  /** Closes the window this page is in (a browser can only close windows a script opened). */
  close() {
    return inApp ? tauri.core.invoke("close_window") : Promise.resolve(window.close());
  },
};

/** Opens the CRM page for a call: the app hands it to the OS's default browser; a browser opens a tab. */
export async function openInCrm(callId) {
  if (inApp) {
    return tauri.core.invoke("open_crm", { callId });
  }
  const { status, body } = await api("GET", `/calls/${encodeURIComponent(callId)}/crm-url`);
  if (status !== 200) throw new Error(body.message || "cannot open the CRM");
  window.open(body.url, "_blank", "noopener");
  return body.url;
}

/** The query parameter `name` of this page's URL. */
export function param(name) {
  return new URLSearchParams(window.location.search).get(name);
}

/** What people paste, cleaned for dialing: `tel:`/`callto:` and separators go, `+ * #` and digits stay. */
export function cleanNumber(text) {
  let s = String(text || "").trim();
  s = s.replace(/^(tel|callto|sip):(\/\/)?/i, "");
  s = s.split(/[;?@]/)[0];
  try {
    s = decodeURIComponent(s);
  } catch (_) {
    // Not percent-encoded: keep it as it is.
  }
  const plus = s.trim().startsWith("+") ? "+" : "";
  return plus + s.replace(/[^0-9*#]/g, "");
}

/** Sets the text of the element with data-testid `id`. */
export function show(id, text, kind) {
  const el = document.querySelector(`[data-testid="${id}"]`);
  if (!el) return;
  el.textContent = text || "";
  el.dataset.kind = kind || "";
}

export function byId(id) {
  return document.querySelector(`[data-testid="${id}"]`);
}
