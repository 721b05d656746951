//! Kubernetes object metadata as the mesh keeps it: name, namespace, labels,
//! annotations and the creation time, which orders objects the way Istio
//! orders them (oldest first) when two of them claim the same thing.
//!
//! Part of the config model (first stage of the flow in DESIGN.md); pilot
//! reads [`ObjectMeta::creation_timestamp`] to pick which of two
//! VirtualServices for one host a sidecar gets.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Kubernetes object metadata, reduced to what the mesh uses.
///
/// Other standard Kubernetes metadata fields (`uid`, `resourceVersion`,
/// `generation`, `managedFields`, ...) are accepted and dropped, so `kubectl
/// get -o yaml` output loads; anything else (a typo such as `namspace`) is
/// an unknown-field error.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(from = "RawObjectMeta", rename_all = "camelCase")]
// The schema is that of the wire form, which is what is accepted.
#[schemars(with = "RawObjectMeta")]
pub struct ObjectMeta {
    /// Object name. Required (validation reports it when empty).
    pub name: String,
    /// Namespace; [`super::DEFAULT_NAMESPACE`] when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// When the object was created (set by the Kubernetes API server; files
    /// usually leave it out). An object without one counts as older than
    /// any object with one, as in Istio, where the missing time is Go's zero
    /// time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Timestamp>,
}

impl ObjectMeta {
    /// Metadata with a name and namespace and nothing else.
    pub fn new(name: impl Into<String>, namespace: impl Into<String>) -> Self {
        ObjectMeta {
            name: name.into(),
            namespace: Some(namespace.into()),
            ..Default::default()
        }
    }
}

/// The wire form of [`ObjectMeta`], listing the Kubernetes fields we accept
/// and ignore.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawObjectMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    creation_timestamp: Option<Timestamp>,
    #[serde(default, rename = "generateName")]
    #[schemars(with = "Option<serde_json::Value>")]
    _generate_name: Option<IgnoredAny>,
    #[serde(default, rename = "uid")]
    #[schemars(with = "Option<serde_json::Value>")]
    _uid: Option<IgnoredAny>,
    #[serde(default, rename = "resourceVersion")]
    #[schemars(with = "Option<serde_json::Value>")]
    _resource_version: Option<IgnoredAny>,
    #[serde(default, rename = "generation")]
    #[schemars(with = "Option<serde_json::Value>")]
    _generation: Option<IgnoredAny>,
    #[serde(default, rename = "deletionTimestamp")]
    #[schemars(with = "Option<serde_json::Value>")]
    _deletion_timestamp: Option<IgnoredAny>,
    #[serde(default, rename = "deletionGracePeriodSeconds")]
    #[schemars(with = "Option<serde_json::Value>")]
    _deletion_grace_period_seconds: Option<IgnoredAny>,
    #[serde(default, rename = "managedFields")]
    #[schemars(with = "Option<serde_json::Value>")]
    _managed_fields: Option<IgnoredAny>,
    #[serde(default, rename = "ownerReferences")]
    #[schemars(with = "Option<serde_json::Value>")]
    _owner_references: Option<IgnoredAny>,
    #[serde(default, rename = "finalizers")]
    #[schemars(with = "Option<serde_json::Value>")]
    _finalizers: Option<IgnoredAny>,
    #[serde(default, rename = "selfLink")]
    #[schemars(with = "Option<serde_json::Value>")]
    _self_link: Option<IgnoredAny>,
    #[serde(default, rename = "clusterName")]
    #[schemars(with = "Option<serde_json::Value>")]
    _cluster_name: Option<IgnoredAny>,
}

impl From<RawObjectMeta> for ObjectMeta {
    fn from(raw: RawObjectMeta) -> Self {
        ObjectMeta {
            name: raw.name,
            namespace: raw.namespace,
            labels: raw.labels,
            annotations: raw.annotations,
            creation_timestamp: raw.creation_timestamp,
        }
    }
}

/// An RFC 3339 time such as `2024-01-01T00:00:00Z` (Kubernetes writes
/// `metadata.creationTimestamp` that way), checked while deserializing so a
/// malformed one is reported with its field path.
///
/// Kept as written (it serializes back to the same text) and ordered by the
/// instant it names, so `2024-01-01T01:00:00+01:00` and
/// `2024-01-01T00:00:00Z` are equal.
#[derive(Debug, Clone)]
pub struct Timestamp {
    text: String,
    unix_nanos: i128,
}

impl Timestamp {
    /// Parses an RFC 3339 date-time (`2024-05-01T12:30:00Z`,
    /// `2024-05-01T14:30:00.5+02:00`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map_err(|e| {
                format!("{text:?} is not an RFC 3339 time (e.g. 2024-01-01T00:00:00Z): {e}")
            })?;
        Ok(Timestamp {
            text: text.to_string(),
            unix_nanos: at.unix_timestamp_nanos(),
        })
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Nanoseconds since the Unix epoch (negative before 1970).
    pub fn unix_nanos(&self) -> i128 {
        self.unix_nanos
    }
}

impl PartialEq for Timestamp {
    fn eq(&self, other: &Self) -> bool {
        self.unix_nanos == other.unix_nanos
    }
}

impl Eq for Timestamp {}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> Ordering {
        self.unix_nanos.cmp(&other.unix_nanos)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "An RFC 3339 time such as 2024-01-01T00:00:00Z.",
        })
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_rfc3339_and_order_by_instant() {
        let z = Timestamp::parse("2024-01-01T00:00:00Z").expect("valid");
        let plus_one = Timestamp::parse("2024-01-01T01:00:00+01:00").expect("valid");
        let later = Timestamp::parse("2024-01-01T00:00:00.5Z").expect("valid");
        assert_eq!(z, plus_one);
        assert!(z < later);
        assert_eq!(plus_one.as_str(), "2024-01-01T01:00:00+01:00");
        assert_eq!(z.unix_nanos(), 1_704_067_200_000_000_000);
    }

    #[test]
    fn malformed_timestamps_are_rejected() {
        for bad in ["yesterday", "2024-01-01", "2024-13-01T00:00:00Z", ""] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_keeps_the_creation_timestamp() {
        let meta: ObjectMeta =
            serde_yaml::from_str("name: a\ncreationTimestamp: \"2023-06-01T10:00:00Z\"\n")
                .expect("valid");
        let ts = meta.creation_timestamp.as_ref().expect("kept");
        assert_eq!(ts.as_str(), "2023-06-01T10:00:00Z");
        let back = serde_yaml::to_string(&meta).expect("serializes");
        assert!(
            back.contains("creationTimestamp: 2023-06-01T10:00:00Z"),
            "{back}"
        );
        let err = serde_yaml::from_str::<ObjectMeta>("name: a\ncreationTimestamp: soon\n")
            .expect_err("not a time");
        assert!(err.to_string().contains("RFC 3339"), "{err}");
    }
}
