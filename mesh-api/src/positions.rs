//! A position index of YAML text: the 1-based line of every field path
//! (`spec.http[1].match[0].uri.regex`), built from the events of the
//! `yaml-rust2` parser, so that errors found on the typed model, which keeps
//! no positions, still point at the line of the offending field.
//!
//! Serves the first stage of the flow (DESIGN.md): [`crate::load`] indexes
//! each document, its objects carry the index in [`crate::Loaded`], and
//! loading and validation look their errors' lines up in it. A module of
//! its own so that both `load` and `types` can use it.
//!
//! - Paths are validation's: `a.b` for a mapping key, `a[0]` for a sequence
//!   item, `""` for the document itself. A mapping entry's line is the line
//!   of its key, a sequence item's the line where the item starts.
//! - A path that is not in the text (a missing field) resolves to its
//!   deepest ancestor that is; see [`Positions::line`].
//! - Only scalar keys are named. Entries under a complex key (`? [a, b]`)
//!   and everything an alias stands for are left out, so a path inside an
//!   alias resolves to the alias itself, never to its anchor elsewhere.
//! - Text the parser cannot read is indexed up to the error. Nothing here
//!   panics on any input: the text is the user's.

use std::collections::BTreeMap;
use std::sync::Arc;

use yaml_rust2::parser::{Event, Parser};

/// Field path → 1-based line, for one YAML document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions {
    lines: BTreeMap<String, usize>,
}

impl Positions {
    /// One index per document of `text`, in stream order. Lines count from
    /// the start of `text`, so in a multi-document file they are file lines.
    pub fn documents(text: &str) -> Vec<Positions> {
        // yaml-rust2 asserts its own invariants; should one ever fail on odd
        // input, a missing index (errors fall back to the document's line)
        // is far better than a pilot that stops reloading config.
        std::panic::catch_unwind(|| index(text)).unwrap_or_default()
    }

    /// The index of the first document of `text`; empty when it has none.
    pub fn first(text: &str) -> Positions {
        Self::documents(text).into_iter().next().unwrap_or_default()
    }

    /// The same index with every line `by` lines later (a document that
    /// starts after other lines of its file).
    pub fn shifted(mut self, by: usize) -> Positions {
        if by > 0 {
            for line in self.lines.values_mut() {
                *line += by;
            }
        }
        self
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The line of exactly `path`, if the text has it.
    pub fn exact(&self, path: &str) -> Option<usize> {
        self.lines.get(path).copied()
    }

    /// The line of `path`, else of its deepest ancestor in the text (for
    /// `spec.http[0].route` missing: `spec.http[0]`, then `spec.http`, ...,
    /// then the document itself). `None` only for an empty index.
    pub fn line(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(line) = self.exact(path) {
                return Some(line);
            }
            if path.is_empty() {
                return None;
            }
            path = parent(path);
        }
    }
}

/// The path one step up: `a.b[1]` → `a.b` → `a` → `""`.
fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(at) => &path[..at],
        None => "",
    }
}

/// Joins a parent path and a key.
fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Where one object's fields are: the index of its document and, for an
/// item of a `kind: List`, the item's path in that document (`items[2]`).
/// Cheap to clone: documents are shared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldLines {
    doc: Arc<Positions>,
    base: String,
}

impl FieldLines {
    /// The fields of the object at `base` (`""` for a whole document) in
    /// `doc`.
    pub fn new(doc: Arc<Positions>, base: impl Into<String>) -> Self {
        FieldLines {
            doc,
            base: base.into(),
        }
    }

    /// The line of exactly the object's field `path`.
    pub fn exact(&self, path: &str) -> Option<usize> {
        self.doc.exact(&self.full(path))
    }

    /// The line of the object's field `path` or of its deepest ancestor
    /// present, as [`Positions::line`].
    pub fn line(&self, path: &str) -> Option<usize> {
        self.doc.line(&self.full(path))
    }

    fn full(&self, path: &str) -> String {
        match (self.base.is_empty(), path.is_empty()) {
            (true, _) => path.to_string(),
            (_, true) => self.base.clone(),
            // `items[0]` + `[1]` would be odd; objects are mappings, so
            // paths within them start with a key.
            _ => child(&self.base, path),
        }
    }
}

/// One open collection while walking the events.
enum Frame {
    /// A mapping: its path (`None` when it cannot be named) and whether the
    /// next node is a key or the value of the key just read.
    Map { path: Option<String>, key: Key },
    /// A sequence: its path and the index of the next item.
    Seq { path: Option<String>, next: usize },
}

/// Where a mapping is between its keys and values.
enum Key {
    /// The next node is a key.
    Expected,
    /// The next node is the value of the key read on `line`, whose path is
    /// `path` (`None` for a key that is not a scalar).
    Read { path: Option<String>, line: usize },
}

/// Builds the indexes of every document from the parser's events.
#[derive(Default)]
struct Builder {
    docs: Vec<Positions>,
    current: Option<Positions>,
    stack: Vec<Frame>,
}

fn index(text: &str) -> Vec<Positions> {
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder::default();
    // Every event consumes input and the stream ends with StreamEnd or an
    // error, so this loop ends; an error keeps what was indexed so far.
    while let Ok((event, mark)) = parser.next_token() {
        if event == Event::StreamEnd {
            break;
        }
        builder.event(event, mark.line());
    }
    builder.finish()
}

impl Builder {
    fn event(&mut self, event: Event, line: usize) {
        match event {
            Event::DocumentStart => {
                self.end_document();
                self.current = Some(Positions::default());
            }
            Event::DocumentEnd => self.end_document(),
            Event::Scalar(value, ..) => {
                self.node(line, Some(&value));
            }
            Event::Alias(_) => {
                self.node(line, None);
            }
            Event::SequenceStart(..) => {
                let path = self.node(line, None);
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingStart(..) => {
                let path = self.node(line, None);
                self.stack.push(Frame::Map {
                    path,
                    key: Key::Expected,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.stack.pop();
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd => {}
        }
    }

    /// A node starts on `line` (`scalar` is its text when it is a scalar):
    /// records its line and returns its path, `None` for a key or a node
    /// that cannot be named.
    fn node(&mut self, line: usize, scalar: Option<&str>) -> Option<String> {
        let path = match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, next }) => {
                let item = path.as_ref().map(|p| format!("{p}[{next}]"));
                *next += 1;
                item
            }
            Some(Frame::Map { path, key }) => match std::mem::replace(key, Key::Expected) {
                Key::Expected => {
                    let named = match (path, scalar) {
                        (Some(p), Some(k)) => Some(child(p, k)),
                        _ => None,
                    };
                    *key = Key::Read { path: named, line };
                    return None;
                }
                Key::Read {
                    path,
                    line: key_line,
                } => {
                    if let Some(p) = &path {
                        self.record(p, key_line);
                    }
                    return path;
                }
            },
        };
        if let Some(p) = &path {
            self.record(p, line);
        }
        path
    }

    fn record(&mut self, path: &str, line: usize) {
        if let Some(doc) = &mut self.current {
            // YAML forbids duplicate keys; should a text have them anyway,
            // the first stays.
            doc.lines.entry(path.to_string()).or_insert(line);
        }
    }

    fn end_document(&mut self) {
        self.stack.clear();
        if let Some(doc) = self.current.take() {
            self.docs.push(doc);
        }
    }

    fn finish(mut self) -> Vec<Positions> {
        self.end_document();
        self.docs
    }
}

#[cfg(test)]
mod tests;
