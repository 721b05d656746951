//! The one error type of mesh-api: a user-facing config error (or warning)
//! that names the file, the line (when known), the object and the field
//! path.
//!
//! Produced by loading and validation; pilot and meshctl print it as is
//! ([`fmt::Display`]), and pilot's `/debug/configz` sends it as a JSON object
//! (serde) that meshctl reads back: one type on both sides of the wire.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, Serializer};

/// What kind of problem a [`ConfigError`] reports; lets callers and tests
/// tell cases apart without parsing the message. In JSON it is the
/// variant's name (`"InvalidValue"`), a stable string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// The input is over a size limit (a file's bytes, a document's bytes
    /// once its aliases are expanded, the config directory's total).
    TooLarge,
    /// The text is not valid YAML.
    Syntax,
    /// A field the schema does not have.
    UnknownField,
    /// A value of the wrong type (or an unknown enum value).
    WrongType,
    /// A required field is missing or empty.
    MissingField,
    /// A value is present but not allowed (bad regex, port out of range,
    /// weights not summing to 100, ...).
    InvalidValue,
    /// A `networking.istio.io` kind or version this mesh does not support.
    Unsupported,
    /// The same `Kind/namespace/name` was loaded twice.
    Duplicate,
    /// A reference to something that does not exist (e.g. a subset no
    /// DestinationRule defines).
    UnresolvedReference,
    /// Warning: a deprecated field, rewritten into its modern form (the
    /// message names it) or ignored as Istio ignores it.
    Deprecated,
    /// Warning: config that loads but does not take effect as written (e.g.
    /// a VirtualService shadowed by an older one for the same host).
    Ineffective,
}

impl ErrorKind {
    /// Whether a finding of this kind is a warning: the config is still
    /// accepted. Validation ([`crate::validate()`]) never returns these;
    /// [`crate::warnings`] returns only these.
    pub fn is_warning(self) -> bool {
        matches!(self, ErrorKind::Deprecated | ErrorKind::Ineffective)
    }
}

/// A config error: `FILE:LINE: Kind/ns/name: spec.field.path: message`.
///
/// Warnings have the same shape, with a warning [`ErrorKind`]
/// ([`ErrorKind::is_warning`]).
///
/// `:LINE` is left out when the line is unknown, the object part when the
/// object could not be identified, and the path when the error is about the
/// document as a whole.
///
/// As JSON: `{"file", "line", "object", "path", "kind", "message"}`, with
/// `line` and `object` `null` when unknown and `kind` an [`ErrorKind`]
/// name. Errors order by file, then line.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, thiserror::Error, Serialize, Deserialize,
)]
pub struct ConfigError {
    /// The file the object came from.
    #[serde(serialize_with = "lossy_path")]
    pub file: PathBuf,
    /// 1-based file line: of the offending token for syntax errors, of the
    /// offending field (its key, or its sequence item) for every other
    /// error, of the field's nearest ancestor when the field is missing.
    pub line: Option<usize>,
    /// `Kind/namespace/name`, when known.
    pub object: Option<String>,
    /// Field path such as `spec.http[0].route[1].weight`; empty for errors
    /// about a whole document.
    pub path: String,
    /// What kind of problem this is.
    pub kind: ErrorKind,
    /// What is wrong, for a person.
    pub message: String,
}

impl ConfigError {
    /// An error of `kind` at `path` in `file`, with no line or object yet.
    pub fn new(
        file: impl Into<PathBuf>,
        kind: ErrorKind,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.into(),
            line: None,
            object: None,
            path: path.into(),
            kind,
            message: message.into(),
        }
    }

    /// Sets the line.
    pub fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }

    /// Sets the object key (`Kind/namespace/name`).
    pub fn for_object(mut self, key: Option<String>) -> Self {
        self.object = key;
        self
    }
}

/// A file name as JSON text even when it is not UTF-8 (serde would fail the
/// whole document for one odd name).
fn lossy_path<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(object) = &self.object {
            write!(f, ": {object}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_every_part() {
        let err = ConfigError::new(
            "mesh/vs.yaml",
            ErrorKind::InvalidValue,
            "spec.http[0].route[1].weight",
            "weights sum to 90, not 100",
        )
        .at_line(Some(12))
        .for_object(Some("VirtualService/default/reviews".into()));
        assert_eq!(
            err.to_string(),
            "mesh/vs.yaml:12: VirtualService/default/reviews: spec.http[0].route[1].weight: weights sum to 90, not 100"
        );
    }

    #[test]
    fn json_has_every_part_as_a_field() {
        let err = ConfigError::new(
            "mesh/vs.yaml",
            ErrorKind::InvalidValue,
            "spec.http[1].match[0].uri.regex",
            "invalid regular expression",
        )
        .at_line(Some(18))
        .for_object(Some("VirtualService/default/reviews".into()));
        let json = serde_json::to_value(&err).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "file": "mesh/vs.yaml",
                "line": 18,
                "object": "VirtualService/default/reviews",
                "path": "spec.http[1].match[0].uri.regex",
                "kind": "InvalidValue",
                "message": "invalid regular expression",
            })
        );
        let back: ConfigError = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, err);
        let unknown = ConfigError::new("a.yaml", ErrorKind::Syntax, "", "bad YAML");
        let json = serde_json::to_value(&unknown).expect("serializes");
        assert_eq!(
            (&json["line"], &json["object"]),
            (&serde_json::Value::Null, &serde_json::Value::Null)
        );
    }

    #[test]
    fn display_leaves_out_unknown_parts() {
        let err = ConfigError::new("a.yaml", ErrorKind::Syntax, "", "bad YAML");
        assert_eq!(err.to_string(), "a.yaml: bad YAML");
        let err = err.for_object(Some("Gateway/default/gw".into()));
        assert_eq!(err.to_string(), "a.yaml: Gateway/default/gw: bad YAML");
    }
}
