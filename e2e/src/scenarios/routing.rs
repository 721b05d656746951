//! Istio's "Request routing" and "Traffic shifting" tasks on bookinfo, with
//! the task's YAML: every service at v1; reviews v2 for the signed-in
//! `jason` (productpage forwards `end-user`), v1 for everyone else; by
//! `user-agent` regex `.*Firefox.*` to v2, others v3; then weights, 50/50
//! v2/v3 and 80/20 v1/v2, each measured over 1,000 requests within ±5
//! points.

use super::bookinfo::{self, deploy_bookinfo, page_of};
use super::checks::{explained, load_from, share_within, Checks};
use super::{client, get_from, settle, with_logs};
use crate::cluster::{Cluster, Sidecar};
use crate::http::Request;
use crate::load::LoadSpec;
use crate::E2eError;

const ALL_V1: &str = include_str!("../../istio/virtual-service-all-v1.yaml");
const JASON_V2: &str = include_str!("../../istio/virtual-service-reviews-test-v2.yaml");
const FIREFOX_V2: &str = include_str!("../../istio/virtual-service-reviews-firefox-v2.yaml");
const V2_V3: &str = include_str!("../../istio/virtual-service-reviews-v2-v3.yaml");
const V1_80_V2_20: &str = include_str!("../../istio/virtual-service-reviews-80-20.yaml");

/// The version named in a reviews answer (`"version":"v2"`).
const REVIEWS_VERSION: &str = r#""version":"(v\d)""#;
/// Requests per measured share.
const MEASURED: usize = 1000;
/// Tolerance of a measured share, in percentage points.
const TOLERANCE: f64 = 5.0;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

/// All v1, then jason → v2, then Firefox → v2 (others v3).
pub fn request_routing(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    deploy_bookinfo(cluster)?;
    let mut checks = Checks::new();
    checks.run("all traffic to v1", || all_v1(cluster));
    checks.run("end-user jason to v2, others v1", || jason(cluster));
    checks.run("user-agent .*Firefox.* to v2, others v3", || {
        firefox(cluster)
    });
    checks
        .finish()
        .map_err(|e| with_logs(cluster, &bookinfo::PODS, e))
}

fn page_url(cluster: &dyn Cluster) -> String {
    format!(
        "{}/productpage",
        cluster.service_url("productpage", "default", 9080)
    )
}

fn page_as(cluster: &dyn Cluster, user: Option<&str>) -> Result<crate::HttpResponse, String> {
    let mut req = Request::get(&page_url(cluster)).timeout(std::time::Duration::from_secs(15));
    if let Some(user) = user {
        // productpage's sign-in cookie; it sends `end-user: jason` on.
        req = req.header("cookie", &format!("end-user={user}"));
    }
    cluster.request("client", &req).map_err(|e| e.to_string())
}

fn all_v1(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    cluster.apply(ALL_V1)?;
    settle("every page from reviews v1", || {
        page_of(&get_from(cluster, "client", &page_url(cluster))?, "v1")
    })
}

fn jason(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    cluster.apply(JASON_V2)?;
    settle("jason sees reviews v2, others v1", || {
        page_of(&page_as(cluster, Some("jason"))?, "v2").map_err(|e| format!("jason: {e}"))?;
        page_of(&page_as(cluster, None)?, "v1").map_err(|e| format!("anonymous: {e}"))?;
        page_of(&page_as(cluster, Some("sam"))?, "v1").map_err(|e| format!("sam: {e}"))
    })
}

fn reviews_url(cluster: &dyn Cluster) -> String {
    format!(
        "{}/reviews/0",
        cluster.service_url("reviews", "default", 9080)
    )
}

/// A load to reviews counting the version in each answer.
fn reviews_load(cluster: &dyn Cluster, requests: usize) -> LoadSpec {
    LoadSpec::new(&reviews_url(cluster), requests)
        .concurrency(4)
        .body_pattern(REVIEWS_VERSION)
}

fn firefox(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    cluster.apply(FIREFOX_V2)?;
    let only = |agent: &str, version: &str, n: usize| -> Result<(), String> {
        let r = load_from(
            cluster,
            "client",
            &reviews_load(cluster, n).header("user-agent", agent),
        )?;
        let got = r.count(|g| g.status == 200 && g.body == version);
        if got == n {
            Ok(())
        } else {
            Err(format!(
                "{agent}: {got} of {n} from {version}: {}",
                r.summary()
            ))
        }
    };
    settle("Firefox to v2, Chrome to v3", || {
        only(FIREFOX, "v2", 5)?;
        only(CHROME, "v3", 5)
    })?;
    only(FIREFOX, "v2", 100).map_err(E2eError::Invalid)?;
    only(CHROME, "v3", 100).map_err(E2eError::Invalid)
}

/// The pods traffic shifting needs: reviews v1-v3, ratings, a client.
const SHIFT_PODS: [&str; 5] = [
    "reviews-v1",
    "reviews-v2",
    "reviews-v3",
    "ratings-v1",
    "client",
];

/// 50/50 v2/v3, then 80/20 v1/v2, each over 1,000 requests.
pub fn traffic_shifting(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    cluster.deploy(&bookinfo::app("ratings", "ratings"))?;
    for v in ["v1", "v2", "v3"] {
        cluster.deploy(&bookinfo::reviews(v))?;
    }
    cluster.deploy(&client(cluster, Sidecar::MeshProxy))?;
    cluster.apply(bookinfo::DESTINATION_RULES)?;
    let mut checks = Checks::new();
    checks.run("50 % v2, 50 % v3", || {
        shift(cluster, V2_V3, &[("v2", 50.0), ("v3", 50.0)])
    });
    checks.run("80 % v1, 20 % v2", || {
        shift(cluster, V1_80_V2_20, &[("v1", 80.0), ("v2", 20.0)])
    });
    checks
        .finish()
        .map_err(|e| with_logs(cluster, &SHIFT_PODS, e))
}

/// Applies `yaml`, waits until only the weighted versions answer, then
/// measures each one's share.
fn shift(cluster: &mut dyn Cluster, yaml: &str, weights: &[(&str, f64)]) -> Result<(), E2eError> {
    cluster.apply(yaml)?;
    let allowed: Vec<&str> = weights.iter().map(|(v, _)| *v).collect();
    settle(&format!("reviews answered only by {allowed:?}"), || {
        let r = load_from(cluster, "client", &reviews_load(cluster, 20))?;
        let others = r.count(|g| g.status != 200 || !allowed.contains(&g.body.as_str()));
        if others == 0 {
            Ok(())
        } else {
            Err(r.summary())
        }
    })?;
    let r = load_from(cluster, "client", &reviews_load(cluster, MEASURED))
        .map_err(E2eError::Invalid)?;
    explained(&r).map_err(E2eError::Invalid)?;
    let mut wrong = Vec::new();
    for (version, pct) in weights {
        let got = r.count(|g| g.status == 200 && g.body == *version);
        if let Err(e) = share_within(version, got, r.requests, *pct, TOLERANCE) {
            wrong.push(e);
        }
    }
    let stray = r.count(|g| g.status != 200 || !allowed.contains(&g.body.as_str()));
    if stray > 0 {
        wrong.push(format!("{stray} answers not from {allowed:?}"));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(E2eError::Invalid(format!(
            "{}; {}",
            wrong.join("; "),
            r.summary()
        )))
    }
}
