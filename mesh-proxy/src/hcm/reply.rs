//! Local replies: every answer the proxy makes itself (no route, timeouts,
//! fault aborts, failed upstreams, redirects' kin), each carrying
//! `x-mesh-reason: FLAG what: rule` and, for gRPC requests, in gRPC's
//! shape: HTTP 200, trailers-only, `grpc-status` mapped from the HTTP
//! status as Envoy maps it, and `grpc-message`.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::error::{BoxError, ProxyError};

/// The body type of every response sent downstream.
pub type ResponseBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// `x-mesh-reason`.
pub static REASON: HeaderName = HeaderName::from_static(mesh_api::names::REASON_HEADER);
/// `grpc-status`.
pub static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// `grpc-message`.
pub static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// An answer the proxy makes itself, before it is shaped for the client.
#[derive(Debug, Clone)]
pub struct LocalReply {
    /// HTTP status.
    pub status: StatusCode,
    /// Body text (Envoy's wording).
    pub body: String,
    /// The `x-mesh-reason` value; `None` only for answers that are not
    /// failures (redirects, CORS preflights, direct responses).
    pub reason: Option<String>,
    /// Envoy's response flag (`""` for none).
    pub flag: &'static str,
    /// `%RESPONSE_CODE_DETAILS%`.
    pub details: &'static str,
    /// For gRPC clients: this status instead of one mapped from HTTP.
    pub grpc_status: Option<u32>,
    /// Extra headers (Location, CORS, ...).
    pub headers: HeaderMap,
}

impl LocalReply {
    /// The local reply for a failure, its reason given `rule` when the
    /// error's own text names no rule.
    pub fn from_error(error: &ProxyError) -> Self {
        let grpc_status = match error {
            ProxyError::FaultAbort { grpc_status, .. } => *grpc_status,
            _ => None,
        };
        Self {
            status: error.status(),
            body: error.body().to_owned(),
            reason: Some(error.reason()),
            flag: error.flag(),
            details: error.details(),
            grpc_status,
            headers: HeaderMap::new(),
        }
    }

    /// An answer that is not a failure.
    pub fn plain(status: StatusCode, body: impl Into<String>, details: &'static str) -> Self {
        Self {
            status,
            body: body.into(),
            reason: None,
            flag: "",
            details,
            grpc_status: None,
            headers: HeaderMap::new(),
        }
    }

    /// The response to send: gRPC-shaped for gRPC requests.
    pub fn into_response(self, grpc: bool) -> Response<ResponseBody> {
        let mut response = if grpc {
            let status = self
                .grpc_status
                .unwrap_or_else(|| grpc_status_for(self.status.as_u16()));
            let mut response = Response::new(empty());
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            headers.insert(GRPC_STATUS.clone(), HeaderValue::from(status));
            let message = if self.body.is_empty() {
                self.status.canonical_reason().unwrap_or("").to_owned()
            } else {
                self.body.clone()
            };
            if let Ok(value) = HeaderValue::from_str(&percent_encode(&message)) {
                headers.insert(GRPC_MESSAGE.clone(), value);
            }
            response
        } else {
            let mut response = Response::new(full(self.body.clone()));
            *response.status_mut() = self.status;
            if !self.body.is_empty() {
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            }
            response
                .headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(self.body.len()));
            response
        };
        let headers = response.headers_mut();
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        if let Some(reason) = &self.reason {
            headers.insert(REASON.clone(), header_value(reason));
        }
        response
    }
}

/// A header value from free text: non-visible bytes are replaced, so that
/// no reason can fail to become a header.
pub fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| {
        let clean: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static("-"))
    })
}

/// Whether a request is gRPC (`content-type: application/grpc...`).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// Envoy's `Grpc::Utility::httpToGrpcStatus`.
pub fn grpc_status_for(http: u16) -> u32 {
    match http {
        400 => 13,                   // INTERNAL
        401 => 16,                   // UNAUTHENTICATED
        403 => 7,                    // PERMISSION_DENIED
        404 => 12,                   // UNIMPLEMENTED
        429 | 502 | 503 | 504 => 14, // UNAVAILABLE
        _ => 2,                      // UNKNOWN
    }
}

/// `grpc-message` encoding: percent-encode what is not printable ASCII
/// (and `%` itself), as the gRPC HTTP/2 spec asks.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A complete body from text.
pub fn full(text: impl Into<Bytes>) -> ResponseBody {
    Full::new(text.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> ResponseBody {
    full(Bytes::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_local_replies_are_trailers_only_with_mapped_status() {
        let error = ProxyError::NoHealthyUpstream("c".into());
        let response = LocalReply::from_error(&error).into_response(true);
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["grpc-status"], "14");
        assert_eq!(response.headers()["grpc-message"], "no healthy upstream");
        assert_eq!(response.headers()["content-type"], "application/grpc");
        assert!(response.headers()["x-mesh-reason"]
            .to_str()
            .unwrap()
            .starts_with("UH "));
        assert_eq!(grpc_status_for(404), 12);
        assert_eq!(grpc_status_for(418), 2);
        assert_eq!(percent_encode("50% ü"), "50%25 %C3%BC");
    }

    #[test]
    fn http_local_replies_carry_the_reason() {
        let error = ProxyError::NoVirtualHost("x:80".into());
        let response = LocalReply::from_error(&error).into_response(false);
        assert_eq!(response.status(), 404);
        assert_eq!(
            response.headers()["x-mesh-reason"],
            "NR no route: no virtual host for \"x:80\""
        );
        assert_eq!(header_value("a\nb"), "a?b");
    }
}
