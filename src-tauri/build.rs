//! Tauri's build step. The config is the top-level `tauri.conf.json` (beside the top-level
//! `Cargo.toml`, whose package is this app); its paths are relative to the top level. Capabilities
//! live with the app's code in `src-tauri/capabilities`, not in the default `./capabilities`.
//! https://docs.rs/tauri-build/latest/tauri_build/struct.Attributes.html#method.capabilities_path_pattern

fn main() {
    let attributes = tauri_build::Attributes::new().capabilities_path_pattern("src-tauri/capabilities/**/*");
    if let Err(e) = tauri_build::try_build(attributes) {
        panic!("tauri-build failed: {e:#}");
    }
}
