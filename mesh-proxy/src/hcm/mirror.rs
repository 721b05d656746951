//! Request mirroring (`request_mirror_policies`): for its share of
//! requests, a copy (headers and body) goes to the mirror cluster, its
//! authority suffixed `-shadow`, fire and forget: the copy runs in its own
//! task, bounded in number and time, and its answer is thrown away, so it
//! never holds up or fails the request itself.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::header::{HeaderValue, HOST};
use http::request::Parts;
use http::{Request, Uri, Version};
use http_body_util::BodyExt;
use tokio::sync::Semaphore;

use super::body::Replay;
use super::fault::sample;
use crate::cluster::PickContext;
use crate::data_plane::DataPlane;
use crate::model::{MirrorPolicy, Snapshot};

/// Most mirror copies in flight in the process; more are not sent.
pub const MAX_IN_FLIGHT: usize = 256;
/// Longest a copy may take when the route sets no timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

fn in_flight() -> &'static Arc<Semaphore> {
    static IN_FLIGHT: OnceLock<Arc<Semaphore>> = OnceLock::new();
    IN_FLIGHT.get_or_init(|| Arc::new(Semaphore::new(MAX_IN_FLIGHT)))
}

/// `host:port` with `-shadow` after the host, as Envoy shadows.
pub fn shadow_authority(authority: &str) -> String {
    let port_start = if authority.starts_with('[') {
        authority.rfind("]:").map(|i| i + 1)
    } else {
        authority.rfind(':')
    };
    match port_start {
        Some(i) => format!("{}-shadow{}", &authority[..i], &authority[i..]),
        None => format!("{authority}-shadow"),
    }
}

/// Start the copies `policies` ask for of a request about to be forwarded
/// (`head` as it goes upstream, `authority` its authority).
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    data_plane: &Arc<DataPlane>,
    snapshot: &Arc<Snapshot>,
    policies: &[MirrorPolicy],
    head: &Parts,
    authority: &str,
    path: &str,
    body: &Replay,
    timeout: Option<Duration>,
    pick: PickContext<'_>,
) {
    for policy in policies {
        if !sample(policy.fraction) {
            continue;
        }
        let Ok(permit) = in_flight().clone().try_acquire_owned() else {
            tracing::debug!(cluster = %policy.cluster, "mirror skipped: too many in flight");
            continue;
        };
        let Some(cluster) = snapshot.clusters.get(&policy.cluster).cloned() else {
            tracing::debug!(cluster = %policy.cluster, "mirror cluster not found");
            continue;
        };
        let authority = if policy.disable_shadow_host_suffix_append {
            authority.to_owned()
        } else {
            shadow_authority(authority)
        };
        let mut request = Request::new(());
        *request.method_mut() = head.method.clone();
        *request.headers_mut() = head.headers.clone();
        let Ok(uri) = Uri::builder()
            .scheme("http")
            .authority(authority.as_str())
            .path_and_query(path)
            .build()
        else {
            continue;
        };
        *request.uri_mut() = uri;
        if cluster.http2 {
            *request.version_mut() = Version::HTTP_2;
            request.headers_mut().remove(HOST);
        } else {
            *request.version_mut() = Version::HTTP_11;
            if let Ok(host) = HeaderValue::from_str(&authority) {
                request.headers_mut().insert(HOST, host);
            }
        }
        let (parts, ()) = request.into_parts();
        let reader = body.reader();
        let data_plane = data_plane.clone();
        let snapshot = snapshot.clone();
        let (original_dst, listener) = (pick.original_dst, pick.listener);
        let limit = timeout.unwrap_or(DEFAULT_TIMEOUT);
        tokio::spawn(async move {
            let _permit = permit;
            let copy = async {
                let picked = data_plane
                    .clusters
                    .pick(
                        &snapshot,
                        &cluster,
                        &PickContext::new(original_dst, listener),
                    )
                    .await?;
                let request = Request::from_parts(parts, reader.boxed_unsync());
                let response = data_plane.pool.send(&picked, &cluster, request).await?;
                picked.report(crate::cluster::Outcome::Status(response.status().as_u16()));
                // Read the answer whole so the connection can be reused.
                let _ = response.into_body().collect().await;
                Ok::<(), crate::error::ProxyError>(())
            };
            match tokio::time::timeout(limit, copy).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%error, "mirror copy failed"),
                Err(_) => tracing::debug!("mirror copy timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_suffix_goes_before_the_port() {
        assert_eq!(shadow_authority("reviews:9080"), "reviews-shadow:9080");
        assert_eq!(shadow_authority("reviews"), "reviews-shadow");
        assert_eq!(shadow_authority("[::1]:80"), "[::1]-shadow:80");
    }
}
