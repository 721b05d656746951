//! Unit tests of the conversions, one file per resource kind, with the
//! proto builders they share.

mod chain_match;
mod cluster;
mod cluster_policy;
mod cluster_tls;
mod downstream_tls;
mod hcm;
mod listener;
mod policy;
mod route;
mod snapshot;

use envoy_types::pb::envoy::config::core::v3::{address, socket_address, Address, SocketAddress};
use envoy_types::pb::envoy::config::listener::v3::{
    filter, Filter, FilterChain, Listener as XdsListener,
};
use envoy_types::pb::envoy::config::route::v3::{
    route::Action, route_action, route_match, Route, RouteAction, RouteConfiguration, RouteMatch,
    VirtualHost,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, http_filter, HttpConnectionManager, HttpFilter, Rds,
};
use envoy_types::util::pack_any;

pub(super) fn addr(ip: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_owned(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

pub(super) fn router_filter() -> HttpFilter {
    HttpFilter {
        name: "envoy.filters.http.router".into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
            Router::default(),
        ))),
        ..Default::default()
    }
}

pub(super) fn hcm(routes: RouteSpecifier) -> HttpConnectionManager {
    HttpConnectionManager {
        stat_prefix: "test".into(),
        route_specifier: Some(routes),
        http_filters: vec![router_filter()],
        ..Default::default()
    }
}

pub(super) fn rds(name: &str) -> RouteSpecifier {
    RouteSpecifier::Rds(Rds {
        route_config_name: name.into(),
        config_source: None,
    })
}

pub(super) fn hcm_filter(hcm: HttpConnectionManager) -> Filter {
    Filter {
        name: "envoy.filters.network.http_connection_manager".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(hcm))),
    }
}

pub(super) fn chain(name: &str, filters: Vec<Filter>) -> FilterChain {
    FilterChain {
        name: name.into(),
        filters,
        ..Default::default()
    }
}

pub(super) fn listener(name: &str, port: u32, chains: Vec<FilterChain>) -> XdsListener {
    XdsListener {
        name: name.into(),
        address: Some(addr("127.0.0.1", port)),
        filter_chains: chains,
        ..Default::default()
    }
}

pub(super) fn prefix_route(prefix: &str, cluster: &str) -> Route {
    Route {
        name: format!("to-{cluster}"),
        r#match: Some(RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Prefix(prefix.into())),
            ..Default::default()
        }),
        action: Some(Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.into())),
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub(super) fn route_config(name: &str, routes: Vec<Route>) -> RouteConfiguration {
    RouteConfiguration {
        name: name.into(),
        virtual_hosts: vec![VirtualHost {
            name: "vh".into(),
            domains: vec!["*".into()],
            routes,
            ..Default::default()
        }],
        ..Default::default()
    }
}
