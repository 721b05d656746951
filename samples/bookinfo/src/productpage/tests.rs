//! Unit tests of productpage: rendering for each reviews version and each
//! failure, and the routes that need no other service.

use http_body_util::BodyExt;
use hyper::header::{CONTENT_TYPE, COOKIE as COOKIE_HEADER, SET_COOKIE};

use super::*;
use crate::client::http_client;
use crate::details::book_details;
use crate::model::{Review, RATINGS_UNAVAILABLE};

fn product() -> crate::model::Product {
    products().remove(0)
}

fn reviews(version: &str, rating: impl Fn(u32) -> Option<Rating>) -> ReviewsResponse {
    ReviewsResponse {
        id: "0".into(),
        podname: format!("reviews-{version}"),
        clustername: "null".into(),
        version: version.into(),
        reviews: [("Reviewer1", 5), ("Reviewer2", 4)]
            .into_iter()
            .map(|(reviewer, stars)| Review {
                reviewer: reviewer.into(),
                text: format!("{reviewer} liked it"),
                rating: rating(stars),
            })
            .collect(),
    }
}

fn stars(color: &'static str) -> impl Fn(u32) -> Option<Rating> {
    move |stars| {
        Some(Rating::Stars {
            stars,
            color: color.into(),
        })
    }
}

use crate::model::Rating;

fn page(
    user: Option<&str>,
    details: Result<BookDetails, FetchError>,
    reviews: Result<ReviewsResponse, FetchError>,
) -> String {
    render_product_page(&product(), user, &details, &reviews)
}

#[test]
fn the_page_shows_details_and_reviews() {
    let html = page(None, Ok(book_details(0)), Ok(reviews("v1", |_| None)));
    assert!(html.contains("The Comedy of Errors"));
    assert!(html.contains("William Shakespeare"));
    assert!(html.contains("<th>ISBN-10:</th><td>1234567890</td>"));
    assert!(html.contains("<th>Publisher:</th><td>PublisherA</td>"));
    assert!(html.contains("Reviewer1 liked it"));
    assert!(html.contains("Reviewer2"));
    assert!(html.contains("Sign in"));
}

#[test]
fn v1_v2_and_v3_are_told_apart_by_markers() {
    let v1 = page(None, Ok(book_details(0)), Ok(reviews("v1", |_| None)));
    let v2 = page(None, Ok(book_details(0)), Ok(reviews("v2", stars("black"))));
    let v3 = page(None, Ok(book_details(0)), Ok(reviews("v3", stars("red"))));

    assert!(v1.contains("reviews-v1"));
    assert!(!v1.contains(FULL_STAR_STR) && !v1.contains("stars-"));

    assert!(v2.contains("reviews-v2"));
    assert!(v2.contains("stars-black"));
    assert!(v2.contains("★★★★★") && v2.contains("★★★★☆"));
    assert!(!v2.contains("stars-red"));

    assert!(v3.contains("reviews-v3"));
    assert!(v3.contains("stars-red") && v3.contains("style=\"color: red\""));
    assert!(!v3.contains("stars-black"));
}

const FULL_STAR_STR: &str = "★";

#[test]
fn failures_show_their_sentences() {
    let html = page(
        None,
        Err(FetchError::Status(503)),
        Err(FetchError::Timeout(3000)),
    );
    assert!(html.contains("Sorry, product details are currently unavailable for this book."));
    assert!(html.contains("Sorry, product reviews are currently unavailable for this book."));

    let rating_error = |_| {
        Some(Rating::Error {
            error: RATINGS_UNAVAILABLE.into(),
        })
    };
    let html = page(None, Ok(book_details(0)), Ok(reviews("v2", rating_error)));
    assert!(html.contains("Ratings service is currently unavailable"));
    assert!(!html.contains(FULL_STAR_STR));
}

#[test]
fn the_signed_in_user_is_shown_escaped() {
    let html = page(
        Some("<jason>"),
        Ok(book_details(0)),
        Ok(reviews("v1", |_| None)),
    );
    assert!(html.contains("Signed in as <b>&lt;jason&gt;</b>"));
    assert!(html.contains("sign out"));
    assert!(!html.contains("<jason>"));
}

#[test]
fn text_from_services_is_escaped_and_colours_are_checked() {
    let mut evil = reviews("v2", |_| {
        Some(Rating::Stars {
            stars: 9,
            color: "red\"><script>".into(),
        })
    });
    evil.reviews[0].text = "<script>alert(1)</script>".into();
    evil.version = "v2<b>".into();
    let html = page(None, Ok(book_details(0)), Ok(evil));
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        html.contains("stars-black"),
        "an unsafe colour falls back to black"
    );
    assert!(
        html.contains("★★★★★<"),
        "more than five stars count as five"
    );
}

#[test]
fn star_glyphs_fill_up_to_five() {
    assert_eq!(star_glyphs(0), "☆☆☆☆☆");
    assert_eq!(star_glyphs(4), "★★★★☆");
    assert_eq!(star_glyphs(7), "★★★★★");
}

#[test]
fn a_pod_name_is_shown_beside_the_version() {
    let mut r = reviews("v2", stars("black"));
    r.podname = "reviews-v2-5d8f-abcde".into();
    let html = page(None, Ok(book_details(0)), Ok(r));
    assert!(html.contains("reviews-v2</span> <small>(pod reviews-v2-5d8f-abcde)</small>"));
}

/// A product page whose dependencies all refuse connections (port 1 of
/// loopback, where nothing listens).
fn isolated() -> ProductPage {
    let client = http_client(None).unwrap();
    let up = || Upstream::new(client.clone(), "http://127.0.0.1:1", Duration::from_secs(2));
    ProductPage::new(up(), up(), up())
}

async fn call(req: AppRequest) -> (StatusCode, hyper::HeaderMap, String) {
    let resp = isolated().handle(req).await;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn get(path: &str) -> AppRequest {
    hyper::Request::get(path).body(Bytes::new()).unwrap()
}

#[tokio::test]
async fn the_page_survives_all_dependencies_down() {
    let req = hyper::Request::get("/productpage")
        .header(COOKIE_HEADER, "end-user=jason")
        .body(Bytes::new())
        .unwrap();
    let (status, headers, body) = call(req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(body.contains(DETAILS_UNAVAILABLE));
    assert!(body.contains(REVIEWS_UNAVAILABLE));
    assert!(body.contains("Signed in as <b>jason</b>"));
}

#[tokio::test]
async fn the_api_lists_products_and_reports_failures() {
    let (status, _, body) = call(get("/api/v1/products")).await;
    assert_eq!(status, StatusCode::OK);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list[0]["id"], 0);
    assert_eq!(list[0]["title"], "The Comedy of Errors");
    assert!(list[0]["descriptionHtml"]
        .as_str()
        .unwrap()
        .contains("Shakespeare"));

    for (path, text) in [
        ("/api/v1/products/0", DETAILS_UNAVAILABLE),
        ("/api/v1/products/0/reviews", REVIEWS_UNAVAILABLE),
        ("/api/v1/products/0/ratings", PRODUCT_RATINGS_UNAVAILABLE),
    ] {
        let (status, _, body) = call(get(path)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["error"], text, "{path}");
    }
    assert_eq!(
        call(get("/api/v1/products/x")).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(get("/api/v1/products/0/other")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_simple_routes_answer() {
    let (status, _, body) = call(get("/health")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "Product page is healthy")
    );
    let (status, _, body) = call(get("/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("productpage?u=normal"));
    let (status, headers, _) = call(get("/static/bookinfo.css")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[CONTENT_TYPE], "text/css; charset=utf-8");
    assert_eq!(call(get("/nowhere")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(call(get("/login")).await.0, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn login_and_logout_go_through_the_handler() {
    let req = hyper::Request::post("/login")
        .body(Bytes::from_static(b"username=jason"))
        .unwrap();
    let (status, headers, _) = call(req).await;
    assert_eq!(status, StatusCode::FOUND);
    assert!(headers[SET_COOKIE]
        .to_str()
        .unwrap()
        .starts_with("end-user=jason"));
    let (status, headers, _) = call(get("/logout")).await;
    assert_eq!(status, StatusCode::FOUND);
    assert!(headers[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
}
