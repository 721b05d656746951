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
    /// The request has neither an absolute URI nor a `Host` header, or
    /// its authority is not a valid `host[:port]`.
    #[error("request has no valid authority (absolute URI or Host header)")]
    MissingAuthority,
    /// The client's request was malformed past its head (broken chunked
    /// framing, a body shorter than its Content-Length, an h2 stream
    /// error): the client's fault, answered 400.
    #[error("downstream protocol error: {0}")]
    DownstreamProtocol(String),
    /// The route configuration named by the listener does not exist.
    #[error("route configuration {0:?} not found")]
    RouteConfigNotFound(String),
    /// No virtual host of the route configuration takes the authority.
    #[error("no route: no virtual host for {0:?}")]
    NoVirtualHost(String),
    /// The virtual host has no route matching the request.
    #[error("no route: no route of virtual host {0:?} matches")]
    NoRouteMatch(String),
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
    /// The route's timeout expired before the upstream's answer was
    /// complete (`rule`: the route and its limit).
    #[error("upstream timeout: {rule}")]
    UpstreamTimeout {
        /// What set the limit, `VirtualService default/reviews timeout=1s`.
        rule: String,
    },
    /// One attempt's `per_try_timeout` expired and no retry was left.
    #[error("upstream per-try timeout: {rule}")]
    UpstreamPerTryTimeout {
        /// What set the limit.
        rule: String,
    },
    /// The stream was idle for longer than its idle timeout.
    #[error("stream idle timeout: {rule}")]
    StreamIdleTimeout {
        /// What set the limit.
        rule: String,
        /// Whether the client's request had been read whole: then the
        /// wait was the upstream's (504), else the client's (408).
        request_complete: bool,
    },
    /// The whole request was not received within `request_timeout`.
    #[error("request timeout: {rule}")]
    RequestTimeout {
        /// What set the limit.
        rule: String,
    },
    /// The stream outlived its `max_stream_duration` (or `grpc-timeout`).
    #[error("max stream duration: {rule}")]
    MaxStreamDuration {
        /// What set the limit.
        rule: String,
        /// Whether the client's request had been read whole (504, else 408).
        request_complete: bool,
    },
    /// The fault filter aborted the request.
    #[error("fault abort: {rule}")]
    FaultAbort {
        /// The HTTP status answered.
        status: u16,
        /// The gRPC status answered instead, for gRPC aborts.
        grpc_status: Option<u32>,
        /// The config object that asked for it.
        rule: String,
    },
    /// An upgrade (WebSocket, CONNECT) the HCM or route does not allow.
    #[error("upgrade {0:?} not allowed")]
    UpgradeFailed(String),
    /// The request path cannot be served as it is.
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// An HTTP/1.0 request on an HCM that does not accept them.
    #[error("HTTP/1.0 not accepted")]
    Http10NotAccepted,
    /// A circuit breaker of the cluster is full (Envoy's `UO`).
    #[error("overflow: {config} {field}={limit}")]
    Overflow {
        /// The Istio field of the limit hit (`maxConnections`,
        /// `http1MaxPendingRequests`, `http2MaxRequests`, `maxRetries`).
        field: &'static str,
        /// Its value.
        limit: u32,
        /// The rule that set it (`DestinationRule default/reviews`), or
        /// `cluster NAME` without metadata.
        config: String,
    },
    /// The cluster has no endpoint on purpose, and pilot said why in its
    /// metadata (`BlackHoleCluster`: `outboundTrafficPolicy REGISTRY_ONLY`).
    #[error("blocked: {reason} ({cluster})")]
    Blocked {
        /// The cluster.
        cluster: String,
        /// Pilot's reason.
        reason: String,
    },
    /// Every endpoint that could take the request is ejected by outlier
    /// detection.
    #[error("no healthy upstream: {cluster} ({ejected} of {total} endpoints ejected by outlier detection: {config})")]
    EjectedUpstream {
        /// The cluster.
        cluster: String,
        /// Endpoints ejected now.
        ejected: usize,
        /// Endpoints of the cluster.
        total: usize,
        /// The rule that configured the detection, or `cluster NAME`.
        config: String,
    },
}

impl ProxyError {
    /// Which side the failure belongs to.
    pub fn source_side(&self) -> ErrorSource {
        match self {
            Self::MissingAuthority | Self::DownstreamProtocol(_) => ErrorSource::Downstream,
            Self::RouteConfigNotFound(_)
            | Self::NoVirtualHost(_)
            | Self::NoRouteMatch(_)
            | Self::ClusterNotFound(_)
            | Self::OriginalDstLoop(_)
            | Self::InvalidRewrite(_)
            | Self::FaultAbort { .. } => ErrorSource::Internal,
            Self::NoHealthyUpstream(_)
            | Self::EjectedUpstream { .. }
            | Self::Overflow { .. }
            | Self::Blocked { .. }
            | Self::UpstreamConnect { .. }
            | Self::UpstreamReset { .. }
            | Self::UpstreamTimeout { .. }
            | Self::UpstreamPerTryTimeout { .. } => ErrorSource::Upstream,
            Self::StreamIdleTimeout { .. }
            | Self::RequestTimeout { .. }
            | Self::MaxStreamDuration { .. }
            | Self::UpgradeFailed(_)
            | Self::InvalidPath(_)
            | Self::Http10NotAccepted => ErrorSource::Downstream,
        }
    }

    /// Whether trying again (another endpoint, a moment later) could succeed.
    /// A connect failure never reached the upstream, so it is always safe;
    /// a reset or timeout may have had effects, so only idempotent requests
    /// may be retried (the retry policy decides that, not this error).
    /// An overflow is not: retrying would only add load to a cluster
    /// already at its limit (Envoy does not retry it either).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::UpstreamConnect { .. }
                | Self::UpstreamReset { .. }
                | Self::NoHealthyUpstream(_)
                | Self::EjectedUpstream { .. }
        )
    }

    /// The status code of the local reply, as Envoy answers.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingAuthority | Self::DownstreamProtocol(_) | Self::InvalidPath(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::RouteConfigNotFound(_) | Self::NoVirtualHost(_) | Self::NoRouteMatch(_) => {
                StatusCode::NOT_FOUND
            }
            Self::UpstreamTimeout { .. } | Self::UpstreamPerTryTimeout { .. } => {
                StatusCode::GATEWAY_TIMEOUT
            }
            // Envoy's `maybeRequestTimeoutCode`: once the request is whole,
            // the wait is the upstream's.
            Self::StreamIdleTimeout {
                request_complete: true,
                ..
            }
            | Self::MaxStreamDuration {
                request_complete: true,
                ..
            } => StatusCode::GATEWAY_TIMEOUT,
            Self::StreamIdleTimeout { .. }
            | Self::RequestTimeout { .. }
            | Self::MaxStreamDuration { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::FaultAbort { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
            }
            Self::UpgradeFailed(_) => StatusCode::FORBIDDEN,
            Self::Http10NotAccepted => StatusCode::UPGRADE_REQUIRED,
            Self::InvalidRewrite(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ClusterNotFound(_)
            | Self::NoHealthyUpstream(_)
            | Self::EjectedUpstream { .. }
            | Self::Overflow { .. }
            | Self::Blocked { .. }
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
            Self::MissingAuthority | Self::DownstreamProtocol(_) | Self::InvalidPath(_) => "DPE",
            Self::RouteConfigNotFound(_) | Self::NoVirtualHost(_) | Self::NoRouteMatch(_) => "NR",
            Self::ClusterNotFound(_) => "NC",
            Self::NoHealthyUpstream(_)
            | Self::EjectedUpstream { .. }
            | Self::Blocked { .. }
            | Self::OriginalDstLoop(_) => "UH",
            Self::Overflow { .. } => "UO",
            Self::InvalidRewrite(_) | Self::UpgradeFailed(_) | Self::Http10NotAccepted => "",
            Self::RequestTimeout { .. } => "",
            Self::UpstreamConnect { .. } => "UF",
            Self::UpstreamReset { .. } => "UC",
            Self::UpstreamTimeout { .. } | Self::UpstreamPerTryTimeout { .. } => "UT",
            Self::StreamIdleTimeout { .. } => "SI",
            Self::MaxStreamDuration { .. } => "DT",
            Self::FaultAbort { .. } => "FI",
        }
    }

    /// Envoy's `%RESPONSE_CODE_DETAILS%` token for the local reply.
    pub fn details(&self) -> &'static str {
        match self {
            Self::MissingAuthority => "missing_host_header",
            Self::DownstreamProtocol(_) => "http1.codec_error",
            Self::RouteConfigNotFound(_) | Self::NoVirtualHost(_) | Self::NoRouteMatch(_) => {
                "route_not_found"
            }
            Self::ClusterNotFound(_) => "cluster_not_found",
            Self::NoHealthyUpstream(_)
            | Self::EjectedUpstream { .. }
            | Self::Blocked { .. }
            | Self::OriginalDstLoop(_) => "no_healthy_upstream",
            Self::Overflow { .. } => "upstream_reset_before_response_started{overflow}",
            Self::InvalidRewrite(_) => "internal_error",
            Self::UpstreamConnect { .. } => {
                "upstream_reset_before_response_started{connection_failure}"
            }
            Self::UpstreamReset { .. } => {
                "upstream_reset_before_response_started{connection_termination}"
            }
            Self::UpstreamTimeout { .. } => "response_timeout",
            Self::UpstreamPerTryTimeout { .. } => "upstream_per_try_timeout",
            Self::StreamIdleTimeout { .. } => "stream_idle_timeout",
            Self::RequestTimeout { .. } => "request_overall_timeout",
            Self::MaxStreamDuration { .. } => "max_duration_timeout",
            Self::FaultAbort { .. } => "fault_filter_abort",
            Self::UpgradeFailed(_) => "upgrade_failed",
            Self::InvalidPath(_) => "path_normalization_failed",
            Self::Http10NotAccepted => "low_version",
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
            Self::DownstreamProtocol(_) => "Bad Request",
            Self::RouteConfigNotFound(_) | Self::NoVirtualHost(_) | Self::NoRouteMatch(_) => "",
            Self::FaultAbort { .. } => "fault filter abort",
            Self::StreamIdleTimeout { .. } => "stream timeout",
            Self::RequestTimeout { .. } => "request timeout",
            Self::MaxStreamDuration { .. } => "downstream duration timeout",
            Self::UpgradeFailed(_) | Self::Http10NotAccepted => "",
            Self::InvalidPath(_) => "Bad Request",
            Self::ClusterNotFound(_) => "cluster not found",
            Self::NoHealthyUpstream(_)
            | Self::EjectedUpstream { .. }
            | Self::Blocked { .. }
            | Self::OriginalDstLoop(_) => "no healthy upstream",
            Self::Overflow { .. } => {
                "upstream connect error or disconnect/reset before headers. reset reason: overflow"
            }
            Self::InvalidRewrite(_) => "invalid rewrite",
            Self::UpstreamConnect { .. } => {
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
            }
            Self::UpstreamReset { .. } => {
                "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
            }
            Self::UpstreamTimeout { .. } | Self::UpstreamPerTryTimeout { .. } => {
                "upstream request timeout"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_envoy() {
        let no_vhost = ProxyError::NoVirtualHost("x:80".into());
        assert_eq!(no_vhost.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            no_vhost.reason(),
            "NR no route: no virtual host for \"x:80\""
        );
        assert_eq!(
            ProxyError::ClusterNotFound("c".into()).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let none = ProxyError::NoHealthyUpstream("c".into());
        assert_eq!(none.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(none.body(), "no healthy upstream");
        let timeout = ProxyError::UpstreamTimeout {
            rule: "VirtualService default/reviews timeout=1s".into(),
        };
        assert_eq!(timeout.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            timeout.reason(),
            "UT upstream timeout: VirtualService default/reviews timeout=1s"
        );
        assert_eq!(timeout.details(), "response_timeout");
        assert_eq!(
            ProxyError::MissingAuthority.source_side(),
            ErrorSource::Downstream
        );
        assert!(!timeout.retryable());
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

    #[test]
    fn a_blocked_cluster_says_why() {
        let blocked = ProxyError::Blocked {
            cluster: "BlackHoleCluster".into(),
            reason: "outboundTrafficPolicy REGISTRY_ONLY".into(),
        };
        assert_eq!(blocked.flag(), "UH");
        assert_eq!(blocked.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            blocked.reason(),
            "UH blocked: outboundTrafficPolicy REGISTRY_ONLY (BlackHoleCluster)"
        );
        assert!(!blocked.retryable());
    }

    #[test]
    fn overflow_and_ejection_read_as_envoy_and_name_the_rule() {
        let overflow = ProxyError::Overflow {
            field: "maxConnections",
            limit: 1,
            config: "DestinationRule default/reviews".into(),
        };
        assert_eq!(overflow.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(overflow.flag(), "UO");
        assert!(!overflow.retryable());
        assert_eq!(
            overflow.body(),
            "upstream connect error or disconnect/reset before headers. reset reason: overflow"
        );
        assert_eq!(
            overflow.reason(),
            "UO overflow: DestinationRule default/reviews maxConnections=1"
        );
        let ejected = ProxyError::EjectedUpstream {
            cluster: "outbound|9080||reviews.default.svc.cluster.local".into(),
            ejected: 2,
            total: 2,
            config: "DestinationRule default/reviews".into(),
        };
        assert_eq!(ejected.flag(), "UH");
        assert_eq!(ejected.body(), "no healthy upstream");
        assert_eq!(
            ejected.reason(),
            "UH no healthy upstream: outbound|9080||reviews.default.svc.cluster.local \
             (2 of 2 endpoints ejected by outlier detection: DestinationRule default/reviews)"
        );
    }
}
