//! End-to-end kit for the CallBridge tray app, in the style of kftray's e2e crate: a harness that runs
//! the real app under its own Xvfb display, D-Bus session and `tauri-driver` (which drives
//! WebKitWebDriver), and page objects (`pages`) that find elements only by their `data-testid`.
//!
//! Every [`harness::DesktopApp`] is isolated: a temporary HOME and XDG directories (so autostart
//! entries and config land there), its own X display and session bus (so the single-instance lock of
//! one test never sees another's), and a fake `xdg-open` first on PATH that records what the app asks
//! the OS to open instead of starting a browser. [`fakes`] stands in for the rest of a desktop: a
//! notification server and a tray host on that session bus, and a CRM that answers caller lookups.
// Xvfb, tauri-driver with WebKitWebDriver and /proc: the desktop e2e runs on Linux only.
#![cfg(target_os = "linux")]

pub mod fakes;
pub mod harness;
pub mod pages;
pub mod testid;

pub use harness::DesktopApp;
pub use testid::TestId;
