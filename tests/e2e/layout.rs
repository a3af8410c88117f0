//! The module graph of `src/` stays one-way: no import loop between top-level modules, the
//! pipeline never imports the command line, and the policy engine imports nothing of HTTP
//! (`respond`, `http`, `hyper`) or of the runtime (`tokio`). Read from the source text, so
//! a new `use crate::x` that breaks the layering fails here with the loop it made.
//!
//! Test-only code (`*_tests.rs`, `test_support.rs`, `testkit.rs`, inline `#[cfg(test)]`
//! modules) and comments are skipped: tests may reach across modules for fixtures.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module of a file under `src/`: its first folder, or its stem at the root.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.strip_suffix(".rs").unwrap_or(first).to_owned())
}

fn is_test_only(file: &Path) -> bool {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with("_tests.rs") || name == "test_support.rs" || name == "testkit.rs"
}

/// Every `.rs` file under `dir`, depth-first, bounded by the tree itself.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The file's code with comments, string contents and `#[cfg(test)]` items removed.
fn production_code(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i64> = None;
    let mut depth: i64 = 0;
    let mut cfg_test_pending = false;
    for raw in text.lines() {
        let line = match raw.find("//") {
            Some(i) => &raw[..i],
            None => raw,
        };
        let line = strip_strings(line);
        let trimmed = line.trim();
        let opens = line.matches('{').count() as i64;
        let closes = line.matches('}').count() as i64;
        if let Some(d) = skip_depth {
            depth += opens - closes;
            if depth <= d {
                skip_depth = None;
            }
            continue;
        }
        if trimmed == "#[cfg(test)]" {
            cfg_test_pending = true;
            continue;
        }
        if cfg_test_pending {
            if trimmed.starts_with("#[") {
                continue;
            }
            cfg_test_pending = false;
            // `mod tests;` (a file, skipped by name) or an inline item: skip its body.
            if opens > closes {
                skip_depth = Some(depth);
                depth += opens - closes;
            }
            continue;
        }
        depth += opens - closes;
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Blank out the contents of string literals on one line (enough for `"..."` in this tree;
/// raw strings spanning lines are rare in production code and would only add edges).
fn strip_strings(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_str = false;
    let mut escaped = false;
    for c in line.chars() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
                out.push('"');
            }
            continue;
        }
        if c == '"' {
            in_str = true;
        }
        out.push(c);
    }
    out
}

/// The top-level modules `code` names through `crate::x` (also `crate::{x, y::z}`).
fn crate_refs(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end]
                .split(',')
                .map(|s| s.trim().split("::").next().unwrap_or(""))
                .collect()
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            vec![&rest[..end]]
        };
        for n in names {
            match n {
                // Root re-exports and the assembler in lib.rs.
                "Gateway" | "StartOptions" => {
                    refs.insert("gateway".to_owned());
                }
                n if modules.contains(n) => {
                    refs.insert(n.to_owned());
                }
                _ => {}
            }
        }
    }
    refs
}

/// Whether `code` names the external crate `name` as a path root (`name::`, `use name`).
fn uses_crate(code: &str, name: &str) -> bool {
    let needle = format!("{name}::");
    code.match_indices(&needle).any(|(i, _)| {
        let before = code[..i].chars().last();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
    })
}

struct Graph {
    /// module -> modules it imports
    edges: BTreeMap<String, BTreeSet<String>>,
    /// module -> its production code, concatenated
    code: BTreeMap<String, String>,
}

fn graph_of(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| top_module(src, f))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut code: BTreeMap<String, String> = BTreeMap::new();
    for f in &files {
        let Some(m) = top_module(src, f) else {
            continue;
        };
        // lib.rs assembles every step and main.rs is the binary: neither is a layer.
        if m == "lib" || m == "main" || is_test_only(f) {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        let prod = production_code(&text);
        let refs = crate_refs(&prod, &modules);
        let e = edges.entry(m.clone()).or_default();
        e.extend(refs.into_iter().filter(|r| *r != m));
        code.entry(m).or_default().push_str(&prod);
    }
    Graph { edges, code }
}

/// A cycle in `edges`, as the path that closes it, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_owned(), 1);
        stack.push(n.to_owned());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, edges, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn top_level_modules_import_each_other_one_way() {
    let g = graph_of(&src_dir());
    // The scan must see the pipeline, or an empty graph would pass.
    for m in [
        "route",
        "forward",
        "snapshot",
        "policy",
        "respond",
        "authorize",
    ] {
        assert!(g.edges.contains_key(m), "module {m} not found under src/");
    }
    assert!(
        g.edges["route"].contains("snapshot"),
        "route reads the snapshot"
    );
    if let Some(cycle) = find_cycle(&g.edges) {
        panic!(
            "import loop between top-level modules: {}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn nothing_but_the_command_line_imports_cli() {
    let g = graph_of(&src_dir());
    let users: Vec<&String> = g
        .edges
        .iter()
        .filter(|(m, deps)| *m != "cli" && deps.contains("cli"))
        .map(|(m, _)| m)
        .collect();
    assert!(users.is_empty(), "the pipeline imports cli: {users:?}");
}

#[test]
fn the_policy_engine_imports_no_http_and_no_runtime() {
    let g = graph_of(&src_dir());
    let deps = &g.edges["policy"];
    for forbidden in [
        "respond",
        "transport",
        "route",
        "forward",
        "observe",
        "gateway",
    ] {
        assert!(
            !deps.contains(forbidden),
            "policy imports crate::{forbidden}: the engine must stay pure"
        );
    }
    let code = &g.code["policy"];
    assert!(code.contains("pub fn evaluate"), "policy code not read");
    for krate in ["http", "hyper", "hyper_util", "tokio", "tower"] {
        assert!(!uses_crate(code, krate), "policy uses the {krate} crate");
    }
}

#[test]
fn the_scanner_sees_loops_and_imports() {
    // The checks above are only as good as the scanner: prove it finds what it must.
    let modules: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let code = production_code(
        "use crate::a::X; // crate::c in a comment\nuse crate::{b::Y, c};\n\"crate::zzz\"\n\
         #[cfg(test)]\nmod tests {\n    use crate::zzz;\n}\n",
    );
    let refs = crate_refs(&code, &modules);
    assert_eq!(refs.into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert!(uses_crate("use http::Request;", "http"));
    assert!(!uses_crate(
        "use crate::httpish::x; let a = my_http::b;",
        "http"
    ));
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into());
    edges.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&edges), None);
    edges.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        find_cycle(&edges),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
