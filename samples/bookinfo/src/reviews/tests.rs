//! Unit tests of the reviews service: versions, stars and ratings failures.

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper::Request;

use super::*;
use crate::client::http_client;
use crate::ratings::default_ratings;

/// Ratings on port 1 (tcpmux) of loopback, where nothing listens.
fn unreachable_ratings() -> Upstream {
    let client = http_client(None).unwrap();
    Upstream::new(client, "http://127.0.0.1:1", Duration::from_secs(2))
}

fn reviews(version: Version) -> Reviews {
    Reviews::new(version, None, unreachable_ratings(), None, None)
}

#[test]
fn versions_parse_and_print() {
    for v in ["v1", "v2", "v3"] {
        assert_eq!(v.parse::<Version>().unwrap().to_string(), v);
    }
    assert!("v4".parse::<Version>().is_err());
}

#[test]
fn star_colours_default_by_version_and_can_be_overridden() {
    assert_eq!(reviews(Version::V2).star_color(), "black");
    assert_eq!(reviews(Version::V3).star_color(), "red");
    let custom = Reviews::new(
        Version::V2,
        Some("red".into()),
        unreachable_ratings(),
        None,
        None,
    );
    assert_eq!(custom.star_color(), "red");
}

#[test]
fn star_colours_must_be_plain_names() {
    assert_eq!(parse_star_color("Red").unwrap(), "red");
    assert!(parse_star_color("red\" onmouseover=\"x").is_err());
    assert!(parse_star_color("").is_err());
}

#[test]
fn the_red_build_waits_less_for_ratings() {
    assert_eq!(default_ratings_timeout("black"), Duration::from_secs(10));
    assert_eq!(default_ratings_timeout("red"), Duration::from_millis(2500));
}

#[test]
fn v1_has_no_ratings() {
    let resp = reviews(Version::V1).build(0, None);
    assert_eq!(resp.version, "v1");
    assert_eq!(resp.podname, "reviews-v1");
    assert_eq!(resp.clustername, "null");
    assert_eq!(resp.reviews.len(), 2);
    assert!(resp.reviews.iter().all(|r| r.rating.is_none()));
}

#[test]
fn v2_attaches_black_stars() {
    let resp = reviews(Version::V2).build(0, Some(Ok(default_ratings(0))));
    let stars: Vec<_> = resp.reviews.iter().map(|r| r.rating.clone()).collect();
    assert_eq!(
        stars,
        [
            Some(Rating::Stars {
                stars: 5,
                color: "black".into()
            }),
            Some(Rating::Stars {
                stars: 4,
                color: "black".into()
            }),
        ]
    );
}

#[test]
fn a_ratings_failure_becomes_the_error_text() {
    let resp = reviews(Version::V3).build(0, Some(Err(FetchError::Status(503))));
    for review in &resp.reviews {
        assert_eq!(
            review.rating,
            Some(Rating::Error {
                error: RATINGS_UNAVAILABLE.into()
            })
        );
    }
}

#[test]
fn a_reviewer_missing_from_ratings_gets_the_error() {
    let ratings = Ratings {
        id: 0,
        ratings: BTreeMap::from([("Reviewer2".to_string(), 3)]),
    };
    let resp = reviews(Version::V2).build(0, Some(Ok(ratings)));
    assert!(matches!(resp.reviews[0].rating, Some(Rating::Error { .. })));
    assert!(matches!(
        resp.reviews[1].rating,
        Some(Rating::Stars { stars: 3, .. })
    ));
}

#[test]
fn the_pod_name_is_kept_when_known() {
    let r = Reviews::new(
        Version::V2,
        None,
        unreachable_ratings(),
        Some("reviews-v2-7f9c-x2".into()),
        Some("east".into()),
    );
    let resp = r.build(0, None);
    assert_eq!(resp.podname, "reviews-v2-7f9c-x2");
    assert_eq!(resp.clustername, "east");
}

async fn get(svc: &Reviews, path: &str) -> (StatusCode, serde_json::Value) {
    let req = Request::get(path).body(Bytes::new()).unwrap();
    let resp = svc.handle(req).await;
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn v2_with_ratings_down_still_answers_with_the_error() {
    let (status, body) = get(&reviews(Version::V2), "/reviews/0").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], "0");
    assert_eq!(body["reviews"][0]["rating"]["error"], RATINGS_UNAVAILABLE);
    assert_eq!(body["reviews"][1]["rating"]["error"], RATINGS_UNAVAILABLE);
}

#[tokio::test]
async fn bad_paths_and_ids_are_refused() {
    let svc = reviews(Version::V1);
    assert_eq!(get(&svc, "/reviews/x").await.0, StatusCode::BAD_REQUEST);
    let req = Request::get("/nope").body(Bytes::new()).unwrap();
    assert_eq!(svc.handle(req).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(get(&svc, "/health").await.1["status"], "Reviews is healthy");
}
