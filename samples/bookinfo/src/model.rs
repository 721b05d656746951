//! The JSON that crosses between the services, shaped like the original
//! sample's so that its clients (and people's curl habits) keep working:
//! productpage's products, details' book record, reviews with optional
//! ratings, and ratings' per-reviewer stars.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The text a review carries instead of stars when ratings failed.
pub const RATINGS_UNAVAILABLE: &str = "Ratings service is currently unavailable";
/// productpage's text when details failed.
pub const DETAILS_UNAVAILABLE: &str =
    "Sorry, product details are currently unavailable for this book.";
/// productpage's text when reviews failed (after its one retry).
pub const REVIEWS_UNAVAILABLE: &str =
    "Sorry, product reviews are currently unavailable for this book.";
/// productpage's text when its ratings API could not reach ratings.
pub const PRODUCT_RATINGS_UNAVAILABLE: &str =
    "Sorry, product ratings are currently unavailable for this book.";

/// A book in productpage's catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Product id, the key for details, reviews and ratings.
    pub id: u32,
    /// The book's title.
    pub title: String,
    /// The summary, as trusted HTML (it holds a link and bold text).
    #[serde(rename = "descriptionHtml")]
    pub description_html: String,
}

/// The catalogue: the original sample sells exactly one book.
pub fn products() -> Vec<Product> {
    vec![Product {
        id: 0,
        title: "The Comedy of Errors".to_string(),
        description_html: "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">\
            Wikipedia Summary</a>: The Comedy of Errors is one of \
            <b>William Shakespeare's</b> early plays. It is his shortest and one of his \
            most farcical comedies, with a major part of the humour coming from slapstick \
            and mistaken identity, in addition to puns and word play."
            .to_string(),
    }]
}

/// The book record `details` serves at `/details/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookDetails {
    /// Product id the record was asked for.
    pub id: u32,
    /// Who wrote it.
    pub author: String,
    /// Year of first publication.
    pub year: u32,
    /// Binding, e.g. `paperback`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Number of pages.
    pub pages: u32,
    /// Publisher's name.
    pub publisher: String,
    /// Language of the edition.
    pub language: String,
    /// ISBN-10.
    #[serde(rename = "ISBN-10")]
    pub isbn_10: String,
    /// ISBN-13.
    #[serde(rename = "ISBN-13")]
    pub isbn_13: String,
}

/// What `reviews` serves at `/reviews/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewsResponse {
    /// Product id, as a string like the original's.
    pub id: String,
    /// The pod (host) that answered; `reviews-VERSION` when unknown.
    #[serde(default)]
    pub podname: String,
    /// Cluster name, `"null"` when unset, as the original writes it.
    #[serde(default)]
    pub clustername: String,
    /// Which version answered (`v1`, `v2`, `v3`); our addition, so the page
    /// can say so even where the pod name does not.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// The reviews, in order.
    pub reviews: Vec<Review>,
}

/// One reviewer's review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Reviewer's name, e.g. `Reviewer1`.
    pub reviewer: String,
    /// The review.
    pub text: String,
    /// Stars (v2, v3), or why there are none; absent in v1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<Rating>,
}

/// A review's rating: stars in a colour, or the reason there are none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Rating {
    /// Stars out of five, and the colour to draw them in.
    Stars {
        /// Number of full stars (0..=5).
        stars: u32,
        /// CSS colour name, `black` or `red`.
        color: String,
    },
    /// Ratings could not be fetched.
    Error {
        /// Human-readable reason.
        error: String,
    },
}

/// What `ratings` serves at `/ratings/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ratings {
    /// Product id.
    pub id: u32,
    /// Stars per reviewer.
    pub ratings: BTreeMap<String, u32>,
}

/// The `{"error": "..."}` body every service answers failures with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable reason.
    pub error: String,
}

impl ErrorBody {
    /// An error body with `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Self { error: text.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn details_use_the_original_field_names() {
        let details = BookDetails {
            id: 0,
            author: "William Shakespeare".into(),
            year: 1595,
            kind: "paperback".into(),
            pages: 200,
            publisher: "PublisherA".into(),
            language: "English".into(),
            isbn_10: "1234567890".into(),
            isbn_13: "123-1234567890".into(),
        };
        let value = serde_json::to_value(&details).unwrap();
        assert_eq!(value["type"], "paperback");
        assert_eq!(value["ISBN-10"], "1234567890");
        assert_eq!(value["ISBN-13"], "123-1234567890");
        assert_eq!(value["year"], 1595);
    }

    #[test]
    fn ratings_parse_as_stars_or_error() {
        let stars: Rating = serde_json::from_value(json!({"stars": 4, "color": "red"})).unwrap();
        assert_eq!(
            stars,
            Rating::Stars {
                stars: 4,
                color: "red".into()
            }
        );
        let error: Rating = serde_json::from_value(json!({"error": RATINGS_UNAVAILABLE})).unwrap();
        assert_eq!(
            error,
            Rating::Error {
                error: RATINGS_UNAVAILABLE.into()
            }
        );
    }

    #[test]
    fn reviews_from_the_original_service_parse() {
        // The Java original's shape: no `version`, `clustername` "null".
        let body = json!({
            "id": "0", "podname": "reviews-v1-5f9d", "clustername": "null",
            "reviews": [{"reviewer": "Reviewer1", "text": "Fun."}]
        });
        let parsed: ReviewsResponse = serde_json::from_value(body).unwrap();
        assert_eq!(parsed.version, "");
        assert_eq!(parsed.reviews[0].rating, None);
    }

    #[test]
    fn v1_reviews_have_no_rating_key() {
        let review = Review {
            reviewer: "Reviewer1".into(),
            text: "Fun.".into(),
            rating: None,
        };
        let value = serde_json::to_value(review).unwrap();
        assert!(value.get("rating").is_none());
    }
}
