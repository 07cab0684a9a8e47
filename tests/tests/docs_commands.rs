//! The commands in README.md and docs/*.md, run as written against the built `callbridge`.
//!
//! Every fenced `sh` block is run with `sh -eu` in a private home, against a running headless bridge
//! on a free port: `localhost:5678` in the text becomes that port, `callbridge` on the PATH is the
//! built binary, and `curl` fails on an HTTP error status. Every `toml` block is checked with
//! `callbridge config check`. A block that cannot run in a test carries a marker line just above its
//! fence, with the reason, which this test prints:
//!
//! * `<!-- not run by the docs test: REASON -->`: not run at all (it installs, builds, starts the GUI…);
//! * `<!-- docs test: HTTP errors are fine here: REASON -->`: run, but an HTTP error status is not a
//!   failure (an example id that a fresh bridge does not have).
//!
//! Shell commands outside `sh` blocks (a `bash`, `shell` or `console` block, or an untagged block that
//! starts with a command) fail the test, so no command escapes it; so do links between the pages that
//! lead nowhere, anchors that name no heading, and a command line page (docs/command-line.md) that
//! differs from the binary's `--help`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use callbridge_e2e::bridge::{self, Bridge};

const NOT_RUN: &str = "<!-- not run by the docs test:";
const HTTP_ERRORS_OK: &str = "<!-- docs test: HTTP errors are fine here:";

/// What the marker above a block says.
#[derive(Debug, Clone, PartialEq)]
enum Marker {
    NotRun(String),
    HttpErrorsOk(String),
}

/// One fenced block of a page.
#[derive(Debug, Clone)]
struct Block {
    /// `README.md:19`: the page and the line of the opening fence.
    place: String,
    lang: String,
    marker: Option<Marker>,
    text: String,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate lives in the repository").to_owned()
}

/// README.md and every page in docs/.
fn pages() -> Vec<PathBuf> {
    let root = repo_root();
    let mut pages = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo_root()).unwrap_or(path).display().to_string()
}

/// The marker a line holds, if it is one; an error for a marker without a reason.
fn marker(line: &str) -> Result<Option<Marker>, String> {
    let line = line.trim();
    let reason = |prefix: &str| line[prefix.len()..].trim_end_matches("-->").trim().to_owned();
    let found = if line.starts_with(NOT_RUN) {
        Marker::NotRun(reason(NOT_RUN))
    } else if line.starts_with(HTTP_ERRORS_OK) {
        Marker::HttpErrorsOk(reason(HTTP_ERRORS_OK))
    } else {
        return Ok(None);
    };
    match &found {
        Marker::NotRun(r) | Marker::HttpErrorsOk(r) if r.is_empty() || !line.ends_with("-->") => {
            Err(format!("a marker needs a reason and a closing `-->`: {line}"))
        }
        _ => Ok(Some(found)),
    }
}

/// The fenced blocks of `text` (the page `name`), each with the marker on the last non-empty line
/// before it. Errors: a marker that belongs to no block, an unclosed fence.
fn blocks(name: &str, text: &str) -> Result<Vec<Block>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut pending: Option<(usize, Marker)> = None;
    let mut open: Option<(usize, String, Option<Marker>, Vec<&str>)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some((start, lang, marker, body)) = open.as_mut() {
            if line.trim_start().starts_with("```") {
                out.push(Block { place: format!("{name}:{start}"), lang: lang.clone(), marker: marker.take(), text: body.join("\n") });
                open = None;
            } else {
                body.push(line);
            }
            continue;
        }
        if let Some(rest) = line.trim_start().strip_prefix("```") {
            open = Some((n, rest.trim().to_owned(), pending.take().map(|(_, m)| m), Vec::new()));
            continue;
        }
        match marker(line) {
            Err(e) => errors.push(format!("{name}:{n}: {e}")),
            Ok(Some(m)) => {
                if let Some((at, _)) = pending.replace((n, m)) {
                    errors.push(format!("{name}:{at}: a marker with no block right after it"));
                }
            }
            Ok(None) if line.trim().is_empty() => {}
            Ok(None) => {
                if let Some((at, _)) = pending.take() {
                    errors.push(format!("{name}:{at}: a marker with no block right after it"));
                }
            }
        }
    }
    if let Some((start, ..)) = open {
        errors.push(format!("{name}:{start}: a fence that is never closed"));
    }
    if let Some((at, _)) = pending {
        errors.push(format!("{name}:{at}: a marker with no block right after it"));
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Every block of every page.
fn all_blocks() -> Vec<Block> {
    let mut all = Vec::new();
    let mut errors = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("cannot read {}: {e}", page.display()));
        match blocks(&relative(&page), &text) {
            Ok(b) => all.extend(b),
            Err(e) => errors.extend(e),
        }
    }
    assert!(errors.is_empty(), "the documentation's blocks are not well-formed:\n{}", errors.join("\n"));
    all
}

/// The shell's own words and the programs the docs' commands start: a block of untagged text that
/// starts with one of these is a command that escaped the `sh` tag.
fn looks_like_a_command(text: &str) -> bool {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    ["curl ", "callbridge ", "./scripts/", "scripts/", "cargo ", "printf ", "sudo ", "apt-get "].iter().any(|p| first.starts_with(p))
}

/// A directory on the PATH with `callbridge` (the build under test, through its wrapper) and `curl`
/// (the real one, failing on an HTTP error status unless `http_errors_ok`).
fn tool_dir(home: &Path, http_errors_ok: bool) -> PathBuf {
    let dir = home.join(if http_errors_ok { "bin-lenient" } else { "bin" });
    std::fs::create_dir_all(&dir).expect("create bin dir");
    let real_curl = ["/usr/bin/curl", "/bin/curl", "/usr/local/bin/curl"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("curl is installed (scripts/deps.sh test installs it)");
    let curl_flags = if http_errors_ok { "--silent --show-error" } else { "--silent --show-error --fail-with-body" };
    write_script(&dir.join("curl"), &format!("exec {real_curl} {curl_flags} \"$@\""));
    write_script(&dir.join("callbridge"), &format!("exec {} \"$@\"", bridge::shell_command()));
    dir
}

fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("make the script executable");
    }
}

/// What one run of a block printed, if it failed.
async fn run_block(block: &Block, bridge: &Bridge, http_errors_ok: bool) -> Result<(), String> {
    let text = block.text.replace("localhost:5678", &format!("localhost:{}", bridge.port)).replace("127.0.0.1:5678", &format!("127.0.0.1:{}", bridge.port));
    let bin = tool_dir(&bridge.dir, http_errors_ok);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-eu").arg("-c").arg(&text);
    bridge::private_dirs(cmd.as_std_mut(), &bridge.dir);
    cmd.env("PATH", path)
        .env("CALLBRIDGE_CONFIG", &bridge.config_path)
        .env("CALLBRIDGE_URL", &bridge.url)
        // The values the docs' examples take from the environment: the reader's own secrets.
        .env("TELECMI_SECRET", "docs-example-telecmi-secret")
        .env("CRM_API_KEY", "docs-example-crm-api-key")
        .current_dir(&bridge.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start sh: {e}"))?;
    // A command that reads a secret at a prompt gets one typed in.
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(b"docs-example-secret\n").await;
    }
    let out = match tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await {
        Ok(out) => out.map_err(|e| format!("sh failed: {e}"))?,
        Err(_) => return Err("still running after 60 s".to_owned()),
    };
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}\n--- stdout\n{}--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[tokio::test]
async fn every_sh_block_in_the_docs_runs_against_a_running_bridge() {
    let blocks: Vec<Block> = all_blocks().into_iter().filter(|b| b.lang == "sh").collect();
    // The defaults (the simulator), plus a caller lookup URL: docs/lookup.md's test command tries the
    // lookup its reader has set up by then. A closed loopback port stands in for the CRM, so the test
    // answers at once that the CRM could not be reached.
    let bridge = Bridge::start("[lookup]\nurl = \"http://127.0.0.1:9/contacts?phone=$callerid\"\n");
    let mut failures = Vec::new();
    let mut ran = 0;
    for block in &blocks {
        let http_errors_ok = match &block.marker {
            Some(Marker::NotRun(reason)) => {
                eprintln!("not run: {}: {reason}", block.place);
                continue;
            }
            Some(Marker::HttpErrorsOk(reason)) => {
                eprintln!("run, HTTP errors allowed: {}: {reason}", block.place);
                true
            }
            None => {
                eprintln!("run: {}", block.place);
                false
            }
        };
        ran += 1;
        if let Err(e) = run_block(block, &bridge, http_errors_ok).await {
            failures.push(format!("{}:\n{}\n=> {e}", block.place, block.text));
        }
    }
    assert!(failures.is_empty(), "{} of the docs' sh blocks failed:\n\n{}\n\nbridge logs:\n{}", failures.len(), failures.join("\n\n"), bridge.logs());
    // The README alone has several runnable blocks: a parser that found none would pass vacuously.
    assert!(ran >= 8, "only {ran} sh blocks were run: is the block parser broken?");
}

#[test]
fn every_toml_block_in_the_docs_is_a_config_that_loads() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for block in all_blocks().into_iter().filter(|b| b.lang == "toml") {
        if let Some(Marker::NotRun(reason)) = &block.marker {
            eprintln!("not checked: {}: {reason}", block.place);
            continue;
        }
        let home = tempfile::tempdir().expect("tempdir");
        let config = home.path().join("callbridge.toml");
        std::fs::write(&config, &block.text).expect("write config");
        let mut cmd = bridge::command();
        cmd.arg("config").arg("check").arg("--config").arg(&config);
        let out = bridge::private_dirs(&mut cmd, home.path()).stdin(Stdio::null()).output().expect("callbridge runs");
        checked += 1;
        if !out.status.success() {
            failures.push(format!(
                "{}:\n{}\n=> {}{}",
                block.place,
                block.text,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "`callbridge config check` refuses these config examples:\n\n{}", failures.join("\n\n"));
    assert!(checked >= 8, "only {checked} toml blocks were checked: is the block parser broken?");
}

#[test]
fn every_shell_command_in_the_docs_is_in_an_sh_block() {
    let mut wrong = Vec::new();
    for block in all_blocks() {
        let lang = block.lang.as_str();
        if ["bash", "shell", "console", "zsh", "shell-session"].contains(&lang) {
            wrong.push(format!("{}: tag `{lang}`: write `sh` so that the docs test runs it", block.place));
        } else if lang.is_empty() && looks_like_a_command(&block.text) {
            wrong.push(format!("{}: an untagged block of commands: tag it `sh` (or `text` if it is not to be run)", block.place));
        } else if block.marker.is_some() && lang != "sh" && lang != "toml" {
            wrong.push(format!("{}: a docs-test marker on a `{lang}` block, which the test never runs", block.place));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of `text`'s headings (outside fenced blocks).
fn anchors(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// The targets of the markdown links `](…)` and image sources `src="…"` in `text`, outside fenced
/// blocks and inline code.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Inline code is not a link: drop every `…` span first.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        for (open, close) in [("](", ')'), ("src=\"", '"')] {
            let mut rest = prose.as_str();
            while let Some(at) = rest.find(open) {
                rest = &rest[at + open.len()..];
                let end = rest.find(close).unwrap_or(rest.len());
                out.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    out
}

#[test]
fn every_link_between_the_docs_leads_to_a_page_and_a_heading() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).expect("read page");
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let dest = if file.is_empty() { page.clone() } else { page.parent().expect("page dir").join(file) };
            if !dest.exists() {
                broken.push(format!("{}: `{target}`: no such file", relative(&page)));
                continue;
            }
            if !fragment.is_empty() {
                let dest_text = std::fs::read_to_string(&dest).unwrap_or_default();
                if !anchors(&dest_text).iter().any(|a| a == fragment) {
                    broken.push(format!("{}: `{target}`: {} has no heading with that anchor", relative(&page), relative(&dest)));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked >= 20, "only {checked} links were checked: is the link finder broken?");
}

#[test]
fn the_block_parser_reads_markers_and_refuses_stray_ones() {
    let page = "text\n\n<!-- not run by the docs test: it installs things -->\n```sh\n./x\n```\n\n```toml\na = 1\n```\n";
    let found = blocks("p.md", page).expect("well-formed");
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].marker, Some(Marker::NotRun("it installs things".to_owned())));
    assert_eq!(found[0].place, "p.md:4");
    assert_eq!(found[1].marker, None);
    assert!(blocks("p.md", "<!-- not run by the docs test: why -->\nprose\n```sh\nx\n```\n").is_err(), "a marker must sit right above its block");
    assert!(blocks("p.md", "<!-- not run by the docs test: -->\n```sh\nx\n```\n").is_err(), "a marker needs a reason");
    assert!(blocks("p.md", "```sh\nx\n").is_err(), "an unclosed fence is an error");
    assert_eq!(anchor("URL commands (CRM → CallBridge)"), "url-commands-crm--callbridge");
    assert_eq!(link_targets("see [a](b.md#c) and `[x](y)` <img src=\"d.png\">"), vec!["b.md#c", "d.png"]);
}

/// `callbridge ARGS --help`'s output, or the reason it failed.
fn help(args: &[&str]) -> Result<String, String> {
    let home = tempfile::tempdir().expect("tempdir");
    let mut cmd = bridge::command();
    cmd.args(args).arg("--help");
    let out = bridge::private_dirs(&mut cmd, home.path()).stdin(Stdio::null()).output().expect("callbridge runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() { Ok(text) } else { Err(format!("{}{}", text, String::from_utf8_lossy(&out.stderr))) }
}

#[test]
fn the_command_line_page_lists_every_command_as_the_binary_takes_it() {
    let page = repo_root().join("docs/command-line.md");
    let text = std::fs::read_to_string(&page).expect("docs/command-line.md");
    let synopsis: Vec<String> = blocks("docs/command-line.md", &text)
        .expect("well-formed")
        .into_iter()
        .filter(|b| b.lang == "text")
        .flat_map(|b| b.text.lines().map(str::to_owned).collect::<Vec<_>>())
        .filter(|l| l.starts_with("callbridge "))
        .collect();
    assert!(synopsis.len() >= 10, "the synopsis block was not found: {synopsis:?}");
    let mut wrong = Vec::new();
    let mut documented = Vec::new();
    for line in &synopsis {
        // The usage, before the description (two or more spaces).
        let usage = line.split("  ").next().unwrap_or_default();
        let words: Vec<&str> = usage.split_whitespace().skip(1).collect();
        // Subcommand words come first (`config path|show|check`); arguments and options follow.
        let path: Vec<&str> = words.iter().take_while(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '|')).copied().collect();
        let options: Vec<&str> = words.iter().map(|w| w.trim_start_matches('[')).filter(|w| w.starts_with("--")).collect();
        let (last, parents) = path.split_last().expect("a subcommand after `callbridge`");
        documented.push(path[0].to_owned());
        for alternative in last.split('|') {
            let args: Vec<&str> = parents.iter().copied().chain([alternative]).collect();
            match help(&args) {
                Err(e) => wrong.push(format!("`callbridge {}` is not a command: {e}", args.join(" "))),
                Ok(out) => {
                    for option in &options {
                        if !out.contains(option) {
                            wrong.push(format!("`callbridge {}` takes no {option}", args.join(" ")));
                        }
                    }
                }
            }
        }
    }
    // And the other way round: every command the binary has is on the page.
    let top = help(&[]).expect("callbridge --help");
    let commands = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help");
    for command in commands {
        if !documented.iter().any(|d| d == command) {
            wrong.push(format!("`callbridge {command}` is missing from docs/command-line.md"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
