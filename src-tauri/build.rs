//! Tauri's build step. The config is `src-tauri/tauri.conf.json`, where the Tauri CLI (`cargo tauri
//! build`, which makes the `.deb`) looks for it beside the crate's `Cargo.toml`; paths inside it are
//! relative to this directory.

fn main() {
    if let Err(e) = tauri_build::try_build(tauri_build::Attributes::new()) {
        panic!("tauri-build failed: {e:#}");
    }
}
