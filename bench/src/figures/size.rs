//! Figure 5: the stripped headless binary and the Linux `.deb`.

use std::path::Path;

use anyhow::{Context, Result};

use super::Programs;
use crate::stats::mib;
use crate::table::Row;

/// Whether an ELF file still has its symbol table.
fn has_symbols(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF") && bytes.windows(8).any(|w| w == b".symtab\0")
}

/// The binary's size once stripped: its own size when the release profile already stripped it, else
/// the size of a stripped copy (`strip` from binutils).
fn stripped_size(binary: &Path) -> Result<(u64, &'static str)> {
    let bytes = std::fs::read(binary).with_context(|| format!("cannot read {}", binary.display()))?;
    if !has_symbols(&bytes) {
        return Ok((bytes.len() as u64, "stripped by the release profile"));
    }
    let dir = tempfile::tempdir()?;
    let copy = dir.path().join("callbridge");
    std::fs::write(&copy, &bytes)?;
    let status = std::process::Command::new("strip").arg(&copy).status().context("cannot run strip (binutils)")?;
    anyhow::ensure!(status.success(), "strip failed on {}", copy.display());
    Ok((std::fs::metadata(&copy)?.len(), "stripped copy"))
}

/// What the package holds most of: the desktop app's binary, uncompressed (the `.deb` is compressed).
fn packed_binary(programs: &Programs) -> String {
    match programs.desktop.as_deref().map(std::fs::metadata) {
        Some(Ok(m)) => format!("the callbridge-desktop binary it packs: {} uncompressed", mib(m.len() / 1024)),
        _ => "–".to_owned(),
    }
}

pub fn rows(programs: &Programs) -> Vec<Row> {
    let build = if programs.release { "release" } else { "debug (quick mode: not comparable)" };
    let mut rows = vec![match stripped_size(&programs.headless) {
        Ok((bytes, how)) => Row::new("5", format!("headless binary, {build}, {how}"), mib(bytes / 1024))
            .target("≤ 10 MiB", bytes <= 10 * 1024 * 1024),
        Err(e) => Row::failed("5", "headless binary size", &e),
    }];
    rows.push(match &programs.deb {
        Some(deb) => match std::fs::metadata(deb) {
            Ok(m) => Row::new("5", format!("Linux package {}", deb.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()), mib(m.len() / 1024))
                .compared(packed_binary(programs))
                .target("≤ 15 MiB", m.len() <= 15 * 1024 * 1024),
            Err(e) => Row::failed("5", "Linux .deb size", &anyhow::anyhow!("{}: {e}", deb.display())),
        },
        None => Row::absent("5", "Linux `.deb`", ".deb not built (no target/release/bundle/deb/*.deb; scripts/bench.sh makes it with `cargo tauri build`)", "≤ 15 MiB"),
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_seen_in_elf_files_only() {
        assert!(has_symbols(b"\x7fELF....\0.text\0.symtab\0.strtab\0"));
        assert!(!has_symbols(b"\x7fELF....\0.text\0.dynsym\0"));
        assert!(!has_symbols(b"#!/bin/sh .symtab\0"));
    }
}
