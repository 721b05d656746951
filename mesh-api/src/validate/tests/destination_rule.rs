//! DestinationRule rules taken from Istio's validation: traffic policy,
//! load balancing, connection pool, outlier detection, client TLS,
//! port-level settings, exportTo and the workload selector.

use super::{object, one, paths, warning_paths};
use crate::error::ErrorKind;

/// The errors of a DestinationRule for `reviews` with `policy` (YAML
/// lines, indented by four) as its traffic policy.
fn policy(policy: &str) -> Vec<(ErrorKind, String)> {
    checked(paths(&dr_with(policy)))
}

/// The errors of a field's own validation, which runs on fields the mesh
/// rejects as not enforced too (that rejection is tested in
/// `unsupported.rs`).
fn checked(errors: Vec<(ErrorKind, String)>) -> Vec<(ErrorKind, String)> {
    errors
        .into_iter()
        .filter(|(kind, _)| *kind != ErrorKind::Unsupported)
        .collect()
}

fn dr_with(policy: &str) -> String {
    object(
        "DestinationRule",
        &format!("  host: reviews\n  trafficPolicy:\n{policy}"),
    )
}

fn invalid(path: &str) -> Vec<(ErrorKind, String)> {
    one(ErrorKind::InvalidValue, path)
}

fn missing(path: &str) -> Vec<(ErrorKind, String)> {
    one(ErrorKind::MissingField, path)
}

const P: &str = "spec.trafficPolicy";

#[test]
fn a_traffic_policy_is_not_empty() {
    assert_eq!(
        paths(&object(
            "DestinationRule",
            "  host: reviews\n  trafficPolicy: {}\n"
        )),
        invalid(P)
    );
    assert_eq!(
        paths(&object(
            "DestinationRule",
            "  host: '*'\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n"
        )),
        vec![],
        "Istio accepts a rule for every host"
    );
}

#[test]
fn consistent_hash() {
    assert_eq!(
        policy("    loadBalancer: {consistentHash: {httpHeaderName: x-user, useSourceIp: true}}\n"),
        invalid(&format!("{P}.loadBalancer.consistentHash"))
    );
    assert_eq!(
        policy("    loadBalancer: {consistentHash: {useSourceIp: true, ringHash: {minimumRingSize: 1024}, maglev: {tableSize: 65537}}}\n"),
        invalid(&format!("{P}.loadBalancer.consistentHash"))
    );
    assert_eq!(
        policy(
            "    loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 65536}}}\n"
        ),
        invalid(&format!("{P}.loadBalancer.consistentHash.maglev.tableSize"))
    );
    assert_eq!(
        policy("    loadBalancer: {consistentHash: {httpCookie: {ttl: 0s}}}\n"),
        missing(&format!("{P}.loadBalancer.consistentHash.httpCookie.name"))
    );
    assert_eq!(
        policy("    loadBalancer: {consistentHash: {httpCookie: {name: u, attributes: [{name: SameSite, value: Lax}, {name: SameSite, value: Strict}]}}}\n"),
        invalid(&format!("{P}.loadBalancer.consistentHash.httpCookie.attributes[1].name"))
    );
    assert_eq!(
        policy("    loadBalancer: {consistentHash: {httpCookie: {name: u, path: /, ttl: 60s}, maglev: {tableSize: 65537}}}\n"),
        vec![]
    );
}

#[test]
fn locality_load_balancing() {
    let lb = |setting: &str| {
        policy(&format!(
            "    outlierDetection: {{consecutive5xxErrors: 5}}\n    loadBalancer:\n      localityLbSetting: {setting}\n"
        ))
    };
    let l = format!("{P}.loadBalancer.localityLbSetting");
    assert_eq!(
        lb("{distribute: [{from: us-west/zone1/*, to: {'us-west/zone1/*': 80, 'us-west/zone2/*': 20}}]}"),
        vec![]
    );
    assert_eq!(
        lb("{distribute: [{from: us-west/*, to: {'us-west/*': 80, 'us-east/*': 10}}]}"),
        invalid(&format!("{l}.distribute[0].to"))
    );
    assert_eq!(
        lb("{distribute: [{from: us-west/*, to: {'us-west/*': 0, 'us-east/*': 100}}]}"),
        invalid(&format!("{l}.distribute[0].to.us-west/*"))
    );
    assert_eq!(
        lb("{distribute: [{from: us-west, to: {'us-west': 100}}, {from: us-west/zone1, to: {'us-west': 100}}]}"),
        invalid(&format!("{l}.distribute")),
        "us-west/zone1 overlaps us-west"
    );
    assert_eq!(
        lb("{failover: [{from: us-east, to: us-east}]}"),
        invalid(&format!("{l}.failover[0]"))
    );
    assert_eq!(
        lb("{failover: [{from: us-east/zone1, to: us-west}]}"),
        invalid(&format!("{l}.failover[0]"))
    );
    assert_eq!(
        lb("{failover: [{from: us-east, to: us-west}], distribute: [{from: a, to: {b: 100}}]}"),
        invalid(&l)
    );
    assert_eq!(
        lb("{failover: [{from: us-east, to: us-west}], failoverPriority: [topology.kubernetes.io/zone]}"),
        invalid(&format!("{l}.failoverPriority[0]"))
    );
    assert_eq!(
        policy("    loadBalancer:\n      localityLbSetting: {enabled: true}\n      zoneAwareLbSetting: {enabled: true}\n"),
        invalid(&format!("{P}.loadBalancer"))
    );
    // Failover needs outlier detection to ever fail over: a warning.
    assert_eq!(
        warning_paths(&dr_with(
            "    loadBalancer:\n      localityLbSetting: {failover: [{from: us-east, to: us-west}]}\n"
        )),
        one(ErrorKind::Ineffective, &l)
    );
}

#[test]
fn warmup() {
    assert_eq!(
        policy("    loadBalancer: {simple: ROUND_ROBIN, warmup: {aggression: 2}}\n"),
        missing(&format!("{P}.loadBalancer.warmup.duration"))
    );
    assert_eq!(
        policy("    loadBalancer: {simple: ROUND_ROBIN, warmup: {duration: 60s, aggression: 0}}\n"),
        invalid(&format!("{P}.loadBalancer.warmup.aggression"))
    );
    assert_eq!(
        policy("    loadBalancer: {simple: ROUND_ROBIN, warmup: {duration: 60s, minimumPercent: 120}}\n"),
        invalid(&format!("{P}.loadBalancer.warmup.minimumPercent"))
    );
    // Warm-up is slow start of ROUND_ROBIN and LEAST_REQUEST only.
    assert_eq!(
        warning_paths(&dr_with(
            "    loadBalancer: {simple: RANDOM, warmup: {duration: 60s}}\n"
        )),
        one(ErrorKind::Ineffective, &format!("{P}.loadBalancer.warmup"))
    );
    assert_eq!(
        warning_paths(&dr_with("    loadBalancer: {warmup: {duration: 60s}}\n")),
        vec![]
    );
}

#[test]
fn connection_pool() {
    let c = format!("{P}.connectionPool");
    assert_eq!(policy("    connectionPool: {}\n"), invalid(&c));
    assert_eq!(
        policy("    connectionPool: {http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}}\n"),
        invalid(&format!("{c}.http.useClientProtocol"))
    );
    assert_eq!(
        policy("    connectionPool: {http: {http2KeepAlive: {interval: 30s}}}\n"),
        missing(&format!("{c}.http.http2KeepAlive.timeout"))
    );
    assert_eq!(
        policy("    connectionPool: {tcp: {connectTimeout: 500us}}\n"),
        invalid(&format!("{c}.tcp.connectTimeout"))
    );
    assert_eq!(
        policy("    connectionPool: {tcp: {idleTimeout: 0s, maxConnections: 10}, http: {maxRetries: -1}}\n"),
        invalid(&format!("{c}.http.maxRetries")),
        "a 0s TCP idle timeout turns it off"
    );
}

#[test]
fn outlier_detection() {
    let o = format!("{P}.outlierDetection");
    assert_eq!(
        policy("    outlierDetection: {consecutiveLocalOriginFailures: 3}\n"),
        invalid(&format!("{o}.consecutiveLocalOriginFailures"))
    );
    assert_eq!(
        policy("    outlierDetection: {splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 3, interval: 0s}\n"),
        invalid(&format!("{o}.interval"))
    );
    assert_eq!(
        policy("    outlierDetection: {baseEjectionTime: 30s, minHealthPercent: -1}\n"),
        invalid(&format!("{o}.minHealthPercent"))
    );
    assert_eq!(
        policy("    outlierDetection: {outlierDetectionHttpErrorCodes: [503, 700]}\n"),
        invalid(&format!("{o}.outlierDetectionHttpErrorCodes[1]"))
    );
}

#[test]
fn client_tls_per_mode() {
    let t = format!("{P}.tls");
    let mut mutual = policy("    tls: {mode: MUTUAL, caCertificates: /etc/certs/ca.pem}\n");
    mutual.sort();
    assert_eq!(
        mutual,
        [
            (ErrorKind::MissingField, format!("{t}.clientCertificate")),
            (ErrorKind::MissingField, format!("{t}.privateKey")),
        ]
    );
    assert_eq!(
        policy("    tls: {mode: MUTUAL, clientCertificate: /etc/certs/c.pem, privateKey: /etc/certs/k.pem, sni: reviews.example.com}\n"),
        vec![]
    );
    assert_eq!(
        policy("    tls: {mode: SIMPLE, insecureSkipVerify: true, caCertificates: /etc/certs/ca.pem}\n"),
        invalid(&format!("{t}.insecureSkipVerify"))
    );
    assert_eq!(
        policy("    tls: {mode: SIMPLE, sni: '*.example.com'}\n"),
        invalid(&format!("{t}.sni"))
    );
    assert_eq!(
        warning_paths(&dr_with("    tls: {mode: DISABLE, sni: a.example.com}\n")),
        one(ErrorKind::Ineffective, &format!("{t}.mode"))
    );
    let mut with_secret = paths(&dr_with(
        "    tls: {mode: SIMPLE, credentialName: ca, caCertificates: /etc/certs/ca.pem}\n",
    ));
    with_secret.sort();
    assert_eq!(
        with_secret,
        [
            (ErrorKind::InvalidValue, format!("{t}.credentialName")),
            (ErrorKind::Unsupported, format!("{t}.credentialName")),
        ]
    );
}

#[test]
fn port_level_settings() {
    let s = format!("{P}.portLevelSettings");
    assert_eq!(
        policy("    portLevelSettings:\n    - {port: {number: 80}, loadBalancer: {simple: RANDOM}}\n    - {port: {number: 80}, loadBalancer: {simple: ROUND_ROBIN}}\n"),
        invalid(&format!("{s}[1].port.number"))
    );
    assert_eq!(
        policy("    portLevelSettings: [{port: {number: 80}}]\n"),
        invalid(&format!("{s}[0]"))
    );
    assert_eq!(
        policy("    portLevelSettings: [{loadBalancer: {simple: RANDOM}}]\n"),
        missing(&format!("{s}[0].port"))
    );
}

#[test]
fn export_to_and_selector() {
    let dr = |extra: &str| {
        checked(paths(&object(
            "DestinationRule",
            &format!("  host: reviews\n{extra}"),
        )))
    };
    assert_eq!(
        dr("  exportTo: ['.', default]\n"),
        invalid("spec.exportTo[1]")
    );
    assert_eq!(dr("  exportTo: ['*', prod]\n"), invalid("spec.exportTo"));
    assert_eq!(dr("  exportTo: ['~']\n"), invalid("spec.exportTo[0]"));
    assert_eq!(
        dr("  workloadSelector: {matchLabels: {app: reviews}}\n  exportTo: [prod]\n"),
        invalid("spec.exportTo")
    );
    assert_eq!(
        dr("  workloadSelector: {matchLabels: {app: 'rev*'}}\n"),
        invalid("spec.workloadSelector.matchLabels.app")
    );
    assert_eq!(
        dr("  subsets: [{name: v1, labels: {version: 'v1 beta'}}]\n"),
        invalid("spec.subsets[0].labels.version")
    );
}

#[test]
fn tunnel_and_proxy_protocol_do_not_mix() {
    let found = policy(
        "    tunnel: {targetHost: proxy.example.com, targetPort: 3128}\n    proxyProtocol: {version: V1}\n",
    );
    assert!(
        found.contains(&(ErrorKind::InvalidValue, P.to_string())),
        "{found:?}"
    );
    let found = policy("    tunnel: {targetHost: 'not a host', targetPort: 0, protocol: GET}\n");
    for field in ["targetHost", "protocol"] {
        assert!(
            found.contains(&(ErrorKind::InvalidValue, format!("{P}.tunnel.{field}"))),
            "{found:?}"
        );
    }
    assert!(found.contains(&(ErrorKind::MissingField, format!("{P}.tunnel.targetPort"))));
}
