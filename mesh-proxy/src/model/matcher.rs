//! Matchers of the model, shared by routes, retry policies and the HTTP
//! filters: header and value conditions, and regex rewrites.

use serde::Serialize;

/// A header condition.
#[derive(Debug, Clone, Serialize)]
pub struct HeaderMatcher {
    /// Lower-case header name (`:authority`, `:method`, `:path` allowed).
    pub name: String,
    /// How the value must look.
    pub kind: HeaderMatchKind,
    /// Match when the condition does not hold.
    pub invert: bool,
    /// An absent header is matched as if its value were empty
    /// (`treat_missing_header_as_empty`).
    pub treat_missing_as_empty: bool,
}

impl HeaderMatcher {
    /// A condition on header `name` as Envoy's defaults have it.
    pub fn new(name: impl Into<String>, kind: HeaderMatchKind) -> Self {
        Self {
            name: name.into(),
            kind,
            invert: false,
            treat_missing_as_empty: false,
        }
    }
}

/// How a header value is matched.
#[derive(Debug, Clone, Serialize)]
pub enum HeaderMatchKind {
    /// Value equals.
    Exact(String),
    /// Value starts with.
    Prefix(String),
    /// Value ends with.
    Suffix(String),
    /// Value contains.
    Contains(String),
    /// Whole value matches, compiled anchored
    /// ([`crate::xds::convert::compile_whole_match`]).
    Regex(#[serde(with = "serde_regex_str")] regex::Regex),
    /// Header present (true) or absent (false).
    Present(bool),
}

/// A regex path rewrite: every match of `regex` replaced by `substitution`
/// (`\1` style group references, as RE2 writes them).
#[derive(Debug, Clone, Serialize)]
pub struct RegexRewrite {
    /// The pattern (unanchored, as Envoy applies it).
    #[serde(with = "serde_regex_str")]
    pub regex: regex::Regex,
    /// The replacement, already in the `regex` crate's `${1}` syntax.
    pub substitution: String,
}

pub(super) mod serde_regex_str {
    pub fn serialize<S: serde::Serializer>(re: &regex::Regex, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(re.as_str())
    }
}
