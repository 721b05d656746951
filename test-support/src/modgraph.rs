//! The module graph of a crate, read from its source files, and the cycles
//! in it (STYLE.md rule 11: inside a crate, no two modules import each
//! other).
//!
//! A module is a file under `src/` (`a.rs` or `a/mod.rs` is `a`, `a/b.rs`
//! is `a::b`); binaries under `src/bin/` and test modules (`tests`,
//! `*_tests`, `#[cfg(test)] mod` blocks) are left out. Every path a module
//! names through `crate::`, `super::` or `self::` (in `use` items and in
//! code) is resolved to the deepest module it reaches. A reference from `M`
//! to `R` becomes an edge between the two children of their nearest common
//! ancestor `P` that contain them: `translate::listener` using
//! `translate::route::http` is the edge `listener -> route` in the scope of
//! `translate`. A child using its parent's items, or a parent its child's,
//! is no edge. Each scope's graph must have no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path inside a crate, `[]` for the crate root.
pub type ModPath = Vec<String>;

/// One reference from a module's source to another module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The file that makes it.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// The module it reaches.
    pub target: ModPath,
}

/// A crate's modules and what each refers to.
#[derive(Debug, Default)]
pub struct CrateGraph {
    /// Module path -> its references.
    pub modules: BTreeMap<ModPath, Vec<Reference>>,
}

/// A cycle among the children of `scope`, with one reference per edge.
#[derive(Debug, Clone)]
pub struct Cycle {
    /// The module whose children form the cycle.
    pub scope: ModPath,
    /// The children in the cycle (strongly connected component).
    pub members: Vec<String>,
    /// Evidence: `from -> to` at `file:line`, one per edge inside the cycle.
    pub edges: Vec<String>,
}

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scope = if self.scope.is_empty() {
            "crate".to_string()
        } else {
            self.scope.join("::")
        };
        writeln!(
            f,
            "in {scope}: {} import each other",
            self.members.join(", ")
        )?;
        for e in &self.edges {
            writeln!(f, "    {e}")?;
        }
        Ok(())
    }
}

impl CrateGraph {
    /// Reads every module file under `src`.
    pub fn read(src: &Path) -> std::io::Result<CrateGraph> {
        let mut files = Vec::new();
        collect_rs(src, src, &mut files)?;
        let mut texts = Vec::new();
        for (path, module) in files {
            let text = std::fs::read_to_string(&path)?;
            texts.push((path, module, text));
        }
        let known: BTreeSet<ModPath> = texts.iter().map(|(_, m, _)| m.clone()).collect();
        let mut graph = CrateGraph::default();
        for (path, module, text) in texts {
            let refs = references(&path, &module, &text, &known);
            graph.modules.entry(module).or_default().extend(refs);
        }
        Ok(graph)
    }

    /// Every cycle among sibling modules.
    pub fn cycles(&self) -> Vec<Cycle> {
        // scope -> (from child, to child) -> first evidence
        let mut scopes: BTreeMap<ModPath, BTreeMap<(String, String), String>> = BTreeMap::new();
        for (module, refs) in &self.modules {
            for r in refs {
                let common = common_prefix(module, &r.target);
                if common == module.len() || common == r.target.len() {
                    continue; // parent and child
                }
                let scope = module[..common].to_vec();
                let from = module[common].clone();
                let to = r.target[common].clone();
                let evidence = format!(
                    "{from} -> {to}: {}:{} names {}",
                    r.file.display(),
                    r.line,
                    r.target.join("::")
                );
                scopes
                    .entry(scope)
                    .or_default()
                    .entry((from, to))
                    .or_insert(evidence);
            }
        }
        let mut cycles = Vec::new();
        for (scope, edges) in scopes {
            for component in strongly_connected(&edges) {
                let members: BTreeSet<&String> = component.iter().collect();
                let evidence = edges
                    .iter()
                    .filter(|((a, b), _)| members.contains(a) && members.contains(b))
                    .map(|(_, e)| e.clone())
                    .collect();
                cycles.push(Cycle {
                    scope: scope.clone(),
                    members: component,
                    edges: evidence,
                });
            }
        }
        cycles
    }
}

fn common_prefix(a: &[String], b: &[String]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Components of more than one node (Tarjan's algorithm, iterative enough
/// for module graphs: recursion depth is the number of siblings).
fn strongly_connected(edges: &BTreeMap<(String, String), String>) -> Vec<Vec<String>> {
    let mut adj: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        adj.entry(a).or_default().push(b);
        adj.entry(b).or_default();
    }
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(v: &'a str, adj: &BTreeMap<&'a str, Vec<&'a str>>, s: &mut State<'a>) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        for &w in adj.get(v).map(Vec::as_slice).unwrap_or_default() {
            if !s.index.contains_key(w) {
                visit(w, adj, s);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for &v in adj.keys() {
        if !state.index.contains_key(v) {
            visit(v, &adj, &mut state);
        }
    }
    state.out
}

fn is_test_name(name: &str) -> bool {
    name == "tests" || name.ends_with("_tests") || name == "tests.rs" || name.ends_with("_tests.rs")
}

fn collect_rs(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, ModPath)>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_test_name(&name) {
            continue;
        }
        if path.is_dir() {
            if dir == root && name == "bin" {
                continue;
            }
            collect_rs(root, &path, out)?;
        } else if let Some(stem) = name.strip_suffix(".rs") {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let mut module: ModPath = rel
                .parent()
                .map(|p| {
                    p.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            let top = module.is_empty();
            match stem {
                "mod" => {}
                "lib" | "main" if top => {}
                other => module.push(other.to_string()),
            }
            out.push((path, module));
        }
    }
    Ok(())
}

/// The references of one file, test blocks and comments removed.
fn references(
    file: &Path,
    module: &[String],
    text: &str,
    known: &BTreeSet<ModPath>,
) -> Vec<Reference> {
    let code = strip_tests(&strip_comments(text));
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    // `super` of module `a::b` is `a`, whether it is a/b.rs or a/b/mod.rs.
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let starts_word = i == 0 || !is_ident_byte(bytes[i - 1]) && bytes[i - 1] != b'$';
        let head = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|h| rest.starts_with(h.as_bytes()));
        let Some(head) = head.filter(|_| starts_word) else {
            i += 1;
            continue;
        };
        let line = code[..i].matches('\n').count() + 1;
        let mut base: ModPath = match head {
            "crate::" => Vec::new(),
            "self::" => module.to_vec(),
            _ => module[..module.len().saturating_sub(1)].to_vec(),
        };
        let mut j = i + head.len();
        // Further `super::` segments.
        while code[j..].starts_with("super::") {
            base.pop();
            j += "super::".len();
        }
        let (paths, end) = parse_tree(&code, j);
        for p in paths {
            let mut full = base.clone();
            full.extend(p);
            let target = deepest_module(&full, known);
            out.push(Reference {
                file: file.to_path_buf(),
                line,
                target,
            });
        }
        i = end.max(i + 1);
    }
    out
}

fn deepest_module(path: &[String], known: &BTreeSet<ModPath>) -> ModPath {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| known.contains(p))
        .unwrap_or_default()
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Parses `a::b::{c, d::e}` starting at `at`; returns every full path and
/// where parsing stopped.
fn parse_tree(code: &str, at: usize) -> (Vec<ModPath>, usize) {
    let bytes = code.as_bytes();
    let mut prefix = Vec::new();
    let mut j = at;
    loop {
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if j < bytes.len() && bytes[j] == b'{' {
            let mut paths = Vec::new();
            j += 1;
            loop {
                while j < bytes.len() && (bytes[j].is_ascii_whitespace() || bytes[j] == b',') {
                    j += 1;
                }
                if j >= bytes.len() || bytes[j] == b'}' {
                    j += 1;
                    break;
                }
                let (inner, end) = parse_tree(code, j);
                if end <= j {
                    j += 1;
                    continue;
                }
                for p in inner {
                    let mut full = prefix.clone();
                    full.extend(p);
                    paths.push(full);
                }
                j = end;
            }
            return (paths, j);
        }
        let start = j;
        while j < bytes.len() && is_ident_byte(bytes[j]) {
            j += 1;
        }
        if j == start {
            // `*` or nothing: the prefix itself.
            if j < bytes.len() && bytes[j] == b'*' {
                j += 1;
            }
            return (vec![prefix], j);
        }
        let ident = &code[start..j];
        if ident != "self" {
            prefix.push(ident.to_string());
        }
        if code[j..].starts_with("::") {
            j += 2;
        } else {
            return (vec![prefix], j);
        }
    }
}

/// Replaces comments with spaces (keeping newlines, so lines stay right),
/// leaving string literals alone.
fn strip_comments(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                if b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 2;
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            // An escaped char literal such as '\'' or '\"'.
            let close = b[i + 2..]
                .iter()
                .position(|c| *c == b'\'')
                .map_or(b.len(), |p| i + 3 + p);
            out.push_str("' '");
            i = close;
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            out.push_str("' '");
            i += 3;
        } else if b[i] == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && (i == 0 || !is_ident_byte(b[i - 1]))
        {
            // A raw string r"..." or r#"..."#: skip to its closing quote and hashes.
            let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
            let open = i + 1 + hashes;
            if b.get(open) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            let closing: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let mut j = open + 1;
            while j < b.len() && !b[j..].starts_with(&closing) {
                if b[j] == b'\n' {
                    out.push('\n');
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j + closing.len();
        } else if b[i] == b'"' {
            // Skip the literal's content: a path inside a string is no import.
            out.push('"');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                } else if b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else {
            let ch_len = text[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[i..i + ch_len]);
            i += ch_len;
        }
    }
    out
}

/// Removes `#[cfg(test)]` items (a `mod tests { ... }` block, or a single
/// item up to its end), keeping line breaks.
fn strip_tests(code: &str) -> String {
    let mut out = code.to_string();
    while let Some(at) = out.find("#[cfg(test)]") {
        let b = out.as_bytes();
        let mut j = at + "#[cfg(test)]".len();
        let mut depth = 0usize;
        let mut end = b.len();
        while j < b.len() {
            match b[j] {
                b'{' => depth += 1,
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    end = j + 1;
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        let blank: String = out[at..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(at..end, &blank);
    }
    out
}

#[cfg(test)]
mod tests;
