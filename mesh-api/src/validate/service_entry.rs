//! Per-object checks of a `ServiceEntry` (hosts, addresses, ports, and what
//! each resolution allows: endpoints, wildcard hosts, CIDR addresses) and of
//! a `WorkloadEntry` (address, ports, labels), which is also the shape of a
//! ServiceEntry endpoint. Istio's rules, case by case.
//!
//! Part of [`super`].

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::hostname::{fqdn, ip_or_cidr, is_label, is_wildcarded, unix_path, wildcard_domain};
use super::values::{export_to, labels, port_number, selector};
use super::{is_known_protocol, protocol_class, Ctx};
use crate::error::ErrorKind;
use crate::types::service_entry::{Location, Resolution, ServiceEntrySpec, WorkloadEntrySpec};

/// Checks a ServiceEntry spec.
pub(super) fn check(ctx: &mut Ctx<'_>, spec: &ServiceEntrySpec) {
    // Resolution NONE is the default.
    let resolution = spec.resolution.unwrap_or(Resolution::None);
    if let Some(sel) = &spec.workload_selector {
        selector(ctx, "spec.workloadSelector.labels", &sel.labels);
        if !spec.endpoints.is_empty() {
            ctx.invalid(
                "spec.workloadSelector",
                "only one of workloadSelector and endpoints may be set",
            );
        }
    }
    if spec.hosts.is_empty() {
        ctx.missing("spec.hosts");
    }
    for (i, host) in spec.hosts.iter().enumerate() {
        let path = format!("spec.hosts[{i}]");
        if host == "*" {
            ctx.invalid(path, "\"*\" is not a ServiceEntry host");
        } else if let Err(err) = wildcard_domain(host) {
            ctx.invalid(path, err);
        } else if resolution != Resolution::DynamicDns
            && host.contains('*')
            && !host.starts_with("*.")
        {
            // Istio only warns: `*foo.com` still matches every host ending
            // in `foo.com`.
            ctx.warn(
                ErrorKind::Ineffective,
                path,
                format!("partial wildcard {host:?}: it matches any host ending in {:?}, not just subdomains", &host[1..]),
            );
        }
    }
    let mut cidr = None;
    for (i, address) in spec.addresses.iter().enumerate() {
        let path = format!("spec.addresses[{i}]");
        match ip_or_cidr(address) {
            Err(err) => ctx.invalid(path, err),
            Ok(()) if address.contains('/') => cidr = cidr.or(Some(path)),
            Ok(()) => {}
        }
    }
    if let Some(path) = cidr {
        if !matches!(resolution, Resolution::None | Resolution::Static) {
            ctx.invalid(
                path,
                "CIDR addresses are allowed only with resolution NONE or STATIC",
            );
        }
    }
    let names = ports(ctx, spec);
    resolution_rules(ctx, spec, resolution, &names);
    if resolution != Resolution::None && spec.hosts.len() > 1 {
        let opaque = spec.ports.iter().position(|p| {
            let class = protocol_class(&p.protocol);
            !class.http && !class.tls
        });
        if let Some(i) = opaque {
            ctx.invalid(
                format!("spec.ports[{i}].protocol"),
                "several hosts need HTTP or TLS ports (they are told apart by Host header or SNI), unless resolution is NONE",
            );
        }
    }
    export_to(ctx, &spec.export_to, true, false);
}

/// Port checks; returns the port names, which endpoints' ports refer to.
fn ports(ctx: &mut Ctx<'_>, spec: &ServiceEntrySpec) -> BTreeSet<String> {
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
        } else if !is_label(&port.name) {
            ctx.invalid(
                format!("{path}.name"),
                format!("{:?} is not a valid port name", port.name),
            );
        } else if !names.insert(port.name.clone()) {
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
    names
}

/// What each resolution allows of endpoints, hosts and addresses.
fn resolution_rules(
    ctx: &mut Ctx<'_>,
    spec: &ServiceEntrySpec,
    resolution: Resolution,
    names: &BTreeSet<String>,
) {
    match resolution {
        Resolution::None => {
            if !spec.endpoints.is_empty() {
                ctx.invalid(
                    "spec.endpoints",
                    "endpoints need resolution STATIC or DNS (resolution is NONE)",
                );
            }
            if spec.workload_selector.is_some() {
                ctx.warn(
                    ErrorKind::Ineffective,
                    "spec.workloadSelector",
                    "with resolution NONE traffic goes to the address the client asked for: the selected workloads are not used",
                );
            }
        }
        Resolution::Static => {
            for (i, endpoint) in spec.endpoints.iter().enumerate() {
                let path = format!("spec.endpoints[{i}]");
                endpoint_checks(ctx, endpoint, &path, names, false);
                let unix = endpoint.address.starts_with("unix://");
                if unix && names.len() != 1 {
                    ctx.invalid(
                        format!("{path}.address"),
                        "a unix socket endpoint needs a ServiceEntry with exactly one port",
                    );
                }
            }
        }
        Resolution::Dns | Resolution::DnsRoundRobin => {
            if spec.endpoints.is_empty() {
                if let Some(i) = spec.hosts.iter().position(|h| fqdn(h).is_err()) {
                    ctx.invalid(
                        format!("spec.hosts[{i}]"),
                        "without endpoints, DNS resolution needs fully qualified hosts (no wildcard) to resolve",
                    );
                }
            }
            if resolution == Resolution::DnsRoundRobin && spec.endpoints.len() > 1 {
                ctx.invalid(
                    "spec.endpoints",
                    "resolution DNS_ROUND_ROBIN takes at most one endpoint",
                );
            }
            for (i, endpoint) in spec.endpoints.iter().enumerate() {
                let path = format!("spec.endpoints[{i}]");
                endpoint_checks(ctx, endpoint, &path, names, true);
            }
        }
        Resolution::DynamicDns => {
            if let Some(i) = spec.hosts.iter().position(|h| !is_wildcarded(h)) {
                ctx.invalid(
                    format!("spec.hosts[{i}]"),
                    "resolution DYNAMIC_DNS needs wildcard hosts",
                );
            }
            if !spec.addresses.is_empty() {
                ctx.invalid(
                    "spec.addresses",
                    "resolution DYNAMIC_DNS takes no addresses",
                );
            }
            if !spec.endpoints.is_empty() {
                ctx.invalid(
                    "spec.endpoints",
                    "resolution DYNAMIC_DNS takes no endpoints",
                );
            }
            for (i, port) in spec.ports.iter().enumerate() {
                let p = port.protocol.to_ascii_uppercase();
                if !matches!(p.as_str(), "HTTP" | "TLS" | "GRPC" | "HTTP2") {
                    ctx.invalid(
                        format!("spec.ports[{i}].protocol"),
                        "resolution DYNAMIC_DNS serves HTTP, TLS, GRPC and HTTP2 ports only",
                    );
                }
            }
            if !matches!(
                spec.location,
                Some(Location::MeshExternal | Location::MeshInternal)
            ) {
                ctx.missing("spec.location");
            }
        }
    }
}

/// An endpoint of a ServiceEntry: a WorkloadEntry whose address must be an
/// IP (STATIC) or an IP or FQDN (DNS), and whose ports name the entry's.
fn endpoint_checks(
    ctx: &mut Ctx<'_>,
    endpoint: &WorkloadEntrySpec,
    path: &str,
    names: &BTreeSet<String>,
    fqdn_allowed: bool,
) {
    check_entry(ctx, endpoint, path, fqdn_allowed);
    for name in endpoint.ports.keys() {
        if !names.contains(name) {
            ctx.invalid(
                format!("{path}.ports.{name}"),
                format!("port name {name:?} is not one of the ServiceEntry's ports"),
            );
        }
    }
}

/// Checks a WorkloadEntry spec at `path` (its address may be a host name).
pub(super) fn check_workload_entry(ctx: &mut Ctx<'_>, spec: &WorkloadEntrySpec, path: &str) {
    check_entry(ctx, spec, path, true);
}

fn check_entry(ctx: &mut Ctx<'_>, spec: &WorkloadEntrySpec, path: &str, fqdn_allowed: bool) {
    let address = spec.address.as_str();
    if address.is_empty() {
        // Istio lets an endpoint on another network leave the address out:
        // it is reached through that network's gateway.
        if spec.network.is_none() {
            ctx.missing(format!("{path}.address"));
        }
    } else if let Some(socket) = address.strip_prefix("unix://") {
        if let Err(err) = unix_path(socket) {
            ctx.invalid(format!("{path}.address"), err);
        }
        if !spec.ports.is_empty() {
            ctx.invalid(
                format!("{path}.ports"),
                "a unix socket endpoint has no ports",
            );
        }
    } else if address.parse::<IpAddr>().is_err() {
        let message = if !fqdn_allowed {
            Some(format!(
                "{address:?} is not an IP address (resolution STATIC)"
            ))
        } else {
            fqdn(address)
                .err()
                .map(|_| format!("{address:?} is not an IP address, host name or unix:// path"))
        };
        if let Some(message) = message {
            ctx.invalid(format!("{path}.address"), message);
        }
    }
    for (name, port) in &spec.ports {
        let p = format!("{path}.ports.{name}");
        if !is_label(name) {
            ctx.invalid(p.clone(), format!("{name:?} is not a valid port name"));
        }
        port_number(ctx, &p, *port);
    }
    labels(ctx, &format!("{path}.labels"), &spec.labels);
}
