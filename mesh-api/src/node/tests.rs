//! Unit tests of the node contract: id grammar, the namespace rule,
//! metadata round trips and rejection of malformed values.

use super::*;

fn meta(pairs: &[(&str, &str)]) -> NodeMetadata {
    NodeMetadata {
        values: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        labels: BTreeMap::from([("app".to_string(), "greeter".to_string())]),
    }
}

#[test]
fn parses_a_none_mode_sidecar() {
    let m = meta(&[
        (INTERCEPTION_MODE, "NONE"),
        (HTTP_PROXY_PORT, "15080"),
        (MESH_APP_IP, "127.1.10.1"),
        (SERVICE_ACCOUNT, "greeter"),
    ]);
    let n = Node::parse(
        "sidecar~127.0.10.1~greeter.default~default.svc.cluster.local",
        &m,
    )
    .unwrap();
    assert_eq!(n.proxy_type, ProxyType::Sidecar);
    assert_eq!(n.ip.to_string(), "127.0.10.1");
    assert_eq!(n.pod, "greeter.default");
    assert_eq!(n.namespace, "default");
    assert_eq!(n.interception_mode, InterceptionMode::None);
    assert_eq!(n.http_proxy_port, Some(15080));
    assert_eq!(n.workload_ip().to_string(), "127.1.10.1");
    assert_eq!(n.service_account.as_deref(), Some("greeter"));
    assert_eq!(n.labels["app"], "greeter");
}

#[test]
fn a_gateway_takes_its_defaults_from_the_id() {
    let n = Node::parse(
        "router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local",
        &meta(&[(MESH_GATEWAY_PORTS, "80=8080, 443=8443")]),
    )
    .unwrap();
    assert_eq!(n.proxy_type, ProxyType::Router);
    assert_eq!(n.namespace, "istio-system");
    assert_eq!(n.interception_mode, InterceptionMode::Redirect);
    assert_eq!(n.workload_ip(), n.ip);
    assert_eq!(n.gateway_port(80), 8080);
    assert_eq!(n.gateway_port(443), 8443);
    assert_eq!(n.gateway_port(9000), 9000);
    assert_eq!(n.gateway_port(70000), 70000);
}

#[test]
fn the_namespace_rule_is_istios() {
    let ns = |id: &str, m: &[(&str, &str)]| Node::parse(id, &meta(m)).map(|n| n.namespace);
    // POD.NAMESPACE first, even when the domain says otherwise.
    assert_eq!(
        ns("sidecar~198.18.0.1~a.shop~other.svc.cluster.local", &[]).unwrap(),
        "shop"
    );
    // Metadata overrides the id.
    assert_eq!(
        ns(
            "sidecar~198.18.0.1~a.shop~shop.svc.cluster.local",
            &[(NAMESPACE, "prod")]
        )
        .unwrap(),
        "prod"
    );
    // A pod name with dots: the namespace is after the last one.
    assert_eq!(
        ns("sidecar~198.18.0.1~my.pod.prod~prod.svc.cluster.local", &[]).unwrap(),
        "prod"
    );
    // No namespace in the pod part: the domain's first label.
    assert_eq!(
        ns("sidecar~198.18.0.1~vm1~prod.svc.cluster.local", &[]).unwrap(),
        "prod"
    );
    // Blank metadata is no value.
    assert_eq!(
        ns(
            "sidecar~198.18.0.1~a.shop~shop.svc.cluster.local",
            &[(NAMESPACE, "  ")]
        )
        .unwrap(),
        "shop"
    );
    assert!(ns("sidecar~198.18.0.1~vm1~local", &[]).is_err());
}

#[test]
fn rejects_bad_ids_and_metadata() {
    let none = NodeMetadata::default();
    for id in [
        "",
        "sidecar~1.2.3.4",
        "sidecar~1.2.3.4~a.b~b.svc~extra",
        "pod~1.2.3.4~a.b~b.svc",
        "sidecar~nope~a.b~b.svc",
    ] {
        assert!(Node::parse(id, &none).is_err(), "{id} should fail");
    }
    let id = "sidecar~1.2.3.4~a.b~b.svc.cluster.local";
    for bad in [
        (HTTP_PROXY_PORT, "99999"),
        (INTERCEPTION_MODE, "TPROXY"),
        (MESH_GATEWAY_PORTS, "80"),
        (MESH_APP_IP, "local"),
    ] {
        let err = Node::parse(id, &meta(&[bad])).unwrap_err();
        assert!(err.to_string().contains(bad.0), "{err}");
    }
}

#[test]
fn metadata_round_trips_through_parse() {
    let mut n = Node::parse(
        "sidecar~127.0.10.2~g.default~default.svc.cluster.local",
        &NodeMetadata::default(),
    )
    .unwrap();
    n.labels = parse_labels("app=greeter, version=v1").unwrap();
    n.service_account = Some("greeter".into());
    n.interception_mode = "none".parse().unwrap();
    n.http_proxy_port = Some(15080);
    n.app_ip = Some("127.1.10.2".parse().unwrap());
    n.gateway_ports = parse_port_map("80=8080").unwrap();
    let m = n.metadata();
    assert_eq!(m.get(NAMESPACE), Some("default"));
    assert_eq!(m.get(INTERCEPTION_MODE), Some("NONE"));
    assert_eq!(m.get(MESH_GATEWAY_PORTS), Some("80=8080"));
    assert_eq!(m.labels.len(), 2);
    assert!(m.values.keys().all(|k| STRING_KEYS.contains(&k.as_str())));
    assert_eq!(Node::parse(&n.id, &m).unwrap(), n);
}

#[test]
fn node_ids_are_made_as_they_are_parsed() {
    let id = NodeId::new(
        ProxyType::Router,
        "198.18.0.1".parse().unwrap(),
        "istio-ingressgateway",
        "istio-system",
    );
    let text = id.to_string();
    assert_eq!(
        text,
        "router~198.18.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
    );
    assert_eq!(NodeId::parse(&text).unwrap(), id);
    assert_eq!(id.namespace(), Some("istio-system"));
    let v6 = NodeId::parse("sidecar~2001:2::1~p.ns~ns.svc.cluster.local").unwrap();
    assert_eq!(v6.ip.to_string(), "2001:2::1");
}

#[test]
fn lists_are_checked() {
    assert!(parse_labels("app").is_err());
    assert!(parse_port_map("80=http").is_err());
    assert!(parse_labels("").unwrap().is_empty());
    let labels = parse_labels("b=2,a=1").unwrap();
    assert_eq!(format_labels(&labels), "a=1,b=2");
}

#[test]
fn locality_is_region_zone_subzone_with_later_parts_optional() {
    let l: Locality = "us-east1/us-east1-b/rack7".parse().unwrap();
    assert_eq!(
        (l.region.as_str(), l.zone.as_str(), l.sub_zone.as_str()),
        ("us-east1", "us-east1-b", "rack7")
    );
    assert_eq!(l.to_string(), "us-east1/us-east1-b/rack7");
    let region: Locality = "eu-west4".parse().unwrap();
    assert_eq!(region.zone, "");
    assert_eq!(region.to_string().parse::<Locality>().unwrap(), region);
    let zone: Locality = "eu-west4/a".parse().unwrap();
    assert_eq!((zone.zone.as_str(), zone.sub_zone.as_str()), ("a", ""));
    assert!("".parse::<Locality>().is_err());
    assert!("/zone".parse::<Locality>().is_err());
    assert!("a/b/c/d".parse::<Locality>().is_err());
    // Not metadata: parsing a node leaves it unset.
    let n = Node::parse(
        "sidecar~127.0.10.1~greeter.default~default.svc.cluster.local",
        &meta(&[]),
    )
    .unwrap();
    assert_eq!(n.locality, None);
}
