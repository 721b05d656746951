//! The `greeter` web page: fetches a message from `messenger` (through the
//! sidecar when `HTTP_PROXY` is set) and renders it as a postcard.
//!
//! A failing messenger never fails the page: the card says why there is no
//! message and the status stays 200, so the mesh's routing and faults are
//! visible to a person looking at it.

use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};

use crate::card::{self, Message};
use crate::server::{respond, Handler, HttpResponse};

/// Where messenger is, unless `MESSENGER_URL` says otherwise.
pub const DEFAULT_MESSENGER_URL: &str = "http://messenger:9080/message";

/// How long greeter waits for messenger before showing the card without it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Headers copied from the incoming request to the call to messenger, so a
/// trace (and Istio's request id) spans both hops, and so header routes on
/// the user (`x-user`) see the caller's value.
pub const PROPAGATED_HEADERS: &[&str] = &[
    "x-user",
    "x-request-id",
    "traceparent",
    "tracestate",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
];

/// The greeter handler.
#[derive(Debug, Clone)]
pub struct Greeter {
    client: reqwest::Client,
    messenger_url: String,
    timeout: Duration,
}

impl Greeter {
    /// A greeter calling `messenger_url`, through `http_proxy` when given.
    ///
    /// The proxy is set explicitly (not read from the environment by
    /// reqwest), so requests go to it in absolute form even for names such
    /// as `messenger` that only the mesh can resolve.
    pub fn new(
        messenger_url: &str,
        http_proxy: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder().no_proxy().timeout(timeout);
        if let Some(proxy) = http_proxy {
            let proxy = reqwest::Proxy::http(proxy)
                .map_err(|e| anyhow::anyhow!("invalid HTTP_PROXY {proxy:?}: {e}"))?;
            builder = builder.proxy(proxy);
        }
        let client = builder
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            client,
            messenger_url: messenger_url.to_string(),
            timeout,
        })
    }

    /// Fetches the message, forwarding the tracing headers of `incoming`.
    pub async fn fetch(&self, incoming: &HeaderMap) -> Message {
        let mut req = self.client.get(&self.messenger_url);
        for name in PROPAGATED_HEADERS {
            if let Some(value) = incoming.get(*name) {
                req = req.header(*name, value.clone());
            }
        }
        let resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => return Message::Unavailable(self.describe(&e)),
        };
        let status = resp.status();
        if !status.is_success() {
            return Message::Unavailable(format!("HTTP {status}"));
        }
        match resp.text().await {
            Ok(text) => Message::Text(text.trim_end().to_string()),
            Err(e) => Message::Unavailable(self.describe(&e)),
        }
    }

    /// A short reason for a failed call: the innermost cause, which is the
    /// one a person can act on ("Connection refused"), not reqwest's wrapper.
    fn describe(&self, err: &reqwest::Error) -> String {
        if err.is_timeout() {
            return format!("timed out after {} ms", self.timeout.as_millis());
        }
        let mut cause: &dyn std::error::Error = err;
        while let Some(next) = cause.source() {
            cause = next;
        }
        cause.to_string()
    }
}

impl Handler for Greeter {
    async fn handle(&self, req: Request<Incoming>) -> HttpResponse {
        let path = req.uri().path();
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "method not allowed\n",
            );
        }
        if path == "/healthz" {
            return respond(StatusCode::OK, "text/plain", "ok\n");
        }
        if path != "/" && path != "/card" && !path.starts_with("/card/") {
            return respond(StatusCode::NOT_FOUND, "text/plain", "not found\n");
        }
        let message = self.fetch(req.headers()).await;
        if let Message::Unavailable(reason) = &message {
            tracing::warn!(%reason, "messenger unavailable");
        }
        respond(
            StatusCode::OK,
            "text/html; charset=utf-8",
            card::render(&message),
        )
    }
}

#[cfg(test)]
mod tests;
