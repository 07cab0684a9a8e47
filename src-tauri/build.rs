//! Tauri's build step, pointed at the top-level `tauri.conf.json` (the project keeps the desktop config
//! beside the workspace manifest, as DESIGN.md lays out; paths inside it are relative to that file).

fn main() {
    let attributes = tauri_build::Attributes::new().config_path("../tauri.conf.json");
    if let Err(e) = tauri_build::try_build(attributes) {
        panic!("tauri-build failed: {e:#}");
    }
}
