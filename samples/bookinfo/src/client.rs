//! Outgoing calls to the other services: one HTTP client per process,
//! through `HTTP_PROXY` when set, and a typed GET with a per-call timeout.
//!
//! The proxy is set explicitly rather than left to reqwest's environment
//! lookup, so that in loopback mode requests reach the sidecar in absolute
//! form even for names only the mesh resolves (`http://reviews:9080/...`),
//! and so that without it the app opens plain connections that transparent
//! capture can intercept.

use std::time::Duration;

use hyper::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::error::{Error, FetchError};

/// Builds the process's HTTP client, sending through `http_proxy` when given
/// (an empty value counts as none, as an unset variable would).
pub fn http_client(http_proxy: Option<&str>) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder().no_proxy();
    if let Some(url) = http_proxy.filter(|p| !p.trim().is_empty()) {
        let proxy = reqwest::Proxy::http(url).map_err(|source| Error::Proxy {
            url: url.to_string(),
            source,
        })?;
        builder = builder.proxy(proxy);
    }
    builder.build().map_err(Error::Client)
}

/// One service this app calls: where it is and how long to wait for it.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: reqwest::Client,
    base_url: String,
    timeout: Duration,
}

impl Upstream {
    /// `base_url` is the service root, e.g. `http://details:9080`.
    pub fn new(client: reqwest::Client, base_url: &str, timeout: Duration) -> Self {
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            timeout,
        }
    }

    /// The service root, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// GETs `path` (which starts with `/`) with `headers`, expecting 200 and
    /// a JSON body of type `T`.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        headers: HeaderMap,
    ) -> Result<T, FetchError> {
        let url = format!("{}{}", self.base_url, path);
        let resp = self
            .client
            .get(&url)
            .headers(headers)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.describe(&e))?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        let body = resp.bytes().await.map_err(|e| self.describe(&e))?;
        serde_json::from_slice(&body).map_err(|e| FetchError::Body(e.to_string()))
    }

    /// The reason a person can act on: the innermost cause ("Connection
    /// refused"), not reqwest's wrapper around it.
    fn describe(&self, err: &reqwest::Error) -> FetchError {
        if err.is_timeout() {
            return FetchError::Timeout(self.timeout.as_millis());
        }
        let mut cause: &dyn std::error::Error = err;
        while let Some(next) = cause.source() {
            cause = next;
        }
        FetchError::Connect(cause.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_loses_its_trailing_slash() {
        let client = http_client(None).unwrap();
        let up = Upstream::new(client, "http://details:9080/", Duration::from_secs(1));
        assert_eq!(up.base_url(), "http://details:9080");
    }

    #[test]
    fn an_empty_proxy_means_none_and_a_bad_one_is_an_error() {
        assert!(http_client(Some("")).is_ok());
        assert!(http_client(Some("http://127.0.0.1:15080")).is_ok());
        assert!(matches!(
            http_client(Some("::not a url")),
            Err(Error::Proxy { .. })
        ));
    }

    #[tokio::test]
    async fn a_refused_connection_is_described_by_its_cause() {
        // Port 1 (tcpmux) on loopback: nothing listens there, so the
        // connection is refused at once.
        let client = http_client(None).unwrap();
        let up = Upstream::new(client, "http://127.0.0.1:1", Duration::from_secs(2));
        let err = up
            .get_json::<serde_json::Value>("/x", HeaderMap::new())
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Connect(_)), "{err:?}");
        assert_eq!(err.status(), 500);
    }
}
