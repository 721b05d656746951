//! Normalization: the one place where forms Istio deprecated (or removed)
//! are rewritten into their modern equivalents, with Istio's meaning, so
//! that everything after loading (validation, pilot's translator) sees only
//! modern fields.
//!
//! Applied by [`crate::load`] to every object right after it deserializes;
//! each rewrite is reported as a [`Finding`] of kind
//! [`ErrorKind::Deprecated`] (a warning naming the replacement, which
//! `meshctl analyze` prints), and a deprecated value that has no faithful
//! modern form is an error (the object does not load).
//!
//! | deprecated field (Istio releases) | becomes | meaning kept from Istio |
//! | --- | --- | --- |
//! | HTTPRoute `appendHeaders` (1.0-1.4) | `headers.request.add` | appended to the request |
//! | HTTPRoute and route `appendRequestHeaders` (1.1-1.4) | `headers.request.add` | |
//! | HTTPRoute and route `appendResponseHeaders` (1.1-1.4) | `headers.response.add` | |
//! | HTTPRoute and route `removeRequestHeaders` (1.1-1.4) | `headers.request.remove` | |
//! | HTTPRoute and route `removeResponseHeaders` (1.0-1.4) | `headers.response.remove` | |
//! | HTTPRoute `websocketUpgrade: true` (1.0-1.4) | (dropped) | upgrades are allowed on every route; `false` cannot be honoured and is an error |
//! | HTTPRoute `mirrorPercent` (1.4+) | `mirrorPercentage.value` | `mirrorPercentage` wins when both are set |
//! | fault `delay.percent`, `abort.percent` (1.0-1.4) | `percentage.value` | `percentage` wins when both are set |
//! | CorsPolicy `allowOrigin` (1.0+) | `allowOrigins[].exact` | ignored when `allowOrigins` is set |
//! | LoadBalancer `simple: LEAST_CONN` | `LEAST_REQUEST` | the same Envoy policy |
//! | ConsistentHash `minimumRingSize` | `ringHash.minimumRingSize` | an error together with `ringHash` or `maglev` |
//! | LoadBalancer `warmupDurationSecs` (1.14+) | `warmup.duration` | `warmup` wins when both are set |
//! | OutlierDetection `consecutiveErrors` | `consecutiveGatewayErrors` and `consecutive5xxErrors: 0` | it counted 502, 503 and 504 only (Istio 1.1-1.6); explicit new fields win |
//! | VirtualService gateway `name.namespace[.svc.cluster.local]` | `namespace/name` | Istio's reading of the legacy FQDN form |
//!
//! Not deprecations but normal forms as well:
//! - a port `protocol` Istio knows is upper-cased (`http` → `HTTP`), since
//!   Istio reads it in any case; this is silent;
//! - a field written with its protobuf name (`prefix_rewrite`, which
//!   Istio's own docs use and its decoder reads) is read as its JSON name
//!   (`prefixRewrite`) with a warning ([`aliases`]): Kubernetes prunes the
//!   protobuf names from Istio's CRD objects.

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use crate::error::ErrorKind;
use crate::types::common::Port;
use crate::types::Object;

mod destination_rule;
mod virtual_service;

/// The deprecated fields [`normalize`] rewrites into modern ones and
/// clears, so that nothing after loading reads them: `(kind, field path)`
/// in the syntax of [`crate::fields::expand`]. Pilot's field-coverage test
/// counts them as handled; a field added here must be rewritten above.
pub const REWRITTEN: &[(&str, &str)] = &[
    ("VirtualService", "spec.http[*].appendHeaders.*"),
    (
        "VirtualService",
        "spec.http[*]{,.route[*]}.appendRequestHeaders.*",
    ),
    (
        "VirtualService",
        "spec.http[*]{,.route[*]}.appendResponseHeaders.*",
    ),
    (
        "VirtualService",
        "spec.http[*]{,.route[*]}.removeRequestHeaders[*]",
    ),
    (
        "VirtualService",
        "spec.http[*]{,.route[*]}.removeResponseHeaders[*]",
    ),
    ("VirtualService", "spec.http[*].websocketUpgrade"),
    ("VirtualService", "spec.http[*].mirrorPercent"),
    ("VirtualService", "spec.http[*].fault.{delay,abort}.percent"),
    ("VirtualService", "spec.http[*].corsPolicy.allowOrigin[*]"),
    (
        "DestinationRule",
        "spec.{trafficPolicy,subsets[*].trafficPolicy}{,.portLevelSettings[*]}.loadBalancer.consistentHash.minimumRingSize",
    ),
    (
        "DestinationRule",
        "spec.{trafficPolicy,subsets[*].trafficPolicy}{,.portLevelSettings[*]}.loadBalancer.warmupDurationSecs",
    ),
    (
        "DestinationRule",
        "spec.{trafficPolicy,subsets[*].trafficPolicy}{,.portLevelSettings[*]}.outlierDetection.consecutiveErrors",
    ),
];

/// Something normalization did or could not do, at the field path of the
/// deprecated field (`spec.http[0].appendHeaders`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Field path of the deprecated field.
    pub path: String,
    /// [`ErrorKind::Deprecated`] for a rewrite (a warning); an error kind
    /// ([`ErrorKind::InvalidValue`], [`ErrorKind::Unsupported`]) when the
    /// value cannot be rewritten faithfully.
    pub kind: ErrorKind,
    /// For a person: `deprecated, use spec.http[0].headers.request.add`.
    pub message: String,
}

/// Rewrites every deprecated field of `object` into its modern form and
/// clears it; returns what it did, in field order.
pub fn normalize(object: &mut Object) -> Vec<Finding> {
    let mut out = Findings::default();
    match object {
        Object::VirtualService(r) => virtual_service::normalize(&mut out, &mut r.spec),
        Object::DestinationRule(r) => destination_rule::normalize(&mut out, &mut r.spec),
        Object::Gateway(r) => {
            for server in &mut r.spec.servers {
                if let Some(port) = &mut server.port {
                    protocol(port);
                }
            }
        }
        Object::ServiceEntry(r) => r.spec.ports.iter_mut().for_each(protocol),
        Object::Sidecar(r) => {
            let ingress = r.spec.ingress.iter_mut().filter_map(|l| l.port.as_mut());
            let egress = r.spec.egress.iter_mut().filter_map(|l| l.port.as_mut());
            ingress.chain(egress).for_each(protocol);
        }
        Object::WorkloadEntry(_) => {}
    }
    out.0
}

/// The fields of `raw` (a spec as written) spelled with their protobuf
/// name where `typed` (the same spec deserialized, then serialized) has
/// the JSON name: each a [`ErrorKind::Deprecated`] finding at `path`.
pub fn aliases(raw: &Yaml, typed: &Json, path: &str) -> Vec<Finding> {
    let mut out = Findings::default();
    alias_walk(&mut out, raw, typed, path);
    out.0
}

fn alias_walk(out: &mut Findings, raw: &Yaml, typed: &Json, path: &str) {
    match (raw, typed) {
        (Yaml::Mapping(raw), Json::Object(typed)) => {
            for (key, child) in raw {
                let Some(key) = key.as_str() else { continue };
                let here = format!("{path}.{key}");
                if let Some(t) = typed.get(key) {
                    alias_walk(out, child, t, &here);
                    continue;
                }
                let json_name = lower_camel(key);
                if json_name != key {
                    if let Some(t) = typed.get(&json_name) {
                        out.push(
                            &here,
                            ErrorKind::Deprecated,
                            format!(
                                "{key} is the protobuf field name, use {json_name} (Kubernetes \
                                 drops {key} from Istio's CRD objects)"
                            ),
                        );
                        alias_walk(out, child, t, &format!("{path}.{json_name}"));
                    }
                }
            }
        }
        (Yaml::Sequence(raw), Json::Array(typed)) => {
            for (i, (r, t)) in raw.iter().zip(typed).enumerate() {
                alias_walk(out, r, t, &format!("{path}[{i}]"));
            }
        }
        _ => {}
    }
}

/// `per_try_timeout` → `perTryTimeout` (protobuf's JSON names).
fn lower_camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// What normalization found, in order.
#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    /// `path` was rewritten into `replacement`.
    fn deprecated(&mut self, path: &str, replacement: &str) {
        self.push(
            path,
            ErrorKind::Deprecated,
            format!("deprecated, use {replacement}"),
        );
    }

    /// `path` is deprecated and has no effect because `winner` is set.
    fn shadowed(&mut self, path: &str, winner: &str) {
        self.push(
            path,
            ErrorKind::Deprecated,
            format!("deprecated, and ignored because {winner} is set (as in Istio); remove it"),
        );
    }

    /// Any finding.
    fn push(&mut self, path: &str, kind: ErrorKind, message: String) {
        self.0.push(Finding {
            path: path.to_string(),
            kind,
            message,
        });
    }
}

/// Protocol names Istio knows, in their canonical form.
const PROTOCOLS: [&str; 12] = [
    "HTTP",
    "HTTPS",
    "HTTP2",
    "HTTP_PROXY",
    "GRPC",
    "GRPC-WEB",
    "TCP",
    "TLS",
    "UDP",
    "MONGO",
    "REDIS",
    "MYSQL",
];

fn protocol(port: &mut Port) {
    if let Some(known) = PROTOCOLS
        .iter()
        .find(|p| p.eq_ignore_ascii_case(&port.protocol))
    {
        port.protocol = (*known).to_string();
    }
}

#[cfg(test)]
mod tests;
