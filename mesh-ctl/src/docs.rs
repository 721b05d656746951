//! Multi-document YAML files as text: split into documents, identify each
//! (`Kind/namespace/name`) and put files back together, so that `apply` and
//! `delete` can replace or drop one object while every other document of
//! the file keeps its exact text and comments.

use std::fmt;

use mesh_api::{API_GROUP, DEFAULT_NAMESPACE};

/// The identity of a config object: what `apply` replaces and `delete`
/// removes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    /// `VirtualService`, `DestinationRule`, ...
    pub kind: String,
    /// Namespace, `default` when the document gives none.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectId {
    /// kubectl's name for the object: `virtualservice.networking.istio.io/NAME`.
    pub fn resource(&self) -> String {
        format!("{}/{}", self.resource_type(), self.name)
    }

    /// kubectl's name for the type: `virtualservice.networking.istio.io`.
    pub fn resource_type(&self) -> String {
        format!("{}.{API_GROUP}", self.kind.to_lowercase())
    }

    /// The file name `apply` gives an object that no file holds yet.
    pub fn file_name(&self) -> String {
        format!(
            "applied-{}-{}-{}.yaml",
            sanitize(&self.kind.to_lowercase()),
            sanitize(&self.namespace),
            sanitize(&self.name)
        )
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// Keeps file names to characters that are safe everywhere.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One YAML document of a file, without its `---` separator line.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// The document's text, as written.
    pub text: String,
    /// The parsed value; `None` when the document is empty (only comments)
    /// or is not valid YAML.
    pub value: Option<serde_yaml::Value>,
}

impl Doc {
    /// Kind, namespace and name, when the document has a kind and a name.
    pub fn id(&self) -> Option<ObjectId> {
        let value = self.value.as_ref()?;
        let kind = value.get("kind")?.as_str()?;
        let metadata = value.get("metadata")?;
        let name = metadata.get("name")?.as_str()?;
        let namespace = metadata
            .get("namespace")
            .and_then(|n| n.as_str())
            .unwrap_or(DEFAULT_NAMESPACE);
        Some(ObjectId {
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }

    /// True when the document's apiVersion is in `networking.istio.io`, the
    /// group the mesh's config store holds.
    pub fn is_mesh_object(&self) -> bool {
        self.value
            .as_ref()
            .and_then(|v| v.get("apiVersion"))
            .and_then(|v| v.as_str())
            .is_some_and(|v| v.split('/').next() == Some(API_GROUP))
    }

    /// True for a document with nothing but comments and blank lines.
    pub fn is_blank(&self) -> bool {
        self.text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    }
}

/// Splits a multi-document YAML text at its `---` lines.
pub fn split(text: &str) -> Vec<Doc> {
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        if is_separator(line) {
            docs.push(std::mem::take(&mut current));
        } else {
            current.push_str(line);
        }
    }
    docs.push(current);
    docs.into_iter()
        .map(|text| {
            let value = serde_yaml::from_str::<serde_yaml::Value>(&text)
                .ok()
                .filter(|v| !v.is_null());
            Doc { text, value }
        })
        .collect()
}

/// A `---` document marker: at column 0, alone or followed by whitespace
/// or a comment.
fn is_separator(line: &str) -> bool {
    let line = line.trim_end_matches(['\n', '\r']);
    match line.strip_prefix("---") {
        Some(rest) => rest.is_empty() || rest.starts_with([' ', '\t']),
        None => false,
    }
}

/// Puts documents back together as one file, dropping blank documents
/// except a leading comment block.
pub fn join(docs: &[Doc]) -> String {
    let mut out = String::new();
    let mut first = true;
    for (i, doc) in docs.iter().enumerate() {
        if doc.is_blank() && (i > 0 || doc.text.trim().is_empty()) {
            continue;
        }
        if !first {
            out.push_str("---\n");
        }
        out.push_str(&doc.text);
        if !doc.text.ends_with('\n') {
            out.push('\n');
        }
        first = false;
    }
    out
}

/// True when no document of `docs` holds an object.
pub fn holds_no_object(docs: &[Doc]) -> bool {
    docs.iter().all(|d| d.id().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "# header\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: a\nspec: {}\n---\nkind: DestinationRule\nmetadata:\n  name: b\n  namespace: prod\nspec: {}\n";

    #[test]
    fn splits_and_identifies() {
        let docs = split(TWO);
        assert_eq!(docs.len(), 2);
        let a = docs[0].id().unwrap();
        assert_eq!(a.to_string(), "VirtualService/default/a");
        assert_eq!(a.resource(), "virtualservice.networking.istio.io/a");
        assert_eq!(a.file_name(), "applied-virtualservice-default-a.yaml");
        assert_eq!(docs[1].id().unwrap().to_string(), "DestinationRule/prod/b");
        assert!(docs[0].is_mesh_object());
        // The second has no apiVersion.
        assert!(!docs[1].is_mesh_object());
        assert!(!split("apiVersion: apps/v1\nkind: Deployment\n")[0].is_mesh_object());
    }

    #[test]
    fn join_round_trips() {
        assert_eq!(join(&split(TWO)), TWO);
    }

    #[test]
    fn leading_separator_and_blank_docs_are_dropped() {
        let text = "---\nkind: Gateway\nmetadata: {name: g}\n---\n# nothing\n";
        let docs = split(text);
        assert_eq!(docs.iter().filter_map(Doc::id).count(), 1);
        assert_eq!(join(&docs), "kind: Gateway\nmetadata: {name: g}\n");
    }

    #[test]
    fn separator_needs_column_zero() {
        assert!(is_separator("---\n"));
        assert!(is_separator("--- # doc\n"));
        assert!(!is_separator("----\n"));
        assert!(!is_separator("  ---\n"));
    }

    #[test]
    fn invalid_yaml_has_no_id() {
        let docs = split("kind: [unclosed\n");
        assert!(docs[0].id().is_none());
        assert!(holds_no_object(&docs));
    }

    #[test]
    fn odd_names_make_safe_file_names() {
        let id = ObjectId {
            kind: "VirtualService".into(),
            namespace: "default".into(),
            name: "a/b c".into(),
        };
        assert_eq!(id.file_name(), "applied-virtualservice-default-a_b_c.yaml");
    }
}
