//! Runs the real tray app for one test: Xvfb, a private D-Bus session, `tauri-driver` (with
//! WebKitWebDriver) and a WebDriver session, all in a temporary home that is removed afterwards.
//!
//! The app binary is `$CALLBRIDGE_DESKTOP_BIN`, else `target/debug/callbridge-desktop`;
//! `tauri-driver` is `$TAURI_DRIVER`, else found on PATH or in `~/.cargo/bin`. `scripts/desktop-e2e.sh`
//! builds and installs both.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use thirtyfour::prelude::*;
use thirtyfour::WindowHandle;

/// One desktop session at a time: WebKit processes are heavy and the machines have two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A running tray app under test.
#[derive(Debug)]
pub struct DesktopApp {
    pub driver: WebDriver,
    /// `http://127.0.0.1:PORT`: the app's listener, for checking what the UI did.
    pub api: String,
    pub home: PathBuf,
    pub config_path: PathBuf,
    env: Vec<(String, String)>,
    processes: Vec<Child>,
    logs: Arc<Mutex<String>>,
    _guard: tokio::sync::MutexGuard<'static, ()>,
    _dir: tempfile::TempDir,
}

/// A free loopback port (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn app_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CALLBRIDGE_DESKTOP_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("callbridge-desktop");
    assert!(bin.exists(), "{} is missing: run scripts/desktop-e2e.sh (it builds the app)", bin.display());
    bin
}

fn tauri_driver() -> PathBuf {
    if let Some(p) = std::env::var_os("TAURI_DRIVER") {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("tauri-driver"))
        .find(|p| p.exists());
    let in_cargo = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/tauri-driver")).filter(|p| p.exists());
    on_path.or(in_cargo).expect("tauri-driver is missing: cargo install tauri-driver --locked (scripts/desktop-e2e.sh does)")
}

/// Starts `cmd` and returns it with the first line it prints on stdout.
fn spawn_reading_first_line(mut cmd: Command, what: &str) -> (Child, String) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).stdin(Stdio::null());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_else(|| panic!("{what} printed nothing"));
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    (child, first.trim().to_owned())
}

/// A gnome-keyring in the foreground on the session bus `bus`, its login keyring created unlocked
/// (the password is read from stdin); returns once it has said where its control socket is.
fn start_keyring(bus: &str, home: &Path) -> Child {
    use std::io::Write;
    let data = home.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let mut child = Command::new("gnome-keyring-daemon")
        .args(["--foreground", "--unlock", "--components=secrets"])
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .env("HOME", home)
        .env("XDG_DATA_HOME", &data)
        .env("XDG_RUNTIME_DIR", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start gnome-keyring-daemon (apt-get install gnome-keyring): {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        // A failed write shows as the daemon never taking the name, below.
        let _ = stdin.write_all(b"callbridge-test");
    }
    // It says nothing in the foreground: wait until it owns the Secret Service's name on the bus.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let owns_name = || {
        Command::new("dbus-send")
            .args(["--session", "--dest=org.freedesktop.DBus", "--print-reply", "/org/freedesktop/DBus"])
            .args(["org.freedesktop.DBus.NameHasOwner", "string:org.freedesktop.secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", bus)
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).contains("boolean true"))
            .unwrap_or(false)
    };
    let mut ready = owns_name();
    while !ready && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        ready = owns_name();
    }
    if !ready {
        let _ = child.kill();
        let _ = child.wait();
        panic!("gnome-keyring-daemon did not take the Secret Service name within 10 s (is dbus-send installed? apt-get install dbus)");
    }
    child
}

impl DesktopApp {
    /// Writes `config` (TOML) and starts the app with `args` (e.g. `["--open", "settings"]`; a window
    /// must open at start, because WebKitWebDriver attaches to the first webview).
    pub async fn launch(config: &str, args: &[&str]) -> DesktopApp {
        DesktopApp::start(config, args, false, |_| ()).await.0
    }

    /// [`DesktopApp::launch`], with `on_bus` run on the test's session bus address before the app
    /// starts: for fakes of the desktop's services (a notification server, a tray host) that must be
    /// there when the app looks for them. Returns what `on_bus` made, kept by the caller.
    pub async fn launch_with_bus<T>(config: &str, args: &[&str], on_bus: impl FnOnce(&str) -> T) -> (DesktopApp, T) {
        DesktopApp::start(config, args, false, on_bus).await
    }

    /// Like [`Self::launch`], with an unlocked keyring (a gnome-keyring of its own on the app's
    /// session bus, its files in the app's home), so the app can store secrets.
    pub async fn launch_with_keyring(config: &str, args: &[&str]) -> DesktopApp {
        DesktopApp::start(config, args, true, |_| ()).await.0
    }

    async fn start<T>(config: &str, args: &[&str], keyring: bool, on_bus: impl FnOnce(&str) -> T) -> (DesktopApp, T) {
        let guard = ONE_AT_A_TIME.lock().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().to_owned();
        let config_path = home.join("callbridge.toml");
        std::fs::write(&config_path, config).expect("write config");
        let bin = home.join("bin");
        std::fs::create_dir_all(&bin).expect("bin dir");
        // What the app asks the OS to open (Open in CRM) is recorded here instead of opening a browser.
        let opener = bin.join("xdg-open");
        std::fs::write(&opener, format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n", home.join("opened.txt").display()))
            .expect("fake xdg-open");
        std::fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");

        let mut processes = Vec::new();
        let mut xvfb = Command::new("Xvfb");
        xvfb.args(["-displayfd", "1", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"]);
        let (child, display) = spawn_reading_first_line(xvfb, "Xvfb (apt-get install xvfb)");
        processes.push(child);
        let mut dbus = Command::new("dbus-daemon");
        dbus.args(["--session", "--nofork", "--print-address=1"]);
        let (child, bus) = spawn_reading_first_line(dbus, "dbus-daemon (apt-get install dbus)");
        processes.push(child);
        if keyring {
            processes.push(start_keyring(&bus, &home));
        }

        let services = on_bus(&bus);

        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let env: Vec<(String, String)> = vec![
            ("DISPLAY".into(), format!(":{display}")),
            ("DBUS_SESSION_BUS_ADDRESS".into(), bus),
            ("HOME".into(), home.display().to_string()),
            ("XDG_CONFIG_HOME".into(), home.join("config").display().to_string()),
            ("XDG_DATA_HOME".into(), home.join("data").display().to_string()),
            ("XDG_CACHE_HOME".into(), home.join("cache").display().to_string()),
            ("XDG_RUNTIME_DIR".into(), home.display().to_string()),
            ("PATH".into(), path),
            ("CALLBRIDGE_LOG".into(), "info,callbridge=debug,callbridge_desktop=debug".into()),
            ("NO_AT_BRIDGE".into(), "1".into()),
            ("NO_COLOR".into(), "1".into()),
            // Xvfb has no GPU: WebKit's compositing mode paints (and snapshots) unreliably there.
            ("WEBKIT_DISABLE_COMPOSITING_MODE".into(), "1".into()),
            ("WEBKIT_DISABLE_DMABUF_RENDERER".into(), "1".into()),
        ];
        let mut app_args: Vec<String> = vec!["--config".into(), config_path.display().to_string()];
        app_args.extend(args.iter().map(|a| a.to_string()));
        let logs = Arc::new(Mutex::new(String::new()));
        // WebKitWebDriver now and then never attaches to the app's first webview (the app waits
        // for it forever); a session that does not start within a minute is started again.
        let mut driver = None;
        for attempt in 1..=3 {
            let (child, session) = start_session(&env, &app_args, &logs).await;
            processes.push(child);
            match session {
                Ok(d) => {
                    driver = Some(d);
                    break;
                }
                Err(e) => {
                    eprintln!("[harness] WebDriver session attempt {attempt} failed: {e}");
                    if let Some(child) = processes.pop() {
                        kill_tree(child);
                    }
                }
            }
        }
        let Some(driver) = driver else {
            panic!("no WebDriver session with the app\nlogs:\n{}", logs.lock().map(|l| l.clone()).unwrap_or_default());
        };
        let api = api_url(config);
        let app = DesktopApp { driver, api, home, config_path, env, processes, logs, _guard: guard, _dir: dir };
        app.wait_for_api().await;
        (app, services)
    }

    async fn wait_for_api(&self) {
        let url = format!("{}/health", self.api);
        callbridge_e2e::eventually_async(Duration::from_secs(30), "the app's listener", || async {
            reqwest::get(&url).await.ok().filter(|r| r.status().is_success()).map(|_| ())
        })
        .await;
    }

    /// The address of the test's own session bus, which the app uses.
    pub fn bus_address(&self) -> &str {
        self.env.iter().find(|(k, _)| k == "DBUS_SESSION_BUS_ADDRESS").map(|(_, v)| v.as_str()).unwrap_or_default()
    }

    /// Everything the app (and the drivers) logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Runs `callbridge-desktop ARGS` a second time in the same session, as a browser opening a
    /// `tel:` link or a user relaunching would; it hands over to the running app and exits.
    pub fn launch_again(&self, args: &[&str]) -> std::process::ExitStatus {
        Command::new(app_binary())
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .status()
            .expect("second launch")
    }

    /// Presses a key combination (xdotool's syntax, e.g. `ctrl+alt+c`) on the app's display, as a
    /// person at the keyboard would: through the X server's XTEST extension, so a global grab sees it.
    pub fn press_keys(&self, keys: &str) {
        let status = Command::new("xdotool")
            .args(["key", "--clearmodifiers", keys])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .status()
            .expect("xdotool (apt-get install xdotool)");
        assert!(status.success(), "xdotool key {keys}: {status:?}");
    }

    /// The secret the app's OS keyring (the Secret Service of its D-Bus session) holds under
    /// `entry`, read with `secret-tool`, not through CallBridge; `None` when there is none.
    pub fn keyring_secret(&self, entry: &str) -> Option<String> {
        let out = Command::new("secret-tool")
            .args(["lookup", "service", "CallBridge", "username", entry])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .output()
            .expect("secret-tool (apt-get install libsecret-tools)");
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// What the app handed to the OS to open (the fake `xdg-open` records each call).
    pub fn opened_urls(&self) -> Vec<String> {
        std::fs::read_to_string(self.home.join("opened.txt")).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    /// The app's API: status and JSON.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        callbridge_e2e::bridge::request(reqwest::Client::new().get(format!("{}{path}", self.api))).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        callbridge_e2e::bridge::request(reqwest::Client::new().post(format!("{}{path}", self.api)).json(&body)).await
    }

    /// Waits until a window other than `known` opens and switches to it.
    pub async fn switch_to_new_window(&self, known: &[WindowHandle], what: &str) -> WindowHandle {
        let handle = callbridge_e2e::eventually_async(Duration::from_secs(20), what, || async {
            let handles = self.driver.windows().await.ok()?;
            handles.into_iter().find(|h| !known.contains(h))
        })
        .await;
        self.driver.switch_to_window(handle.clone()).await.expect("switch window");
        handle
    }

    /// Waits until window `handle` is gone (closed and destroyed).
    pub async fn wait_window_closed(&self, handle: &WindowHandle, what: &str) {
        callbridge_e2e::eventually_async(Duration::from_secs(20), what, || async {
            let handles = self.driver.windows().await.ok()?;
            (!handles.contains(handle)).then_some(())
        })
        .await;
    }

    /// With `$CALLBRIDGE_SCREENSHOTS` set (`scripts/desktop-e2e.sh --screenshots`), saves a screenshot
    /// of the current window there as `name`: that is where the README's pictures in `docs/` come from.
    /// Otherwise it does nothing: WebKitWebDriver sometimes drops the session while capturing an
    /// undecorated popup, and the regular run should fail only on what the app does.
    pub async fn screenshot(&self, name: &str) -> Option<PathBuf> {
        let dir = PathBuf::from(std::env::var_os("CALLBRIDGE_SCREENSHOTS")?);
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let png = self.driver.screenshot_as_png().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG") && png.len() > 2_000, "the screenshot is not a picture of a page");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("write screenshot");
        Some(path)
    }

    /// Like [`DesktopApp::screenshot`], but the picture is taken from the X server (the area of the
    /// current window, as WebDriver reports it) rather than by WebKitWebDriver, whose screenshot of the
    /// undecorated, always-on-top popups never answers under Xvfb here. What is on the display is what
    /// the user would see.
    pub async fn screenshot_from_display(&self, name: &str) -> Option<PathBuf> {
        let dir = PathBuf::from(std::env::var_os("CALLBRIDGE_SCREENSHOTS")?);
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let rect = self.driver.get_window_rect().await.expect("window rect");
        let display = self.env.iter().find(|(k, _)| k == "DISPLAY").map(|(_, v)| v.clone()).expect("DISPLAY");
        let area = [rect.x, rect.y, rect.width, rect.height];
        let png = capture_png(&display, area).unwrap_or_else(|e| panic!("cannot capture {area:?} of {display}: {e}"));
        let path = dir.join(name);
        std::fs::write(&path, png).expect("write screenshot");
        Some(path)
    }

    /// The command names (`/proc/PID/comm`, 15 bytes at most) of the processes below the app's own
    /// process: its window host and WebKit's processes while a window is open.
    pub fn app_children(&self) -> Vec<String> {
        self.app_child_processes().into_iter().map(|(_, comm)| comm).collect()
    }

    /// The process ids and command names of the processes below the app's own process.
    pub fn app_child_processes(&self) -> Vec<(u32, String)> {
        let Some(app) = self.app_pid() else { return Vec::new() };
        descendants(app)
            .into_iter()
            .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).ok().map(|c| (p, c.trim().to_owned())))
            .collect()
    }

    /// The app's own process (the tray process WebKitWebDriver started), found below tauri-driver.
    pub fn app_pid(&self) -> Option<u32> {
        let driver = self.processes.last()?.id();
        let comm = |p: u32| std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        let below = descendants(driver);
        below.iter().copied().find(|p| comm(*p).starts_with("callbridge-desk") && !below.iter().any(|q| comm(*q).starts_with("callbridge-desk") && descendants(*q).contains(p)))
    }

    /// Closes the window titled `title` as its close button does: a WM_DELETE_WINDOW message from the
    /// X server (no window manager runs on the test's display to ask). Panics when no window has it.
    pub fn close_window_titled(&self, title: &str) {
        let display = self.env.iter().find(|(k, _)| k == "DISPLAY").map(|(_, v)| v.clone()).expect("DISPLAY");
        close_window(&display, title).unwrap_or_else(|e| panic!("cannot close the window {title:?}: {e}"));
    }

    /// Ends the WebDriver session and stops everything.
    pub async fn quit(mut self) {
        let driver = self.driver.clone();
        let _ = driver.quit().await;
        self.stop();
    }

    fn stop(&mut self) {
        // Children first (WebKitWebDriver, the app and its web processes; the services D-Bus started).
        for child in self.processes.drain(..).rev() {
            kill_tree(child);
        }
    }
}

/// The processes below `root`, parents before children, from `/proc/*/stat`.
fn descendants(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // "pid (comm) state ppid …": comm may contain spaces, so read after its closing parenthesis.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)).and_then(|p| p.parse().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found.remove(0);
    found
}

impl Drop for DesktopApp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts tauri-driver (which starts WebKitWebDriver) and asks it for a session with the app.
async fn start_session(env: &[(String, String)], app_args: &[String], logs: &Arc<Mutex<String>>) -> (Child, WebDriverResult<WebDriver>) {
    let port = free_port();
    let native_port = free_port();
    let mut driver_cmd = Command::new(tauri_driver());
    driver_cmd
        .args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = driver_cmd.spawn().expect("start tauri-driver");
    let streams = [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ];
    for stream in streams.into_iter().flatten() {
        let logs = Arc::clone(logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                eprintln!("[app] {line}");
                if let Ok(mut l) = logs.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
    }
    // tauri-driver listens before the WebKitWebDriver it starts does: wait for both.
    for (p, what) in [(port, "tauri-driver to listen"), (native_port, "WebKitWebDriver to listen")] {
        callbridge_e2e::eventually(Duration::from_secs(30), what, || std::net::TcpStream::connect(("127.0.0.1", p)).ok().map(|_| ())).await;
    }
    let mut caps = thirtyfour::Capabilities::new();
    caps.insert("browserName".into(), json!("wry"));
    caps.insert("tauri:options".into(), json!({ "application": app_binary(), "args": app_args }));
    let session = WebDriver::new(format!("http://127.0.0.1:{port}"), caps);
    let session = match tokio::time::timeout(Duration::from_secs(60), session).await {
        Ok(result) => result,
        Err(_) => Err(thirtyfour::error::WebDriverError::Timeout("no session within 60 s".into())),
    };
    (child, session)
}

/// Kills `child` and everything below it, each by its own pid.
fn kill_tree(mut child: Child) {
    for pid in descendants(child.id()).into_iter().rev() {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).stderr(Stdio::null()).status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `http://127.0.0.1:PORT` from the `port = N` line of a test config.
fn api_url(config: &str) -> String {
    let port = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("port = ").and_then(|p| p.trim().parse::<u16>().ok()))
        .expect("test configs set [listener] port");
    format!("http://127.0.0.1:{port}")
}

/// Sends WM_DELETE_WINDOW to the top-level window titled `title` on `display`.
fn close_window(display: &str, title: &str) -> Result<(), Box<dyn std::error::Error>> {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::{AtomEnum, ClientMessageEvent, ConnectionExt as _, EventMask};
    let (conn, screen) = x11rb::connect(Some(display))?;
    let root = conn.setup().roots.get(screen).ok_or("no screen")?.root;
    let atom = |name: &str| -> Result<u32, Box<dyn std::error::Error>> { Ok(conn.intern_atom(false, name.as_bytes())?.reply()?.atom) };
    let (protocols, delete, net_name, utf8) = (atom("WM_PROTOCOLS")?, atom("WM_DELETE_WINDOW")?, atom("_NET_WM_NAME")?, atom("UTF8_STRING")?);
    let titled = |window: u32| -> bool {
        [(net_name, utf8), (u32::from(AtomEnum::WM_NAME), u32::from(AtomEnum::STRING))].into_iter().any(|(property, kind)| {
            conn.get_property(false, window, property, kind, 0, 1024)
                .ok()
                .and_then(|c| c.reply().ok())
                .is_some_and(|r| r.value == title.as_bytes())
        })
    };
    // Every window on the display, parents first (windows come and go meanwhile: skip vanished ones).
    let mut windows = vec![root];
    let mut i = 0;
    while let Some(&window) = windows.get(i) {
        if let Ok(tree) = conn.query_tree(window).map_err(|e| e.to_string()).and_then(|c| c.reply().map_err(|e| e.to_string())) {
            windows.extend(tree.children);
        }
        i += 1;
    }
    let titled: Vec<u32> = windows.into_iter().filter(|w| titled(*w)).collect();
    if titled.is_empty() {
        return Err("no window has that title".into());
    }
    for &window in &titled {
        let event = ClientMessageEvent::new(32, window, protocols, [delete, x11rb::CURRENT_TIME, 0, 0, 0]);
        conn.send_event(false, window, EventMask::NO_EVENT, event)?;
    }
    // A round trip, so the server has handled the messages before this connection closes (a flush
    // alone left the window open now and then).
    x11rb::wrapper::ConnectionExt::sync(&conn)?;
    eprintln!("[harness] WM_DELETE_WINDOW sent to {} window(s) titled {title:?}: {titled:?}", titled.len());
    Ok(())
}

/// The area `[x, y, width, height]` of the X display's root window as a PNG.
fn capture_png(display: &str, [x, y, width, height]: [i64; 4]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};
    let (conn, screen) = x11rb::connect(Some(display))?;
    let root = conn.setup().roots.get(screen).ok_or("no screen")?;
    let (x, y) = (i16::try_from(x)?, i16::try_from(y)?);
    let (width, height) = (u16::try_from(width)?, u16::try_from(height)?);
    let image = conn.get_image(ImageFormat::Z_PIXMAP, root.root, x, y, width, height, !0)?.reply()?;
    // A 24-bit TrueColor screen (Xvfb's `-screen 0 WxHx24`) holds each pixel as 4 bytes: B, G, R, unused.
    let pixels = usize::from(width) * usize::from(height);
    if image.depth != 24 || image.data.len() != pixels * 4 {
        return Err(format!("unexpected image: depth {}, {} bytes for {pixels} pixels", image.depth, image.data.len()).into());
    }
    let rgb: Vec<u8> = image.data.chunks_exact(4).flat_map(|p| [p[2], p[1], p[0]]).collect();
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, u32::from(width), u32::from(height));
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&rgb)?;
    Ok(out)
}

/// The value of the environment variable `name` that process `pid` started with (`/proc/PID/environ`).
pub fn process_env(pid: u32, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ.split(|b| *b == 0).find_map(|entry| {
        let entry = String::from_utf8_lossy(entry);
        entry.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')).map(str::to_owned)
    })
}

/// The files process `pid` has mapped (`/proc/PID/maps`): its executable and its libraries.
pub fn mapped_files(pid: u32) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let mut files: Vec<String> = maps.lines().filter_map(|line| line.splitn(6, ' ').nth(5)).map(str::trim).filter(|f| f.starts_with('/')).map(str::to_owned).collect();
    files.sort();
    files.dedup();
    files
}
