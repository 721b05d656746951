//! `details`: the book record for a product id. It calls nothing else; the
//! record is fixed, as in the original without its external book service.

use hyper::{Method, StatusCode};

use crate::model::{BookDetails, ErrorBody};
use crate::server::{self, json, AppRequest, Handler, HttpResponse};

/// The details service.
#[derive(Debug, Clone, Default)]
pub struct Details;

/// The record for product `id`: every product is the same paperback.
pub fn book_details(id: u32) -> BookDetails {
    BookDetails {
        id,
        author: "William Shakespeare".to_string(),
        year: 1595,
        kind: "paperback".to_string(),
        pages: 200,
        publisher: "PublisherA".to_string(),
        language: "English".to_string(),
        isbn_10: "1234567890".to_string(),
        isbn_13: "123-1234567890".to_string(),
    }
}

impl Handler for Details {
    async fn handle(&self, req: AppRequest) -> HttpResponse {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return server::method_not_allowed();
        }
        let path = req.uri().path();
        if path == "/health" {
            return json(
                StatusCode::OK,
                &serde_json::json!({"status": "Details is healthy"}),
            );
        }
        let Some(id) = server::one_segment_after(path, "/details/") else {
            return server::not_found();
        };
        match id.parse::<u32>() {
            Ok(id) => json(StatusCode::OK, &book_details(id)),
            Err(_) => json(
                StatusCode::BAD_REQUEST,
                &ErrorBody::new("please provide numeric product id"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use hyper::body::Bytes;
    use hyper::Request;

    async fn get(path: &str) -> (StatusCode, serde_json::Value) {
        let req = Request::get(path).body(Bytes::new()).unwrap();
        let resp = Details.handle(req).await;
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn serves_the_book_record() {
        let (status, body) = get("/details/0").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            serde_json::json!({
                "id": 0, "author": "William Shakespeare", "year": 1595,
                "type": "paperback", "pages": 200, "publisher": "PublisherA",
                "language": "English", "ISBN-10": "1234567890",
                "ISBN-13": "123-1234567890"
            })
        );
    }

    #[tokio::test]
    async fn a_non_numeric_id_is_a_bad_request() {
        let (status, body) = get("/details/abc").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "please provide numeric product id");
    }

    #[tokio::test]
    async fn health_answers() {
        let (status, body) = get("/health").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "Details is healthy");
    }
}
