//! Envoy's `%OPERATOR%` substitution format, parsed: header values of the
//! header mutations and access log lines are [`Template`]s, rendered per
//! request by `access_log::format`. Conversion parses them and NACKs an
//! operator the proxy does not know, naming it.

use serde::Serialize;

/// A parsed format string: literal text and operators.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Template {
    /// In order.
    pub pieces: Vec<Piece>,
}

impl Template {
    /// Text with no operator in it.
    pub fn literal(text: impl Into<String>) -> Self {
        Self {
            pieces: vec![Piece::Literal(text.into())],
        }
    }

    /// The text when the template has no operator.
    pub fn as_literal(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [] => Some(""),
            [Piece::Literal(text)] => Some(text),
            _ => None,
        }
    }
}

/// One part of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Piece {
    /// Copied as it is.
    Literal(String),
    /// Replaced by a value of the request.
    Operator(Operator),
}

/// A header lookup of `REQ`, `RESP` and `TRAILER`: `%REQ(X?Y):N%`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderLookup {
    /// Lower-case name (`:path`, `:authority` and `:method` allowed).
    pub name: String,
    /// Used when `name` is absent.
    pub alternative: Option<String>,
    /// Longest output, in bytes.
    pub max_length: Option<usize>,
}

/// The command operators the proxy renders, by Envoy's names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Operator {
    /// `START_TIME`, optionally with a strftime-like format.
    StartTime(Option<String>),
    /// `REQ(...)`.
    Request(HeaderLookup),
    /// `RESP(...)`.
    Response(HeaderLookup),
    /// `TRAILER(...)`: response trailers.
    Trailer(HeaderLookup),
    /// `PROTOCOL`: `HTTP/1.1`, `HTTP/2`.
    Protocol,
    /// `RESPONSE_CODE`.
    ResponseCode,
    /// `RESPONSE_FLAGS`.
    ResponseFlags,
    /// `RESPONSE_CODE_DETAILS`.
    ResponseCodeDetails,
    /// `CONNECTION_TERMINATION_DETAILS`.
    ConnectionTerminationDetails,
    /// `UPSTREAM_TRANSPORT_FAILURE_REASON`.
    UpstreamTransportFailureReason,
    /// `BYTES_RECEIVED`.
    BytesReceived,
    /// `BYTES_SENT`.
    BytesSent,
    /// `DURATION`, milliseconds.
    Duration,
    /// `REQUEST_DURATION`: until the request was read whole.
    RequestDuration,
    /// `RESPONSE_DURATION`: until the first byte of the response.
    ResponseDuration,
    /// `UPSTREAM_HOST`.
    UpstreamHost,
    /// `UPSTREAM_CLUSTER`.
    UpstreamCluster,
    /// `UPSTREAM_CLUSTER_RAW`.
    UpstreamClusterRaw,
    /// `UPSTREAM_LOCAL_ADDRESS`.
    UpstreamLocalAddress,
    /// `UPSTREAM_REQUEST_ATTEMPT_COUNT`.
    UpstreamRequestAttemptCount,
    /// `DOWNSTREAM_LOCAL_ADDRESS`.
    DownstreamLocalAddress,
    /// `DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT`.
    DownstreamLocalAddressWithoutPort,
    /// `DOWNSTREAM_LOCAL_PORT`.
    DownstreamLocalPort,
    /// `DOWNSTREAM_REMOTE_ADDRESS`: the client, after `x-forwarded-for`
    /// when the HCM trusts it.
    DownstreamRemoteAddress,
    /// `DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT`.
    DownstreamRemoteAddressWithoutPort,
    /// `DOWNSTREAM_REMOTE_PORT`.
    DownstreamRemotePort,
    /// `DOWNSTREAM_DIRECT_REMOTE_ADDRESS`: the peer of the connection.
    DownstreamDirectRemoteAddress,
    /// `DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT`.
    DownstreamDirectRemoteAddressWithoutPort,
    /// `UPSTREAM_REMOTE_ADDRESS` (the same as `UPSTREAM_HOST`).
    UpstreamRemoteAddress,
    /// `REQUESTED_SERVER_NAME`: the SNI of a TLS connection.
    RequestedServerName,
    /// `ROUTE_NAME`.
    RouteName,
    /// `HOSTNAME`: this machine's name.
    Hostname,
}
