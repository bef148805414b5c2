//! The source tree's layering, checked from the source text (no provider build needed).
//!
//! Data flows one way: `edge` (inbound C edge) → `ops` (operations) → `token` (token model) →
//! `sys` (outbound wrappers), with the pure modules (`uri`, `config`, `asn1`, `pemuri`,
//! `error`, `logging`) usable from every layer. This test reads every `src/**/*.rs`, resolves
//! each `crate::…` and `super::…` path to the file that defines it, and fails on
//! - a file that imports from a layer above its own (or a pure module that imports a layer),
//!   or an outbound wrapper (`sys`) that imports a domain type (anything but `error`),
//! - an import cycle among files (`mod` declarations are not imports; `use super::*` in a
//!   test module is the file itself),
//! - a file under `src/` longer than 800 lines (the helper binary's files under `src/bin/`
//!   included; they are separate crates, so only their length is checked).

// A test-only crate: a failed read of the source tree is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Rank of each top-level module: a file may import only from ranks at or below its own,
/// except that pure modules (rank 0) may be imported by everyone and import only rank 0.
fn rank(top: &str) -> Option<u8> {
    Some(match top {
        // `tool` is the facade the helper binary uses; nothing in the crate imports it.
        "lib" | "tool" => 5,
        "edge" => 4,
        "ops" => 3,
        "token" => 2,
        "sys" => 1,
        "uri" | "config" | "asn1" | "pemuri" | "error" | "logging" => 0,
        _ => return None,
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Module path of a source file: `src/token/slot.rs` → ["token", "slot"]; `mod.rs` and
/// `lib.rs` name their directory.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] {
        parts.clear();
    }
    parts
}

/// The file defining the longest prefix of `path` (a module path from the crate root).
fn file_of(modules: &BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> Option<PathBuf> {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n]).cloned())
}

/// Every `crate::a::b` and `super::a` path in `text`, as module paths from the crate root.
fn referenced_paths(text: &str, own: &[String]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let code = code.replace("$crate", "crate");
        for (start, _) in code
            .match_indices("crate::")
            .chain(code.match_indices("super::"))
        {
            if start > 0 {
                let before = code.as_bytes()[start - 1];
                if before.is_ascii_alphanumeric() || before == b'_' || before == b':' {
                    continue;
                }
            }
            let tail = &code[start..];
            let mut segments: Vec<&str> = tail
                .split("::")
                .map(|s| {
                    let end = s
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(s.len());
                    &s[..end]
                })
                .collect();
            // `a::{b, c}` groups: take each member.
            let group: Vec<String> = tail
                .find("::{")
                .filter(|i| !tail[..*i].contains([' ', '(', ';', ',']))
                .map(|i| {
                    tail[i + 3..]
                        .split('}')
                        .next()
                        .unwrap_or("")
                        .split(',')
                        .map(|m| m.trim().split("::").next().unwrap_or("").to_string())
                        .filter(|m| !m.is_empty() && m != "self" && m != "*")
                        .collect()
                })
                .unwrap_or_default();
            let mut base: Vec<String> = match segments.first().copied() {
                Some("crate") => {
                    segments.remove(0);
                    Vec::new()
                }
                Some(_) => {
                    // `super` of `a/b.rs` (module a::b) and of `a/mod.rs`'s children is `a`;
                    // of `a/mod.rs` (module a) it is the crate root: one pop each time.
                    let mut base = own.to_vec();
                    while segments.first() == Some(&"super") {
                        segments.remove(0);
                        base.pop();
                    }
                    base
                }
                None => continue,
            };
            let plain: Vec<String> = segments
                .iter()
                .take_while(|s| !s.is_empty() && **s != "self")
                .map(|s| s.to_string())
                .collect();
            if plain.is_empty() && group.is_empty() {
                // `super::*` (a test module's parent, the file itself) or `crate::` alone.
                continue;
            }
            base.extend(plain);
            if group.is_empty() {
                found.push(base);
            } else {
                for member in group {
                    let mut path = base.clone();
                    path.push(member);
                    found.push(path);
                }
            }
        }
    }
    found
}

#[test]
fn layers_point_one_way_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let modules: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .map(|f| (module_of(&src, f), f.clone()))
        .collect();

    let mut problems = Vec::new();
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for file in &files {
        let own = module_of(&src, file);
        let text = fs::read_to_string(file).unwrap();
        let lines = text.lines().count();
        if lines > 800 {
            problems.push(format!(
                "{} has {lines} lines (at most 800)",
                file.display()
            ));
        }
        let top = own.first().map(String::as_str).unwrap_or("lib");
        if top == "bin" {
            // `src/bin/*` are separate crates (the helper command): their `crate::` is their
            // own, and they reach the library only through `pkcs11_ossl::tool`.
            continue;
        }
        let own_rank = rank(top).unwrap_or_else(|| panic!("{}: unknown layer", file.display()));
        for path in referenced_paths(&text, &own) {
            let path: Vec<String> = path.into_iter().filter(|s| !s.is_empty()).collect();
            let Some(target) = file_of(&modules, &path) else {
                continue;
            };
            if &target == file {
                continue;
            }
            let target_top = path.first().map(String::as_str).unwrap_or("lib");
            let Some(target_rank) = rank(target_top) else {
                continue;
            };
            // Outbound wrappers know no domain type: of the pure modules only `error`.
            let allowed = if top == "sys" && target_rank == 0 {
                target_top == "error"
            } else if own_rank == 0 {
                target_rank == 0
            } else {
                target_rank <= own_rank
            };
            if !allowed {
                problems.push(format!(
                    "{} ({top}) imports {} ({target_top}): upward",
                    file.display(),
                    path.join("::")
                ));
            }
            edges.entry(file.clone()).or_default().insert(target);
        }
    }

    // Cycle search (depth first, three colours).
    fn visit(
        node: &PathBuf,
        edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        state: &mut BTreeMap<PathBuf, u8>,
        stack: &mut Vec<PathBuf>,
        cycles: &mut Vec<String>,
    ) {
        state.insert(node.clone(), 1);
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next).copied().unwrap_or(0) {
                0 => visit(next, edges, state, stack, cycles),
                1 => {
                    let from = stack.iter().position(|n| n == next).unwrap_or(0);
                    let names: Vec<String> = stack[from..]
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect();
                    cycles.push(format!(
                        "import cycle: {} → {}",
                        names.join(" → "),
                        next.display()
                    ));
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.clone(), 2);
    }
    let mut state = BTreeMap::new();
    let mut cycles = Vec::new();
    for file in &files {
        if state.get(file).copied().unwrap_or(0) == 0 {
            visit(file, &edges, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    problems.extend(cycles);
    assert!(
        problems.is_empty(),
        "layering problems:\n{}",
        problems.join("\n")
    );
}
