//! The order in which the window host's processes look up symbols in their libraries (Linux).
//!
//! A process that loads WebKitGTK — the window host, and the web and network processes WebKit starts
//! for it — binds about 72,000 symbol references to the 160-odd libraries it loads before it runs any
//! code, and Debian links WebKitGTK with `-z now`, so none of that waits for first use. The dynamic
//! linker looks each symbol up library by library, in load order (the executable's dependencies,
//! breadth first), so a reference to a library far down that list checks every library before it. On
//! Debian 12, 31,000 of the references are a speech-synthesis voice (flite's `cmu_time_awb`, which
//! WebKit links for the Web Speech API) referring to its own tables, 79th in the list; the next most
//! used are JavaScriptCore, libc, libepoxy, GLib and libstdc++. In a `perf` profile of a cold popup
//! without this order, the dynamic linker was 40% of the CPU those three processes used (a third of
//! the host's and the web process's, two thirds of the network process's).
//!
//! `LD_PRELOAD` puts the libraries it names at the front of that order
//! (<https://man7.org/linux/man-pages/man8/ld.so.8.html>). The tray process starts the window host
//! with [`WEBKIT_FIRST`]: those of them the tray process has loaded itself — it is the same
//! executable, so the host loads them too, and WebKit's processes are the same library's — named
//! by the file the tray process mapped. No library is added to any process; only the order changes.
//! The order also decides which library wins when two define the same symbol, so the list is one
//! under which every binding stays as it was: checked with `LD_DEBUG=bindings` on Debian 12 for the
//! host, the web process and the network process (every symbol bound to the same library with and
//! without it). That is why libm comes just before libc (both define `frexp`, `ldexp` and `modf`;
//! the executables name libm first), and why WebKitGTK, GTK, GDK and Wayland are not on the list:
//! moving them changes which of libwayland-client and libwayland-server defines the `wl_*_interface`
//! tables, which the executables load in opposite orders.
//!
//! A user's own `LD_PRELOAD` is left as it is (an empty one turns this off).

use std::ffi::OsString;
use std::path::Path;
use std::sync::OnceLock;

/// The environment variable ld.so reads.
pub const VARIABLE: &str = "LD_PRELOAD";

/// Library file names up to `.so`, in the order they go first: the libraries the most symbol
/// references are bound to when WebKitGTK 2.50 loads on Debian 12, most first (see the module doc
/// comment for the ones left out).
const WEBKIT_FIRST: &[&str] = &[
    "libflite_cmu_time_awb.so",
    "libjavascriptcoregtk-4.1.so",
    "libm.so",
    "libc.so",
    "libepoxy.so",
    "libglib-2.0.so",
    "libstdc++.so",
    "libsqlite3.so",
    "libgobject-2.0.so",
    "libyuv.so",
    "libgio-2.0.so",
    "libicuuc.so",
    "libflite.so",
    "libasound.so",
    "libgstreamer-1.0.so",
    "libdbus-1.so",
    "libunistring.so",
    "libsoup-3.0.so",
    "libX11.so",
    "libxml2.so",
    "libcairo.so",
    "libpango-1.0.so",
    "libharfbuzz.so",
    "libflite_cmu_us_slt.so",
    "libflite_cmu_us_rms.so",
    "libflite_cmu_us_awb.so",
];

/// The `LD_PRELOAD` value for the window host, or `None` when it should get none: the user set
/// `LD_PRELOAD` (passed on unchanged), or this process has none of the libraries loaded. Worked out
/// once, from `/proc/self/maps`.
pub fn for_window_host() -> Option<OsString> {
    static ORDER: OnceLock<Option<OsString>> = OnceLock::new();
    if std::env::var_os(VARIABLE).is_some() {
        return None;
    }
    ORDER
        .get_or_init(|| match std::fs::read_to_string("/proc/self/maps") {
            Ok(maps) => preload(&maps, |path| path.is_file()),
            Err(e) => {
                tracing::debug!(error = %e, "cannot read /proc/self/maps; the window host keeps the usual library order");
                None
            }
        })
        .clone()
}

/// The files of [`WEBKIT_FIRST`] that `maps` (the text of a `/proc/PID/maps`) shows mapped and
/// `exists` finds, in [`WEBKIT_FIRST`]'s order, joined with `:`.
fn preload(maps: &str, exists: impl Fn(&Path) -> bool) -> Option<OsString> {
    let mapped: Vec<&Path> = maps.lines().filter_map(mapped_file).collect();
    let mut files: Vec<&Path> = Vec::new();
    for stem in WEBKIT_FIRST {
        let found = mapped.iter().find(|path| is_library(path, stem));
        if let Some(path) = found.filter(|path| !files.contains(path) && exists(path)) {
            files.push(path);
        }
    }
    if files.is_empty() {
        return None;
    }
    let mut value = OsString::new();
    for (i, path) in files.iter().enumerate() {
        if i > 0 {
            value.push(":");
        }
        value.push(path.as_os_str());
    }
    Some(value)
}

/// The file a line of `/proc/PID/maps` maps: the sixth field, when it is an absolute path. A path with
/// a `:` or a space in it is left out, as `LD_PRELOAD` would split it; so is a file deleted since it was
/// mapped (a library upgraded meanwhile), which the kernel shows with ` (deleted)` after it.
fn mapped_file(line: &str) -> Option<&Path> {
    // address, permissions, offset, device, inode, then the path (which may hold spaces).
    let mut fields = line.splitn(6, ' ');
    let path = fields.nth(5)?.trim_start();
    let splits = |c: char| c == ':' || c == ' ';
    (path.starts_with('/') && !path.contains(splits)).then(|| Path::new(path))
}

/// Whether `path` is the library `stem` (`libc.so` is `libc.so.6`, not `libcairo.so.2`).
fn is_library(path: &Path, stem: &str) -> bool {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return false;
    };
    name == stem || name.strip_prefix(stem).is_some_and(|version| version.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0a00000-55d0c0a80000 r--p 00000000 fe:01 1234 /opt/CallBridge/callbridge-desktop
7f0000000000-7f0000100000 r--p 00000000 fe:01 11 /usr/lib/x86_64-linux-gnu/libcairo.so.2.11600.0
7f0000100000-7f0000200000 r-xp 00100000 fe:01 12 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000200000-7f0000300000 r--p 00200000 fe:01 12 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000300000-7f0000400000 r--p 00000000 fe:01 13 /usr/lib/x86_64-linux-gnu/libflite_cmu_time_awb.so.2.2
7f0000400000-7f0000500000 r--p 00000000 fe:01 14 /usr/lib/x86_64-linux-gnu/libm.so.6
7f0000500000-7f0000600000 rw-p 00000000 00:00 0 
7f0000600000-7f0000700000 rw-p 00000000 00:00 0                          [heap]
7f0000700000-7f0000800000 r--p 00000000 fe:01 15 /usr/lib/x86_64-linux-gnu/libjavascriptcoregtk-4.1.so.0.9.11 (deleted)
7f0000800000-7f0000900000 r--p 00000000 fe:01 16 /usr/lib/x86_64-linux-gnu/libcairo-gobject.so.2
";

    fn everything_exists(_: &Path) -> bool {
        true
    }

    #[test]
    fn the_libraries_go_in_the_lists_order_each_once_by_the_file_mapped() {
        let order = preload(MAPS, everything_exists).expect("some are mapped");
        assert_eq!(
            order,
            "/usr/lib/x86_64-linux-gnu/libflite_cmu_time_awb.so.2.2:/usr/lib/x86_64-linux-gnu/libm.so.6:\
             /usr/lib/x86_64-linux-gnu/libc.so.6:/usr/lib/x86_64-linux-gnu/libcairo.so.2.11600.0"
        );
    }

    #[test]
    fn a_deleted_or_missing_file_and_a_library_not_on_the_list_are_left_out() {
        let order = preload(MAPS, |path| !path.ends_with("libm.so.6")).expect("some are mapped");
        let order = order.to_str().expect("text");
        assert!(!order.contains("libm.so"), "{order}");
        assert!(!order.contains("javascriptcore"), "a deleted file is named: {order}");
        assert!(!order.contains("cairo-gobject"), "not on the list: {order}");
        assert!(!order.contains("callbridge-desktop"), "{order}");
    }

    #[test]
    fn nothing_mapped_from_the_list_gives_no_value() {
        assert_eq!(preload("", everything_exists), None);
        assert_eq!(preload(MAPS, |_| false), None);
        assert_eq!(preload("7f0000600000-7f0000700000 rw-p 00000000 00:00 0 [heap]\n", everything_exists), None);
    }

    #[test]
    fn a_stem_names_only_its_own_library() {
        assert!(is_library(Path::new("/lib/libc.so.6"), "libc.so"));
        assert!(is_library(Path::new("/lib/libc.so"), "libc.so"));
        assert!(!is_library(Path::new("/lib/libcairo.so.2"), "libc.so"));
        assert!(!is_library(Path::new("/lib/libc.so6"), "libc.so"));
        assert!(!is_library(Path::new("/lib/libflite.so.1"), "libflite_cmu_us_awb.so"));
        assert!(!is_library(Path::new("/lib/libflite_cmu_us_awb.so.1"), "libflite.so"));
    }

    #[test]
    fn a_path_ld_so_would_split_is_left_out() {
        assert_eq!(mapped_file("7f00-7f01 r--p 00000000 fe:01 9 /opt/a:b/libc.so.6"), None);
        assert_eq!(mapped_file("7f00-7f01 r--p 00000000 fe:01 9 /opt/my apps/libc.so.6"), None);
        assert_eq!(mapped_file("7f00-7f01 r--p 00000000 fe:01 9   /usr/lib/libc.so.6"), Some(Path::new("/usr/lib/libc.so.6")));
    }

    #[test]
    fn this_process_libc_is_found_in_its_own_maps() {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        let order = preload(&maps, |path| path.is_file()).expect("the test binary loads libc");
        assert!(order.to_str().expect("text").split(':').any(|path| is_library(Path::new(path), "libc.so")), "{order:?}");
    }
}
