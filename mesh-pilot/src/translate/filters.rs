//! Building blocks the translator's stages share: addresses, the ADS config
//! source, and the filter configs (HttpConnectionManager, Router, TcpProxy)
//! with Envoy's canonical names, carried as `typed_config`. An extension's
//! `typed_config` is part of the resource the translator builds, so it is
//! packed here; packing whole resources for the wire is `xds/`'s.

use envoy_types::pb::envoy::config::accesslog::v3::AccessLog;
use envoy_types::pb::envoy::config::core::v3::{
    address, config_source, socket_address, Address, AggregatedConfigSource, ApiVersion,
    ConfigSource, Http1ProtocolOptions, Metadata, SocketAddress,
};
use envoy_types::pb::envoy::config::listener::v3::{
    filter, listener_filter, Filter, FilterChain, ListenerFilter,
};
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::{CodecType, RouteSpecifier, UpgradeConfig},
    http_filter, HttpConnectionManager, HttpFilter, Rds,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::ClusterSpecifier, TcpProxy,
};
use envoy_types::pb::google::protobuf::{value, Any, BoolValue, Duration, Struct, Value};
use mesh_api::names;
use prost::{Message, Name};
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Name of the HTTP connection manager network filter.
pub const HCM: &str = "envoy.filters.network.http_connection_manager";
/// Name of the TCP proxy network filter.
pub const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";
/// Name of the router HTTP filter.
pub const ROUTER: &str = "envoy.filters.http.router";
/// Name of the fault HTTP filter, also its key in `typed_per_filter_config`.
pub const FAULT_FILTER: &str = "envoy.filters.http.fault";
/// Name of the CORS HTTP filter, also its key in `typed_per_filter_config`.
pub const CORS_FILTER: &str = "envoy.filters.http.cors";

/// An extension config as a `typed_config`: packed into `Any` with
/// Envoy's canonical type URL.
pub fn typed_config<T: Message + Name>(msg: &T) -> Any {
    Any {
        type_url: T::type_url(),
        value: msg.encode_to_vec(),
    }
}

/// `filter_metadata["istio"]["config"]` naming the config object a
/// resource was made from, as Istio marks routes and clusters; the proxy
/// names that object when it explains a failure.
pub fn config_metadata(kind: &str, namespace: &str, name: &str) -> Metadata {
    string_metadata(
        names::ISTIO_METADATA,
        names::CONFIG_FIELD,
        names::config_path(kind, namespace, name),
    )
}

/// `filter_metadata["mesh"]["reason"]`: why a resource the mesh made up
/// itself refuses traffic (`outboundTrafficPolicy REGISTRY_ONLY`).
pub fn reason_metadata(reason: &str) -> Metadata {
    string_metadata(
        names::MESH_METADATA,
        names::REASON_FIELD,
        reason.to_string(),
    )
}

fn string_metadata(filter: &str, field: &str, value: String) -> Metadata {
    let mut fields = proto_map();
    fields.insert(
        field.to_string(),
        Value {
            kind: Some(value::Kind::StringValue(value)),
        },
    );
    let mut filter_metadata = proto_map();
    filter_metadata.insert(filter.to_string(), Struct { fields });
    Metadata {
        filter_metadata,
        ..Default::default()
    }
}

/// A socket address.
pub fn socket(ip: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

/// Config source "over this ADS stream", API v3.
pub fn ads() -> ConfigSource {
    ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        resource_api_version: ApiVersion::V3 as i32,
        ..Default::default()
    }
}

/// A protobuf duration of whole seconds.
pub fn seconds(s: i64) -> Duration {
    Duration {
        seconds: s,
        nanos: 0,
    }
}

/// A protobuf duration from a std one.
pub fn duration(d: std::time::Duration) -> Duration {
    Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// Where an HCM gets its routes.
#[derive(Debug, Clone)]
pub enum Routes {
    /// RDS over ADS, by route config name.
    Rds(String),
    /// An inline route config.
    Inline(Box<RouteConfiguration>),
}

/// How an HCM is set up beyond its routes.
#[derive(Debug, Clone, Default)]
pub struct HcmOptions {
    /// HTTP/1 clients may use the listener as a plain HTTP proxy
    /// (`GET http://host:port/path`): NONE-mode sidecars.
    pub absolute_urls: bool,
    /// The connection's peer is the client (gateways): append it to
    /// `x-forwarded-for` and trust nothing the client says about itself.
    pub use_remote_address: bool,
    /// Access loggers ([`super::access_log::access_logs`]).
    pub access_log: Vec<AccessLog>,
}

/// An HCM network filter as Istio builds it: the CORS and fault filters
/// ahead of the router (routes carry their per-route configs), WebSocket
/// upgrades allowed, and the mesh's access log.
pub fn http_connection_manager(stat_prefix: &str, routes: Routes, opts: &HcmOptions) -> Filter {
    let route_specifier = match routes {
        Routes::Rds(name) => RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: name,
        }),
        Routes::Inline(rc) => RouteSpecifier::RouteConfig(*rc),
    };
    let http_filter = |name: &str, config: Any| HttpFilter {
        name: name.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(config)),
        ..Default::default()
    };
    let hcm = HttpConnectionManager {
        codec_type: CodecType::Auto as i32,
        stat_prefix: stat_prefix.to_string(),
        http_filters: vec![
            http_filter(CORS_FILTER, typed_config(&Cors::default())),
            http_filter(FAULT_FILTER, typed_config(&HttpFault::default())),
            http_filter(ROUTER, typed_config(&Router::default())),
        ],
        http_protocol_options: opts.absolute_urls.then(|| Http1ProtocolOptions {
            allow_absolute_url: Some(BoolValue { value: true }),
            ..Default::default()
        }),
        upgrade_configs: vec![UpgradeConfig {
            upgrade_type: WEBSOCKET.to_string(),
            ..Default::default()
        }],
        use_remote_address: Some(BoolValue {
            value: opts.use_remote_address,
        }),
        access_log: opts.access_log.clone(),
        route_specifier: Some(route_specifier),
        ..Default::default()
    };
    Filter {
        name: HCM.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(typed_config(&hcm))),
    }
}

/// The upgrade every HCM allows.
pub const WEBSOCKET: &str = "websocket";

/// A map for a protobuf message whose encoding must not change between
/// builds of the same content: every map made here hashes with one
/// process-wide state, so equal inserts give equal iteration (and so
/// encoding) order, and a resource's content hash only changes with it.
pub fn proto_map<V>() -> HashMap<String, V> {
    static STATE: OnceLock<RandomState> = OnceLock::new();
    HashMap::with_hasher(STATE.get_or_init(RandomState::new).clone())
}

/// A TCP proxy network filter to one cluster, logging to `access_log`.
pub fn tcp_proxy(stat_prefix: &str, cluster: &str, access_log: &[AccessLog]) -> Filter {
    let tcp = TcpProxy {
        stat_prefix: stat_prefix.to_string(),
        cluster_specifier: Some(ClusterSpecifier::Cluster(cluster.to_string())),
        access_log: access_log.to_vec(),
        ..Default::default()
    };
    Filter {
        name: TCP_PROXY.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(typed_config(&tcp))),
    }
}

/// The TLS inspector listener filter (reads SNI and ALPN for chain
/// selection without consuming the handshake).
pub fn tls_inspector() -> ListenerFilter {
    ListenerFilter {
        name: TLS_INSPECTOR.to_string(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(typed_config(
            &TlsInspector::default(),
        ))),
        ..Default::default()
    }
}

/// Name of the TLS inspector listener filter.
pub const TLS_INSPECTOR: &str = "envoy.filters.listener.tls_inspector";

/// A filter chain of one network filter.
pub fn chain(filter: Filter) -> FilterChain {
    FilterChain {
        filters: vec![filter],
        ..Default::default()
    }
}
