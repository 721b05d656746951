//! Loading: YAML text, files and directories into [`Loaded`] objects, with a
//! [`ConfigError`] (file, line, object, field path) for every document that
//! cannot be read as one.
//!
//! First step of the flow in DESIGN.md; [`crate::validate()`] comes next.
//!
//! Rules:
//! - Documents are separated by `---` lines; empty documents are skipped.
//! - `kind: List` documents are expanded into their `items`.
//! - Objects whose apiVersion is not in `networking.istio.io` (a Deployment,
//!   a Service, ...) are skipped without error, so application manifests may
//!   share files with mesh config.
//! - A `networking.istio.io` kind other than the five supported ones
//!   (`Sidecar`, `EnvoyFilter`, ...) or an unknown version is reported as
//!   [`ErrorKind::Unsupported`].
//! - Lines are file lines. A syntax error has the line of the offending
//!   token; every other error the line of its field (from the document's
//!   [`Positions`] index), or of the field's nearest ancestor when the
//!   field is missing. Objects carry the index ([`Loaded::fields`]) so that
//!   validation errors get the same lines.
//! - Size limits come first ([`limits`]): a file over [`MAX_FILE_BYTES`]
//!   is not read at all, and a document whose aliases expand past
//!   [`MAX_EXPANDED_BYTES`] is not parsed into a tree; both are
//!   [`ErrorKind::TooLarge`] errors naming the limit.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use crate::error::{ConfigError, ErrorKind};
use crate::normalize::{aliases, normalize};
use crate::positions::{FieldLines, Positions};
use crate::types::{Loaded, Object, Resource, API_GROUP, API_VERSIONS, DEFAULT_NAMESPACE, KINDS};

mod limits;
pub use limits::{bytes as fmt_bytes, MAX_EXPANDED_BYTES, MAX_FILE_BYTES};

/// One file's result: the objects that loaded and the errors of the
/// documents that did not.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedFile {
    /// The file.
    pub path: PathBuf,
    /// Objects read from it, in file order.
    pub objects: Vec<Loaded>,
    /// Problems found while reading it (not yet validation).
    pub errors: Vec<ConfigError>,
}

/// Loads every Istio object from `text`, which came from `file` (used in
/// errors and in [`Loaded::file`]).
pub fn load_str(file: &Path, text: &str) -> (Vec<Loaded>, Vec<ConfigError>) {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    if text.len() as u64 > MAX_FILE_BYTES {
        errors.push(too_large(file, text.len() as u64));
        return (objects, errors);
    }
    for doc in split_documents(text) {
        load_document(file, &doc, &mut objects, &mut errors);
    }
    (objects, errors)
}

/// Reads and loads one file; a read failure becomes an [`ErrorKind::Io`]
/// error.
pub fn load_file(path: &Path) -> LoadedFile {
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.len() > MAX_FILE_BYTES {
            return LoadedFile {
                path: path.to_path_buf(),
                objects: Vec::new(),
                errors: vec![too_large(path, meta.len())],
            };
        }
    }
    let (objects, errors) = match std::fs::read_to_string(path) {
        Ok(text) => load_str(path, &text),
        Err(err) => (
            Vec::new(),
            vec![ConfigError::new(
                path,
                ErrorKind::Io,
                "",
                format!("cannot read file: {err}"),
            )],
        ),
    };
    LoadedFile {
        path: path.to_path_buf(),
        objects,
        errors,
    }
}

/// The error of a file of `size` bytes, over [`MAX_FILE_BYTES`]; it is not
/// read.
pub fn too_large(file: &Path, size: u64) -> ConfigError {
    ConfigError::new(
        file,
        ErrorKind::TooLarge,
        "",
        format!(
            "the file is {} ({size} bytes), over the limit of {} per config file; split it",
            limits::bytes(size),
            limits::bytes(MAX_FILE_BYTES)
        ),
    )
}

/// Loads every `*.yaml` and `*.yml` file directly in `dir` (not in
/// subdirectories), in file name order. Fails only when `dir` itself
/// cannot be listed.
pub fn load_dir(dir: &Path) -> Result<Vec<LoadedFile>, ConfigError> {
    let io_err = |err: std::io::Error| {
        ConfigError::new(
            dir,
            ErrorKind::Io,
            "",
            format!("cannot read directory: {err}"),
        )
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        if is_yaml_file(&path) {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths.iter().map(|p| load_file(p)).collect())
}

/// Whether `path` is a regular file named `*.yaml` or `*.yml`.
pub fn is_yaml_file(path: &Path) -> bool {
    let yaml_ext = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e == "yaml" || e == "yml");
    yaml_ext && path.is_file()
}

/// One YAML document of a file and the 1-based line it starts on.
struct Document {
    text: String,
    first_line: usize,
    /// File lines before the document's text: its line `n` is file line
    /// `n + offset`.
    offset: usize,
}

/// Splits a multi-document stream on `---` (and `...`) marker lines,
/// keeping line numbers: each document knows how many file lines come
/// before its text (parser positions plus that offset are file positions).
fn split_documents(text: &str) -> Vec<Document> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut first_line = 1;
    let mut offset = 0;
    for (index, line) in text.lines().enumerate() {
        let marker = line
            .strip_prefix("---")
            .or_else(|| line.strip_prefix("..."))
            .filter(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
        match marker {
            Some(rest) => {
                docs.push(Document {
                    text: std::mem::take(&mut current),
                    first_line,
                    offset,
                });
                first_line = index + 1;
                // The marker line is the new document's first line.
                offset = index;
                // `--- {inline: doc}` starts the next document on this line.
                current.push_str(rest);
                current.push('\n');
            }
            None => {
                current.push_str(line);
                current.push('\n');
            }
        }
    }
    docs.push(Document {
        text: current,
        first_line,
        offset,
    });
    docs.retain(|d| has_content(&d.text));
    for doc in &mut docs {
        doc.first_line = first_content_line(&doc.text).map_or(doc.first_line, |l| l + doc.offset);
    }
    docs
}

/// Whether a document holds anything besides blank lines and comments.
fn has_content(text: &str) -> bool {
    first_content_line(text).is_some()
}

/// 1-based number of the first line that is not blank or a comment.
fn first_content_line(text: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#') && !t.starts_with('%')
        })
        .map(|i| i + 1)
}

/// Loads one document into `objects`, or records why it could not be.
fn load_document(
    file: &Path,
    doc: &Document,
    objects: &mut Vec<Loaded>,
    errors: &mut Vec<ConfigError>,
) {
    if let Err(too_big) = limits::check_aliases(&doc.text, MAX_EXPANDED_BYTES) {
        errors.push(
            ConfigError::new(
                file,
                ErrorKind::TooLarge,
                "",
                format!(
                    "the document's aliases expand it to more than {} ({} bytes by this \
                     alias), over the limit of {}",
                    limits::bytes(too_big.expanded),
                    too_big.expanded,
                    limits::bytes(MAX_EXPANDED_BYTES)
                ),
            )
            .at_line(Some(too_big.line + doc.offset)),
        );
        return;
    }
    let value: Value = match serde_yaml::from_str(&doc.text) {
        Ok(value) => value,
        Err(err) => {
            let line = err.location().map(|l| l.line() + doc.offset);
            errors.push(
                ConfigError::new(file, ErrorKind::Syntax, "", yaml_message(&err))
                    .at_line(line.or(Some(doc.first_line))),
            );
            return;
        }
    };
    if value.is_null() {
        return;
    }
    // Indexed only once the text parsed: a syntax error has its line from
    // serde_yaml already.
    let positions = Arc::new(Positions::first(&doc.text).shifted(doc.offset));
    if value.get("kind").and_then(Value::as_str) == Some("List") {
        load_list(file, doc, positions, &value, objects, errors);
        return;
    }
    let at = Where {
        fields: FieldLines::new(positions, ""),
        line: doc.first_line,
    };
    match identify(file, &at, &value) {
        Identified::Skip => {}
        Identified::Error(err) => errors.push(err),
        Identified::Kind(kind) => {
            let key = object_key(kind, &value);
            let de = serde_yaml::Deserializer::from_str(&doc.text);
            match typed(kind, de) {
                Ok(object) => at.normalized(file, &value, object, objects, errors),
                Err(mut err) => {
                    err.line = err.line.map(|l| l + doc.offset);
                    errors.push(err.into_config_error(file, &at, key))
                }
            }
        }
    }
}

/// Expands a `kind: List` document; each item's lines are looked up under
/// `items[N]`.
fn load_list(
    file: &Path,
    doc: &Document,
    positions: Arc<Positions>,
    list: &Value,
    objects: &mut Vec<Loaded>,
    errors: &mut Vec<ConfigError>,
) {
    let Some(items) = list.get("items").and_then(Value::as_sequence) else {
        let line = positions.line("items").unwrap_or(doc.first_line);
        errors.push(
            ConfigError::new(
                file,
                ErrorKind::MissingField,
                "items",
                "a List needs a sequence of items",
            )
            .at_line(Some(line)),
        );
        return;
    };
    for (index, item) in items.iter().enumerate() {
        let base = format!("items[{index}]");
        let fields = FieldLines::new(positions.clone(), base.as_str());
        let at = Where {
            line: fields.line("").unwrap_or(doc.first_line),
            fields,
        };
        match identify(file, &at, item) {
            Identified::Skip => {}
            Identified::Error(mut err) => {
                err.path = join_path(&base, &err.path);
                errors.push(err);
            }
            Identified::Kind(kind) => {
                let key = object_key(kind, item);
                match typed(kind, item.clone()) {
                    Ok(object) => at.normalized(file, item, object, objects, errors),
                    Err(err) => errors.push(err.into_config_error(file, &at, key)),
                }
            }
        }
    }
}

/// Where an object is in its file: its fields' lines and the line it
/// starts on.
struct Where {
    fields: FieldLines,
    line: usize,
}

impl Where {
    /// The line for an error at `path`: the field's, else its nearest
    /// ancestor's, else the object's.
    fn line_of(&self, path: &str) -> usize {
        self.fields.line(path).unwrap_or(self.line)
    }

    /// Normalizes `object` (deserialized from `raw`) and keeps it with its
    /// warnings, or, when a deprecated value cannot be rewritten, reports
    /// why instead.
    fn normalized(
        &self,
        file: &Path,
        raw: &Value,
        mut object: Object,
        objects: &mut Vec<Loaded>,
        errors: &mut Vec<ConfigError>,
    ) {
        let key = (!object.name().is_empty()).then(|| object.key());
        let mut findings = match raw.get("spec") {
            Some(spec) => aliases(spec, &object.spec_json(), "spec"),
            None => Vec::new(),
        };
        findings.extend(normalize(&mut object));
        let (warnings, failures): (Vec<_>, Vec<_>) = findings
            .into_iter()
            .map(|f| {
                let line = self.line_of(&f.path);
                ConfigError::new(file, f.kind, f.path, f.message)
                    .at_line(Some(line))
                    .for_object(key.clone())
            })
            .partition(|e| e.kind.is_warning());
        if !failures.is_empty() {
            errors.extend(failures);
            return;
        }
        objects.push(Loaded {
            object,
            file: file.to_path_buf(),
            line: Some(self.line),
            fields: self.fields.clone(),
            warnings,
        });
    }
}

/// What a document is, judged from its apiVersion and kind.
enum Identified {
    /// Not an Istio networking object: ignore it.
    Skip,
    /// A supported kind.
    Kind(&'static str),
    /// Not usable (missing apiVersion/kind, unsupported kind or version).
    Error(ConfigError),
}

fn identify(file: &Path, at: &Where, value: &Value) -> Identified {
    let raw_kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    let key = if raw_kind.is_empty() {
        None
    } else {
        object_key(raw_kind, value)
    };
    let err = |kind, path: &str, msg: String| {
        Identified::Error(
            ConfigError::new(file, kind, path, msg)
                .at_line(Some(at.line_of(path)))
                .for_object(key.clone()),
        )
    };
    if !value.is_mapping() {
        return err(
            ErrorKind::WrongType,
            "",
            "expected a Kubernetes object (a mapping with apiVersion, kind, metadata and spec)"
                .into(),
        );
    }
    let Some(api_version) = value.get("apiVersion").and_then(Value::as_str) else {
        return err(
            ErrorKind::MissingField,
            "apiVersion",
            "missing required field (every document must be a Kubernetes object)".into(),
        );
    };
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    if group != API_GROUP {
        return Identified::Skip;
    }
    let Some(kind) = value.get("kind").and_then(Value::as_str) else {
        return err(
            ErrorKind::MissingField,
            "kind",
            "missing required field".into(),
        );
    };
    let Some(kind) = KINDS.iter().copied().find(|k| *k == kind) else {
        return err(
            ErrorKind::Unsupported,
            "kind",
            format!(
                "kind {kind} of {API_GROUP} is not supported by this mesh (supported: {})",
                KINDS.join(", ")
            ),
        );
    };
    if !API_VERSIONS.contains(&version) {
        return err(
            ErrorKind::Unsupported,
            "apiVersion",
            format!(
                "unsupported version {api_version:?} (use {API_GROUP}/{})",
                API_VERSIONS.join(", /")
            ),
        );
    }
    Identified::Kind(kind)
}

/// `Kind/namespace/name` from the raw document, for errors about objects
/// that did not deserialize; `None` without a usable name.
fn object_key(kind: &str, value: &Value) -> Option<String> {
    let meta = value.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let namespace = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_NAMESPACE);
    Some(format!("{kind}/{namespace}/{name}"))
}

/// A typed-deserialization failure with its path.
struct TypedError {
    path: String,
    line: Option<usize>,
    message: String,
}

impl TypedError {
    fn into_config_error(self, file: &Path, at: &Where, key: Option<String>) -> ConfigError {
        let kind = classify(&self.message);
        let mut path = self.path;
        // serde reports a missing field at the struct that lacks it; point
        // at the field itself.
        if let Some(field) = backticked(&self.message, "missing field `") {
            path = join_path(&path, field);
        }
        let message = if kind == ErrorKind::MissingField {
            "missing required field".to_string()
        } else {
            case_hint(self.message)
        };
        // The field's own line when the text has it. A missing field is not
        // in the text: its parent is, while serde_yaml marks wherever it
        // noticed (the token after the mapping). Otherwise serde_yaml's mark
        // is the offending token, closer than an ancestor's line.
        let line = match at.fields.exact(&path) {
            Some(line) => line,
            None if kind == ErrorKind::MissingField => at.line_of(&path),
            None => self.line.unwrap_or_else(|| at.line_of(&path)),
        };
        ConfigError::new(file, kind, path, message)
            .at_line(Some(line))
            .for_object(key)
    }
}

/// Deserializes a supported kind with path tracking.
fn typed<'de, D>(kind: &str, de: D) -> Result<Object, TypedError>
where
    D: serde::Deserializer<'de, Error = serde_yaml::Error>,
{
    fn one<'de, S: DeserializeOwned, D>(de: D) -> Result<Resource<S>, TypedError>
    where
        D: serde::Deserializer<'de, Error = serde_yaml::Error>,
    {
        serde_path_to_error::deserialize(de).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            TypedError {
                path: if path == "." { String::new() } else { path },
                line: inner.location().map(|l| l.line()),
                message: yaml_message(&inner),
            }
        })
    }
    Ok(match kind {
        "VirtualService" => Object::VirtualService(one(de)?),
        "DestinationRule" => Object::DestinationRule(one(de)?),
        "Gateway" => Object::Gateway(one(de)?),
        "ServiceEntry" => Object::ServiceEntry(one(de)?),
        "Sidecar" => Object::Sidecar(one(de)?),
        _ => Object::WorkloadEntry(one(de)?),
    })
}

/// The message of a serde_yaml error without its own path prefix and
/// position suffix (we report both separately).
fn yaml_message(err: &serde_yaml::Error) -> String {
    let mut text = err.to_string();
    if let Some(loc) = err.location() {
        let position = format!(" at line {} column {}", loc.line(), loc.column());
        text = text.replacen(&position, "", 1);
    }
    // serde_yaml prefixes "path.to.field: "; paths have no spaces while
    // messages start with words followed by spaces.
    if let Some((prefix, rest)) = text.split_once(": ") {
        if !prefix.is_empty() && !prefix.contains(char::is_whitespace) {
            text = rest.to_string();
        }
    }
    text
}

/// An unknown enum value that is a known one in another case gets a hint:
/// Istio's enum values are case-sensitive (`round_robin` is not
/// `ROUND_ROBIN`), unlike port protocols.
fn case_hint(message: String) -> String {
    let Some(value) = backticked(&message, "unknown variant `") else {
        return message;
    };
    let known = message
        .split('`')
        .skip(3)
        .step_by(2)
        .find(|v| v.eq_ignore_ascii_case(value));
    match known {
        Some(known) => format!("{message} (enum values are case-sensitive: write {known})"),
        None => message,
    }
}

/// Sorts a serde message into an [`ErrorKind`].
fn classify(message: &str) -> ErrorKind {
    if message.starts_with("unknown field") {
        ErrorKind::UnknownField
    } else if message.starts_with("missing field") {
        ErrorKind::MissingField
    } else if message.starts_with("invalid type")
        || message.starts_with("unknown variant")
        || message.starts_with("invalid length")
        || message.starts_with("invalid value")
    {
        ErrorKind::WrongType
    } else {
        ErrorKind::InvalidValue
    }
}

/// The text between `start` and the next backtick in `message`.
fn backticked<'m>(message: &'m str, start: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(start)?;
    rest.split('`').next()
}

/// Joins two field paths with a dot, either may be empty.
pub(crate) fn join_path(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}.{b}"),
    }
}

#[cfg(test)]
mod tests;
