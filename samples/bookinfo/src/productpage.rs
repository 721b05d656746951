//! `productpage`: the book's web page and its JSON API. It calls `details`
//! and `reviews` (and `ratings` for its ratings API), forwarding the
//! tracing headers and the signed-in user as `end-user`.
//!
//! A failing dependency never fails the page: the page says which part is
//! unavailable and the status stays 200, so the mesh's routing and faults
//! are visible to a person looking at it. The JSON API, like the original,
//! passes the dependency's status (or 500) through with an error body.

mod render;
mod session;

use std::time::Duration;

use hyper::body::Bytes;
use hyper::{Method, StatusCode};

use crate::client::Upstream;
use crate::error::FetchError;
use crate::headers;
use crate::model::{
    products, BookDetails, ErrorBody, Ratings, ReviewsResponse, DETAILS_UNAVAILABLE,
    PRODUCT_RATINGS_UNAVAILABLE, REVIEWS_UNAVAILABLE,
};
use crate::server::{self, json, respond, AppRequest, Handler, HttpResponse};

pub use render::{escape_html, render_index, render_product_page, star_glyphs, STYLESHEET};
pub use session::{end_user, COOKIE};

/// Where details is, unless `DETAILS_URL` says otherwise.
pub const DEFAULT_DETAILS_URL: &str = "http://details:9080";
/// Where reviews is, unless `REVIEWS_URL` says otherwise.
pub const DEFAULT_REVIEWS_URL: &str = "http://reviews:9080";

/// How long productpage waits for each call, as the original does.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// How many times productpage asks reviews before giving up. The original
/// keeps this retry on purpose: Istio's fault-injection task shows it.
pub const REVIEWS_ATTEMPTS: usize = 2;

/// The product page service.
#[derive(Debug, Clone)]
pub struct ProductPage {
    details: Upstream,
    reviews: Upstream,
    ratings: Upstream,
}

impl ProductPage {
    /// A product page calling these three services.
    pub fn new(details: Upstream, reviews: Upstream, ratings: Upstream) -> Self {
        Self {
            details,
            reviews,
            ratings,
        }
    }

    /// Details of product `id`.
    pub async fn details(
        &self,
        id: u32,
        headers: hyper::HeaderMap,
    ) -> Result<BookDetails, FetchError> {
        let result = self
            .details
            .get_json(&format!("/details/{id}"), headers)
            .await;
        if let Err(e) = &result {
            tracing::warn!(url = self.details.base_url(), error = %e, "details unavailable");
        }
        result
    }

    /// Reviews of product `id`, asking twice before giving up.
    pub async fn reviews(
        &self,
        id: u32,
        headers: hyper::HeaderMap,
    ) -> Result<ReviewsResponse, FetchError> {
        let path = format!("/reviews/{id}");
        let mut attempt = 1;
        loop {
            match self.reviews.get_json(&path, headers.clone()).await {
                Ok(reviews) => return Ok(reviews),
                Err(e) => {
                    tracing::warn!(url = self.reviews.base_url(), attempt, error = %e, "reviews unavailable");
                    if attempt >= REVIEWS_ATTEMPTS {
                        return Err(e);
                    }
                }
            }
            attempt += 1;
        }
    }

    /// Ratings of product `id` (the ratings API only; the page gets its
    /// stars through reviews).
    pub async fn ratings(&self, id: u32, headers: hyper::HeaderMap) -> Result<Ratings, FetchError> {
        let result = self
            .ratings
            .get_json(&format!("/ratings/{id}"), headers)
            .await;
        if let Err(e) = &result {
            tracing::warn!(url = self.ratings.base_url(), error = %e, "ratings unavailable");
        }
        result
    }

    /// The HTML page for product 0, the only book.
    async fn page(&self, req: &AppRequest) -> HttpResponse {
        let user = end_user(req.headers());
        let headers = headers::forward(req.headers(), user.as_deref());
        let catalogue = products();
        let Some(product) = catalogue.first() else {
            return server::not_found();
        };
        let (details, reviews) = tokio::join!(
            self.details(product.id, headers.clone()),
            self.reviews(product.id, headers),
        );
        let html = render_product_page(product, user.as_deref(), &details, &reviews);
        respond(StatusCode::OK, "text/html; charset=utf-8", html)
    }

    /// `/api/v1/products/{id}[/reviews|/ratings]`.
    async fn api(&self, req: &AppRequest, rest: &str) -> HttpResponse {
        let (id, what) = match rest.split_once('/') {
            Some((id, what)) => (id, what),
            None => (rest, ""),
        };
        let Ok(id) = id.parse::<u32>() else {
            return json(
                StatusCode::BAD_REQUEST,
                &ErrorBody::new("please provide numeric product id"),
            );
        };
        let headers = headers::forward(req.headers(), end_user(req.headers()).as_deref());
        match what {
            "" => api_answer(self.details(id, headers).await, DETAILS_UNAVAILABLE),
            "reviews" => api_answer(self.reviews(id, headers).await, REVIEWS_UNAVAILABLE),
            "ratings" => api_answer(self.ratings(id, headers).await, PRODUCT_RATINGS_UNAVAILABLE),
            _ => server::not_found(),
        }
    }
}

/// A dependency's answer as the API returns it: the value, or its status
/// (500 when there was none) with the original's error text.
fn api_answer<T: serde::Serialize>(
    result: Result<T, FetchError>,
    unavailable: &str,
) -> HttpResponse {
    match result {
        Ok(value) => json(StatusCode::OK, &value),
        Err(e) => {
            let status =
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            json(status, &ErrorBody::new(unavailable))
        }
    }
}

impl Handler for ProductPage {
    async fn handle(&self, req: AppRequest) -> HttpResponse {
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        match (method, path.as_str()) {
            (Method::POST, "/login") => session::login(&req),
            (_, "/login") => server::method_not_allowed(),
            (Method::GET, "/logout") => session::logout(&req),
            (Method::GET | Method::HEAD, p) => match p {
                "/" | "/index.html" => {
                    respond(StatusCode::OK, "text/html; charset=utf-8", render_index())
                }
                "/health" => respond(
                    StatusCode::OK,
                    "text/plain; charset=utf-8",
                    "Product page is healthy",
                ),
                "/productpage" => self.page(&req).await,
                "/static/bookinfo.css" => respond(
                    StatusCode::OK,
                    "text/css; charset=utf-8",
                    Bytes::from_static(STYLESHEET.as_bytes()),
                ),
                "/api/v1/products" => json(StatusCode::OK, &products()),
                p => match p.strip_prefix("/api/v1/products/") {
                    Some(rest) => self.api(&req, rest).await,
                    None => server::not_found(),
                },
            },
            _ => server::method_not_allowed(),
        }
    }
}

#[cfg(test)]
mod tests;
