//! The engine crate's modules use each other without cycles, so each layer can be read (and changed)
//! knowing only the layers below it (docs/architecture.md draws them).
//!
//! The check reads the source of `crates/callbridge/src` (tests left out): every path that names
//! another module of the crate — `crate::…`, `super::…`, `self::…` or a child module's name, in `use`
//! declarations (with their `{…}` groups) and inline in the code — is an edge from the module it is written in to the module it
//! names. A child naming its parent counts too: `store::writer` using `super::StoreError` while
//! `store` uses the writer is a cycle. A cycle fails the test with its modules and edges.
//!
//! `cargo modules dependencies` (https://github.com/regexident/cargo-modules) draws the same graph
//! from `use` declarations only; docs/architecture.md shows how to run it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn engine_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/callbridge/src")
}

/// Every `.rs` file under `dir`, by its module path (`store::writer`; the crate root is `""`).
fn modules(dir: &Path) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap_or_else(|e| panic!("{}: {e}", at.display())).flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(relative) = path.strip_prefix(dir) else { continue };
            let Some(text) = relative.to_str().and_then(|r| r.strip_suffix(".rs")) else { continue };
            let mut parts: Vec<&str> = text.split('/').collect();
            if matches!(parts.last(), Some(&"mod" | &"lib")) {
                parts.pop();
            }
            if parts == ["main"] {
                continue; // The binary, not the library.
            }
            found.insert(parts.join("::"), path);
        }
    }
    found
}

/// The file's code without its unit tests and without line comments.
fn code_of(source: &str) -> String {
    let without_tests = match source.find("#[cfg(test)]\nmod ").or_else(|| source.find("#[cfg(test)]\npub(crate) mod ")) {
        Some(at) => &source[..at],
        None => source,
    };
    without_tests.lines().map(|line| line.split_once("//").map_or(line, |(code, _)| code)).collect::<Vec<_>>().join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths that start at `at` (just after `crate::`, `super::` or `self::`): one for a plain path,
/// one per leaf for a `use` group (`a::{b, c::{d}}`), each as segments.
fn paths_at(code: &str, at: usize) -> Vec<Vec<String>> {
    fn tree(chars: &[char], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let mut path = prefix.to_vec();
        loop {
            while *i < chars.len() && chars[*i].is_whitespace() {
                *i += 1;
            }
            if chars.get(*i) == Some(&'{') {
                *i += 1;
                loop {
                    tree(chars, i, &path, out);
                    while *i < chars.len() && chars[*i].is_whitespace() {
                        *i += 1;
                    }
                    match chars.get(*i) {
                        Some(',') => *i += 1,
                        Some('}') => {
                            *i += 1;
                            return;
                        }
                        _ => return,
                    }
                    while *i < chars.len() && chars[*i].is_whitespace() {
                        *i += 1;
                    }
                    if chars.get(*i) == Some(&'}') {
                        *i += 1;
                        return;
                    }
                }
            }
            let start = *i;
            while *i < chars.len() && is_ident(chars[*i]) {
                *i += 1;
            }
            if start == *i {
                break;
            }
            path.push(chars[start..*i].iter().collect());
            if chars.get(*i) == Some(&':') && chars.get(*i + 1) == Some(&':') {
                *i += 2;
                continue;
            }
            break;
        }
        out.push(path);
    }
    let chars: Vec<char> = code[at..].chars().take(4_000).collect();
    let mut out = Vec::new();
    tree(&chars, &mut 0, &[], &mut out);
    out
}

/// The modules `module` (in `code`) names, as module paths.
fn named_modules(module: &str, code: &str, known: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let here: Vec<String> = if module.is_empty() { Vec::new() } else { module.split("::").map(str::to_owned).collect() };
    let mut named = BTreeSet::new();
    for keyword in ["crate::", "super::", "self::"] {
        for (at, _) in code.match_indices(keyword) {
            if code[..at].chars().next_back().is_some_and(is_ident) || code[..at].ends_with("::") {
                continue; // Part of a longer path (`super::super::`, `foo::self::`): read from its start.
            }
            let mut base = match keyword {
                "crate::" => Vec::new(),
                "self::" => here.clone(),
                _ => here[..here.len().saturating_sub(1)].to_vec(),
            };
            let mut rest = at + keyword.len();
            while code[rest..].starts_with("super::") {
                base.pop();
                rest += "super::".len();
            }
            for tail in paths_at(code, rest) {
                let full: Vec<String> = base.iter().chain(tail.iter()).cloned().collect();
                // The longest prefix that is a module of the crate.
                let target = (0..=full.len()).rev().map(|n| full[..n].join("::")).find(|p| known.contains_key(p));
                if let Some(target) = target {
                    if target != module && !target.is_empty() {
                        named.insert(target);
                    }
                }
            }
        }
    }
    // A child module named without `self::` (`use writer::Commit;`, `api::routes()`).
    let chars: Vec<(usize, char)> = code.char_indices().collect();
    for (n, &(at, c)) in chars.iter().enumerate() {
        let starts_ident = is_ident(c) && !c.is_ascii_digit() && (n == 0 || !is_ident(chars[n - 1].1));
        if !starts_ident || code[..at].ends_with("::") {
            continue;
        }
        let ident: String = code[at..].chars().take_while(|&c| is_ident(c)).collect();
        let rest = at + ident.len();
        if !code[rest..].starts_with("::") || matches!(ident.as_str(), "crate" | "super" | "self") {
            continue;
        }
        let child: Vec<String> = here.iter().cloned().chain([ident]).collect();
        if !known.contains_key(&child.join("::")) {
            continue;
        }
        for tail in paths_at(code, rest + 2) {
            let full: Vec<String> = child.iter().chain(tail.iter()).cloned().collect();
            if let Some(target) = (0..=full.len()).rev().map(|n| full[..n].join("::")).find(|p| known.contains_key(p)) {
                if target != module {
                    named.insert(target);
                }
            }
        }
    }
    named
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk { graph, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), on_stack: BTreeSet::new(), found: Vec::new() };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found.sort();
    walk.found
}

fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let known = modules(src);
    let mut graph = BTreeMap::new();
    for (module, file) in &known {
        let source = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        graph.insert(module.clone(), named_modules(module, &code_of(&source), &known));
    }
    graph
}

#[test]
fn the_engine_modules_use_each_other_without_cycles() {
    let graph = module_graph(&engine_src());
    let edges: usize = graph.values().map(BTreeSet::len).sum();
    assert!(graph.len() > 50 && edges > 150, "the crate was not read: {} modules, {edges} edges", graph.len());
    let found = cycles(&graph);
    let described: Vec<String> = found
        .iter()
        .map(|component| {
            let inside: BTreeSet<&String> = component.iter().collect();
            let lines: Vec<String> = component
                .iter()
                .map(|m| format!("  {m} -> {:?}", graph[m].iter().filter(|t| inside.contains(t)).collect::<Vec<_>>()))
                .collect();
            format!("{component:?}\n{}", lines.join("\n"))
        })
        .collect();
    println!("{} modules, {edges} edges, {} cycles", graph.len(), found.len());
    assert!(found.is_empty(), "modules that use each other in a cycle:\n{}", described.join("\n"));
}

/// The check sees what it must: a parent and child that name each other, a `use` group, a path
/// written inline, and `super::super::`.
#[test]
fn the_check_finds_cycles_of_every_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    let write = |path: &str, text: &str| {
        let file = src.join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(file, text).expect("write");
    };
    write("lib.rs", "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub mod e;\n");
    write("a/mod.rs", "pub mod child;\nuse self::child::Thing;\n");
    write("e/mod.rs", "pub mod part;\npub use part::Piece;\nfn k() { std::mem::drop(1); }\n");
    write("e/part.rs", "fn p() { let _ = super::k; }\n");
    write("a/child.rs", "// use crate::b::X; in a comment is not an edge\nuse super::Other;\n");
    write("b.rs", "use crate::{c::{Y}, d};\n");
    write("c.rs", "fn f() { let _ = crate::b::Z::new(); }\n");
    write("d/mod.rs", "pub mod inner;\n");
    write("d/inner/mod.rs", "pub mod deep;\n");
    write("d/inner/deep.rs", "fn g() { super::super::super::d::h(); }\n#[cfg(test)]\nmod tests { use crate::a::Q; }\n");
    let graph = module_graph(src);
    assert_eq!(graph["a::child"], BTreeSet::from(["a".to_owned()]));
    assert_eq!(graph["b"], BTreeSet::from(["c".to_owned(), "d".to_owned()]));
    assert_eq!(graph["d::inner::deep"], BTreeSet::from(["d".to_owned()]), "super::super:: climbs; tests are left out");
    assert_eq!(graph["e"], BTreeSet::from(["e::part".to_owned()]), "a child named without self::; std is not a module of the crate");
    let found = cycles(&graph);
    let expected = [vec!["a", "a::child"], vec!["b", "c"], vec!["e", "e::part"]];
    assert_eq!(found, expected.map(|c| c.into_iter().map(str::to_owned).collect::<Vec<_>>()));
}
