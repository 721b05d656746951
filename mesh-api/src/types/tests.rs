//! Unit tests of the config types: Istio YAML in, typed values out.

use super::destination_rule::DestinationRuleSpec;
use super::gateway::{GatewaySpec, ServerTlsMode};
use super::load_balancer::SimpleLb;
use super::service_entry::{Location, Resolution, ServiceEntrySpec, WorkloadEntrySpec};
use super::traffic_policy::ClientTlsMode;
use super::virtual_service::VirtualServiceSpec;
use super::*;

fn parse<S: serde::de::DeserializeOwned>(yaml: &str) -> Result<Resource<S>, String> {
    serde_yaml::from_str(yaml).map_err(|e| e.to_string())
}

#[test]
fn virtual_service_with_every_http_feature_loads() {
    let vs: Resource<VirtualServiceSpec> = parse(
        r#"
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  exportTo: ["."]
  http:
  - name: jason
    match:
    - headers: {end-user: {exact: jason}}
      uri: {prefix: /api}
      queryParams: {debug: {regex: "t.*"}}
      ignoreUriCase: true
    route:
    - destination: {host: reviews, subset: v2, port: {number: 9080}}
      weight: 80
      headers: {request: {set: {x-a: b}}, response: {remove: [x-c]}}
    - destination: {host: reviews, subset: v3}
      weight: 20
    timeout: 10s
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure"}
    fault:
      delay: {fixedDelay: 7s, percentage: {value: 100}}
      abort: {httpStatus: 500, percentage: {value: 50}}
    rewrite: {uri: /v2, authority: reviews.internal}
    mirror: {host: reviews-shadow}
    mirrorPercentage: {value: 10.5}
    corsPolicy:
      allowOrigins: [{exact: "https://example.com"}]
      allowMethods: [GET, POST]
      maxAge: 24h
      allowCredentials: false
  - redirect: {uri: /new, redirectCode: 302, derivePort: FROM_REQUEST_PORT}
  - directResponse: {status: 503, body: {string: "unavailable"}}
  tcp:
  - match: [{port: 27017}]
    route: [{destination: {host: mongo.backup.svc.cluster.local, port: {number: 5555}}}]
  tls:
  - match: [{port: 443, sniHosts: [login.bookinfo.com]}]
    route: [{destination: {host: login.prod.svc.cluster.local}}]
"#,
    )
    .expect("valid VirtualService");
    assert_eq!(vs.metadata.namespace.as_deref(), Some("bookinfo"));
    let http = &vs.spec.http[0];
    assert_eq!(
        http.matches[0].headers["end-user"].exact.as_deref(),
        Some("jason")
    );
    assert_eq!(http.route[1].weight, Some(20));
    assert_eq!(
        http.timeout.map(|t| t.0),
        Some(std::time::Duration::from_secs(10))
    );
    assert_eq!(http.retries.as_ref().map(|r| r.attempts), Some(3));
    assert_eq!(vs.spec.tcp[0].matches[0].port, Some(27017));
    assert_eq!(
        vs.spec.tls[0].matches[0].sni_hosts,
        vec!["login.bookinfo.com"]
    );
}

#[test]
fn destination_rule_with_traffic_policy_loads() {
    let dr: Resource<DestinationRuleSpec> = parse(
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    connectionPool:
      tcp: {maxConnections: 100, connectTimeout: 30ms, tcpKeepalive: {time: 7200s, interval: 75s}}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1, h2UpgradePolicy: UPGRADE}
    outlierDetection: {consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 15m}
    tls: {mode: ISTIO_MUTUAL}
    portLevelSettings:
    - port: {number: 80}
      loadBalancer: {consistentHash: {httpCookie: {name: user, ttl: 0s}}}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
    trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
"#,
    )
    .expect("valid DestinationRule");
    let policy = dr.spec.traffic_policy.as_ref().expect("policy");
    assert_eq!(
        policy.load_balancer.as_ref().and_then(|l| l.simple),
        Some(SimpleLb::LeastRequest)
    );
    assert_eq!(
        policy
            .outlier_detection
            .as_ref()
            .and_then(|o| o.consecutive_5xx_errors),
        Some(7)
    );
    assert_eq!(
        policy.tls.as_ref().and_then(|t| t.mode),
        Some(ClientTlsMode::IstioMutual)
    );
    assert_eq!(dr.spec.subsets[1].labels["version"], "v2");
}

#[test]
fn gateway_service_entry_and_workload_entry_load() {
    let gw: Resource<GatewaySpec> = parse(
        r#"
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata: {name: bookinfo-gateway}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: SIMPLE, credentialName: bookinfo-secret, minProtocolVersion: TLSV1_2}
"#,
    )
    .expect("valid Gateway");
    let tls = gw.spec.servers[0].tls.as_ref().expect("tls");
    assert_eq!(tls.mode, Some(ServerTlsMode::Simple));

    let se: Resource<ServiceEntrySpec> = parse(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external-mongo}
spec:
  hosts: [mongo.example.com]
  ports: [{number: 27017, name: mongo, protocol: MONGO, targetPort: 27018}]
  location: MESH_EXTERNAL
  resolution: DNS
  endpoints: [{address: 198.18.0.10, ports: {mongo: 27019}, weight: 2}]
  subjectAltNames: ["spiffe://cluster.local/ns/db/sa/mongo"]
"#,
    )
    .expect("valid ServiceEntry");
    assert_eq!(se.spec.location, Some(Location::MeshExternal));
    assert_eq!(se.spec.resolution, Some(Resolution::Dns));
    assert_eq!(se.spec.endpoints[0].ports["mongo"], 27019);

    let we: Resource<WorkloadEntrySpec> = parse(
        r#"
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: messenger-v1, labels: {app: messenger}}
spec:
  address: 127.0.10.2
  ports: {http: 8080}
  labels: {app: messenger, version: v1}
  network: net1
  locality: us-east1/zone1
  weight: 3
  serviceAccount: messenger
"#,
    )
    .expect("valid WorkloadEntry");
    assert_eq!(we.spec.service_account.as_deref(), Some("messenger"));
}

#[test]
fn kubectl_metadata_and_status_are_ignored() {
    let gw: Resource<GatewaySpec> = parse(
        r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: istio-system
  uid: 0b6d8d2e-0000-0000-0000-000000000000
  resourceVersion: "1234"
  generation: 2
  creationTimestamp: "2024-01-01T00:00:00Z"
  managedFields: [{manager: kubectl, operation: Update}]
  annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}"}
spec:
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
status: {}
"#,
    )
    .expect("kubectl output loads");
    assert_eq!(gw.metadata.name, "gw");
}

#[test]
fn unknown_fields_are_rejected() {
    let err = parse::<VirtualServiceSpec>(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  hosts: [a]\n  htttp: []\n",
    )
    .expect_err("typo must fail");
    assert!(err.contains("unknown field `htttp`"), "{err}");
    let err = parse::<GatewaySpec>(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: a, namspace: x}\nspec: {}\n",
    )
    .expect_err("metadata typo must fail");
    assert!(err.contains("unknown field `namspace`"), "{err}");
}

#[test]
fn object_key_and_default_namespace() {
    let obj = Object::Gateway(Resource::new(
        ObjectMeta {
            name: "gw".into(),
            ..Default::default()
        },
        GatewaySpec::default(),
    ));
    assert_eq!(obj.kind(), "Gateway");
    assert_eq!(obj.namespace(), "default");
    assert_eq!(obj.key(), "Gateway/default/gw");
    let obj = Object::WorkloadEntry(Resource::new(
        ObjectMeta::new("w", "prod"),
        WorkloadEntrySpec::default(),
    ));
    assert_eq!(obj.key(), "WorkloadEntry/prod/w");
}

#[test]
fn object_serializes_in_kubernetes_form() {
    let obj = Object::WorkloadEntry(Resource::new(
        ObjectMeta::new("w", "prod"),
        WorkloadEntrySpec {
            address: "127.0.0.2".into(),
            ..Default::default()
        },
    ));
    let json = serde_json::to_value(&obj).expect("serializes");
    assert_eq!(json["apiVersion"], "networking.istio.io/v1");
    assert_eq!(json["kind"], "WorkloadEntry");
    assert_eq!(json["metadata"]["namespace"], "prod");
    assert_eq!(json["spec"]["address"], "127.0.0.2");
    assert_eq!(obj.spec_json()["address"], "127.0.0.2");
}

#[test]
fn spec_round_trips_through_yaml() {
    let yaml = "hosts: [a]\nhttp:\n- match: [{uri: {prefix: /}}]\n  route: [{destination: {host: a}, weight: 100}]\n  timeout: 1500ms\n";
    let spec: VirtualServiceSpec = serde_yaml::from_str(yaml).expect("valid");
    let back = serde_yaml::to_string(&spec).expect("serializes");
    let again: VirtualServiceSpec = serde_yaml::from_str(&back).expect("round trip");
    assert_eq!(spec, again);
}

#[test]
fn enum_values_are_istios_names() {
    let spec: VirtualServiceSpec = serde_yaml::from_str(
        "hosts: [a]\nhttp: [{route: [{destination: {host: a}}], corsPolicy: {unmatchedPreflights: UNSPECIFIED}}]\n",
    )
    .expect("UNSPECIFIED is Istio's name");
    let back = serde_yaml::to_string(&spec).expect("serializes");
    assert!(back.contains("unmatchedPreflights: UNSPECIFIED"), "{back}");
}
