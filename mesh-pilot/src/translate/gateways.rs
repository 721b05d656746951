//! Gateway selection: the Gateways whose `selector` labels a gateway
//! proxy's LABELS contain, and the HTTP server ports they give it. A
//! gateway's listeners and its route configs both start from here (through
//! [`super::scope::GatewayScope`]).

use std::collections::BTreeSet;

use crate::proxy::Proxy;
use crate::push::index::GatewayRef;
use crate::push::PushContext;
use crate::registry::{labels_match, Protocol};

/// The Gateways that select `proxy`, in config order.
pub fn selected<'a>(ctx: &'a PushContext, proxy: &Proxy) -> Vec<GatewayRef<'a>> {
    ctx.gateways()
        .filter(|g| labels_match(&g.gateway.spec.selector, &proxy.labels))
        .collect()
}

/// The server ports of `gateways` that are served as HTTP, in order.
pub fn http_ports(gateways: &[GatewayRef<'_>]) -> BTreeSet<u32> {
    let mut ports = BTreeSet::new();
    for gw in gateways {
        for server in &gw.gateway.spec.servers {
            let Some(port) = &server.port else { continue };
            if Protocol::parse(&port.protocol).is_http() {
                ports.insert(port.number);
            } else {
                tracing::debug!(
                    gateway = gw.gateway.name,
                    port = port.number,
                    "non-HTTP gateway server not served yet"
                );
            }
        }
    }
    ports
}
