//! Checks of the crate's shape, read from its own source: the module graph has no cycles (at
//! the level of top-level modules, and between the files of each area), and no actix type is
//! used below the HTTP and WebSocket edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Modules that speak HTTP or WebSocket and may use actix.
const EDGE: [&str; 7] = ["routes", "realtime", "startup", "extract", "spa", "telemetry", "openapi"];

/// Areas whose files must not depend on each other in a cycle either.
const AREAS: [&str; 4] = ["services", "realtime", "db", "auth"];

struct SourceFile {
    /// The module path: `services/rooms.rs` is `["services", "rooms"]`, `db/mod.rs` is `["db"]`.
    module: Vec<String>,
    /// The code without comments.
    code: String,
}

fn source_files() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable").map(|e| e.expect("a directory entry").path()) {
            if entry.is_dir() {
                pending.push(entry);
            } else if entry.extension().is_some_and(|e| e == "rs") {
                files.push(entry);
            }
        }
    }
    files
        .into_iter()
        .filter(|path| !path.ends_with("main.rs"))
        .map(|path| SourceFile {
            module: module_of(&root, &path),
            code: without_comments(&std::fs::read_to_string(&path).expect("readable")),
        })
        .collect()
}

fn module_of(root: &Path, path: &Path) -> Vec<String> {
    let relative = path.strip_prefix(root).expect("under src").with_extension("");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// Drops `//` comments (doc comments included), so prose naming a module is no dependency.
fn without_comments(source: &str) -> String {
    source.lines().map(|line| line.split_once("//").map_or(line, |(code, _)| code)).collect::<Vec<_>>().join("\n")
}

/// Every module path this file names: `crate::a::b`, `super::x` resolved, and the names inside
/// `use crate::{a, b::c}` groups.
fn references(file: &SourceFile) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let code = &file.code;
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let preceded_by_dollar = at > 0 && rest.as_bytes()[at - 1] == b'$';
        rest = &rest[at + "crate::".len()..];
        if preceded_by_dollar {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                found.push(path_words(item.trim()));
            }
        } else {
            found.push(path_words(rest));
        }
    }
    let mut rest = code.as_str();
    while let Some(at) = rest.find("super::") {
        let boundary = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric();
        rest = &rest[at + "super::".len()..];
        if !boundary {
            continue;
        }
        // `super` of a file's module is its parent (mod.rs files are their folder's module).
        let mut base = file.module.clone();
        base.pop();
        let words = path_words(rest);
        if !words.is_empty() {
            base.extend(words);
            found.push(base);
        }
    }
    found.into_iter().filter(|path| !path.is_empty()).collect()
}

/// The leading `a::b::c` words of `text`, stopping at anything else.
fn path_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    for word in text.split("::") {
        let name: String = word.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if name.is_empty() {
            break;
        }
        let whole = name.len() == word.len();
        words.push(name);
        if !whole {
            break;
        }
    }
    words
}

/// A cycle in `edges`, if any, as the path that closes it.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, bool>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(true) => return None,
            Some(false) => {
                let start = path.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        state.insert(node.to_owned(), false);
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, state, path) {
                return Some(cycle);
            }
        }
        path.pop();
        state.insert(node.to_owned(), true);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, edges, &mut state, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

/// The dependency edges between `level`-deep module prefixes, among files under `within`.
fn graph(files: &[SourceFile], within: &[&str], level: usize) -> BTreeMap<String, BTreeSet<String>> {
    let known: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let node = |path: &[String]| -> Option<String> {
        if path.len() < within.len() + level || path[..within.len()] != within.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..] {
            return None;
        }
        let prefix = path[..within.len() + level].to_vec();
        known.contains(&prefix).then(|| prefix.join("::"))
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(from) = node(&file.module) else { continue };
        for reference in references(file) {
            if let Some(to) = node(&reference).filter(|to| *to != from) {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
        edges.entry(from).or_default();
    }
    edges
}

#[test]
fn the_top_level_modules_depend_on_each_other_without_a_cycle() {
    let files = source_files();
    let edges = graph(&files, &[], 1);
    assert!(edges.contains_key("services") && edges.contains_key("realtime"), "the graph was read: {edges:?}");
    assert!(edges["realtime"].contains("services"), "realtime uses services");
    assert_eq!(find_cycle(&edges), None, "module cycle; edges: {edges:#?}");
}

#[test]
fn the_files_of_each_area_depend_on_each_other_without_a_cycle() {
    let files = source_files();
    for area in AREAS {
        let edges = graph(&files, &[area], 1);
        assert_eq!(find_cycle(&edges), None, "cycle among the files of {area}; edges: {edges:#?}");
    }
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), ["b".to_owned()].into()),
        ("b".to_owned(), ["c".to_owned()].into()),
        ("c".to_owned(), ["a".to_owned()].into()),
        ("d".to_owned(), BTreeSet::new()),
    ]
    .into();
    assert_eq!(find_cycle(&edges), Some(vec!["a".to_owned(), "b".to_owned(), "c".to_owned(), "a".to_owned()]));
}

#[test]
fn references_resolve_crate_paths_groups_and_super() {
    let file = SourceFile {
        module: vec!["realtime".into(), "writer".into()],
        code: "use crate::{db::Db, services::messages};\nuse super::registry::X;\nlet x = crate::error::ApiError::internal;\n$crate::db::DbConn".into(),
    };
    let found = references(&file);
    for expected in
        [vec!["db", "Db"], vec!["services", "messages"], vec!["realtime", "registry", "X"], vec!["error", "ApiError", "internal"]]
    {
        assert!(found.iter().any(|f| *f == expected), "{expected:?} in {found:?}");
    }
    assert_eq!(found.len(), 4, "a macro's $crate path is no dependency of the macro's file: {found:?}");
}

/// The code of a file before its `#[cfg(test)]` module (tests may set up tables directly).
fn code_before_tests(file: &SourceFile) -> &str {
    file.code.split("#[cfg(test)]").next().unwrap_or("")
}

#[test]
fn queries_live_under_db_only() {
    for file in source_files() {
        if file.module.first().is_some_and(|top| top == "db" || top == "architecture") {
            continue;
        }
        let code = code_before_tests(&file);
        for sign in ["::table", "diesel::insert_into", "diesel::update", "diesel::delete", "sql_query", "batch_execute"] {
            assert!(!code.contains(sign), "{} runs a query ({sign}) outside db/", file.module.join("::"));
        }
    }
}

#[test]
fn no_actix_type_is_used_below_the_http_and_websocket_edge() {
    for file in source_files() {
        let top = file.module.first().map(String::as_str).unwrap_or("");
        if EDGE.contains(&top) || top == "architecture" {
            continue;
        }
        assert!(!file.code.contains("actix"), "{} uses actix below the edge", file.module.join("::"));
    }
}
