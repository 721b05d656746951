//! Istio's "Fault injection" task on bookinfo, with the task's YAML: a 7 s
//! delay on ratings for `jason` makes productpage give up on reviews
//! (its two 3 s attempts) and show its own error before the delay would
//! have ended; an abort of 500 for 50 % of ratings requests, measured over
//! 1,000 requests within ±5 points, each abort carrying `x-mesh-reason`
//! `FI ...` and logged with flag `FI` in the client sidecar's access log.

use super::bookinfo::{self, deploy_bookinfo, page_of};
use super::checks::{access_log, explained, load_from, logged, share_within};
use super::{client, settle, with_logs, ACCESS_LOG};
use crate::cluster::{Cluster, Sidecar};
use crate::load::LoadSpec;
use crate::E2eError;

const ALL_V1: &str = include_str!("../../istio/virtual-service-all-v1.yaml");
const JASON_V2: &str = include_str!("../../istio/virtual-service-reviews-test-v2.yaml");
const DELAY: &str = include_str!("../../istio/virtual-service-ratings-test-delay.yaml");
const ABORT_50: &str = include_str!("../../istio/virtual-service-ratings-abort-50.yaml");

/// What productpage shows when reviews did not answer in time.
const REVIEWS_UNAVAILABLE: &str = "Sorry, product reviews are currently unavailable for this book.";
/// The injected delay.
const DELAY_MS: u64 = 7000;
/// productpage's two attempts of 3 s each at reviews.
const PRODUCTPAGE_GIVES_UP_MS: u64 = 6000;

/// Jason's page shows productpage's own error within its timeout.
pub fn fault_delay_for_jason(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    deploy_bookinfo(cluster)?;
    check_delay(cluster).map_err(|e| with_logs(cluster, &bookinfo::PODS, e))
}

fn page(cluster: &dyn Cluster, user: &str) -> LoadSpec {
    let url = format!(
        "{}/productpage",
        cluster.service_url("productpage", "default", 9080)
    );
    LoadSpec::new(&url, 1)
        .header("cookie", &format!("end-user={user}"))
        .body_pattern("(Sorry, product reviews are currently unavailable|reviews-v[123])")
        .timeout_ms(20_000)
}

fn check_delay(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    cluster.apply(ALL_V1)?;
    cluster.apply(JASON_V2)?;
    let url = format!(
        "{}/productpage",
        cluster.service_url("productpage", "default", 9080)
    );
    let as_jason = crate::http::Request::get(&url).header("cookie", "end-user=jason");
    settle("jason sees reviews v2 before the fault", || {
        let r = cluster
            .request("client", &as_jason)
            .map_err(|e| e.to_string())?;
        page_of(&r, "v2")
    })?;
    cluster.apply(DELAY)?;
    // One page takes 6 s or more here, so this poll is short on attempts.
    let first = super::eventually(
        "jason's page says reviews are unavailable",
        super::CONVERGE * 2,
        || {
            let r = load_from(cluster, "client", &page(cluster, "jason"))?;
            match r.count(|g| g.status == 200 && g.body.starts_with("Sorry")) {
                1 => Ok(r),
                _ => Err(r.summary()),
            }
        },
    )?;
    let r = load_from(cluster, "client", &page(cluster, "jason")).map_err(E2eError::Invalid)?;
    let sorry = r.count(|g| g.status == 200 && g.body.starts_with("Sorry"));
    if sorry != 1 {
        return Err(E2eError::Invalid(format!(
            "jason's page should say {REVIEWS_UNAVAILABLE:?}: {}",
            r.summary()
        )));
    }
    // productpage gave up on its own timeouts, before the delay ended.
    for ms in [first.max_ms, r.max_ms] {
        if !(PRODUCTPAGE_GIVES_UP_MS - 500..DELAY_MS).contains(&ms) {
            return Err(E2eError::Invalid(format!(
                "jason's page took {ms} ms: productpage should give up after its \
                 {PRODUCTPAGE_GIVES_UP_MS} ms, before the {DELAY_MS} ms delay ends"
            )));
        }
    }
    // Everyone else is not delayed and sees v1.
    let other = load_from(cluster, "client", &page(cluster, "sam")).map_err(E2eError::Invalid)?;
    if other.count(|g| g.status == 200 && g.body == "reviews-v1") != 1 || other.max_ms >= 3000 {
        return Err(E2eError::Invalid(format!(
            "sam's page should come from reviews v1 without delay: {}",
            other.summary()
        )));
    }
    Ok(())
}

const ABORT_PODS: [&str; 2] = ["ratings-v1", "client"];

/// Half the ratings requests are aborted with 500 by the client's sidecar.
pub fn fault_abort_half_of_ratings(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    cluster.set_mesh_config(ACCESS_LOG)?;
    cluster.deploy(&bookinfo::app("ratings", "ratings"))?;
    cluster.deploy(&client(cluster, Sidecar::MeshProxy))?;
    cluster.apply(bookinfo::DESTINATION_RULES)?;
    cluster.apply(ABORT_50)?;
    check_abort(cluster).map_err(|e| with_logs(cluster, &ABORT_PODS, e))
}

fn check_abort(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    let url = format!(
        "{}/ratings/0",
        cluster.service_url("ratings", "default", 9080)
    );
    let spec = |n| {
        LoadSpec::new(&url, n)
            .concurrency(4)
            .body_pattern("(Reviewer1|fault filter abort)")
    };
    settle("some ratings requests are aborted", || {
        let r = load_from(cluster, "client", &spec(40))?;
        let aborted = r.count(|g| g.status == 500);
        let ok = r.count(|g| g.status == 200 && g.body == "Reviewer1");
        if aborted > 0 && ok > 0 && aborted + ok == r.requests {
            Ok(())
        } else {
            Err(r.summary())
        }
    })?;
    let r = load_from(cluster, "client", &spec(1000)).map_err(E2eError::Invalid)?;
    let aborted = r.count(|g| g.status == 500);
    share_within("aborted with 500", aborted, r.requests, 50.0, 5.0).map_err(E2eError::Invalid)?;
    let ok = r.count(|g| g.status == 200 && g.body == "Reviewer1");
    if aborted + ok != r.requests {
        return Err(E2eError::Invalid(format!(
            "answers other than 200 and the abort: {}",
            r.summary()
        )));
    }
    let with_reason = r.count(|g| {
        g.status == 500
            && g.headers
                .get(crate::REASON_HEADER)
                .is_some_and(|v| v.starts_with("FI"))
    });
    if with_reason != aborted {
        return Err(E2eError::Invalid(format!(
            "{with_reason} of {aborted} aborts carry `x-mesh-reason: FI ...`: {}",
            r.summary()
        )));
    }
    explained(&r).map_err(E2eError::Invalid)?;
    let entries = access_log(cluster, "client")?;
    logged(&entries, 500, "FI", "VirtualService default/ratings").map_err(E2eError::Invalid)
}
