//! `ratings`: stars per reviewer for a product id. Like the original's
//! in-memory version it also takes `POST /ratings/{id}` with a JSON object
//! of reviewer → stars, which then replaces the built-in ratings of that id.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use hyper::{Method, StatusCode};

use crate::model::{ErrorBody, Ratings};
use crate::server::{self, json, AppRequest, Handler, HttpResponse};

/// At most this many products may hold posted ratings, so a client cannot
/// grow the process without bound.
pub const MAX_POSTED_PRODUCTS: usize = 1024;

/// The ratings service.
#[derive(Debug, Default)]
pub struct RatingsService {
    posted: Mutex<HashMap<u32, BTreeMap<String, u32>>>,
}

/// The built-in ratings, the same for every product.
pub fn default_ratings(id: u32) -> Ratings {
    let ratings = BTreeMap::from([("Reviewer1".to_string(), 5), ("Reviewer2".to_string(), 4)]);
    Ratings { id, ratings }
}

impl RatingsService {
    /// The ratings of product `id`: posted ones if any, else the built-in.
    pub fn ratings(&self, id: u32) -> Ratings {
        // A poisoned lock only means another request panicked mid-insert;
        // the map itself is still whole.
        let posted = self.posted.lock().unwrap_or_else(|e| e.into_inner());
        match posted.get(&id) {
            Some(ratings) => Ratings {
                id,
                ratings: ratings.clone(),
            },
            None => default_ratings(id),
        }
    }

    /// Stores posted ratings for `id`; `Err` with the reason when refused.
    pub fn post(&self, id: u32, body: &[u8]) -> Result<Ratings, String> {
        let ratings: BTreeMap<String, u32> = serde_json::from_slice(body)
            .map_err(|_| "please provide valid ratings JSON".to_string())?;
        let mut posted = self.posted.lock().unwrap_or_else(|e| e.into_inner());
        if !posted.contains_key(&id) && posted.len() >= MAX_POSTED_PRODUCTS {
            return Err("too many products with posted ratings".to_string());
        }
        posted.insert(id, ratings.clone());
        Ok(Ratings { id, ratings })
    }
}

impl Handler for RatingsService {
    async fn handle(&self, req: AppRequest) -> HttpResponse {
        let path = req.uri().path();
        if path == "/health" {
            return json(
                StatusCode::OK,
                &serde_json::json!({"status": "Ratings is healthy"}),
            );
        }
        let Some(id) = server::one_segment_after(path, "/ratings/") else {
            return server::not_found();
        };
        let Ok(id) = id.parse::<u32>() else {
            return json(
                StatusCode::BAD_REQUEST,
                &ErrorBody::new("please provide numeric product ID"),
            );
        };
        match *req.method() {
            Method::GET | Method::HEAD => json(StatusCode::OK, &self.ratings(id)),
            Method::POST => match self.post(id, req.body()) {
                Ok(ratings) => json(StatusCode::OK, &ratings),
                Err(reason) => json(StatusCode::BAD_REQUEST, &ErrorBody::new(reason)),
            },
            _ => server::method_not_allowed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use hyper::body::Bytes;
    use hyper::Request;
    use serde_json::json;

    async fn call(
        svc: &RatingsService,
        method: Method,
        path: &str,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Bytes::from(body.to_string()))
            .unwrap();
        let resp = svc.handle(req).await;
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn serves_the_built_in_ratings() {
        let svc = RatingsService::default();
        let (status, body) = call(&svc, Method::GET, "/ratings/0", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}})
        );
    }

    #[tokio::test]
    async fn posted_ratings_replace_the_built_in_ones() {
        let svc = RatingsService::default();
        let (status, _) = call(&svc, Method::POST, "/ratings/7", r#"{"Reviewer1": 1}"#).await;
        assert_eq!(status, StatusCode::OK);
        let (_, body) = call(&svc, Method::GET, "/ratings/7", "").await;
        assert_eq!(body, json!({"id": 7, "ratings": {"Reviewer1": 1}}));
        let (_, other) = call(&svc, Method::GET, "/ratings/0", "").await;
        assert_eq!(other["ratings"]["Reviewer2"], 4);
    }

    #[tokio::test]
    async fn bad_input_is_a_bad_request() {
        let svc = RatingsService::default();
        let (status, body) = call(&svc, Method::GET, "/ratings/x", "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "please provide numeric product ID");
        let (status, body) = call(&svc, Method::POST, "/ratings/1", "not json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "please provide valid ratings JSON");
    }

    #[test]
    fn posted_products_are_bounded() {
        let svc = RatingsService::default();
        for id in 0..MAX_POSTED_PRODUCTS as u32 {
            svc.post(id, b"{}").unwrap();
        }
        assert!(svc.post(MAX_POSTED_PRODUCTS as u32, b"{}").is_err());
        // Replacing an existing entry is still allowed.
        assert!(svc.post(0, br#"{"Reviewer1": 3}"#).is_ok());
    }
}
