//! Gateway selection: the Gateways whose `selector` labels a gateway
//! proxy's LABELS contain, and the HTTP server ports they give it. A
//! gateway's listeners (`listener.rs`) and its route configs
//! (`route/gateway.rs`) both start from here.

use std::collections::BTreeSet;

use mesh_api::GatewaySpec;

use crate::proxy::Proxy;
use crate::registry::{labels_match, Protocol};
use crate::source::{ConfigSnapshot, Named};

/// The Gateways that select `proxy`, in config order.
pub fn selected<'a>(config: &'a ConfigSnapshot, proxy: &Proxy) -> Vec<Named<'a, GatewaySpec>> {
    config
        .gateways()
        .filter(|g| labels_match(&g.spec.selector, &proxy.labels))
        .collect()
}

/// The server ports of `gateways` that are served as HTTP, in order.
pub fn http_ports(gateways: &[Named<'_, GatewaySpec>]) -> BTreeSet<u32> {
    let mut ports = BTreeSet::new();
    for gw in gateways {
        for server in &gw.spec.servers {
            let Some(port) = &server.port else { continue };
            if Protocol::parse(&port.protocol).is_http() {
                ports.insert(port.number);
            } else {
                tracing::debug!(
                    gateway = gw.name,
                    port = port.number,
                    "non-HTTP gateway server not served yet"
                );
            }
        }
    }
    ports
}
