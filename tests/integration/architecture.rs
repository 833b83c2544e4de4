//! The layering of `docs/ARCHITECTURE.md`, checked against the code: every `crate::` path in
//! a library module names a module of a lower layer (so there is no import circle and no
//! upward import), every library module has a layer, and the binary's modules (`src/cli/`)
//! are apart from the library and import each other without circles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::util::repo;

/// `layer N  a b c` lines of the architecture page.
fn layers() -> BTreeMap<String, u32> {
    let doc = std::fs::read_to_string(repo().join("docs/ARCHITECTURE.md")).unwrap();
    let mut out = BTreeMap::new();
    for line in doc.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("layer") {
            continue;
        }
        let n: u32 = words.next().and_then(|w| w.parse().ok()).expect("layer N");
        for m in words {
            assert!(out.insert(m.to_string(), n).is_none(), "{m} has two layers");
        }
    }
    assert!(out.len() > 10, "the layer table was not found");
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The first path component after `prefix::` on every line that is not a comment.
fn imports(path: &Path, prefix: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(i) = rest.find(prefix) {
            rest = &rest[i + prefix.len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// The top-level module a file under `root` belongs to (`store/memory/mod.rs` → `store`).
fn module_of(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

#[test]
fn library_modules_import_only_lower_layers() {
    let layers = layers();
    let src = repo().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut seen = BTreeSet::new();
    let mut wrong = Vec::new();
    for f in &files {
        let m = module_of(&src, f);
        if ["lib", "main", "cli"].contains(&m.as_str()) {
            continue;
        }
        let Some(&own) = layers.get(&m) else {
            panic!(
                "{}: the module `{m}` has no layer in docs/ARCHITECTURE.md",
                f.display()
            );
        };
        seen.insert(m.clone());
        for dep in imports(f, "crate::") {
            if dep == m {
                continue;
            }
            match layers.get(&dep) {
                Some(&l) if l < own => {}
                other => wrong.push(format!(
                    "{}: `{m}` (layer {own}) imports `{dep}` (layer {other:?})",
                    f.strip_prefix(&src).unwrap().display()
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "upward or same-layer imports:\n{}",
        wrong.join("\n")
    );
    let missing: Vec<_> = layers.keys().filter(|m| !seen.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "layers name modules that do not exist: {missing:?}"
    );
    // The library declares no binary module.
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    assert!(!lib.contains("mod cli"));
}

#[test]
fn binary_modules_are_apart_and_import_each_other_without_circles() {
    let root = repo().join("src/cli");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let m = module_of(&root, f);
        if m == "mod" {
            continue;
        }
        // `super::` is `cli` in `cli/x.rs` and `cli/x/mod.rs`, but `x` itself in `cli/x/y.rs`.
        let in_cli =
            f.parent() == Some(root.as_path()) || f.file_name().is_some_and(|n| n == "mod.rs");
        let mut deps = if in_cli {
            imports(f, "super::")
        } else {
            BTreeSet::new()
        };
        deps.extend(imports(f, "crate::cli::"));
        deps.remove(&m);
        graph.entry(m).or_default().extend(deps);
    }
    assert!(graph.len() >= 6, "{graph:?}");
    // Depth-first search for a cycle.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(m) {
            return;
        }
        assert!(
            !path.iter().any(|p| p == m),
            "import circle: {path:?} -> {m}"
        );
        path.push(m.to_string());
        for d in graph.get(m).into_iter().flatten() {
            visit(d, graph, path, done);
        }
        path.pop();
        done.insert(m.to_string());
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
    // The binary reaches the library only through its public API.
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for banned in ["crate::store::memory", "crate::engine", "crate::site"] {
            assert!(!text.contains(banned), "{}: {banned}", f.display());
        }
    }
}
