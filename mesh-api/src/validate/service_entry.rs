//! Per-object checks of a `ServiceEntry` (hosts, ports, resolution and its
//! endpoints) and of a `WorkloadEntry` (address, ports, labels), which is
//! also the shape of a ServiceEntry endpoint.
//!
//! Part of [`super`].

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::{is_dns1123_label, is_known_protocol, is_wildcard_host, port_number, Ctx};
use crate::types::service_entry::{Resolution, ServiceEntrySpec, WorkloadEntrySpec};

/// Checks a ServiceEntry spec.
pub(super) fn check(ctx: &mut Ctx<'_>, spec: &ServiceEntrySpec) {
    if spec.hosts.is_empty() {
        ctx.missing("spec.hosts");
    }
    for (i, host) in spec.hosts.iter().enumerate() {
        if host == "*" || !is_wildcard_host(host) {
            ctx.invalid(
                format!("spec.hosts[{i}]"),
                format!("{host:?} is not a valid host"),
            );
        }
    }
    for (i, address) in spec.addresses.iter().enumerate() {
        if !is_ip_or_cidr(address) {
            ctx.invalid(
                format!("spec.addresses[{i}]"),
                format!("{address:?} is not an IP address or CIDR block"),
            );
        }
    }
    let mut names = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    for (i, port) in spec.ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        port_number(ctx, &format!("{path}.number"), port.number);
        if port.number != 0 && !numbers.insert(port.number) {
            ctx.invalid(
                format!("{path}.number"),
                format!("port {} is defined twice", port.number),
            );
        }
        if port.name.is_empty() {
            ctx.missing(format!("{path}.name"));
        } else if !is_dns1123_label(&port.name) {
            ctx.invalid(
                format!("{path}.name"),
                format!("{:?} is not a valid port name", port.name),
            );
        } else if !names.insert(port.name.as_str()) {
            ctx.invalid(
                format!("{path}.name"),
                format!("port name {:?} is used twice", port.name),
            );
        }
        // An empty protocol asks for protocol sniffing.
        if !port.protocol.is_empty() && !is_known_protocol(&port.protocol) {
            ctx.invalid(
                format!("{path}.protocol"),
                format!("unsupported protocol {:?}", port.protocol),
            );
        }
        if let Some(target) = port.target_port {
            port_number(ctx, &format!("{path}.targetPort"), target);
        }
    }
    if spec.workload_selector.is_some() && !spec.endpoints.is_empty() {
        ctx.invalid(
            "spec.workloadSelector",
            "only one of workloadSelector and endpoints may be set",
        );
    }
    // Resolution NONE is the default.
    let resolution = spec.resolution.unwrap_or(Resolution::None);
    if resolution == Resolution::None && !spec.endpoints.is_empty() {
        ctx.invalid(
            "spec.endpoints",
            "endpoints need resolution STATIC or DNS (resolution is NONE)",
        );
    }
    if resolution == Resolution::Static
        && spec.endpoints.is_empty()
        && spec.workload_selector.is_none()
    {
        ctx.missing("spec.endpoints");
    }
    for (i, endpoint) in spec.endpoints.iter().enumerate() {
        let path = format!("spec.endpoints[{i}]");
        check_workload_entry(ctx, endpoint, &path);
        if resolution == Resolution::Static
            && !endpoint.address.starts_with("unix://")
            && !endpoint.address.is_empty()
            && endpoint.address.parse::<IpAddr>().is_err()
        {
            ctx.invalid(
                format!("{path}.address"),
                format!(
                    "{:?} is not an IP address (resolution STATIC)",
                    endpoint.address
                ),
            );
        }
        for name in endpoint.ports.keys() {
            if !names.contains(name.as_str()) {
                ctx.invalid(
                    format!("{path}.ports.{name}"),
                    format!("port name {name:?} is not one of the ServiceEntry's ports"),
                );
            }
        }
    }
}

/// Checks a WorkloadEntry spec (or a ServiceEntry endpoint) at `path`.
pub(super) fn check_workload_entry(ctx: &mut Ctx<'_>, spec: &WorkloadEntrySpec, path: &str) {
    let address = spec.address.as_str();
    if address.is_empty() {
        // Istio lets an endpoint on another network leave the address out:
        // it is reached through that network's gateway.
        if spec.network.is_none() {
            ctx.missing(format!("{path}.address"));
        }
    } else if let Some(socket) = address.strip_prefix("unix://") {
        if !socket.starts_with('/') && !socket.starts_with('@') {
            ctx.invalid(
                format!("{path}.address"),
                "a unix socket address needs an absolute path",
            );
        }
        if !spec.ports.is_empty() {
            ctx.invalid(
                format!("{path}.ports"),
                "a unix socket endpoint has no ports",
            );
        }
    } else if address.starts_with('*')
        || (address.parse::<IpAddr>().is_err() && !is_wildcard_host(address))
    {
        ctx.invalid(
            format!("{path}.address"),
            format!("{address:?} is not an IP address, host name or unix:// path"),
        );
    }
    for (name, port) in &spec.ports {
        let p = format!("{path}.ports.{name}");
        if !is_dns1123_label(name) {
            ctx.invalid(p.clone(), format!("{name:?} is not a valid port name"));
        }
        port_number(ctx, &p, *port);
    }
    for key in spec.labels.keys() {
        if key.is_empty() {
            ctx.invalid(format!("{path}.labels"), "label keys cannot be empty");
        }
    }
}

fn is_ip_or_cidr(text: &str) -> bool {
    match text.split_once('/') {
        Some((ip, bits)) => match (ip.parse::<IpAddr>(), bits.parse::<u8>()) {
            (Ok(IpAddr::V4(_)), Ok(b)) => b <= 32,
            (Ok(IpAddr::V6(_)), Ok(b)) => b <= 128,
            _ => false,
        },
        None => text.parse::<IpAddr>().is_ok(),
    }
}
