//! The dial shortcut on X11, without polling: a thread that grabs the key combination on the root
//! window and blocks in `wait_for_event` until the X server has something for it.
//!
//! tauri-plugin-global-shortcut's X11 backend (the `global-hotkey` crate, 0.8 and 0.9) looks for
//! events every 50 ms from the moment the plugin is set up: twenty wake-ups a second, all day, in a
//! tray app that otherwise sleeps. This thread wakes only when the grabbed combination is pressed, or
//! when it is told to change the grab or to stop. Telling it is a message on a channel plus a
//! `ClientMessage` event sent to a small unmapped window of the thread's own connection: a
//! `SendEvent` with an empty event mask goes to the client that created the window, so the X server
//! itself wakes the thread.
//!
//! X protocol, `GrabKey` and `SendEvent`: <https://www.x.org/releases/current/doc/xproto/x11protocol.html>

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use tauri_plugin_global_shortcut::{Code, Modifiers, Shortcut};
use x11rb::connection::Connection;
use x11rb::errors::ReplyError;
use x11rb::protocol::xproto::{
    AtomEnum, ClientMessageEvent, ConnectionExt, CreateWindowAux, EventMask, GrabMode, KeyButMask, Keycode, ModMask,
    Window, WindowClass,
};
use x11rb::protocol::{ErrorKind, Event};
use x11rb::rust_connection::RustConnection;

/// How long [`Grabber::grab`] waits for the thread to confirm a grab.
const CONFIRM: Duration = Duration::from_secs(5);

/// A grab the thread holds: one key with its modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grab {
    keycode: Keycode,
    mods: ModMask,
}

enum Command {
    /// Release the current grab, then grab this shortcut (none: grab nothing).
    Grab(Option<Shortcut>, mpsc::SyncSender<Result<(), String>>),
    Stop,
}

/// The thread holding the dial shortcut's grab. Dropping it releases the grab and ends the thread.
pub struct Grabber {
    conn: Arc<RustConnection>,
    wake_window: Window,
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Grabber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grabber").field("wake_window", &self.wake_window).finish_non_exhaustive()
    }
}

impl Grabber {
    /// Connects to the X server (`$DISPLAY`) and starts the thread; `on_press` runs on it for each
    /// press of the grabbed combination.
    pub fn start(on_press: impl Fn() + Send + 'static) -> Result<Grabber, String> {
        let (conn, screen) = RustConnection::connect(None)
            .map_err(|e| format!("cannot reach the X server ({e}); the dial shortcut needs an X11 session"))?;
        let conn = Arc::new(conn);
        let root = conn.setup().roots.get(screen).map(|s| s.root).ok_or("the X server reported no such screen")?;
        let wake_window = conn.generate_id().map_err(|e| e.to_string())?;
        conn.create_window(0, wake_window, root, 0, 0, 1, 1, 0, WindowClass::INPUT_ONLY, 0, &CreateWindowAux::new())
            .map_err(|e| e.to_string())?
            .check()
            .map_err(|e| format!("cannot create the shortcut's helper window: {e}"))?;
        let (commands, received) = mpsc::channel();
        let thread_conn = Arc::clone(&conn);
        std::thread::Builder::new()
            .name("dial-shortcut".into())
            .spawn(move || listen(&thread_conn, root, &received, on_press))
            .map_err(|e| format!("cannot start the shortcut thread: {e}"))?;
        Ok(Grabber { conn, wake_window, commands })
    }

    /// Replaces the grab with `shortcut` (none: releases it) and says whether the X server granted it.
    pub fn grab(&self, shortcut: Option<Shortcut>) -> Result<(), String> {
        let (reply, confirmed) = mpsc::sync_channel(1);
        self.commands.send(Command::Grab(shortcut, reply)).map_err(|_| "the shortcut thread has stopped".to_owned())?;
        self.wake()?;
        confirmed.recv_timeout(CONFIRM).map_err(|_| "the shortcut thread did not answer".to_owned())?
    }

    /// Wakes the thread: an event for the helper window, delivered by the X server.
    fn wake(&self) -> Result<(), String> {
        let event = ClientMessageEvent::new(32, self.wake_window, AtomEnum::NONE, [0u32; 5]);
        self.conn.send_event(false, self.wake_window, EventMask::NO_EVENT, event).map_err(|e| e.to_string())?;
        self.conn.flush().map_err(|e| e.to_string())
    }
}

impl Drop for Grabber {
    fn drop(&mut self) {
        if self.commands.send(Command::Stop).is_ok() {
            let _ = self.wake();
        }
    }
}

/// The thread: carries out the commands waiting, then sleeps until the X server sends an event.
fn listen(conn: &RustConnection, root: Window, commands: &mpsc::Receiver<Command>, on_press: impl Fn()) {
    let mut held: Option<Grab> = None;
    loop {
        while let Ok(command) = commands.try_recv() {
            match command {
                Command::Grab(shortcut, reply) => {
                    if let Some(grab) = held.take() {
                        release(conn, root, grab);
                    }
                    let result = shortcut.map_or(Ok(()), |s| take(conn, root, &s).map(|grab| held = Some(grab)));
                    let _ = reply.send(result);
                }
                Command::Stop => {
                    if let Some(grab) = held.take() {
                        release(conn, root, grab);
                    }
                    return;
                }
            }
        }
        match conn.wait_for_event() {
            Ok(Event::KeyPress(press)) if held.is_some_and(|g| g.keycode == press.detail && g.mods == pressed_mods(press.state)) => on_press(),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "lost the connection to the X server; the dial shortcut stops working");
                return;
            }
        }
    }
}

/// X11 counts Caps Lock and Num Lock as modifiers while they are on, so the grab is taken with each
/// combination of them too (Num Lock is `Mod2` on every common keymap).
fn lock_variants() -> [ModMask; 4] {
    [ModMask::default(), ModMask::M2, ModMask::LOCK, ModMask::M2 | ModMask::LOCK]
}

/// The modifiers of a key event that count for a shortcut (the lock keys do not).
fn pressed_mods(state: KeyButMask) -> ModMask {
    let counted = KeyButMask::SHIFT | KeyButMask::CONTROL | KeyButMask::MOD1 | KeyButMask::MOD4;
    ModMask::from(u16::from(state & counted))
}

fn take(conn: &RustConnection, root: Window, shortcut: &Shortcut) -> Result<Grab, String> {
    let keysym = keysym_of(shortcut.key).ok_or_else(|| format!("the key {} cannot be used for a shortcut on X11", shortcut.key))?;
    let keycode = keycode_of(conn, keysym)?.ok_or_else(|| format!("the keyboard layout has no {} key", shortcut.key))?;
    let grab = Grab { keycode, mods: mods_of(shortcut.mods) };
    for lock in lock_variants() {
        let granted = conn
            .grab_key(false, root, grab.mods | lock, grab.keycode, GrabMode::ASYNC, GrabMode::ASYNC)
            .map_err(|e| e.to_string())?
            .check();
        if let Err(e) = granted {
            release(conn, root, grab);
            return Err(match e {
                ReplyError::X11Error(x) if x.error_kind == ErrorKind::Access => "another program already uses this shortcut".to_owned(),
                other => other.to_string(),
            });
        }
    }
    Ok(grab)
}

fn release(conn: &RustConnection, root: Window, grab: Grab) {
    for lock in lock_variants() {
        if let Ok(cookie) = conn.ungrab_key(grab.keycode, root, grab.mods | lock) {
            cookie.ignore_error();
        }
    }
    let _ = conn.flush();
}

fn mods_of(mods: Modifiers) -> ModMask {
    let mut mask = ModMask::default();
    if mods.contains(Modifiers::SHIFT) {
        mask |= ModMask::SHIFT;
    }
    if mods.contains(Modifiers::CONTROL) {
        mask |= ModMask::CONTROL;
    }
    if mods.contains(Modifiers::ALT) {
        mask |= ModMask::M1;
    }
    if mods.intersects(Modifiers::SUPER | Modifiers::META) {
        mask |= ModMask::M4;
    }
    mask
}

/// The first keycode whose keymap entry holds `keysym`.
fn keycode_of(conn: &RustConnection, keysym: u32) -> Result<Option<Keycode>, String> {
    let setup = conn.setup();
    let (min, max) = (setup.min_keycode, setup.max_keycode);
    let count = max.saturating_sub(min).saturating_add(1);
    let map = conn.get_keyboard_mapping(min, count).map_err(|e| e.to_string())?.reply().map_err(|e| e.to_string())?;
    let per = usize::from(map.keysyms_per_keycode.max(1));
    let index = map.keysyms.chunks(per).position(|syms| syms.contains(&keysym));
    Ok(index.and_then(|i| u8::try_from(i).ok()).map(|i| min.saturating_add(i)))
}

/// The X keysym for a key, as X11's `keysymdef.h` numbers them (letters at their lower-case level).
/// <https://gitlab.freedesktop.org/xorg/proto/xorgproto/-/blob/master/include/X11/keysymdef.h>
fn keysym_of(code: Code) -> Option<u32> {
    let special = match code {
        Code::Space => 0x0020,
        Code::Quote => 0x0027,
        Code::Comma => 0x002c,
        Code::Minus => 0x002d,
        Code::Period => 0x002e,
        Code::Slash => 0x002f,
        Code::Semicolon => 0x003b,
        Code::Equal => 0x003d,
        Code::BracketLeft => 0x005b,
        Code::Backslash => 0x005c,
        Code::BracketRight => 0x005d,
        Code::Backquote => 0x0060,
        Code::Backspace => 0xff08,
        Code::Tab => 0xff09,
        Code::Enter => 0xff0d,
        Code::Escape => 0xff1b,
        Code::Home => 0xff50,
        Code::ArrowLeft => 0xff51,
        Code::ArrowUp => 0xff52,
        Code::ArrowRight => 0xff53,
        Code::ArrowDown => 0xff54,
        Code::PageUp => 0xff55,
        Code::PageDown => 0xff56,
        Code::End => 0xff57,
        Code::Insert => 0xff63,
        Code::Delete => 0xffff,
        _ => 0,
    };
    if special != 0 {
        return Some(special);
    }
    // The families, by the key's W3C code name: KeyA…KeyZ, Digit0…Digit9, Numpad0…Numpad9, F1…F24.
    let name = code.to_string();
    let single = |rest: &str| -> Option<u32> {
        let mut chars = rest.chars();
        let c = chars.next()?;
        chars.next().is_none().then_some(u32::from(c))
    };
    if let Some(letter) = name.strip_prefix("Key").and_then(single).filter(|c| (u32::from('A')..=u32::from('Z')).contains(c)) {
        return Some(letter + 0x20);
    }
    if let Some(digit) = name.strip_prefix("Digit").and_then(single).filter(|c| (u32::from('0')..=u32::from('9')).contains(c)) {
        return Some(digit);
    }
    if let Some(n) = name.strip_prefix("Numpad").and_then(|d| d.parse::<u32>().ok()).filter(|n| *n <= 9) {
        return Some(0xffb0 + n);
    }
    if let Some(n) = name.strip_prefix('F').and_then(|d| d.parse::<u32>().ok()).filter(|n| (1..=24).contains(n)) {
        return Some(0xffbe + n - 1);
    }
    None
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn keys_map_to_their_keysyms() {
        assert_eq!(keysym_of(Code::KeyC), Some(u32::from('c')));
        assert_eq!(keysym_of(Code::KeyZ), Some(u32::from('z')));
        assert_eq!(keysym_of(Code::Digit7), Some(u32::from('7')));
        assert_eq!(keysym_of(Code::F1), Some(0xffbe));
        assert_eq!(keysym_of(Code::F12), Some(0xffc9));
        assert_eq!(keysym_of(Code::Numpad3), Some(0xffb3));
        assert_eq!(keysym_of(Code::Space), Some(0x20));
        assert_eq!(keysym_of(Code::NumpadAdd), None);
        assert_eq!(keysym_of(Code::MediaPlayPause), None);
    }

    #[test]
    fn the_default_shortcut_grabs_control_alt_c() {
        let shortcut = Shortcut::from_str("CommandOrControl+Alt+C").expect("parses");
        assert_eq!(mods_of(shortcut.mods), ModMask::CONTROL | ModMask::M1);
        assert_eq!(keysym_of(shortcut.key), Some(u32::from('c')));
    }

    #[test]
    fn lock_keys_do_not_count() {
        let with_locks = KeyButMask::CONTROL | KeyButMask::MOD1 | KeyButMask::LOCK | KeyButMask::MOD2;
        assert_eq!(pressed_mods(with_locks), ModMask::CONTROL | ModMask::M1);
    }
}
