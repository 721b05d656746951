//! Bookinfo through capture: productpage calls details and reviews by name,
//! reviews v2/v3 call ratings. With all three reviews versions deployed,
//! routes send reviews to v1, then v2, then v3, and the page shows each
//! version's markers (samples/bookinfo/README.md, "Page markers").

use super::{client, get_from, settle, with_logs};
use crate::cluster::{Cluster, Sidecar, Workload};
use crate::E2eError;

/// The bookinfo sample's image on kind (built from samples/bookinfo/Dockerfile).
pub const BOOKINFO_IMAGE: &str = "bookinfo:e2e";

pub(super) const DESTINATION_RULES: &str =
    include_str!("../../../samples/bookinfo/mesh/destination-rules.yaml");
const ALL_V1: &str = include_str!("../../../samples/bookinfo/mesh/routes/all-v1.yaml");
const REVIEWS_V3: &str = include_str!("../../../samples/bookinfo/mesh/routes/reviews-v3.yaml");

pub(super) const PODS: [&str; 7] = [
    "productpage-v1",
    "details-v1",
    "reviews-v1",
    "reviews-v2",
    "reviews-v3",
    "ratings-v1",
    "client",
];

pub(super) fn app(name: &str, service: &str) -> Workload {
    Workload::new(&format!("{name}-v1"), service, &[service])
        .label("version", "v1")
        .service_account(&format!("bookinfo-{service}"))
        .port("http", 9080, "HTTP")
        .env("LISTEN", "0.0.0.0:9080")
        .image(BOOKINFO_IMAGE)
}

pub(super) fn reviews(version: &str) -> Workload {
    Workload::new(&format!("reviews-{version}"), "reviews", &["reviews"])
        .label("version", version)
        .service_account("bookinfo-reviews")
        .port("http", 9080, "HTTP")
        .env("LISTEN", "0.0.0.0:9080")
        .env("SERVICE_VERSION", version)
        .env("HOSTNAME", &format!("reviews-{version}"))
        .image(BOOKINFO_IMAGE)
}

/// A VirtualService sending every reviews call to `subset`.
fn reviews_route(subset: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\n  namespace: default\nspec:\n  hosts:\n  - reviews\n  http:\n  - route:\n    - destination:\n        host: reviews\n        subset: {subset}\n"
    )
}

/// Deploys bookinfo (reviews v1, v2, v3) and checks the page per route.
pub fn bookinfo(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    deploy_bookinfo(cluster)?;
    check(cluster).map_err(|e| with_logs(cluster, &PODS, e))
}

/// All of bookinfo (reviews v1, v2, v3), a client pod, and the sample's
/// DestinationRules (subsets by version).
pub(super) fn deploy_bookinfo(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    for (name, service) in [
        ("details", "details"),
        ("ratings", "ratings"),
        ("productpage", "productpage"),
    ] {
        cluster.deploy(&app(name, service))?;
    }
    for v in ["v1", "v2", "v3"] {
        cluster.deploy(&reviews(v))?;
    }
    cluster.deploy(&client(cluster, Sidecar::MeshProxy))?;
    cluster.apply(DESTINATION_RULES)
}

fn check(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    let url = format!(
        "{}/productpage",
        cluster.service_url("productpage", "default", 9080)
    );
    let v2_route = reviews_route("v2");
    for version in ["v1", "v2", "v3"] {
        match version {
            "v1" => cluster.apply(ALL_V1)?,
            "v2" => cluster.apply(&v2_route)?,
            _ => cluster.apply(REVIEWS_V3)?,
        }
        settle(&format!("the page served by reviews-{version}"), || {
            page_of(&get_from(cluster, "client", &url)?, version)
        })?;
    }
    Ok(())
}

/// Ok when the page is whole (details and reviews rendered) and shows
/// exactly `version`'s markers; else what is wrong with it.
pub(super) fn page_of(r: &crate::HttpResponse, version: &str) -> Result<(), String> {
    let page = &r.body;
    let mut wrong = Vec::new();
    if r.status != 200 {
        wrong.push(format!("status {}", r.status));
    }
    for must in [
        "Book Details",
        "William Shakespeare",
        "Book Reviews",
        "An extremely entertaining play by Shakespeare",
    ] {
        if !page.contains(must) {
            wrong.push(format!("no {must:?}"));
        }
    }
    for failed in [
        "Sorry, product details are currently unavailable",
        "Sorry, product reviews are currently unavailable",
        "Ratings service is currently unavailable",
    ] {
        if page.contains(failed) {
            wrong.push(format!("says {failed:?}"));
        }
    }
    let served_by = format!("reviews-{version}");
    if !page.contains(&served_by) {
        wrong.push(format!("not served by {served_by}"));
    }
    let stars = page.contains('★');
    match version {
        "v1" if stars || page.contains("stars-") => wrong.push("v1 shows stars".into()),
        "v2" if !stars || !page.contains("stars-black") || page.contains("stars-red") => {
            wrong.push("v2 needs black stars (from ratings)".into())
        }
        "v3" if !stars || !page.contains("stars-red") || page.contains("stars-black") => {
            wrong.push("v3 needs red stars (from ratings)".into())
        }
        _ => {}
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: &str) -> crate::HttpResponse {
        crate::HttpResponse {
            status: 200,
            headers: Vec::new(),
            body: format!("Book Details William Shakespeare Book Reviews An extremely entertaining play by Shakespeare {body}"),
        }
    }

    #[test]
    fn markers_tell_the_versions_apart() {
        assert!(page_of(&page("reviews-v1"), "v1").is_ok());
        assert!(page_of(&page("reviews-v1"), "v2").is_err());
        let black = page("reviews-v2 <span class=\"stars stars-black\">★★★★★</span>");
        assert!(page_of(&black, "v2").is_ok());
        assert!(page_of(&black, "v1").is_err());
        let red = page("reviews-v3 <span class=\"stars stars-red\">★★★★☆</span>");
        assert!(page_of(&red, "v3").is_ok());
        assert!(page_of(&red, "v2").is_err());
        let no_ratings = page("reviews-v2 Ratings service is currently unavailable");
        assert!(page_of(&no_ratings, "v2").is_err());
    }
}
