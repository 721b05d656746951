//! Every config field pilot acts on, kept beside the translator so that a
//! field cannot be accepted and silently dropped: the field-coverage test
//! (`fields/tests.rs`) walks the schema of each kind
//! ([`mesh_api::fields::paths`]) and requires each field to be in one of
//! these lists, rewritten by normalization
//! ([`mesh_api::normalize::REWRITTEN`]) or rejected by validation
//! ([`mesh_api::validate::unsupported::UNSUPPORTED`]).
//!
//! ```text
//!  schema path ──► TRANSLATED      read here (translate/, push/, registry/) and sent to the proxy
//!              ├─► REWRITTEN       normalize turns it into a modern field first
//!              ├─► UNSUPPORTED     When::Set on the field or an ancestor: validation rejects it
//!              ├─► REFUSED         validation rejects any value (as Istio does)
//!              └─► WITHOUT_EFFECT  accepted, changes nothing yet: each with the reason
//! ```
//!
//! An UNSUPPORTED entry that rejects only some values (`When::Is`,
//! `When::IsNot`) covers the field only in part, so the field is listed in
//! TRANSLATED too, for the values the translator handles.
//!
//! Entries use the path syntax of [`mesh_api::fields::paths`] (`[*]` every
//! item, `*` every map key), and `{a,b}` for the same field in several
//! places ([`mesh_api::fields::expand`]): no open wildcards, so a field
//! added in a new place is not covered by accident.

/// The traffic policy of a DestinationRule in the four places it can be
/// written: the rule's and each subset's, each with its port-level
/// settings. `push/destination.rs` merges them into one policy per cluster
/// before `cluster/policy.rs` and `tls.rs` read it.
macro_rules! policy {
    ($field:literal) => {
        concat!(
            "spec.{trafficPolicy,subsets[*].trafficPolicy}{,.portLevelSettings[*]}.",
            $field
        )
    };
}

/// `(kind, field path)` of every field the translator (or the push
/// context and registry it reads) acts on, grouped by where it is read.
pub const TRANSLATED: &[(&str, &str)] = &[
    // Scoping: which proxies see the object (translate/scope.rs,
    // push/index.rs, translate/gateways.rs).
    ("VirtualService", "spec.hosts[*]"),
    ("VirtualService", "spec.gateways[*]"),
    ("VirtualService", "spec.exportTo[*]"),
    // HTTP matches (route/http.rs `applies`, route/matching.rs, scope.rs
    // for the caller).
    (
        "VirtualService",
        "spec.http[*].match[*].{uri,scheme,method,authority}.{exact,prefix,regex}",
    ),
    (
        "VirtualService",
        "spec.http[*].match[*].{headers,withoutHeaders,queryParams}.*.{exact,prefix,regex}",
    ),
    ("VirtualService", "spec.http[*].match[*].ignoreUriCase"),
    ("VirtualService", "spec.http[*].match[*].port"),
    ("VirtualService", "spec.http[*].match[*].gateways[*]"),
    ("VirtualService", "spec.http[*].match[*].sourceLabels.*"),
    ("VirtualService", "spec.http[*].match[*].sourceNamespace"),
    // HTTP route actions (route/http.rs, route/policy.rs; delegates are
    // resolved in push/delegate.rs).
    (
        "VirtualService",
        "spec.http[*].{route[*].destination,mirror,mirrors[*].destination}.{host,subset,port.number}",
    ),
    ("VirtualService", "spec.http[*].route[*].weight"),
    (
        "VirtualService",
        "spec.http[*]{,.route[*]}.headers.{request,response}.{set.*,add.*,remove[*]}",
    ),
    ("VirtualService", "spec.http[*].mirrorPercentage.value"),
    ("VirtualService", "spec.http[*].mirrors[*].percentage.value"),
    (
        "VirtualService",
        "spec.http[*].redirect.{uri,prefixRewrite,authority,port,derivePort,scheme,redirectCode}",
    ),
    ("VirtualService", "spec.http[*].directResponse.status"),
    ("VirtualService", "spec.http[*].directResponse.body.{string,bytes}"),
    ("VirtualService", "spec.http[*].delegate.{name,namespace}"),
    ("VirtualService", "spec.http[*].rewrite.{uri,authority}"),
    (
        "VirtualService",
        "spec.http[*].rewrite.uriRegexRewrite.{match,rewrite}",
    ),
    ("VirtualService", "spec.http[*].timeout"),
    (
        "VirtualService",
        "spec.http[*].retries.{attempts,perTryTimeout,retryOn,retryIgnorePreviousHosts,backoff}",
    ),
    // `false` only, which is what the retry policy does; `true` is
    // rejected (UNSUPPORTED).
    ("VirtualService", "spec.http[*].retries.retryRemoteLocalities"),
    ("VirtualService", "spec.http[*].fault.delay.fixedDelay"),
    ("VirtualService", "spec.http[*].fault.abort.{httpStatus,grpcStatus}"),
    (
        "VirtualService",
        "spec.http[*].fault.{delay,abort}.percentage.value",
    ),
    (
        "VirtualService",
        "spec.http[*].corsPolicy.allowOrigins[*].{exact,prefix,regex}",
    ),
    (
        "VirtualService",
        "spec.http[*].corsPolicy.{allowMethods[*],allowHeaders[*],exposeHeaders[*],maxAge,allowCredentials,unmatchedPreflights}",
    ),
    // TLS and TCP routes (translate/tcp.rs).
    (
        "VirtualService",
        "spec.{tls,tcp}[*].match[*].{destinationSubnets[*],port,sourceLabels.*,gateways[*],sourceNamespace}",
    ),
    ("VirtualService", "spec.tls[*].match[*].sniHosts[*]"),
    (
        "VirtualService",
        "spec.{tls,tcp}[*].route[*].destination.{host,subset,port.number}",
    ),
    ("VirtualService", "spec.{tls,tcp}[*].route[*].weight"),
    // DestinationRule: host and subsets (push/destination.rs,
    // translate/cluster/mod.rs, translate/endpoint.rs).
    ("DestinationRule", "spec.host"),
    ("DestinationRule", "spec.subsets[*].name"),
    ("DestinationRule", "spec.subsets[*].labels.*"),
    // `*` only, which is what pilot does (every rule is visible
    // everywhere); other values are rejected (UNSUPPORTED).
    ("DestinationRule", "spec.exportTo[*]"),
    // The port a port-level policy applies to (push/destination.rs).
    (
        "DestinationRule",
        "spec.{trafficPolicy,subsets[*].trafficPolicy}.portLevelSettings[*].port.number",
    ),
    // Load balancing (cluster/policy.rs; hash keys in route/policy.rs;
    // locality in translate/endpoint.rs).
    ("DestinationRule", policy!("loadBalancer.simple")),
    (
        "DestinationRule",
        policy!("loadBalancer.consistentHash.{httpHeaderName,useSourceIp,httpQueryParameterName}"),
    ),
    (
        "DestinationRule",
        policy!("loadBalancer.consistentHash.httpCookie.{name,path,ttl,attributes[*].name,attributes[*].value}"),
    ),
    (
        "DestinationRule",
        policy!("loadBalancer.consistentHash.{ringHash.minimumRingSize,maglev.tableSize}"),
    ),
    (
        "DestinationRule",
        policy!("loadBalancer.localityLbSetting.{enabled,distribute[*].from,distribute[*].to.*,failover[*].from,failover[*].to}"),
    ),
    (
        "DestinationRule",
        policy!("loadBalancer.warmup.{duration,minimumPercent,aggression}"),
    ),
    // Connection pool (cluster/policy.rs).
    (
        "DestinationRule",
        policy!("connectionPool.tcp.{maxConnections,connectTimeout,maxConnectionDuration,idleTimeout}"),
    ),
    (
        "DestinationRule",
        policy!("connectionPool.tcp.tcpKeepalive.{probes,time,interval}"),
    ),
    (
        "DestinationRule",
        policy!("connectionPool.http.{http1MaxPendingRequests,http2MaxRequests,maxRequestsPerConnection,maxRetries,idleTimeout,h2UpgradePolicy,useClientProtocol,maxConcurrentStreams}"),
    ),
    // Outlier detection (cluster/policy.rs).
    (
        "DestinationRule",
        policy!("outlierDetection.{splitExternalLocalOriginErrors,consecutiveLocalOriginFailures,consecutiveGatewayErrors,consecutive5xxErrors,interval,baseEjectionTime,maxEjectionPercent,minHealthPercent}"),
    ),
    // Client TLS (translate/tls.rs `upstream_tls`); mode ISTIO_MUTUAL is
    // rejected (UNSUPPORTED), the other modes are translated.
    (
        "DestinationRule",
        policy!("tls.{mode,clientCertificate,privateKey,caCertificates,subjectAltNames[*],sni,insecureSkipVerify}"),
    ),
    // Gateway: selection and listeners (translate/gateways.rs,
    // translate/listener.rs, route/gateway.rs).
    ("Gateway", "spec.selector.*"),
    ("Gateway", "spec.servers[*].hosts[*]"),
    ("Gateway", "spec.servers[*].port.{number,name,protocol}"),
    ("Gateway", "spec.servers[*].tls.httpsRedirect"),
    // Server TLS (translate/tls.rs `downstream_tls`). Mode ISTIO_MUTUAL and
    // AUTO_PASSTHROUGH, versions below 1.2 and insecureSkipVerify other
    // than `false` are rejected (UNSUPPORTED); the rest is translated.
    (
        "Gateway",
        "spec.servers[*].tls.{mode,serverCertificate,privateKey,caCertificates,minProtocolVersion,maxProtocolVersion,insecureSkipVerify}",
    ),
    (
        "Gateway",
        "spec.servers[*].tls.{subjectAltNames[*],verifyCertificateSpki[*],verifyCertificateHash[*],cipherSuites[*]}",
    ),
    (
        "Gateway",
        "spec.servers[*].tls.tlsCertificates[*].{serverCertificate,privateKey,caCertificates}",
    ),
    // ServiceEntry: services and endpoints (registry/mod.rs, then
    // cluster/, endpoint.rs and capture.rs).
    (
        "ServiceEntry",
        "spec.{hosts[*],addresses[*],resolution,exportTo[*],workloadSelector.labels.*}",
    ),
    ("ServiceEntry", "spec.ports[*].{number,protocol,name,targetPort}"),
    (
        "ServiceEntry",
        "spec.endpoints[*].{address,ports.*,labels.*,locality,weight}",
    ),
    // WorkloadEntry: endpoints of the ServiceEntries that select it
    // (registry/mod.rs).
    (
        "WorkloadEntry",
        "spec.{address,ports.*,labels.*,locality,weight}",
    ),
    // Sidecar: what a proxy imports (push/sidecar.rs) and its outbound
    // traffic policy (translate/scope.rs).
    ("Sidecar", "spec.workloadSelector.labels.*"),
    ("Sidecar", "spec.egress[*].hosts[*]"),
    ("Sidecar", "spec.egress[*].port.number"),
    ("Sidecar", "spec.outboundTrafficPolicy.mode"),
    // `DEFAULT` only, which is how the proxy captures traffic; other modes
    // are rejected (UNSUPPORTED).
    ("Sidecar", "spec.egress[*].captureMode"),
];

/// A field validation rejects whatever its value, as Istio does, with a
/// spec that sets it (the test checks that it is rejected on that field).
#[derive(Debug, Clone, Copy)]
pub struct Refused {
    /// The kind.
    pub kind: &'static str,
    /// The field path.
    pub path: &'static str,
    /// A spec (YAML) that sets it and is otherwise valid.
    pub example: &'static str,
}

/// Fields the schema has (they are shared types) that validation refuses.
pub const REFUSED: &[Refused] = &[
    Refused {
        kind: "Gateway",
        path: "spec.servers[*].port.targetPort",
        example: "servers:\n- port: {number: 80, name: http, protocol: HTTP, targetPort: 8080}\n  hosts: ['*']\n",
    },
    Refused {
        kind: "Sidecar",
        path: "spec.egress[*].port.targetPort",
        example: "egress:\n- port: {number: 9080, name: http, protocol: HTTP, targetPort: 8080}\n  hosts: ['./*']\n",
    },
];

/// A field accepted although nothing the proxy does depends on it yet.
#[derive(Debug, Clone, Copy)]
pub struct Inert {
    /// The kind.
    pub kind: &'static str,
    /// The field path.
    pub path: &'static str,
    /// Why it is accepted rather than rejected.
    pub why: &'static str,
}

/// The known exceptions to "nothing accepted and ignored", each a decision
/// rather than an accident: names that only label things (Istio uses them
/// in statistics and logs) and what matters only once mTLS arrives.
/// Rejecting them would refuse ordinary Istio config for no gain.
pub const WITHOUT_EFFECT: &[Inert] = &[
    Inert {
        kind: "VirtualService",
        path: "spec.http[*].name",
        why: "a label; Envoy route names are VS.http[i] (the contract of docs/architecture.md), not Istio's route name",
    },
    Inert {
        kind: "VirtualService",
        path: "spec.http[*].match[*].name",
        why: "a label Istio appends to the route name; route names here are VS.http[i]",
    },
    Inert {
        kind: "Gateway",
        path: "spec.servers[*].name",
        why: "a label Istio uses as a statistics prefix; validation checks that it is unique",
    },
    Inert {
        kind: "Sidecar",
        path: "spec.egress[*].port.{name,protocol}",
        why: "egress listeners only narrow what the proxy imports; the listener's protocol is the service port's",
    },
    Inert {
        kind: "ServiceEntry",
        path: "spec.location",
        why: "kept in the registry (Service::external); inside or outside the mesh decides mTLS, which arrives with the security issue",
    },
    Inert {
        kind: "ServiceEntry",
        path: "spec.endpoints[*].serviceAccount",
        why: "kept in the registry as the endpoint's identity; checked once mTLS arrives",
    },
    Inert {
        kind: "WorkloadEntry",
        path: "spec.serviceAccount",
        why: "kept in the registry as the endpoint's identity; checked once mTLS arrives",
    },
];

#[cfg(test)]
mod tests;
