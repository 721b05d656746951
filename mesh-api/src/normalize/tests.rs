//! Unit tests of normalization: each deprecated form in, the modern form
//! out with Istio's meaning, and the finding that says so.

use std::path::Path;

use crate::error::ErrorKind;
use crate::load::load_str;
use crate::types::common::StringMatch;
use crate::types::load_balancer::SimpleLb;
use crate::types::Object;

/// Loads one object from `yaml`; its warnings as (path, message).
fn load(yaml: &str) -> (Object, Vec<(String, String)>) {
    let (mut objects, errors) = load_str(Path::new("t.yaml"), yaml);
    assert!(errors.is_empty(), "{errors:#?}");
    let loaded = objects.remove(0);
    let warnings = loaded
        .warnings
        .iter()
        .map(|w| {
            assert_eq!(w.kind, ErrorKind::Deprecated, "{w}");
            (w.path.clone(), w.message.clone())
        })
        .collect();
    (loaded.object, warnings)
}

/// The load errors of `yaml` as (kind, path).
fn load_errors(yaml: &str) -> Vec<(ErrorKind, String)> {
    let (objects, errors) = load_str(Path::new("t.yaml"), yaml);
    assert!(
        objects.is_empty(),
        "an object with a load error is not loaded"
    );
    errors.into_iter().map(|e| (e.kind, e.path)).collect()
}

fn vs(http: &str) -> String {
    format!("apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\nmetadata: {{name: r}}\nspec:\n  hosts: [reviews]\n  http:\n{http}")
}

fn dr(policy: &str) -> String {
    format!("apiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: {{name: r}}\nspec:\n  host: reviews\n  trafficPolicy:\n{policy}")
}

fn http_route(object: &Object) -> &crate::types::virtual_service::HttpRoute {
    match object {
        Object::VirtualService(r) => &r.spec.http[0],
        other => panic!("not a VirtualService: {other:?}"),
    }
}

fn policy(object: &Object) -> &crate::types::traffic_policy::TrafficPolicy {
    match object {
        Object::DestinationRule(r) => r.spec.traffic_policy.as_ref().expect("a policy"),
        other => panic!("not a DestinationRule: {other:?}"),
    }
}

#[test]
fn header_fields_of_istio_1_0_to_1_4_become_headers() {
    let (object, warnings) = load(&vs("  - appendHeaders: {x-a: '1'}\n    appendRequestHeaders: {x-b: '2'}\n    appendResponseHeaders: {x-c: '3'}\n    removeRequestHeaders: [x-d]\n    removeResponseHeaders: [x-e]\n    headers: {request: {add: {x-z: '0'}}}\n    route:\n    - destination: {host: reviews}\n      appendRequestHeaders: {x-f: '4'}\n      removeResponseHeaders: [x-g]\n"));
    let route = http_route(&object);
    let headers = route.headers.as_ref().expect("headers");
    let request = headers.request.as_ref().expect("request");
    let response = headers.response.as_ref().expect("response");
    let pairs = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(pairs(&request.add), ["x-a=1", "x-b=2", "x-z=0"]);
    assert_eq!(request.remove, ["x-d"]);
    assert_eq!(pairs(&response.add), ["x-c=3"]);
    assert_eq!(response.remove, ["x-e"]);
    assert!(route.append_headers.is_empty() && route.remove_request_headers.is_empty());
    let dest = route.route[0]
        .headers
        .as_ref()
        .expect("destination headers");
    assert_eq!(
        pairs(&dest.request.as_ref().expect("request").add),
        ["x-f=4"]
    );
    assert_eq!(dest.response.as_ref().expect("response").remove, ["x-g"]);
    assert_eq!(
        warnings[0],
        (
            "spec.http[0].appendHeaders".to_string(),
            "deprecated, use spec.http[0].headers.request.add".to_string()
        )
    );
    let paths: Vec<&str> = warnings.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.http[0].appendHeaders",
            "spec.http[0].appendRequestHeaders",
            "spec.http[0].appendResponseHeaders",
            "spec.http[0].removeRequestHeaders",
            "spec.http[0].removeResponseHeaders",
            "spec.http[0].route[0].appendRequestHeaders",
            "spec.http[0].route[0].removeResponseHeaders",
        ]
    );
}

#[test]
fn a_header_set_twice_to_different_values_is_an_error() {
    assert_eq!(
        load_errors(&vs("  - appendHeaders: {x-a: '1'}\n    headers: {request: {add: {x-a: '2'}}}\n    route: [{destination: {host: reviews}}]\n")),
        [(ErrorKind::InvalidValue, "spec.http[0].appendHeaders".to_string())]
    );
}

#[test]
fn websocket_upgrade() {
    let (object, warnings) = load(&vs(
        "  - websocketUpgrade: true\n    route: [{destination: {host: reviews}}]\n",
    ));
    assert_eq!(http_route(&object).websocket_upgrade, None);
    assert_eq!(warnings[0].0, "spec.http[0].websocketUpgrade");
    assert_eq!(
        load_errors(&vs(
            "  - websocketUpgrade: false\n    route: [{destination: {host: reviews}}]\n"
        )),
        [(
            ErrorKind::Unsupported,
            "spec.http[0].websocketUpgrade".to_string()
        )]
    );
}

#[test]
fn integer_percentages_become_percent_values() {
    let (object, warnings) = load(&vs("  - mirror: {host: shadow}\n    mirrorPercent: 25\n    fault:\n      delay: {fixedDelay: 7s, percent: 100}\n      abort: {httpStatus: 500, percent: 10}\n    route: [{destination: {host: reviews}}]\n"));
    let route = http_route(&object);
    assert_eq!(route.mirror_percentage.map(|p| p.value), Some(25.0));
    assert_eq!(route.mirror_percent, None);
    let fault = route.fault.as_ref().expect("fault");
    let delay = fault.delay.as_ref().expect("delay");
    assert_eq!(
        (delay.percent, delay.percentage.map(|p| p.value)),
        (None, Some(100.0))
    );
    let abort = fault.abort.as_ref().expect("abort");
    assert_eq!(
        (abort.percent, abort.percentage.map(|p| p.value)),
        (None, Some(10.0))
    );
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert_eq!(
        warnings[1].1,
        "deprecated, use spec.http[0].fault.delay.percentage"
    );
}

#[test]
fn the_modern_field_wins_when_both_are_set() {
    let (object, warnings) = load(&vs("  - mirror: {host: shadow}\n    mirrorPercent: 25\n    mirrorPercentage: {value: 5.5}\n    route: [{destination: {host: reviews}}]\n"));
    assert_eq!(
        http_route(&object).mirror_percentage.map(|p| p.value),
        Some(5.5)
    );
    assert!(
        warnings[0]
            .1
            .contains("ignored because spec.http[0].mirrorPercentage is set"),
        "{warnings:?}"
    );
    assert_eq!(
        load_errors(&vs("  - mirror: {host: shadow}\n    mirrorPercent: 150\n    route: [{destination: {host: reviews}}]\n")),
        [(ErrorKind::InvalidValue, "spec.http[0].mirrorPercent".to_string())]
    );
    assert_eq!(
        load_errors(&vs("  - fault: {delay: {fixedDelay: 1s, percent: 101}}\n    route: [{destination: {host: reviews}}]\n")),
        [(ErrorKind::InvalidValue, "spec.http[0].fault.delay.percent".to_string())]
    );
}

#[test]
fn allow_origin_becomes_exact_allow_origins() {
    let (object, warnings) = load(&vs("  - corsPolicy: {allowOrigin: ['https://a.example.com', '*']}\n    route: [{destination: {host: reviews}}]\n"));
    let cors = http_route(&object).cors_policy.as_ref().expect("cors");
    let exact = |o: &str| StringMatch {
        exact: Some(o.to_string()),
        ..Default::default()
    };
    assert_eq!(
        cors.allow_origins,
        [exact("https://a.example.com"), exact("*")]
    );
    assert!(cors.allow_origin.is_empty());
    assert_eq!(warnings[0].0, "spec.http[0].corsPolicy.allowOrigin");
}

#[test]
fn legacy_gateway_names_become_namespace_slash_name() {
    let yaml = "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [reviews]\n  gateways: [mesh, bookinfo-gateway.istio-system.svc.cluster.local, edge.prod]\n  http:\n  - match: [{gateways: [gw.ns]}]\n    route: [{destination: {host: reviews}}]\n";
    let (object, warnings) = load(yaml);
    let Object::VirtualService(r) = &object else {
        panic!("a VirtualService")
    };
    assert_eq!(
        r.spec.gateways,
        ["mesh", "istio-system/bookinfo-gateway", "prod/edge"]
    );
    assert_eq!(r.spec.http[0].matches[0].gateways, ["ns/gw"]);
    assert_eq!(
        warnings[0],
        (
            "spec.gateways[1]".to_string(),
            "deprecated gateway reference form, use istio-system/bookinfo-gateway".to_string()
        )
    );
}

#[test]
fn load_balancer_forms() {
    let (object, warnings) = load(&dr("    loadBalancer:\n      simple: LEAST_CONN\n      warmupDurationSecs: 60s\n    portLevelSettings:\n    - port: {number: 80}\n      loadBalancer: {consistentHash: {useSourceIp: true, minimumRingSize: 2048}}\n"));
    let p = policy(&object);
    let lb = p.load_balancer.as_ref().expect("lb");
    assert_eq!(lb.simple, Some(SimpleLb::LeastRequest));
    assert_eq!(lb.warmup_duration_secs, None);
    let warmup = lb.warmup.as_ref().expect("warmup");
    assert_eq!(warmup.duration.map(|d| d.0.as_secs()), Some(60));
    assert_eq!((warmup.aggression, warmup.minimum_percent), (None, None));
    let hash = p.port_level_settings[0]
        .load_balancer
        .as_ref()
        .and_then(|l| l.consistent_hash.as_ref())
        .expect("hash");
    assert_eq!(hash.minimum_ring_size, None);
    assert_eq!(
        hash.ring_hash.as_ref().map(|r| r.minimum_ring_size),
        Some(2048)
    );
    let paths: Vec<&str> = warnings.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.trafficPolicy.loadBalancer.simple",
            "spec.trafficPolicy.loadBalancer.warmupDurationSecs",
            "spec.trafficPolicy.portLevelSettings[0].loadBalancer.consistentHash.minimumRingSize",
        ]
    );
    assert_eq!(
        load_errors(&dr("    loadBalancer: {consistentHash: {useSourceIp: true, minimumRingSize: 10, maglev: {tableSize: 65537}}}\n")),
        [(
            ErrorKind::InvalidValue,
            "spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize".to_string()
        )]
    );
}

#[test]
fn consecutive_errors_counted_gateway_errors() {
    let (object, warnings) = load(&dr(
        "    outlierDetection: {consecutiveErrors: 7, interval: 5m}\n",
    ));
    let od = policy(&object).outlier_detection.as_ref().expect("od");
    assert_eq!(
        (
            od.consecutive_errors,
            od.consecutive_gateway_errors,
            od.consecutive_5xx_errors
        ),
        (None, Some(7), Some(0))
    );
    assert!(warnings[0].1.starts_with(
        "deprecated, use spec.trafficPolicy.outlierDetection.consecutiveGatewayErrors"
    ));
    // The new fields, when given, win over what consecutiveErrors implied.
    let (object, _) = load(&dr(
        "    outlierDetection: {consecutiveErrors: 7, consecutive5xxErrors: 3}\n",
    ));
    let od = policy(&object).outlier_detection.as_ref().expect("od");
    assert_eq!(
        (od.consecutive_gateway_errors, od.consecutive_5xx_errors),
        (Some(7), Some(3))
    );
    assert_eq!(
        load_errors(&dr("    outlierDetection: {consecutiveErrors: -1}\n")),
        [(
            ErrorKind::InvalidValue,
            "spec.trafficPolicy.outlierDetection.consecutiveErrors".to_string()
        )]
    );
}

#[test]
fn protocols_are_upper_cased() {
    let (object, warnings) = load("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec:\n  hosts: [api.example.com]\n  ports: [{number: 443, name: https, protocol: https}, {number: 81, name: web, protocol: grpc-web}, {number: 82, name: other, protocol: Spdy}]\n");
    let Object::ServiceEntry(se) = &object else {
        panic!("a ServiceEntry")
    };
    let protocols: Vec<&str> = se.spec.ports.iter().map(|p| p.protocol.as_str()).collect();
    assert_eq!(
        protocols,
        ["HTTPS", "GRPC-WEB", "Spdy"],
        "unknown ones are left for validation"
    );
    assert_eq!(warnings, vec![], "silent");
}

#[test]
fn protobuf_field_names_are_read_with_a_warning() {
    let (object, warnings) = load(&vs("  - route: [{destination: {host: reviews}}]\n    retries: {attempts: 2, per_try_timeout: 2s, retry_on: 5xx}\n    match:\n    - headers: {x_user_id: {exact: a}}\n      source_labels: {app_name: ui}\n"));
    let route = http_route(&object);
    let retries = route.retries.as_ref().expect("retries");
    assert_eq!(retries.per_try_timeout.map(|d| d.0.as_secs()), Some(2));
    assert_eq!(retries.retry_on.as_deref(), Some("5xx"));
    let paths: Vec<&str> = warnings.iter().map(|(p, _)| p.as_str()).collect();
    // Header names and label keys are data, not field names.
    assert_eq!(
        paths,
        [
            "spec.http[0].retries.per_try_timeout",
            "spec.http[0].retries.retry_on",
            "spec.http[0].match[0].source_labels",
        ]
    );
    assert_eq!(
        warnings[0].1,
        "per_try_timeout is the protobuf field name, use perTryTimeout (Kubernetes drops per_try_timeout from Istio's CRD objects)"
    );
}
