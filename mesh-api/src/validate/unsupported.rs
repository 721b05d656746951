//! The fields this mesh accepts in YAML (they are Istio's) but does not
//! enforce, each reported as an [`ErrorKind::Unsupported`] error naming the
//! field path and why: nothing is accepted and ignored.
//!
//! Part of [`super`]: every object's validation runs [`check`] on its
//! normalized spec (the form pilot sees). The list is data, [`UNSUPPORTED`]:
//! one entry per field path pattern with its reason and an example; to stop
//! rejecting a field once the mesh enforces it, delete its entry (the tests
//! and docs/config-compatibility.md follow the list).
//!
//! Path patterns are field paths with wildcards: `[*]` any item of a list,
//! `*` any key of a map, `**` any number of fields in between
//! (`spec.**.tls.mode` is the `tls.mode` of the rule-level, per-subset and
//! per-port traffic policies alike).

use std::collections::BTreeSet;

use serde_json::Value;

use super::Ctx;
use crate::error::ErrorKind;
use crate::types::Object;

/// When an entry applies to a field that its pattern names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// The field is set (any value).
    Set,
    /// The field has this value.
    Is(&'static str),
    /// The field is set to anything but this value (e.g. a default that
    /// means what the mesh does anyway).
    IsNot(&'static str),
}

/// One field this mesh does not enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported {
    /// The kind it applies to (`DestinationRule`).
    pub kind: &'static str,
    /// The field path pattern (`spec.**.tunnel`).
    pub path: &'static str,
    /// Which values of the field are not enforced.
    pub when: When,
    /// Why, for the user: what is missing and where it will come from.
    pub reason: &'static str,
    /// A `spec` (YAML) that uses the field and is otherwise valid: the
    /// tests load each one and expect exactly this entry's error.
    pub example: &'static str,
}

const MTLS: &str = "mTLS arrives with the security issue";
const SECRETS: &str = "certificates are read from the files serverCertificate, privateKey \
                       and caCertificates, not from Kubernetes Secrets";

const LOCALHOST_TLS: &str = "TLS between the sidecar and its own application existed in \
                             Istio 1.6 only and is not implemented";

const CRL: &str = "certificate revocation lists are not checked by the proxy yet";
const OLD_TLS: &str = "the proxy speaks TLS 1.2 and 1.3 only";

/// Every field the mesh does not enforce yet.
pub const UNSUPPORTED: &[Unsupported] = &[
    Unsupported {
        kind: "DestinationRule",
        path: "spec.**.tunnel",
        when: When::Set,
        reason: "tunnelling upstream connections through an HTTP CONNECT or POST proxy is not implemented",
        example: "host: reviews\ntrafficPolicy:\n  tunnel: {targetHost: proxy.example.com, targetPort: 3128}\n",
    },
    Unsupported {
        kind: "DestinationRule",
        path: "spec.**.proxyProtocol",
        when: When::Set,
        reason: "sending a PROXY protocol header upstream is not implemented",
        example: "host: reviews\ntrafficPolicy:\n  proxyProtocol: {version: V2}\n",
    },
    Unsupported {
        kind: "DestinationRule",
        path: "spec.**.retryBudget",
        when: When::Set,
        reason: "retry budgets are not implemented; limit retries with connectionPool.http.maxRetries",
        example: "host: reviews\ntrafficPolicy:\n  retryBudget: {percent: 20}\n",
    },
    Unsupported {
        kind: "DestinationRule",
        path: "spec.**.tls.mode",
        when: When::Is("ISTIO_MUTUAL"),
        reason: MTLS,
        example: "host: reviews\ntrafficPolicy:\n  tls: {mode: ISTIO_MUTUAL}\n",
    },
    Unsupported {
        kind: "DestinationRule",
        path: "spec.**.tls.credentialName",
        when: When::Set,
        reason: "client certificates are read from the files clientCertificate, privateKey and caCertificates, not from Kubernetes Secrets",
        example: "host: api.example.com\ntrafficPolicy:\n  tls: {mode: SIMPLE, credentialName: api-ca}\n",
    },
    Unsupported {
        kind: "DestinationRule",
        path: "spec.**.port.name",
        when: When::Set,
        reason: "a port chosen by name (Istio 1.0-1.3) is not supported; use number",
        example: "host: reviews\ntrafficPolicy:\n  portLevelSettings:\n  - port: {name: http}\n    loadBalancer: {simple: RANDOM}\n",
    },
    Unsupported {
        kind: "DestinationRule",
        path: "spec.workloadSelector",
        when: When::Set,
        reason: "a rule applies to every proxy that sends to its host; rules for chosen workloads are not implemented",
        example: "host: reviews\nworkloadSelector: {matchLabels: {app: productpage}}\ntrafficPolicy:\n  loadBalancer: {simple: RANDOM}\n",
    },
    Unsupported {
        kind: "DestinationRule",
        path: "spec.exportTo[*]",
        when: When::IsNot("*"),
        reason: "a rule is visible to every namespace; narrower exportTo for DestinationRules is not implemented",
        example: "host: reviews\nexportTo: ['.']\ntrafficPolicy:\n  loadBalancer: {simple: RANDOM}\n",
    },
    Unsupported {
        kind: "DestinationRule",
        path: "spec.**.loadBalancer.localityLbSetting.failoverPriority",
        when: When::Set,
        reason: "failover follows region, zone and subzone (and failover entries); ordering by labels is not implemented",
        example: "host: reviews\ntrafficPolicy:\n  loadBalancer:\n    localityLbSetting: {failoverPriority: [topology.kubernetes.io/region]}\n  outlierDetection: {consecutive5xxErrors: 1}\n",
    },
    Unsupported {
        kind: "DestinationRule",
        path: "spec.**.loadBalancer.zoneAwareLbSetting",
        when: When::Set,
        reason: "zone-aware balancing is not implemented; use localityLbSetting",
        example: "host: reviews\ntrafficPolicy:\n  loadBalancer:\n    simple: ROUND_ROBIN\n    zoneAwareLbSetting: {enabled: true}\n",
    },
    Unsupported {
        kind: "DestinationRule",
        path: "spec.**.connectionPool.http.http2KeepAlive",
        when: When::Set,
        reason: "HTTP/2 PING keepalives upstream are not implemented; use connectionPool.tcp.tcpKeepalive",
        example: "host: reviews\ntrafficPolicy:\n  connectionPool:\n    http: {http2KeepAlive: {interval: 10s, timeout: 5s}}\n",
    },
    Unsupported {
        kind: "DestinationRule",
        path: "spec.**.outlierDetection.outlierDetectionHttpErrorCodes",
        when: When::Set,
        reason: "outlier detection counts 5xx responses; other status codes as errors are not implemented",
        example: "host: reviews\ntrafficPolicy:\n  outlierDetection: {consecutive5xxErrors: 3, outlierDetectionHttpErrorCodes: [429]}\n",
    },
    Unsupported {
        kind: "DestinationRule",
        path: "spec.**.tls.caCrl",
        when: When::Set,
        reason: CRL,
        example: "host: api.example.com\ntrafficPolicy:\n  tls: {mode: SIMPLE, caCertificates: /etc/certs/ca.pem, caCrl: /etc/certs/crl.pem}\n",
    },
    Unsupported {
        kind: "Gateway",
        path: "spec.servers[*].tls.mode",
        when: When::Is("ISTIO_MUTUAL"),
        reason: MTLS,
        example: "servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: ISTIO_MUTUAL}\n",
    },
    Unsupported {
        kind: "Gateway",
        path: "spec.servers[*].tls.mode",
        when: When::Is("AUTO_PASSTHROUGH"),
        reason: "routing by the SNI of other clusters' services (multi-cluster) arrives with the multi-cluster issue",
        example: "servers:\n- port: {number: 15443, name: tls, protocol: TLS}\n  hosts: ['*.local']\n  tls: {mode: AUTO_PASSTHROUGH}\n",
    },
    Unsupported {
        kind: "Gateway",
        path: "spec.servers[*].tls.credentialName",
        when: When::Set,
        reason: SECRETS,
        example: "servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: SIMPLE, credentialName: web-cert}\n",
    },
    Unsupported {
        kind: "Gateway",
        path: "spec.servers[*].tls.credentialNames",
        when: When::Set,
        reason: SECRETS,
        example: "servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: SIMPLE, credentialNames: [web-rsa, web-ecdsa]}\n",
    },
    Unsupported {
        kind: "Gateway",
        path: "spec.servers[*].tls.caCertCredentialName",
        when: When::Set,
        reason: SECRETS,
        example: "servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: MUTUAL, serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem, caCertificates: /etc/certs/ca.pem, caCertCredentialName: client-ca}\n",
    },
    Unsupported {
        kind: "Gateway",
        path: "spec.servers[*].defaultEndpoint",
        when: When::Set,
        reason: "Istio does not implement it either",
        example: "servers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['*']\n  defaultEndpoint: 127.0.0.1:8080\n",
    },
    Unsupported {
        kind: "Gateway",
        path: "spec.servers[*].tls.caCrl",
        when: When::Set,
        reason: CRL,
        example: "servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: MUTUAL, serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem, caCertificates: /etc/certs/ca.pem, caCrl: /etc/certs/crl.pem}\n",
    },
    Unsupported {
        kind: "Gateway",
        path: "spec.servers[*].tls.insecureSkipVerify",
        when: When::IsNot("false"),
        reason: "client certificates are always verified against caCertificates; accepting them unverified is not implemented",
        example: "servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: MUTUAL, serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem, caCertificates: /etc/certs/ca.pem, insecureSkipVerify: true}\n",
    },
    Unsupported {
        kind: "Gateway",
        path: "spec.servers[*].tls.minProtocolVersion",
        when: When::Is("TLSV1_0"),
        reason: OLD_TLS,
        example: "servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: SIMPLE, serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem, minProtocolVersion: TLSV1_0, cipherSuites: [ECDHE-RSA-AES128-SHA]}\n",
    },
    Unsupported {
        kind: "Gateway",
        path: "spec.servers[*].tls.minProtocolVersion",
        when: When::Is("TLSV1_1"),
        reason: OLD_TLS,
        example: "servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: SIMPLE, serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem, minProtocolVersion: TLSV1_1, cipherSuites: [ECDHE-RSA-AES128-SHA]}\n",
    },
    Unsupported {
        kind: "Gateway",
        path: "spec.servers[*].tls.maxProtocolVersion",
        when: When::Is("TLSV1_0"),
        reason: OLD_TLS,
        example: "servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: SIMPLE, serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem, maxProtocolVersion: TLSV1_0}\n",
    },
    Unsupported {
        kind: "Gateway",
        path: "spec.servers[*].tls.maxProtocolVersion",
        when: When::Is("TLSV1_1"),
        reason: OLD_TLS,
        example: "servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: SIMPLE, serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem, maxProtocolVersion: TLSV1_1}\n",
    },
    Unsupported {
        kind: "Gateway",
        path: "spec.servers[*].bind",
        when: When::Set,
        reason: "gateway servers listen on every address of the gateway; another bind address is not implemented",
        example: "servers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['*']\n  bind: 198.18.0.9\n",
    },
    Unsupported {
        kind: "WorkloadEntry",
        path: "spec.network",
        when: When::Set,
        reason: "meshes that span networks, reached through their gateways, arrive with the multi-cluster issue",
        example: "address: 198.18.0.20\nnetwork: vm-network\n",
    },
    Unsupported {
        kind: "ServiceEntry",
        path: "spec.endpoints[*].network",
        when: When::Set,
        reason: "meshes that span networks, reached through their gateways, arrive with the multi-cluster issue",
        example: "hosts: [db.example.com]\nports: [{number: 5432, name: tcp, protocol: TCP}]\nresolution: STATIC\nendpoints: [{address: 198.18.0.30, network: net2}]\n",
    },
    Unsupported {
        kind: "ServiceEntry",
        path: "spec.subjectAltNames",
        when: When::Set,
        reason: "checking the identities of the service's workloads is part of mTLS, which arrives with the security issue",
        example: "hosts: [api.example.com]\nports: [{number: 443, name: https, protocol: HTTPS}]\nlocation: MESH_EXTERNAL\nresolution: DNS\nsubjectAltNames: [spiffe://cluster.local/ns/default/sa/api]\n",
    },
    Unsupported {
        kind: "ServiceEntry",
        path: "spec.resolution",
        when: When::Is("DYNAMIC_DNS"),
        reason: "resolving each request's own host (a dynamic forward proxy) is not implemented",
        example: "hosts: ['*.example.com']\nports: [{number: 80, name: http, protocol: HTTP}]\nlocation: MESH_EXTERNAL\nresolution: DYNAMIC_DNS\n",
    },
    Unsupported {
        kind: "Sidecar",
        path: "spec.ingress",
        when: When::Set,
        reason: "inbound traffic is served on the workload's service ports; Sidecar ingress listeners are not implemented",
        example: "ingress:\n- port: {number: 9080, name: http, protocol: HTTP}\n  defaultEndpoint: 127.0.0.1:8080\n",
    },
    Unsupported {
        kind: "Sidecar",
        path: "spec.egress[*].bind",
        when: When::Set,
        reason: "egress listeners bind where the proxy's capture puts them; another bind address is not implemented",
        example: "egress:\n- port: {number: 9080, name: http, protocol: HTTP}\n  bind: 127.0.0.2\n  hosts: ['./*']\n",
    },
    Unsupported {
        kind: "Sidecar",
        path: "spec.egress[*].captureMode",
        when: When::IsNot("DEFAULT"),
        reason: "egress traffic is captured the proxy's default way; IPTABLES or NONE per listener is not implemented",
        example: "egress:\n- port: {number: 9080, name: http, protocol: HTTP}\n  captureMode: NONE\n  hosts: ['./*']\n",
    },
    Unsupported {
        kind: "Sidecar",
        path: "spec.inboundConnectionPool",
        when: When::Set,
        reason: "limits on inbound connections are not implemented",
        example: "egress: [{hosts: ['./*']}]\ninboundConnectionPool:\n  http: {http1MaxPendingRequests: 10}\n",
    },
    Unsupported {
        kind: "Sidecar",
        path: "spec.outboundTrafficPolicy.egressProxy",
        when: When::Set,
        reason: "sending unknown outbound traffic to an egress proxy is not implemented",
        example: "egress: [{hosts: ['./*']}]\noutboundTrafficPolicy:\n  mode: ALLOW_ANY\n  egressProxy: {host: egress.example.com, port: {number: 3128}}\n",
    },
    Unsupported {
        kind: "Sidecar",
        path: "spec.localhost",
        when: When::Set,
        reason: LOCALHOST_TLS,
        example: "egress: [{hosts: ['./*']}]\nlocalhost:\n  clientTls: {mode: SIMPLE}\n",
    },
    Unsupported {
        kind: "Sidecar",
        path: "spec.egress[*].localhostServerTls",
        when: When::Set,
        reason: LOCALHOST_TLS,
        example: "egress:\n- hosts: ['./*']\n  localhostServerTls: {mode: SIMPLE, serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem}\n",
    },
    Unsupported {
        kind: "VirtualService",
        path: "spec.http[*].fault.delay.exponentialDelay",
        when: When::Set,
        reason: "Istio does not support exponential delays either; use fixedDelay",
        example: "hosts: [reviews]\nhttp:\n- fault: {delay: {exponentialDelay: 1s, percentage: {value: 10}}}\n  route: [{destination: {host: reviews}}]\n",
    },
    Unsupported {
        kind: "VirtualService",
        path: "spec.http[*].fault.abort.http2Error",
        when: When::Set,
        reason: "Istio does not support HTTP/2 error aborts either; use httpStatus or grpcStatus",
        example: "hosts: [reviews]\nhttp:\n- fault: {abort: {http2Error: REFUSED_STREAM, percentage: {value: 10}}}\n  route: [{destination: {host: reviews}}]\n",
    },
    Unsupported {
        kind: "VirtualService",
        path: "spec.tcp[*].match[*].sourceSubnet",
        when: When::Set,
        reason: "hidden from Istio's docs and ignored by Istio; match on sourceLabels",
        example: "hosts: [db.example.com]\ntcp:\n- match: [{port: 5432, sourceSubnet: 198.18.0.0/24}]\n  route: [{destination: {host: db.example.com}}]\n",
    },
    Unsupported {
        kind: "VirtualService",
        path: "spec.tls[*].match[*].sourceSubnet",
        when: When::Set,
        reason: "removed from Istio in 1.5; match on sourceLabels",
        example: "hosts: [login.example.com]\ntls:\n- match: [{sniHosts: [login.example.com], sourceSubnet: 198.18.0.0/24}]\n  route: [{destination: {host: login.example.com}}]\n",
    },
    Unsupported {
        kind: "VirtualService",
        path: "spec.http[*].match[*].statPrefix",
        when: When::Set,
        reason: "per-route statistics arrive with the observability issue",
        example: "hosts: [reviews]\nhttp:\n- match: [{uri: {prefix: /v2}, statPrefix: reviews-v2}]\n  route: [{destination: {host: reviews}}]\n",
    },
    Unsupported {
        kind: "VirtualService",
        path: "spec.http[*].retries.retryRemoteLocalities",
        when: When::IsNot("false"),
        reason: "retries go to another endpoint of the same priority; retrying in other localities is not implemented",
        example: "hosts: [reviews]\nhttp:\n- route: [{destination: {host: reviews}}]\n  retries: {attempts: 3, retryRemoteLocalities: true}\n",
    },
    Unsupported {
        kind: "VirtualService",
        path: "spec.**.port.name",
        when: When::Set,
        reason: "a port chosen by name (Istio 1.0-1.3) is not supported; use number",
        example: "hosts: [reviews]\nhttp:\n- route: [{destination: {host: reviews, port: {name: http}}}]\n",
    },
];

/// Reports every field of `object` that an entry of [`UNSUPPORTED`] names.
pub(super) fn check(ctx: &mut Ctx<'_>, object: &Object) {
    let spec = object.spec_json();
    for entry in UNSUPPORTED.iter().filter(|e| e.kind == object.kind()) {
        for (path, value) in find(entry.path, &spec) {
            let field = path.rsplit('.').next().unwrap_or(&path).to_string();
            let shown = match value {
                Value::String(text) => text.clone(),
                Value::Bool(_) | Value::Number(_) => value.to_string(),
                _ => String::new(),
            };
            let what = match entry.when {
                When::Set => Some(field),
                When::Is(v) if shown == v => Some(v.to_string()),
                When::IsNot(v) if shown != v => Some(format!("{field} {shown}")),
                _ => None,
            };
            if let Some(what) = what {
                ctx.err(
                    ErrorKind::Unsupported,
                    path,
                    format!("{what} is not enforced by this mesh yet ({})", entry.reason),
                );
            }
        }
    }
}

/// The concrete paths (and values) in `spec` that `pattern` names, in
/// order; the pattern starts with `spec`.
pub fn find<'v>(pattern: &str, spec: &'v Value) -> Vec<(String, &'v Value)> {
    let segments: Vec<Segment<'_>> = pattern
        .split('.')
        .skip(1)
        .flat_map(|part| match part.strip_suffix("[*]") {
            Some(key) => vec![Segment::parse(key), Segment::AnyIndex],
            None => vec![Segment::parse(part)],
        })
        .collect();
    let mut found = BTreeSet::new();
    let mut out = Vec::new();
    walk(spec, &segments, "spec".to_string(), &mut |path, value| {
        if found.insert(path.clone()) {
            out.push((path, value));
        }
    });
    out
}

/// Whether `pattern` names the schema field path `path` or one of its
/// ancestors. Schema paths are those of [`crate::fields::paths`], where
/// `[*]` stands for every item of a list and `*` for every key of a map: a
/// pattern's `*` names any key (a map's or a field's), but a literal key in
/// the pattern does not name every key of a map.
pub fn covers(pattern: &str, path: &str) -> bool {
    let pattern = segments(pattern);
    let path = segments(path);
    covers_at(&pattern, &path)
}

fn segments(pattern: &str) -> Vec<Segment<'_>> {
    pattern
        .split('.')
        .skip(1)
        .flat_map(|part| {
            let key = part.trim_end_matches("[*]");
            let lists = (part.len() - key.len()) / 3;
            std::iter::once(Segment::parse(key))
                .chain(std::iter::repeat_n(Segment::AnyIndex, lists))
        })
        .collect()
}

fn covers_at(pattern: &[Segment<'_>], path: &[Segment<'_>]) -> bool {
    let Some((first, rest)) = pattern.split_first() else {
        return true;
    };
    if let Segment::AnyDepth = first {
        return covers_at(rest, path)
            || path
                .split_first()
                .is_some_and(|(_, tail)| covers_at(pattern, tail));
    }
    let Some((here, tail)) = path.split_first() else {
        return false;
    };
    let names = match (first, here) {
        (Segment::Key(a), Segment::Key(b)) => a == b,
        (Segment::AnyKey, Segment::Key(_) | Segment::AnyKey) => true,
        (Segment::AnyIndex, Segment::AnyIndex) => true,
        _ => false,
    };
    names && covers_at(rest, tail)
}

#[derive(Debug, Clone, Copy)]
enum Segment<'p> {
    Key(&'p str),
    AnyKey,
    AnyIndex,
    AnyDepth,
}

impl<'p> Segment<'p> {
    fn parse(part: &'p str) -> Self {
        match part {
            "*" => Segment::AnyKey,
            "**" => Segment::AnyDepth,
            key => Segment::Key(key),
        }
    }
}

fn walk<'v>(
    value: &'v Value,
    segments: &[Segment<'_>],
    path: String,
    found: &mut dyn FnMut(String, &'v Value),
) {
    let Some((first, rest)) = segments.split_first() else {
        found(path, value);
        return;
    };
    match first {
        Segment::Key(key) => {
            if let Some(child) = value.get(*key) {
                walk(child, rest, format!("{path}.{key}"), found);
            }
        }
        Segment::AnyKey => {
            if let Value::Object(map) = value {
                for (key, child) in map {
                    walk(child, rest, format!("{path}.{key}"), found);
                }
            }
        }
        Segment::AnyIndex => {
            if let Value::Array(items) = value {
                for (i, child) in items.iter().enumerate() {
                    walk(child, rest, format!("{path}[{i}]"), found);
                }
            }
        }
        Segment::AnyDepth => {
            walk(value, rest, path.clone(), found);
            match value {
                Value::Object(map) => {
                    for (key, child) in map {
                        walk(child, segments, format!("{path}.{key}"), found);
                    }
                }
                Value::Array(items) => {
                    for (i, child) in items.iter().enumerate() {
                        walk(child, segments, format!("{path}[{i}]"), found);
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::find;
    use serde_json::json;

    #[test]
    fn patterns_name_concrete_paths() {
        let spec = json!({
            "trafficPolicy": {"tls": {"mode": "A"}, "portLevelSettings": [{"tls": {"mode": "B"}}]},
            "subsets": [{"name": "v1"}, {"name": "v2", "trafficPolicy": {"tls": {"mode": "C"}}}],
        });
        let mut paths: Vec<String> = find("spec.**.tls.mode", &spec)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                "spec.subsets[1].trafficPolicy.tls.mode",
                "spec.trafficPolicy.portLevelSettings[0].tls.mode",
                "spec.trafficPolicy.tls.mode",
            ]
        );
        let names: Vec<String> = find("spec.subsets[*].name", &spec)
            .into_iter()
            .map(|(p, v)| format!("{p}={v}"))
            .collect();
        assert_eq!(
            names,
            ["spec.subsets[0].name=\"v1\"", "spec.subsets[1].name=\"v2\""]
        );
        assert!(find("spec.trafficPolicy.*.mode", &spec).len() == 1);
        assert!(find("spec.nothing", &spec).is_empty());
    }

    #[test]
    fn patterns_cover_schema_paths_and_their_descendants() {
        use super::covers;
        let tls = "spec.subsets[*].trafficPolicy.portLevelSettings[*].tls.mode";
        assert!(covers("spec.**.tls.mode", tls));
        assert!(covers("spec.**.tls", tls));
        assert!(covers("spec.subsets[*].trafficPolicy", tls));
        assert!(covers("spec.subsets[*].*.portLevelSettings", tls));
        assert!(!covers("spec.**.tls.sni", tls));
        assert!(!covers("spec.subsets.trafficPolicy", tls));
        assert!(covers(
            "spec.subsets[*].labels.*",
            "spec.subsets[*].labels.*"
        ));
        assert!(!covers(
            "spec.subsets[*].labels.version",
            "spec.subsets[*].labels.*"
        ));
        assert!(!covers("spec.exportTo", "spec.export"));
    }
}
