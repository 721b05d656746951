//! Small value types shared by several Istio kinds, or by several parts of
//! one: durations, percentages, port selectors, destinations, string matches
//! and header operations.
//!
//! These sit at the bottom of the config model that every stage of the flow
//! (load, validate, pilot's store and translator) reads.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written the way Istio's YAML writes it: a Go-style duration
/// string such as `10s`, `1.5s`, `250ms`, `5m` or `1h30m`.
///
/// Parsing happens while deserializing, so a malformed duration is reported
/// with the field path like any other type error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// Parses a Go-style duration (`300ms`, `1.5s`, `2m`, `1h30m`, `0`).
    ///
    /// Units: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`. Negative durations
    /// are rejected because no Istio field accepts them.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "0" {
            return Ok(Duration(std::time::Duration::ZERO));
        }
        if text.is_empty() {
            return Err("empty duration".to_string());
        }
        let mut rest = text;
        let mut total_nanos: f64 = 0.0;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| format!("duration {text:?} has a number without a unit"))?;
            if num_len == 0 {
                return Err(format!(
                    "invalid duration {text:?} (expected e.g. 10s, 250ms, 1h30m)"
                ));
            }
            let value: f64 = rest[..num_len]
                .parse()
                .map_err(|_| format!("invalid number in duration {text:?}"))?;
            rest = &rest[num_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let scale = match &rest[..unit_len] {
                "ns" => 1.0,
                "us" | "µs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                other => {
                    return Err(format!(
                        "unknown unit {other:?} in duration {text:?} (use ns, us, ms, s, m or h)"
                    ))
                }
            };
            rest = &rest[unit_len..];
            total_nanos += value * scale;
        }
        if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
            return Err(format!("duration {text:?} is too large"));
        }
        Ok(Duration(std::time::Duration::from_nanos(
            total_nanos.round() as u64,
        )))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{}s", d.as_secs())
        } else if d.subsec_nanos() % 1_000_000 == 0 {
            write!(f, "{}ms", d.as_millis())
        } else {
            write!(f, "{}ns", d.as_nanos())
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$",
            "description": "A Go-style duration such as 10s, 1.5s, 250ms or 1h30m.",
        })
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Duration::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A percentage in `0.0..=100.0`, Istio's `Percent` message (`{value: 50}`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Percent {
    /// The percentage.
    #[serde(default)]
    pub value: f64,
}

/// Selects a port of a destination: Istio's `PortSelector` (`{number: 9080}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortSelector {
    /// The port number.
    #[serde(default)]
    pub number: u32,
    /// The port by name (Istio 1.0-1.3, instead of `number`; not supported
    /// by the mesh, see [`crate::validate`]'s unsupported list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A service (and optionally a subset and port) traffic is sent to: the
/// target of `VirtualService` routes and of their mirrors.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// Service host (short name, FQDN or ServiceEntry host). Required.
    #[serde(default)]
    pub host: String,
    /// Name of a subset defined by a DestinationRule for `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    /// Port of the service; optional when the service has one port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSelector>,
}

/// A service port: used by `Gateway` servers and `ServiceEntry` ports.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Port {
    /// The port number (1..65535).
    #[serde(default)]
    pub number: u32,
    /// `HTTP`, `HTTPS`, `GRPC`, `GRPC-WEB`, `HTTP2`, `HTTP_PROXY`, `MONGO`,
    /// `REDIS`, `MYSQL`, `TCP`, `TLS` or `UDP`; empty for protocol sniffing.
    /// Written in any case (Istio compares it case-insensitively);
    /// [`crate::normalize`] upper-cases a known protocol, so a loaded object
    /// has it as listed here.
    #[serde(default)]
    pub protocol: String,
    /// The port's name.
    #[serde(default)]
    pub name: String,
    /// The port on the workload the traffic is sent to; defaults to `number`
    /// (ServiceEntry ports only: Gateways and Sidecars reject it, as Istio
    /// does).
    #[serde(
        alias = "target_port",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub target_port: Option<u32>,
}

/// How a string is matched: exactly one of `exact`, `prefix` or `regex`
/// (RE2 syntax, whole-string match).
///
/// Kept as a struct of options rather than an enum so that YAML with none or
/// several of the three loads, and validation can report it with its path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StringMatch {
    /// Exact string match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// Prefix match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// RE2 regular expression that must match the whole string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// The single matcher of a valid [`StringMatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMatcher<'a> {
    /// `exact: ...`
    Exact(&'a str),
    /// `prefix: ...`
    Prefix(&'a str),
    /// `regex: ...`
    Regex(&'a str),
}

impl StringMatch {
    /// The one matcher that is set, or `None` when zero or several are
    /// (validation reports those cases).
    pub fn matcher(&self) -> Option<StringMatcher<'_>> {
        match (&self.exact, &self.prefix, &self.regex) {
            (Some(e), None, None) => Some(StringMatcher::Exact(e)),
            (None, Some(p), None) => Some(StringMatcher::Prefix(p)),
            (None, None, Some(r)) => Some(StringMatcher::Regex(r)),
            _ => None,
        }
    }
}

/// Header changes applied to a request or response (`set`, `add`, `remove`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderOperations {
    /// Overwrite these headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    /// Append these headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub add: BTreeMap<String, String>,
    /// Remove these headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// Request and response header manipulation (Istio's `Headers`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Headers {
    /// Changes to the request before it is forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<HeaderOperations>,
    /// Changes to the response before it is returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<HeaderOperations>,
}

/// Selects workloads by label, as in `DestinationRule.workloadSelector`
/// (`matchLabels`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSelector {
    /// Labels a workload must carry.
    #[serde(alias = "match_labels", default)]
    pub match_labels: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_go_style() {
        let ms = |n| std::time::Duration::from_millis(n);
        assert_eq!(Duration::parse("10s").map(|d| d.0), Ok(ms(10_000)));
        assert_eq!(Duration::parse("1.5s").map(|d| d.0), Ok(ms(1_500)));
        assert_eq!(Duration::parse("250ms").map(|d| d.0), Ok(ms(250)));
        assert_eq!(Duration::parse("1h30m").map(|d| d.0), Ok(ms(5_400_000)));
        assert_eq!(Duration::parse("0").map(|d| d.0), Ok(ms(0)));
        assert!(Duration::parse("10").is_err());
        assert!(Duration::parse("ten seconds").is_err());
        assert!(Duration::parse("5d").is_err());
        assert!(Duration::parse("").is_err());
    }

    #[test]
    fn durations_display_round_trip() {
        for text in ["10s", "250ms", "15ns"] {
            let d = Duration::parse(text).expect("valid");
            assert_eq!(d.to_string(), text);
        }
    }

    #[test]
    fn string_match_needs_exactly_one_matcher() {
        let one = StringMatch {
            prefix: Some("/api".into()),
            ..Default::default()
        };
        assert_eq!(one.matcher(), Some(StringMatcher::Prefix("/api")));
        assert_eq!(StringMatch::default().matcher(), None);
        let two = StringMatch {
            exact: Some("/a".into()),
            regex: Some("/b".into()),
            ..Default::default()
        };
        assert_eq!(two.matcher(), None);
    }
}
