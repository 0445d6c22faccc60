//! The library's layers, checked from its source: every `crate::...` path in `src/` names a module of the same
//! layer or a lower one, the top-level modules form no cycle, and inside a module no two files import each other
//! (directly or round a loop). Adding a module means giving it a layer here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top. Modules of one layer may import each other as long as they form no cycle.
const LAYERS: &[&[&str]] = &[
    &["model", "config"],
    &["net", "telemetry"],
    &["sentiment", "risk", "alerts"],
    &["dataflow"],
    &["sample", "chain", "kafka", "ingest"],
    &["execution"],
    &["backtest"],
    &["bench", "supervise"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let p = entry.expect("a directory entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// A file's module path below the crate root: `src/ingest/price_feed.rs` -> [ingest, price_feed],
/// `src/ingest/mod.rs` -> [ingest].
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).expect("a file under src/");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and without its inline test module (whose `super::` is the file itself).
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|n| n.trim_start().starts_with("mod "))
        {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn ident_at(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The module paths a file names: `crate::a::b...` and `super::x...` (resolved against the file's place).
fn imports(file: &Path, code: &str) -> BTreeSet<Vec<String>> {
    let me = module_path(file);
    let is_mod_file = file.file_name().is_some_and(|n| n == "mod.rs");
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        if i > 0 && code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        let first = ident_at(rest);
        let after = &rest[first.len()..];
        let mut path = vec![first];
        if let Some(r) = after.strip_prefix("::") {
            let second = ident_at(r);
            if !second.is_empty() {
                path.push(second);
            }
        }
        found.insert(path);
    }
    for (i, _) in code.match_indices("super::") {
        if i > 0 && code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        // a file's `super` is its parent module; a mod.rs file's `super` is one level higher still
        let mut base = me.clone();
        base.pop();
        if is_mod_file {
            continue;
        }
        let name = ident_at(&code[i + "super::".len()..]);
        if !name.is_empty() && name != "super" {
            base.push(name);
            found.insert(base);
        }
    }
    found
}

struct Crate {
    /// file module path -> module paths it imports
    edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
    files: BTreeSet<Vec<String>>,
}

fn read_crate() -> Crate {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut edges = BTreeMap::new();
    let mut modules = BTreeSet::new();
    for f in &files {
        let name = f.file_name().unwrap_or_default();
        // the binary's files (main.rs, cli) stand above the library and reach it as `hypeflow::`
        if name == "main.rs"
            || f.strip_prefix(src())
                .is_ok_and(|r| r.starts_with("cli") || r == Path::new("cli.rs"))
        {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("a readable source file");
        modules.insert(module_path(f));
        edges.insert(module_path(f), imports(f, &code_of(&text)));
    }
    Crate {
        edges,
        files: modules,
    }
}

/// A cycle in `graph`, if there is one, as the nodes round it.
fn find_cycle<N: Ord + Clone>(graph: &BTreeMap<N, BTreeSet<N>>) -> Option<Vec<N>> {
    fn visit<N: Ord + Clone>(
        n: &N,
        graph: &BTreeMap<N, BTreeSet<N>>,
        state: &mut BTreeMap<N, u8>,
        stack: &mut Vec<N>,
    ) -> Option<Vec<N>> {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|x| x == m).unwrap_or(0);
                    let mut c = stack[at..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, graph, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn every_import_points_down_or_sideways_and_no_module_loops() {
    let krate = read_crate();
    let mut upward = Vec::new();
    let mut unplaced = BTreeSet::new();
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in &krate.edges {
        let Some(a) = from.first() else { continue };
        let Some(la) = layer_of(a) else {
            unplaced.insert(a.clone());
            continue;
        };
        for t in targets {
            let b = &t[0];
            if b == a {
                continue;
            }
            match layer_of(b) {
                None => {
                    unplaced.insert(b.clone());
                }
                Some(lb) if lb > la => upward.push(format!("{} imports {b}", from.join("::"))),
                Some(_) => {
                    top.entry(a.clone()).or_default().insert(b.clone());
                }
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules without a layer (add them to LAYERS): {unplaced:?}"
    );
    assert!(upward.is_empty(), "upward imports:\n{}", upward.join("\n"));
    assert_eq!(
        find_cycle(&top),
        None,
        "top-level modules import each other in a loop"
    );
}

#[test]
fn no_two_files_of_a_module_import_each_other() {
    let krate = read_crate();
    // file-level graph between sibling files; a parent's mod.rs declaring (and re-exporting) its children is
    // not an import of theirs, and a child naming its parent module is not one of the parent's files
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (from, targets) in &krate.edges {
        for t in targets {
            let target = (1..=t.len())
                .rev()
                .map(|k| t[..k].to_vec())
                .find(|p| krate.files.contains(p));
            if let Some(target) = target {
                let siblings = target.len() == from.len()
                    && target.len() > 1
                    && target[..target.len() - 1] == from[..from.len() - 1];
                if siblings && &target != from {
                    graph.entry(from.clone()).or_default().insert(target);
                }
            }
        }
    }
    let cycle = find_cycle(&graph).map(|c| {
        c.iter()
            .map(|p| p.join("::"))
            .collect::<Vec<_>>()
            .join(" -> ")
    });
    assert_eq!(cycle, None, "files import each other in a loop");
}

#[test]
fn the_checker_sees_an_upward_import_and_a_loop() {
    // the checks above are only worth something if they would notice: feed them a made-up file
    let code = code_of("use crate::backtest::inputs::Loaded;\n// use crate::cli::x;\nfn f() { super::sibling::g() }\n#[cfg(test)]\nmod tests {\n    use crate::bench::x;\n}\n");
    let found = imports(&src().join("dataflow/bars.rs"), &code);
    let want: BTreeSet<Vec<String>> = [
        vec!["backtest".to_string(), "inputs".to_string()],
        vec!["dataflow".to_string(), "sibling".to_string()],
    ]
    .into_iter()
    .collect();
    assert_eq!(found, want);
    assert!(layer_of("backtest") > layer_of("dataflow"));
    let mut g: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    g.entry("a").or_default().insert("b");
    g.entry("b").or_default().insert("a");
    assert_eq!(find_cycle(&g), Some(vec!["a", "b", "a"]));
}
