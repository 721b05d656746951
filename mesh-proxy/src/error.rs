//! The data path's one request error (pingora's shape): every failure between
//! accepting a request and relaying its response is a [`ProxyError`] that
//! knows where it came from ([`ErrorSource`]) and whether a retry could help.
//! [`ProxyError::status`] is the one place that turns it into a status code,
//! with Envoy's codes and local-reply bodies so that clients see the same
//! answers from us as from Envoy.

use std::net::SocketAddr;

use http::StatusCode;

/// A boxed error from a library below us (hyper, the OS).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which side of the proxy a failure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The client sent something we cannot serve.
    Downstream,
    /// The upstream endpoint failed or was not there.
    Upstream,
    /// Our own configuration or state (no route, no cluster).
    Internal,
}

/// Why a request could not be proxied.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The request has neither an absolute URI nor a `Host` header.
    #[error("request has no authority (no absolute URI and no Host header)")]
    MissingAuthority,
    /// The route configuration named by the listener does not exist.
    #[error("route configuration {0:?} not found")]
    RouteConfigNotFound(String),
    /// No virtual host or route matched the request.
    #[error("no route matched")]
    NoRoute,
    /// The route points to a cluster that is not in the snapshot.
    #[error("cluster {0:?} not found")]
    ClusterNotFound(String),
    /// The cluster has no endpoint to send to.
    #[error("no healthy upstream in cluster {0:?}")]
    NoHealthyUpstream(String),
    /// The cluster's original destination is this very listener: forwarding
    /// would loop (there is no capture to tell us the real destination).
    #[error("original destination {0} is the listener itself")]
    OriginalDstLoop(SocketAddr),
    /// A rewrite produced an invalid URI or header.
    #[error("invalid rewrite: {0}")]
    InvalidRewrite(String),
    /// TCP connect to the endpoint failed or timed out.
    #[error("upstream connect to {addr} failed")]
    UpstreamConnect {
        /// The endpoint dialled.
        addr: SocketAddr,
        /// What the OS or the pool said.
        #[source]
        source: BoxError,
    },
    /// The upstream reset or closed the connection before sending headers.
    #[error("upstream request to {addr} failed")]
    UpstreamReset {
        /// The endpoint the request went to.
        addr: SocketAddr,
        /// What hyper said.
        #[source]
        source: BoxError,
    },
    /// The route's timeout expired before the upstream answered.
    #[error("upstream request timeout")]
    UpstreamTimeout,
}

impl ProxyError {
    /// Which side the failure belongs to.
    pub fn source_side(&self) -> ErrorSource {
        match self {
            Self::MissingAuthority => ErrorSource::Downstream,
            Self::RouteConfigNotFound(_)
            | Self::NoRoute
            | Self::ClusterNotFound(_)
            | Self::OriginalDstLoop(_)
            | Self::InvalidRewrite(_) => ErrorSource::Internal,
            Self::NoHealthyUpstream(_)
            | Self::UpstreamConnect { .. }
            | Self::UpstreamReset { .. }
            | Self::UpstreamTimeout => ErrorSource::Upstream,
        }
    }

    /// Whether trying again (another endpoint, a moment later) could succeed.
    /// A connect failure never reached the upstream, so it is always safe;
    /// a reset or timeout may have had effects, so only idempotent requests
    /// may be retried (the retry policy decides that, not this error).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::UpstreamConnect { .. } | Self::UpstreamReset { .. } | Self::NoHealthyUpstream(_)
        )
    }

    /// The status code of the local reply, as Envoy answers.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingAuthority => StatusCode::BAD_REQUEST,
            Self::RouteConfigNotFound(_) | Self::NoRoute => StatusCode::NOT_FOUND,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::InvalidRewrite(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ClusterNotFound(_)
            | Self::NoHealthyUpstream(_)
            | Self::OriginalDstLoop(_)
            | Self::UpstreamConnect { .. }
            | Self::UpstreamReset { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Envoy's response flag for the failure, as the access log's
    /// `%RESPONSE_FLAGS%` shows it (`UH`, `UF`, `UO`, `NR`, ...); empty for
    /// a failure Envoy has no flag for.
    pub fn flag(&self) -> &'static str {
        match self {
            Self::MissingAuthority => "DPE",
            Self::RouteConfigNotFound(_) | Self::NoRoute => "NR",
            Self::ClusterNotFound(_) => "NC",
            Self::NoHealthyUpstream(_) | Self::OriginalDstLoop(_) => "UH",
            Self::InvalidRewrite(_) => "",
            Self::UpstreamConnect { .. } => "UF",
            Self::UpstreamReset { .. } => "UC",
            Self::UpstreamTimeout => "UT",
        }
    }

    /// Why the mesh answered instead of the upstream, for the
    /// `x-mesh-reason` header and the access log: the flag, then what
    /// happened, then (where one did it) the rule or limit,
    /// `UO overflow: DestinationRule default/reviews maxConnections=1`.
    pub fn reason(&self) -> String {
        let what = match self {
            Self::UpstreamConnect { addr, source } => format!("connect failure: {addr}: {source}"),
            Self::UpstreamReset { addr, source } => format!("upstream reset: {addr}: {source}"),
            other => other.to_string(),
        };
        match self.flag() {
            "" => what,
            flag => format!("{flag} {what}"),
        }
    }

    /// The body of the local reply (Envoy's wording where Envoy has one).
    pub fn body(&self) -> &'static str {
        match self {
            Self::MissingAuthority => "missing host header",
            Self::RouteConfigNotFound(_) | Self::NoRoute => "",
            Self::ClusterNotFound(_) => "cluster not found",
            Self::NoHealthyUpstream(_) | Self::OriginalDstLoop(_) => "no healthy upstream",
            Self::InvalidRewrite(_) => "invalid rewrite",
            Self::UpstreamConnect { .. } => {
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
            }
            Self::UpstreamReset { .. } => {
                "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
            }
            Self::UpstreamTimeout => "upstream request timeout",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_envoy() {
        assert_eq!(ProxyError::NoRoute.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            ProxyError::ClusterNotFound("c".into()).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let none = ProxyError::NoHealthyUpstream("c".into());
        assert_eq!(none.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(none.body(), "no healthy upstream");
        assert_eq!(
            ProxyError::UpstreamTimeout.status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            ProxyError::MissingAuthority.source_side(),
            ErrorSource::Downstream
        );
        assert!(!ProxyError::UpstreamTimeout.retryable());
        let connect = ProxyError::UpstreamConnect {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: "refused".into(),
        };
        assert!(connect.retryable());
        assert_eq!(connect.flag(), "UF");
        assert!(
            connect
                .reason()
                .starts_with("UF connect failure: 127.0.0.1:1: refused"),
            "{}",
            connect.reason()
        );
        assert_eq!(connect.source_side(), ErrorSource::Upstream);
    }
}
