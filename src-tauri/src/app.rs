//! The Tauri application of the tray process: plugins (single instance first, so a second launch never
//! starts a second engine), the engine and tray at setup, and an event loop that keeps running with no
//! window open. Its windows are in the window host ([`crate::windows`]).

use std::sync::Arc;

use anyhow::Context;
use callbridge::config::Config;
use tauri::{AppHandle, Manager, RunEvent};
use tauri_plugin_autostart::MacosLauncher;
use tauri_plugin_deep_link::DeepLinkExt;

use crate::args::{Args, Page};
use crate::desktop::Desktop;
use crate::{alerts, approval, follow, links, missed, shortcut, tray, windows};

pub fn run(args: Args) -> anyhow::Result<()> {
    let path = match args.config.clone() {
        Some(p) => p,
        None => Config::default_path()?,
    };
    // A file that does not load is never replaced by defaults: say what is wrong and stop.
    let config = Config::load(&path).with_context(|| "fix the file or move it away to start with the defaults")?;

    let builder = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(second_launch))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_autostart::init(MacosLauncher::LaunchAgent, None))
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init());
    // On Linux the dial shortcut is a grab of CallBridge's own (see `shortcut`), not this plugin.
    #[cfg(not(target_os = "linux"))]
    let builder = builder.plugin(
        tauri_plugin_global_shortcut::Builder::new()
            .with_handler(|app, _shortcut, event| {
                if event.state() == tauri_plugin_global_shortcut::ShortcutState::Pressed {
                    windows::open_dial(app, None);
                }
            })
            .build(),
    );
    // No command handler: this process has no webview; the pages' commands reach it through the
    // window host (`windows`, `ipc`).
    let app = builder
        .setup(move |app| {
            let handle = app.handle().clone();
            app.manage(windows::WindowHost::default());
            let approvals = approval::Approvals::default();
            app.manage(approvals.clone());
            let approver = Arc::new(approval::WindowApprover::new(handle.clone(), approvals));
            let desktop = tauri::async_runtime::block_on(Desktop::start(config, path, approver))
                .map_err(|e| format!("CallBridge cannot open its data store: {e}"))?;
            app.manage(desktop);
            app.manage(missed::MissedCalls::default());
            alerts::register(&handle);
            tray::create(&handle)?;
            follow::spawn(handle.clone());
            shortcut::apply(&handle, &handle.state::<Desktop>().engine().config());
            links_setup(&handle);
            act_on(&handle, &args);
            Ok(())
        })
        .build(context())
        .context("cannot start the desktop app")?;

    app.run(|app, event| match event {
        // The last window closed: CallBridge lives in the tray, so it keeps running.
        RunEvent::ExitRequested { api, code: None, .. } => api.prevent_exit(),
        RunEvent::Exit => shutdown(app),
        _ => {}
    });
    Ok(())
}

/// The app's config, pages and icons, as built in: the tray process and the window host share them.
pub fn context() -> tauri::Context<tauri::Wry> {
    tauri::generate_context!()
}

/// A second `callbridge-desktop` hands its arguments to this one and exits. Links were already
/// delivered through the deep-link plugin; a bare relaunch opens the settings.
fn second_launch(app: &AppHandle, argv: Vec<String>, _cwd: String) {
    let args = Args::from_argv(&argv);
    let link = args.as_ref().and_then(|a| a.link.as_deref()).is_some_and(|l| links::number_of(l).is_some());
    if link {
        return;
    }
    match args {
        Some(args) if args.open.is_some() => act_on(app, &args),
        _ => windows::open_settings(app),
    }
}

/// Does what the command line asks: open a window, or the dial popup for a link.
fn act_on(app: &AppHandle, args: &Args) {
    match args.open {
        Some(Page::Settings) => windows::open_settings(app),
        Some(Page::Dial) => windows::open_dial(app, None),
        None => {}
    }
    if let Some(link) = &args.link {
        match links::number_of(link) {
            Some(number) => windows::open_dial(app, Some(&number)),
            None => tracing::warn!(%link, "not a tel: or callto: link with a number; ignored"),
        }
    }
}

/// Registers CallBridge for `tel:` and `callto:` where the OS allows it at run time, and opens the
/// dial popup, prefilled, for each link that arrives while it runs. Links are never dialed without a
/// click: any web page can open a `tel:` link.
fn links_setup(app: &AppHandle) {
    #[cfg(any(windows, target_os = "linux"))]
    if let Err(e) = app.deep_link().register_all() {
        tracing::info!(error = %e, "cannot register as the tel:/callto: handler");
    }
    let handle = app.clone();
    app.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            match links::number_of(url.as_str()) {
                Some(number) => windows::open_dial(&handle, Some(&number)),
                None => tracing::warn!(%url, "link without a number; ignored"),
            }
        }
    });
}

fn shutdown(app: &AppHandle) {
    let desktop = app.state::<Desktop>();
    let settings = desktop.settings.clone();
    tauri::async_runtime::block_on(async move {
        settings.stop_listener().await;
        settings.engine().shutdown().await;
    });
}
