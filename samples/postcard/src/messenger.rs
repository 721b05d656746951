//! The `messenger` service: answers every message request with its
//! configured text (`MESSAGE_TEXT`).

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use crate::server::{respond, Handler, HttpResponse};

/// The messenger handler.
#[derive(Debug, Clone)]
pub struct Messenger {
    text: String,
}

impl Messenger {
    /// A messenger that answers with `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into() }
    }

    /// Routes one request by method and path.
    pub fn route(&self, method: &Method, path: &str) -> HttpResponse {
        if method != Method::GET && method != Method::HEAD {
            return respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "method not allowed\n",
            );
        }
        match path {
            "/" | "/message" => respond(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                self.text.clone(),
            ),
            "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n"),
            _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
        }
    }
}

impl Handler for Messenger {
    async fn handle(&self, req: Request<Incoming>) -> HttpResponse {
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info!(method = %req.method(), path = req.uri().path(), request_id, "request");
        self.route(req.method(), req.uri().path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(resp: HttpResponse) -> String {
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn answers_with_its_text() {
        let m = Messenger::new("Hello from messenger v1");
        for path in ["/", "/message"] {
            let resp = m.route(&Method::GET, path);
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(body(resp).await, "Hello from messenger v1");
        }
    }

    #[tokio::test]
    async fn health_and_unknown_paths() {
        let m = Messenger::new("x");
        assert_eq!(m.route(&Method::GET, "/healthz").status(), StatusCode::OK);
        assert_eq!(
            m.route(&Method::GET, "/nope").status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            m.route(&Method::POST, "/").status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
