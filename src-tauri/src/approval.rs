//! The Call / Block / Always allow dialog: the desktop's [`DialApprover`].
//!
//! When a web page that is not trusted asks CallBridge to dial, the engine asks this approver. Each
//! request gets its own small always-on-top window (`ui/approve.html`, label `approve-{n}`, in the
//! window host, see [`crate::windows`]) showing the site and the number; the page reads its request
//! and sends the answer back with the `approval_request` / `approval_answer` commands, which the
//! window host hands to [`request`] and [`answer`] here, in the tray process, where the waiting
//! requests are kept. No answer in time, the window closed (or lost with a window host that died), or
//! the wait abandoned (the engine gave up, the browser went away): the call is refused and the window
//! goes.
//!
//! A web page decides when the dialog appears, so it could time it to catch a click or a key press
//! meant for another window. The window is therefore created hidden and without focus; the page shows
//! and focuses it (`approval_shown`, done by the window host) once its content is in place, and keeps
//! its buttons disabled for the first second on screen (`ui/approve.js`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use callbridge::security::approval::{Approval, ApprovalRequest, DialApprover};
use callbridge::security::APPROVAL_TIMEOUT;
use tauri::{AppHandle, Manager};
use tokio::sync::oneshot;

use crate::windows;

const LABEL_PREFIX: &str = "approve-";

/// Answer before the engine's own deadline, so the refusal is ours and the window is closed by us.
const WAIT: Duration = APPROVAL_TIMEOUT.saturating_sub(Duration::from_secs(2));

/// The requests waiting for the user, by number. Managed by Tauri (in the tray process) and shared
/// with the approver.
#[derive(Debug, Clone, Default)]
pub struct Approvals {
    pending: Arc<Mutex<HashMap<u64, Pending>>>,
    next: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Pending {
    request: ApprovalRequest,
    answer: oneshot::Sender<Approval>,
}

impl Approvals {
    fn add(&self, request: ApprovalRequest) -> (u64, oneshot::Receiver<Approval>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (answer, receiver) = oneshot::channel();
        self.lock().insert(id, Pending { request, answer });
        (id, receiver)
    }

    fn request(&self, id: u64) -> Option<ApprovalRequest> {
        self.lock().get(&id).map(|p| p.request.clone())
    }

    /// Gives request `id` its answer; false when it is no longer waiting.
    fn answer(&self, id: u64, approval: Approval) -> bool {
        match self.lock().remove(&id) {
            Some(pending) => pending.answer.send(approval).is_ok(),
            None => false,
        }
    }

    fn forget(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Pending>> {
        // A panic while holding the lock leaves a usable map: recover it rather than refuse forever.
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Asks the user with a window per request.
#[derive(Debug, Clone)]
pub struct WindowApprover {
    app: AppHandle,
    approvals: Approvals,
}

impl WindowApprover {
    pub fn new(app: AppHandle, approvals: Approvals) -> WindowApprover {
        WindowApprover { app, approvals }
    }
}

#[async_trait]
impl DialApprover for WindowApprover {
    async fn approve(&self, request: &ApprovalRequest) -> Approval {
        let (id, answer) = self.approvals.add(request.clone());
        // Whatever ends the wait — answer, timeout, or this future being dropped — closes the window.
        let _window = OpenWindow { app: self.app.clone(), approvals: self.approvals.clone(), id };
        if let Err(e) = open(&self.app, id, request) {
            tracing::error!(error = %e, "cannot open the approval window; refusing the call");
            return Approval::Deny;
        }
        tracing::info!(origin = ?request.origin, number = %request.number, "asking the user to approve a dial");
        let approval = match tokio::time::timeout(WAIT, answer).await {
            Ok(Ok(approval)) => approval,
            Ok(Err(_)) => Approval::Deny,
            Err(_) => {
                tracing::info!(origin = ?request.origin, "no answer in time; refusing the call");
                Approval::Deny
            }
        };
        // "Always allow" needs an origin to remember; without one it is a plain Call.
        match (approval, &request.origin) {
            (Approval::AllowAlways, None) => Approval::Allow,
            (approval, _) => approval,
        }
    }
}

/// Closes request `id`'s window and forgets it when dropped.
struct OpenWindow {
    app: AppHandle,
    approvals: Approvals,
    id: u64,
}

impl Drop for OpenWindow {
    fn drop(&mut self) {
        self.approvals.forget(self.id);
        windows::close(&self.app, &label(self.id));
    }
}

fn label(id: u64) -> String {
    format!("{LABEL_PREFIX}{id}")
}

fn open(app: &AppHandle, id: u64, request: &ApprovalRequest) -> Result<(), String> {
    let title = match &request.origin {
        Some(origin) => format!("Allow {origin} to call {}? — CallBridge", request.number),
        None => format!("Allow a web page to call {}? — CallBridge", request.number),
    };
    // Neither seen nor focused before its content is there: the page shows it (`approval_shown`).
    windows::open_approval(app, &label(id), format!("approve.html?id={id}"), title)
}

/// Window `label` is gone: when it was an approval dialog still waiting, closing it is Block.
pub fn window_closed(app: &AppHandle, label: &str) {
    if let (Ok(id), Some(approvals)) = (own_id(label), app.try_state::<Approvals>()) {
        approvals.answer(id, Approval::Deny);
    }
}

/// Whether window `label` is an approval dialog (the window host shows only those on request).
pub fn is_approval_window(label: &str) -> bool {
    own_id(label).is_ok()
}

/// The id of the request an approval window is for (`approve-7` → 7).
fn own_id(label: &str) -> Result<u64, String> {
    label
        .strip_prefix(LABEL_PREFIX)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| "only an approval window can answer an approval".to_owned())
}

/// What approval window `label` asks about.
pub fn request(approvals: &Approvals, label: &str) -> Result<ApprovalRequest, String> {
    let id = own_id(label)?;
    approvals.request(id).ok_or_else(|| "this request was already answered or has expired".to_owned())
}

/// The user's answer from approval window `label`: `allow`, `allow_always` or `deny`.
pub fn answer(approvals: &Approvals, label: &str, answer: &str) -> Result<(), String> {
    let id = own_id(label)?;
    let approval = match answer {
        "allow" => Approval::Allow,
        "allow_always" => Approval::AllowAlways,
        "deny" => Approval::Deny,
        other => return Err(format!("{other:?} is not an answer; use allow, allow_always or deny")),
    };
    if approvals.answer(id, approval) {
        Ok(())
    } else {
        Err("this request was already answered or has expired".to_owned())
    }
}
