//! Dispatch and filter chain selection on hand-built listeners.

use std::sync::Arc;

use super::*;
use crate::model::{
    CidrRange, ClusterTarget, ListenerFilter, NetworkFilter, SourceType, TcpProxy, TrafficDirection,
};

fn chain(name: &str, matcher: FilterChainMatch) -> FilterChain {
    FilterChain {
        name: name.into(),
        matcher,
        tls: None,
        filter: NetworkFilter::Tcp(TcpProxy::new(name, ClusterTarget::Cluster(name.into()))),
    }
}

fn listener(name: &str, address: &str, chains: Vec<FilterChain>) -> Listener {
    Listener {
        name: name.into(),
        address: address.parse().unwrap(),
        bind_to_port: false,
        use_original_dst: false,
        listener_filters: vec![],
        traffic_direction: None,
        filter_chains: chains,
        default_filter_chain: Some(chain("default", FilterChainMatch::default())),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn sni(name: &str) -> Detected {
    Detected {
        transport_protocol: "tls",
        application_protocols: vec![],
        server_name: Some(name.into()),
    }
}

fn http() -> Detected {
    Detected {
        application_protocols: vec!["http/1.1".into()],
        ..Detected::raw()
    }
}

fn chosen<'a>(l: &'a Listener, dst: &str, detected: &Detected) -> &'a str {
    chosen_from(l, "198.18.9.9:40000", dst, detected)
}

fn chosen_from<'a>(l: &'a Listener, src: &str, dst: &str, detected: &Detected) -> &'a str {
    let addresses = ConnectionAddresses {
        destination: addr(dst),
        source: addr(src),
        local: addr("198.18.0.2:15001"),
    };
    select_chain(l, &addresses, detected).map_or("<none>", |c| c.name.as_str())
}

fn cidr(s: &str) -> CidrRange {
    let (ip, len) = s.split_once('/').unwrap();
    CidrRange::new(ip.parse().unwrap(), len.parse().unwrap()).unwrap()
}

#[test]
fn destination_port_first_then_no_fallback_to_other_ports() {
    let port = |p| FilterChainMatch {
        destination_port: Some(p),
        ..Default::default()
    };
    let l = listener(
        "virtualInbound",
        "0.0.0.0:15006",
        vec![
            chain("9080", port(9080)),
            chain("3306", port(3306)),
            chain("any", FilterChainMatch::default()),
        ],
    );
    assert_eq!(chosen(&l, "198.18.0.2:9080", &Detected::raw()), "9080");
    assert_eq!(chosen(&l, "198.18.0.2:3306", &Detected::raw()), "3306");
    assert_eq!(chosen(&l, "198.18.0.2:7777", &Detected::raw()), "any");
    let mut no_catch_all = l.clone();
    no_catch_all.filter_chains.pop();
    assert_eq!(
        chosen(&no_catch_all, "198.18.0.2:7777", &Detected::raw()),
        "default"
    );
}

#[test]
fn server_names_exact_then_longest_wildcard_then_none() {
    let names = |n: &[&str]| FilterChainMatch {
        server_names: n.iter().map(|s| s.to_string()).collect(),
        transport_protocol: Some("tls".into()),
        ..Default::default()
    };
    let l = listener(
        "0.0.0.0_443",
        "0.0.0.0:443",
        vec![
            chain("wide", names(&["*.com"])),
            chain("example", names(&["*.example.com"])),
            chain("api", names(&["api.example.com"])),
            chain("any-tls", names(&[])),
        ],
    );
    assert_eq!(chosen(&l, "198.19.0.9:443", &sni("api.example.com")), "api");
    assert_eq!(
        chosen(&l, "198.19.0.9:443", &sni("web.example.com")),
        "example"
    );
    assert_eq!(
        chosen(&l, "198.19.0.9:443", &sni("a.b.example.com")),
        "example"
    );
    assert_eq!(chosen(&l, "198.19.0.9:443", &sni("other.com")), "wide");
    assert_eq!(chosen(&l, "198.19.0.9:443", &sni("other.org")), "any-tls");
    // Plaintext: no chain asks for raw_buffer, so the default takes it.
    assert_eq!(chosen(&l, "198.19.0.9:443", &Detected::raw()), "default");
    assert!(needs_detection(&l, addr("198.19.0.9:443")));
}

#[test]
fn application_protocols_pick_http_and_the_rest_goes_to_the_default() {
    let l = listener(
        "0.0.0.0_9080",
        "0.0.0.0:9080",
        vec![chain(
            "http",
            FilterChainMatch {
                application_protocols: vec!["http/1.1".into(), "h2c".into()],
                ..Default::default()
            },
        )],
    );
    assert_eq!(chosen(&l, "198.19.0.3:9080", &http()), "http");
    let h2c = Detected {
        application_protocols: vec!["h2c".into()],
        ..Detected::raw()
    };
    assert_eq!(chosen(&l, "198.19.0.3:9080", &h2c), "http");
    assert_eq!(chosen(&l, "198.19.0.3:9080", &Detected::raw()), "default");
    assert!(needs_detection(&l, addr("198.19.0.9:9080")));
}

#[test]
fn detection_only_where_a_reachable_chain_asks_for_it() {
    let tcp_only = listener(
        "198.19.0.4_3306",
        "198.19.0.4:3306",
        vec![chain("mysql", FilterChainMatch::default())],
    );
    assert!(!needs_detection(&tcp_only, addr("198.19.0.9:3306")));
    let port = |p: u16, protocols: &[&str]| FilterChainMatch {
        destination_port: Some(p),
        application_protocols: protocols.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let mut inbound = listener(
        "virtualInbound",
        "0.0.0.0:15006",
        vec![
            chain("9080-http", port(9080, &["http/1.1", "h2c"])),
            chain("9080-tcp", port(9080, &[])),
            chain("3306", port(3306, &[])),
        ],
    );
    inbound.listener_filters = vec![ListenerFilter::OriginalDst, ListenerFilter::HttpInspector];
    assert!(needs_detection(&inbound, addr("198.19.0.9:9080")));
    assert!(
        !needs_detection(&inbound, addr("198.19.0.9:3306")),
        "server-first port never waits"
    );
    assert_eq!(chosen(&inbound, "198.18.0.2:9080", &http()), "9080-http");
    assert_eq!(
        chosen(&inbound, "198.18.0.2:9080", &Detected::raw()),
        "9080-tcp"
    );
}

#[test]
fn dispatch_prefers_exact_then_wildcard_then_the_capture_listener() {
    let mut capture = listener("virtualOutbound", "0.0.0.0:15001", vec![]);
    capture.bind_to_port = true;
    capture.use_original_dst = true;
    let mut snapshot = Snapshot::default();
    for l in [
        capture.clone(),
        listener("0.0.0.0_9080", "0.0.0.0:9080", vec![]),
        listener("198.19.0.4_9080", "198.19.0.4:9080", vec![]),
        listener("198.19.0.5_3306", "198.19.0.5:3306", vec![]),
    ] {
        snapshot.listeners.insert(l.name.clone(), Arc::new(l));
    }
    let local = addr("127.0.0.1:15001");
    let to = |dst: &str| dispatch(&snapshot, &capture, addr(dst), local).name.clone();
    assert_eq!(to("198.19.0.4:9080"), "198.19.0.4_9080");
    assert_eq!(to("198.19.0.3:9080"), "0.0.0.0_9080");
    assert_eq!(to("198.19.0.5:3306"), "198.19.0.5_3306");
    assert_eq!(
        to("198.19.0.6:3306"),
        "virtualOutbound",
        "no wildcard for 3306"
    );
    assert_eq!(to("127.0.0.1:15001"), "virtualOutbound", "not redirected");
    // Without use_original_dst nothing is handed on.
    let mut plain = capture.clone();
    plain.use_original_dst = false;
    assert_eq!(
        dispatch(&snapshot, &plain, addr("198.19.0.3:9080"), local).name,
        "virtualOutbound"
    );
    // A bound listener is never a dispatch target.
    let mut bound = snapshot.clone();
    let mut l = listener("0.0.0.0_9080", "0.0.0.0:9080", vec![]);
    l.bind_to_port = true;
    bound.listeners.insert(l.name.clone(), Arc::new(l));
    assert_eq!(
        dispatch(&bound, &capture, addr("198.19.0.3:9080"), local).name,
        "virtualOutbound"
    );
}

#[test]
fn dispatch_keeps_to_the_capture_listeners_direction() {
    let mut inbound = listener("virtualInbound", "0.0.0.0:15006", vec![]);
    inbound.bind_to_port = true;
    inbound.use_original_dst = true;
    inbound.traffic_direction = Some(TrafficDirection::Inbound);
    let mut outbound_9080 = listener("0.0.0.0_9080", "0.0.0.0:9080", vec![]);
    outbound_9080.traffic_direction = Some(TrafficDirection::Outbound);
    let mut snapshot = Snapshot::default();
    snapshot
        .listeners
        .insert(outbound_9080.name.clone(), Arc::new(outbound_9080));
    let local = addr("198.18.0.2:15006");
    let to = dispatch(&snapshot, &inbound, addr("198.18.0.2:9080"), local);
    assert_eq!(to.name, "virtualInbound");
}

#[test]
fn destination_ip_longest_prefix_then_the_chains_without_ranges() {
    let ranges = |r: &[&str]| FilterChainMatch {
        prefix_ranges: r.iter().map(|s| cidr(s)).collect(),
        ..Default::default()
    };
    let l = listener(
        "0.0.0.0_27017",
        "0.0.0.0:27017",
        vec![
            chain("wide", ranges(&["198.18.0.0/15"])),
            chain("narrow", ranges(&["198.19.4.0/24", "198.19.5.7/32"])),
            chain("host", ranges(&["198.19.4.9/32"])),
            chain("rest", FilterChainMatch::default()),
        ],
    );
    assert_eq!(chosen(&l, "198.19.4.9:27017", &Detected::raw()), "host");
    assert_eq!(chosen(&l, "198.19.4.10:27017", &Detected::raw()), "narrow");
    assert_eq!(chosen(&l, "198.19.5.7:27017", &Detected::raw()), "narrow");
    assert_eq!(chosen(&l, "198.18.200.1:27017", &Detected::raw()), "wide");
    assert_eq!(chosen(&l, "127.0.0.1:27017", &Detected::raw()), "rest");
    let mut no_rest = l.clone();
    no_rest.filter_chains.pop();
    assert_eq!(
        chosen(&no_rest, "127.0.0.1:27017", &Detected::raw()),
        "default"
    );
}

#[test]
fn the_destination_ip_step_comes_before_server_names_and_does_not_back_off() {
    // A chain for the service's CIDR that asks for SNI, and a catch-all
    // chain: a plaintext connection into the CIDR takes neither (Envoy
    // does not fall back to a wider prefix), one outside takes the rest.
    let l = listener(
        "0.0.0.0_443",
        "0.0.0.0:443",
        vec![
            chain(
                "cidr-sni",
                FilterChainMatch {
                    prefix_ranges: vec![cidr("198.19.0.0/16")],
                    server_names: vec!["db.example.com".into()],
                    ..Default::default()
                },
            ),
            chain("rest", FilterChainMatch::default()),
        ],
    );
    assert_eq!(
        chosen(&l, "198.19.0.1:443", &sni("db.example.com")),
        "cidr-sni"
    );
    assert_eq!(chosen(&l, "198.19.0.1:443", &Detected::raw()), "default");
    assert_eq!(chosen(&l, "198.18.0.1:443", &Detected::raw()), "rest");
    assert!(needs_detection(&l, addr("198.19.0.1:443")));
    assert!(
        !needs_detection(&l, addr("198.18.0.1:443")),
        "only reachable chains count"
    );
}

#[test]
fn source_fields_in_envoys_order() {
    let m = |direct: &[&str], ty: SourceType, src: &[&str], ports: &[u16]| FilterChainMatch {
        direct_source_prefix_ranges: direct.iter().map(|s| cidr(s)).collect(),
        source_type: ty,
        source_prefix_ranges: src.iter().map(|s| cidr(s)).collect(),
        source_ports: ports.to_vec(),
        ..Default::default()
    };
    let l = listener(
        "l",
        "0.0.0.0:80",
        vec![
            chain("direct", m(&["198.18.7.0/24"], SourceType::Any, &[], &[])),
            chain("local", m(&[], SourceType::SameIpOrLoopback, &[], &[])),
            chain(
                "external-net",
                m(&[], SourceType::External, &["198.18.0.0/16"], &[]),
            ),
            chain(
                "external-port",
                m(&[], SourceType::External, &["198.18.0.0/16"], &[5000]),
            ),
            chain("external", m(&[], SourceType::External, &[], &[])),
        ],
    );
    let raw = Detected::raw();
    let dst = "198.18.0.2:80";
    assert_eq!(chosen_from(&l, "198.18.7.7:1234", dst, &raw), "direct");
    assert_eq!(chosen_from(&l, "127.0.0.1:1234", dst, &raw), "local");
    // The local address counts as this host, as loopback does.
    assert_eq!(chosen_from(&l, "198.18.0.2:1234", dst, &raw), "local");
    assert_eq!(
        chosen_from(&l, "198.18.3.3:5000", dst, &raw),
        "external-port"
    );
    assert_eq!(
        chosen_from(&l, "198.18.3.3:5001", dst, &raw),
        "external-net"
    );
    assert_eq!(chosen_from(&l, "198.19.3.3:5000", dst, &raw), "external");
    // Without an EXTERNAL chain an outside peer falls back to ANY chains.
    let any_only = listener(
        "l",
        "0.0.0.0:80",
        vec![
            chain("local", m(&[], SourceType::SameIpOrLoopback, &[], &[])),
            chain("any", m(&[], SourceType::Any, &[], &[])),
        ],
    );
    assert_eq!(chosen_from(&any_only, "198.19.3.3:5000", dst, &raw), "any");
    assert_eq!(chosen_from(&any_only, "127.0.0.1:5000", dst, &raw), "local");
}

#[test]
fn a_cidr_range_masks_its_host_bits_and_knows_its_family() {
    let r = cidr("198.19.4.77/24");
    assert_eq!(r.to_string(), "198.19.4.0/24");
    assert!(r.contains("198.19.4.200".parse().unwrap()));
    assert!(!r.contains("198.19.5.1".parse().unwrap()));
    assert!(
        r.contains("::ffff:198.19.4.1".parse().unwrap()),
        "v4-mapped counts"
    );
    assert!(CidrRange::new("198.19.4.77".parse().unwrap(), 33).is_none());
    let all = cidr("0.0.0.0/0");
    assert!(all.contains("198.18.0.1".parse().unwrap()));
    assert!(!all.contains("2001:db8::1".parse().unwrap()));
    assert!(cidr("2001:db8::/32").contains("2001:db8:1::1".parse().unwrap()));
}
