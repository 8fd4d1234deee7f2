//! The architecture, checked: layers only look down (no import cycle among the files of
//! `src/`, and each layer imports only the ones below it), and JSON stops at the edge
//! (the core takes no `serde_json` value). docs/ARCHITECTURE.md draws the same picture.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first. A module may import modules of its own layer's predecessors only
/// (plus its own submodules and parent's siblings within the same layer).
const LAYERS: &[&[&str]] = &[
    // A leaf: the invocation's metrics tally, recorded from every layer above.
    &["metrics"],
    // Validated values; and the SigV4 JSON call (no crate import at all).
    &["domain", "signed"],
    &[
        "transfer",
        "folders",
        "queue",
        "findings",
        "reports",
        "directory",
        "invocation",
        "telemetry",
    ],
    &["outcome"],
    &["input"],
    &["command", "profiles"],
    &["config"],
    &["plan", "servers", "drift", "membership"],
    // The servers covered (ALLOWED_SERVER_IDS, SERVER_TAG) and each one's configuration.
    &["scope"],
    &["apply"],
    // Every automatic fix; following the directory (triggers name, the directory decides).
    &["reconcile", "follow"],
    &["audit"],
    // A whole run as people read it (the CLI's and REPORT_BUCKET's).
    &["report"],
    &["sources"],
    &["lambda"],
];

/// The core: no public function here takes JSON, and none holds a JSON map.
const CORE: &[&str] = &[
    "src/domain/",
    "src/command.rs",
    "src/plan.rs",
    "src/apply.rs",
    "src/transfer/mod.rs",
    "src/transfer/memory.rs",
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/sources/sqs.rs` → `sources::sqs`; `src/sources/mod.rs` → `sources`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file
        .strip_prefix(src)
        .expect("under src/")
        .with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

/// The code without comments (doc links are not imports).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b` path in `text`, with `crate::a::{b, c}` expanded.
fn crate_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let base = rest[..end].trim_end_matches(':').to_owned();
        if rest[end..].starts_with('{') && rest[..end].ends_with("::") {
            let close = rest[end..].find('}').map_or(rest.len(), |c| end + c);
            for item in rest[end + 1..close].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                if !name.is_empty() {
                    paths.push(format!("{base}::{name}"));
                }
            }
        } else {
            paths.push(base);
        }
    }
    paths
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut list = Vec::new();
    files(&src, &mut list);
    let modules: BTreeMap<String, PathBuf> = list
        .iter()
        .map(|f| (module_of(&src, f), f.clone()))
        .collect();
    let resolve = |path: &str| -> Option<String> {
        let segs: Vec<&str> = path.split("::").collect();
        (1..=segs.len())
            .rev()
            .map(|i| segs[..i].join("::"))
            .find(|m| modules.contains_key(m))
    };
    let mut edges = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).expect("readable");
        let mut deps = BTreeSet::new();
        for path in crate_paths(&code(&text)) {
            if let Some(dep) = resolve(&path)
                && dep != *module
                && !module.starts_with(&format!("{dep}::"))
                && !dep.starts_with(&format!("{module}::"))
            {
                deps.insert(dep);
            }
        }
        edges.insert(module.clone(), deps);
    }
    edges
}

fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next) {
                Some(1) => {
                    let from = stack.iter().position(|s| s == next).unwrap_or_default();
                    let mut c = stack[from..].to_vec();
                    c.push(next.clone());
                    return Some(c);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if !state.contains_key(node)
            && let Some(c) = visit(node, edges, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

fn layer(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap_or_default();
    LAYERS.iter().position(|l| l.contains(&top))
}

#[test]
fn no_file_of_src_imports_in_a_cycle() {
    let edges = graph();
    assert!(edges.len() > 20, "the graph was read: {edges:?}");
    assert_eq!(cycle(&edges), None);
}

#[test]
fn each_layer_imports_only_the_layers_below() {
    let mut violations = Vec::new();
    for (module, deps) in graph() {
        let Some(own) = layer(&module) else { continue };
        for dep in deps {
            match layer(&dep) {
                Some(l) if l < own => {}
                // Siblings within one top-level module (sources::sqs → sources::direct).
                Some(l) if l == own && dep.split("::").next() == module.split("::").next() => {}
                _ => violations.push(format!("{module} imports {dep}")),
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn the_checker_sees_a_cycle_and_expands_braces() {
    assert_eq!(
        crate_paths("use crate::domain::{Target, home::HomePath};\nlet x = crate::plan::desired;"),
        ["domain::Target", "domain::home::HomePath", "plan::desired"]
    );
    let edges: BTreeMap<String, BTreeSet<String>> =
        [("a", &["b"][..]), ("b", &["c"][..]), ("c", &["a"][..])]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
    assert_eq!(cycle(&edges).map(|c| c.len()), Some(4));
}

#[test]
fn json_stops_at_the_edge() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut list = Vec::new();
    files(&root.join("src"), &mut list);
    let mut found = Vec::new();
    for file in list {
        let rel = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if !CORE.iter().any(|c| rel.starts_with(c)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Test modules may build inputs from JSON.
        let text = code(text.split("#[cfg(test)]").next().unwrap_or_default());
        let bare_map = text.match_indices("Map<").any(|(i, _)| {
            !text[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        });
        if bare_map || text.contains("serde_json::Map") {
            found.push(format!("{rel}: a JSON map"));
        }
        // Public functions taking a JSON value (a session policy, being JSON, may).
        for sig in text.split("pub fn ").skip(1) {
            let params = sig.split(')').next().unwrap_or_default();
            if params.contains("Value") && !sig.starts_with("from_value") {
                found.push(format!(
                    "{rel}: pub fn {}",
                    sig.lines().next().unwrap_or_default()
                ));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}
