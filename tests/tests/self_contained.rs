//! The repository stands on its own: no file points its reader to notes the repository does not hold
//! — a design document, research notes on wire formats, numbered seed documents, a `shared/` folder,
//! issue numbers or "Done when" items of an issue tracker. A comment or a page states the fact itself,
//! or cites public documentation by URL.

use std::path::{Path, PathBuf};

/// Lower-case fragments that only ever point outside the repository.
const OUTSIDE_NOTES: &[&str] = &[
    "design.md",
    "wire-formats",
    "peers.md",
    "shared/reference",
    "shared/seeds",
    "../shared",
    "seeds/0",
    "done when",
];

/// Where in `line` it points to notes outside the repository, if it does: one of [`OUTSIDE_NOTES`],
/// a numbered seed (`seed 004`), or an issue number (`issue #7`, `issues 4`, `(#5)`, `#4/#5`).
fn outside_reference(line: &str) -> Option<String> {
    let lower = line.to_lowercase();
    if let Some(hit) = OUTSIDE_NOTES.iter().find(|n| lower.contains(*n)) {
        return Some((*hit).to_owned());
    }
    let bytes = lower.as_bytes();
    for (at, _) in lower.match_indices("seed") {
        // `seed 004`, `seed 0`: the numbered seeds (a random seed is `--seed N`, `seed = 1`, `SEED=N`).
        let rest = &bytes[at + 4..];
        if rest.first() == Some(&b' ') && rest.get(1) == Some(&b'0') && rest.get(2).is_some_and(u8::is_ascii_digit) {
            return Some(lower[at..(at + 8).min(lower.len())].to_owned());
        }
    }
    for word in ["issue", "ticket", "pr "] {
        for (at, _) in lower.match_indices(word) {
            let before_ok = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
            let mut rest = lower[at + word.len()..].trim_start_matches('s').trim_start();
            rest = rest.strip_prefix('#').unwrap_or(rest);
            if before_ok && rest.starts_with(|c: char| c.is_ascii_digit()) {
                return Some(lower[at..(at + word.len() + 4).min(lower.len())].to_owned());
            }
        }
    }
    // `(#5)`, ` #4/#5`: a bare issue number in prose. Colours (`#333`) and Rust attributes (`#[`) are not.
    for (at, _) in lower.match_indices('#') {
        let before = if at == 0 { b' ' } else { bytes[at - 1] };
        let digits = bytes[at + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        let after = bytes.get(at + 1 + digits).copied().unwrap_or(b' ');
        if (before == b'(' || before == b' ' || before == b'/') && (1..=4).contains(&digits) && (after == b')' || after == b'/') {
            return Some(lower[at..at + 1 + digits].to_owned());
        }
    }
    None
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate lives in the repository").to_owned()
}

/// Every text file of the repository: build output, dependencies and git's own files left out.
fn text_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !["target", ".git", "node_modules", "gen", ".venv", "__pycache__"].contains(&name.as_str()) {
                text_files(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

#[test]
fn no_file_points_to_notes_the_repository_does_not_hold() {
    let root = repo_root();
    let me = Path::new(file!()).file_name().expect("this file's name").to_owned();
    let mut files = Vec::new();
    text_files(&root, &mut files);
    let mut found = Vec::new();
    let mut read = 0;
    for path in files {
        if path.file_name() == Some(me.as_os_str()) {
            continue;
        }
        // Pictures, icons and other binaries are not text.
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        read += 1;
        for (n, line) in text.lines().enumerate() {
            if let Some(hit) = outside_reference(line) {
                let shown: String = line.trim().chars().take(160).collect();
                found.push(format!("{}:{}: `{hit}` in: {shown}", path.strip_prefix(&root).unwrap_or(&path).display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "these lines point to notes that are not in the repository; state the fact itself or cite public \
         documentation by URL:\n{}",
        found.join("\n")
    );
    assert!(read > 100, "only {read} text files were read: is the walk broken?");
}

#[test]
fn the_finder_catches_each_kind_of_reference_and_leaves_ordinary_text_alone() {
    for line in [
        "/// Per DESIGN.md's table.",
        "//! wire-formats.md §2.4",
        "(seed 004)",
        "Seed 000's URL commands",
        "see issue #7",
        "issue 12, Done when 3",
        "the merge of #4/#5",
        "as in (#15)",
        "`shared/reference/peers.md`",
    ] {
        assert!(outside_reference(line).is_some(), "not caught: {line}");
    }
    for line in [
        "color: #333;",
        "#[derive(Debug)]",
        "--seed \"$seed\" (SCHEMATHESIS_SEED=N)",
        "println!(\"{:#?}\", x);",
        "https://github.com/tauri-apps/tauri/issues/14626",
        "the tissue 3 times",
        "a proper seed = 1",
    ] {
        assert_eq!(outside_reference(line), None, "wrongly caught: {line}");
    }
}
