//! No import cycles between the crate's top-level modules.
//!
//! A node is a top-level module (`src/<m>.rs` or `src/<m>/`); an edge `a -> b` is any
//! `crate::b` path — or a `use crate::{b, …}` group, or a `super::b` that resolves to a
//! top-level module — written in a file of `a`, outside its `#[cfg(test)] mod tests`. Every
//! strongly connected component of two or more modules is a cycle, and fails the test with
//! the edges that make it. Doc links count: a module that documents itself in terms of
//! another depends on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The identifiers that directly follow `prefix` (at a word boundary) in `text`.
fn after(text: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find(prefix) {
        let at = from + i;
        from = at + prefix.len();
        if text[..at].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let name: String = text[from..].chars().take_while(|&c| is_ident(c)).collect();
        if name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
            out.push(name);
        }
    }
    out
}

/// The heads of every path in `use crate::{…};` groups.
fn use_groups(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("crate::{") {
        let start = from + i + "crate::{".len();
        let Some(end) = text[start..].find(';') else {
            break;
        };
        // Only the first level of the group: `{a, b::{c, d}}` names a and b.
        let mut depth = 0;
        let mut part = String::new();
        let mut parts = Vec::new();
        for c in text[start..start + end].chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => parts.push(std::mem::take(&mut part)),
                c if depth == 0 => part.push(c),
                _ => {}
            }
        }
        parts.push(part);
        for p in parts {
            let head: String = p.trim().chars().take_while(|&c| is_ident(c)).collect();
            if !head.is_empty() {
                out.push(head);
            }
        }
        from = start + end;
    }
    out
}

/// Drops a file's unit tests: a test may reach anywhere.
fn without_tests(text: &str) -> &str {
    let mut from = 0;
    while let Some(i) = text[from..].find("#[cfg(test)]") {
        let at = from + i;
        let rest = text[at + "#[cfg(test)]".len()..].trim_start();
        if rest.starts_with("mod tests") {
            return &text[..at];
        }
        from = at + 1;
    }
    text
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module graph of the crate whose sources are in `src`.
fn graph(src: &Path) -> Graph {
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(src).expect("read src") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() && name != "bin" {
            modules.insert(name);
        } else if let Some(stem) = name.strip_suffix(".rs")
            && stem != "lib"
            && stem != "main"
        {
            modules.insert(stem.to_string());
        }
    }
    let mut edges: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    for file in files {
        let rel: Vec<String> = file
            .strip_prefix(src)
            .unwrap()
            .iter()
            .map(|c| c.to_string_lossy().to_string())
            .collect();
        let me = match rel.as_slice() {
            [one] => one.trim_end_matches(".rs").to_string(),
            [dir, ..] if dir != "bin" => dir.clone(),
            _ => continue,
        };
        if !modules.contains(&me) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read source");
        let text = without_tests(&text);
        let mut targets = after(text, "crate::");
        targets.extend(use_groups(text));
        // `super::` from a top-level file is the crate root; from `src/<m>/mod.rs` too.
        if rel.len() == 1 || (rel.len() == 2 && rel[1] == "mod.rs") {
            targets.extend(after(text, "super::"));
        }
        for t in targets {
            if t != me && modules.contains(&t) {
                edges.get_mut(&me).unwrap().insert(t);
            }
        }
    }
    edges
}

/// Strongly connected components of two or more nodes (Tarjan).
fn cycles(g: &Graph) -> Vec<BTreeSet<String>> {
    struct State<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on.insert(v);
        for w in &s.g[v] {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = BTreeSet::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on.remove(w);
                comp.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn describe(g: &Graph, comp: &BTreeSet<String>) -> String {
    let edges: Vec<String> = comp
        .iter()
        .flat_map(|a| {
            g[a].iter()
                .filter(|b| comp.contains(*b))
                .map(move |b| format!("{a}->{b}"))
        })
        .collect();
    format!(
        "cycle: {}  [{}]",
        comp.iter().cloned().collect::<Vec<_>>().join(", "),
        edges.join("; ")
    )
}

#[test]
fn the_modules_of_the_crate_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    assert!(g.len() > 10, "found only {} modules in {src:?}", g.len());
    let found = cycles(&g);
    let report: Vec<String> = found.iter().map(|c| describe(&g, c)).collect();
    assert!(
        found.is_empty(),
        "module import cycles (move the shared piece into a lower module):\n{}",
        report.join("\n")
    );
}

#[test]
fn the_check_finds_a_cycle_when_there_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |rel: &str, text: &str| {
        let path = src.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "pub mod a; pub mod b; pub mod c; pub mod d;");
    write("a.rs", "use crate::b::Thing;\n");
    write("b/mod.rs", "pub mod inner;\n");
    // A nested file of b reaches c through a use group; c reaches a by a full path.
    write("b/inner.rs", "use crate::{c::More, d};\n");
    write("c.rs", "fn f() { crate::a::g(); }\n");
    // d only reaches a from its unit tests, which do not count.
    write("d.rs", "#[cfg(test)]\nmod tests { use crate::a; }\n");
    let g = graph(src);
    assert_eq!(g["b"], BTreeSet::from(["c".to_string(), "d".to_string()]));
    assert!(g["d"].is_empty(), "{g:?}");
    let found = cycles(&g);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        describe(&g, &found[0]),
        "cycle: a, b, c  [a->b; b->c; c->a]"
    );

    // Breaking one edge breaks the cycle.
    write("c.rs", "fn f() {}\n");
    assert!(cycles(&graph(src)).is_empty());
}

#[test]
fn use_groups_name_only_their_first_level() {
    assert_eq!(
        use_groups("use crate::{a::{b, c}, d, e::F};"),
        ["a", "d", "e"]
    );
    assert_eq!(after("crate::z::W; acrate::q; crate::Y", "crate::"), ["z"]);
}
