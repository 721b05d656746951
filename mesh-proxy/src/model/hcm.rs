//! HTTP connection manager part of the model: where an HCM's routes come
//! from and its HTTP filters, as the HCM stage reads them.

use std::sync::Arc;

use serde::Serialize;

use super::route::RouteConfig;

/// HTTP connection manager settings.
#[derive(Debug, Clone, Serialize)]
pub struct HttpConnectionManager {
    /// Stats prefix.
    pub stat_prefix: String,
    /// Where the routes come from.
    pub routes: RouteSource,
    /// HTTP filters in order; the last one is the router.
    pub http_filters: Vec<HttpFilter>,
}

/// Route table of an HTTP connection manager.
#[derive(Debug, Clone, Serialize)]
pub enum RouteSource {
    /// Looked up by name in [`super::Snapshot::route_configs`] per request.
    Rds(String),
    /// Carried in the listener itself.
    Inline(Arc<RouteConfig>),
}

/// An HTTP filter. Only filters the proxy implements exist here; conversion
/// rejects unknown non-optional filters with a NACK.
#[derive(Debug, Clone, Serialize)]
pub enum HttpFilter {
    /// `envoy.filters.http.router`: forward to the route's cluster.
    Router,
}
