//! Gateway selection: the Gateways whose `selector` labels a gateway
//! proxy's LABELS contain, and their servers grouped by port and sorted by
//! what the gateway does with them. A gateway's listeners and its route
//! configs both start from here (through [`super::scope::GatewayScope`]).
//!
//! ```text
//!  Gateways ─► selected(proxy) ─► servers(): (port, Server, kind)
//!    HTTP        plain HTTP, routes http.PORT (httpsRedirect: require TLS)
//!    HTTPS       TLS terminated here, routes https.PORT.NAME.GATEWAY.NS
//!    Passthrough TLS by SNI to the VirtualServices' tls routes, untouched
//!    Tls         TLS terminated here, then the VirtualServices' tcp routes
//!    Tcp         bytes to the VirtualServices' tcp routes
//! ```

use mesh_api::types::gateway::ServerTlsMode;
use mesh_api::Server;

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

/// What a gateway does with a server's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServerKind {
    /// Plain HTTP.
    Http,
    /// HTTPS terminated at the gateway.
    Https,
    /// TLS routed by SNI and forwarded untouched.
    Passthrough,
    /// TLS terminated at the gateway, then TCP.
    Tls,
    /// Opaque TCP.
    Tcp,
}

impl ServerKind {
    /// The kind of a server, from its port protocol and TLS mode.
    pub fn of(server: &Server) -> Option<ServerKind> {
        let port = server.port.as_ref()?;
        let passthrough = server
            .tls
            .as_ref()
            .is_some_and(|t| t.mode == Some(ServerTlsMode::Passthrough));
        Some(match Protocol::parse(&port.protocol) {
            p if p.is_http() => ServerKind::Http,
            Protocol::Https if passthrough => ServerKind::Passthrough,
            Protocol::Https => ServerKind::Https,
            Protocol::Tls if passthrough => ServerKind::Passthrough,
            Protocol::Tls => ServerKind::Tls,
            Protocol::Tcp => ServerKind::Tcp,
            _ => return None,
        })
    }

    /// Connections are TLS when they arrive (SNI is read before anything).
    pub fn is_tls(self) -> bool {
        matches!(
            self,
            ServerKind::Https | ServerKind::Passthrough | ServerKind::Tls
        )
    }
}

/// One server of a selected Gateway.
#[derive(Debug, Clone, Copy)]
pub struct ServerRef<'a> {
    /// The Gateway.
    pub gateway: GatewayRef<'a>,
    /// Its position in the Gateway's `servers`.
    pub index: usize,
    /// The server.
    pub server: &'a Server,
    /// Its port number.
    pub port: u32,
    /// What it carries.
    pub kind: ServerKind,
}

impl ServerRef<'_> {
    /// The name Istio gives an HTTPS server's route config:
    /// `https.PORT.PORTNAME.GATEWAY.NAMESPACE`.
    pub fn https_route_name(&self) -> String {
        let port_name = self
            .server
            .port
            .as_ref()
            .map(|p| p.name.as_str())
            .unwrap_or_default();
        format!(
            "https.{}.{port_name}.{}.{}",
            self.port, self.gateway.gateway.name, self.gateway.gateway.namespace
        )
    }

    /// Whether plain HTTP on this server is answered with a redirect to
    /// HTTPS (`tls.httpsRedirect`).
    pub fn https_redirect(&self) -> bool {
        self.kind == ServerKind::Http
            && self
                .server
                .tls
                .as_ref()
                .is_some_and(|t| t.https_redirect == Some(true))
    }
}

/// Every server of `gateways` the mesh can serve, by port then in config
/// order. A server of a protocol no gateway listener carries (UDP, ...)
/// is left out with a debug line: validation reports it.
pub fn servers<'a>(gateways: &[GatewayRef<'a>]) -> Vec<ServerRef<'a>> {
    let mut out = Vec::new();
    for gw in gateways {
        for (index, server) in gw.gateway.spec.servers.iter().enumerate() {
            let (Some(port), Some(kind)) = (server.port.as_ref(), ServerKind::of(server)) else {
                tracing::debug!(
                    gateway = gw.gateway.name,
                    index,
                    "gateway server not served"
                );
                continue;
            };
            out.push(ServerRef {
                gateway: *gw,
                index,
                server,
                port: port.number,
                kind,
            });
        }
    }
    out.sort_by_key(|s| s.port);
    out
}
