//! `callbridge-desktop`: the CallBridge tray app.
//!
//! A thin Tauri 2 shell over the `callbridge` engine, which runs in process: the tray shows the state
//! (idle, ringing, in call, a problem) and every action; windows (settings, dial, incoming call) are
//! created when opened and destroyed when closed, in a window host process of their own that ends
//! with the last of them, so that WebKit's memory is given back; `tel:`/`callto:` links and a second launch are
//! handed to the running instance. No telephony logic lives here.
//!
//! * [`args`] — the command line (`--config`, `--open`, a `tel:` link).
//! * [`alerts`] — native notifications: a call rings, a call was missed (a click calls back).
//! * [`approval`] — the Call / Block / Always allow dialog for dials from untrusted web pages.
//! * [`desktop`] — the running engine, its settings and listener, shared by everything below.
//! * [`ipc`] — what the pages ask of CallBridge (the API in process, the CRM, Start at login),
//!   answered in the tray process.
//! * [`follow`] — engine events turned into tray updates, popups, notifications and page events.
//! * [`missed`] — the missed calls the user has not looked at yet, counted in the tray.
//! * [`tray`] — the tray icon and menu.
//! * [`windows`] — opening and closing the pages, which live in the window host.
//! * [`host_protocol`] — the private pipe between the tray process and the window host.
//! * [`window_host`] — `--window-host`: the process that holds the windows and ends with the last one.
//! * [`links`] — `tel:` and `callto:` links read into numbers.
//! * [`shortcut`] — the global shortcut that opens the dial popup.
//! * [`app`] — the Tauri application: plugins, setup, the event loop.

// No console window on Windows release builds.
#![cfg_attr(all(not(debug_assertions), target_os = "windows"), windows_subsystem = "windows")]

mod alerts;
mod app;
mod approval;
mod args;
mod desktop;
mod follow;
mod host_protocol;
mod ipc;
#[cfg(target_os = "linux")]
mod link_order;
mod links;
mod missed;
mod shortcut;
mod tray;
mod window_host;
mod windows;

/// Turns GDK's OpenGL support off for this process and the window host it starts, unless `GDK_GL` is
/// set already. GTK loads the system's OpenGL driver when it starts (with Mesa, LLVM too: about 50 MiB
/// of the tray process's memory at idle) for widgets that draw with OpenGL; the tray's icon and menus
/// have none, and WebKitGTK renders pages through its own EGL display, not GDK's. `GDK_GL=disable`:
/// <https://docs.gtk.org/gtk3/running.html>. Set before GTK starts and before any thread does, so no
/// other thread reads the environment meanwhile.
#[cfg(target_os = "linux")]
fn without_gdk_opengl() {
    if std::env::var_os("GDK_GL").is_none() {
        std::env::set_var("GDK_GL", "disable");
    }
}

fn main() -> std::process::ExitCode {
    let args = args::Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("CALLBRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tao=warn,wry=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
    callbridge::panics::install_hook();
    let run = if args.window_host {
        window_host::run()
    } else {
        #[cfg(target_os = "linux")]
        without_gdk_opengl();
        app::run(args)
    };
    match run {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callbridge-desktop: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
