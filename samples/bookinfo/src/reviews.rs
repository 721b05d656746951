//! `reviews`: two reviews of a product. One binary plays all three versions
//! of the original: v1 shows no stars and never calls ratings; v2 (black
//! stars) and v3 (red stars) call `ratings` and attach the stars, or, when
//! ratings fails, the text "Ratings service is currently unavailable".

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use hyper::{Method, StatusCode};

use crate::client::Upstream;
use crate::error::FetchError;
use crate::headers;
use crate::model::{ErrorBody, Rating, Ratings, Review, ReviewsResponse, RATINGS_UNAVAILABLE};
use crate::server::{self, json, AppRequest, Handler, HttpResponse};

/// Where ratings is, unless `RATINGS_URL` says otherwise.
pub const DEFAULT_RATINGS_URL: &str = "http://ratings:9080";

/// The two reviews every product has: (reviewer, text).
pub const REVIEWS: [(&str, &str); 2] = [
    (
        "Reviewer1",
        "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!",
    ),
    (
        "Reviewer2",
        "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.",
    ),
];

/// Which of the three reviews versions this process plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// No ratings.
    V1,
    /// Ratings in black stars.
    V2,
    /// Ratings in red stars.
    V3,
}

impl Version {
    /// The star colour this version uses unless `STAR_COLOR` overrides it.
    pub fn default_star_color(self) -> &'static str {
        match self {
            Version::V3 => "red",
            Version::V1 | Version::V2 => "black",
        }
    }

    /// Whether this version calls ratings.
    pub fn has_ratings(self) -> bool {
        self != Version::V1
    }
}

impl FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "v1" => Ok(Version::V1),
            "v2" => Ok(Version::V2),
            "v3" => Ok(Version::V3),
            other => Err(format!(
                "unknown reviews version {other:?} (expected v1, v2 or v3)"
            )),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
            Version::V3 => "v3",
        })
    }
}

/// Accepts a star colour that is safe to put into a page: a CSS colour
/// name (letters only) such as `black` or `red`.
pub fn parse_star_color(s: &str) -> Result<String, String> {
    if !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "invalid star colour {s:?} (expected a colour name such as black or red)"
        ))
    }
}

/// How long to wait for ratings: the original waits 10 s in its black-star
/// build and 2.5 s in the red one, which the fault-injection tasks rely on.
pub fn default_ratings_timeout(star_color: &str) -> Duration {
    if star_color == "black" {
        Duration::from_secs(10)
    } else {
        Duration::from_millis(2500)
    }
}

/// The reviews service.
#[derive(Debug, Clone)]
pub struct Reviews {
    version: Version,
    star_color: String,
    /// `None` in v1, which never calls ratings.
    ratings: Option<Upstream>,
    podname: String,
    clustername: String,
}

impl Reviews {
    /// A reviews service of `version`. `ratings` is ignored in v1.
    /// `podname` defaults to `reviews-VERSION`.
    pub fn new(
        version: Version,
        star_color: Option<String>,
        ratings: Upstream,
        podname: Option<String>,
        clustername: Option<String>,
    ) -> Self {
        Self {
            version,
            star_color: star_color.unwrap_or_else(|| version.default_star_color().to_string()),
            ratings: version.has_ratings().then_some(ratings),
            podname: podname
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| format!("reviews-{version}")),
            // The original writes Java's `null` when CLUSTER_NAME is unset.
            clustername: clustername.unwrap_or_else(|| "null".to_string()),
        }
    }

    /// The star colour in use.
    pub fn star_color(&self) -> &str {
        &self.star_color
    }

    /// The reviews of product `id`, given what ratings answered (`None` in
    /// v1, which has no ratings at all).
    pub fn build(&self, id: u32, ratings: Option<Result<Ratings, FetchError>>) -> ReviewsResponse {
        let reviews = REVIEWS
            .iter()
            .map(|(reviewer, text)| Review {
                reviewer: reviewer.to_string(),
                text: text.to_string(),
                rating: ratings.as_ref().map(|r| self.rating_of(reviewer, r)),
            })
            .collect();
        ReviewsResponse {
            id: id.to_string(),
            podname: self.podname.clone(),
            clustername: self.clustername.clone(),
            version: self.version.to_string(),
            reviews,
        }
    }

    /// One reviewer's rating; a reviewer missing from the answer gets the
    /// error, as in the original.
    fn rating_of(&self, reviewer: &str, ratings: &Result<Ratings, FetchError>) -> Rating {
        match ratings.as_ref().ok().and_then(|r| r.ratings.get(reviewer)) {
            Some(stars) => Rating::Stars {
                stars: *stars,
                color: self.star_color.clone(),
            },
            None => Rating::Error {
                error: RATINGS_UNAVAILABLE.to_string(),
            },
        }
    }
}

impl Handler for Reviews {
    async fn handle(&self, req: AppRequest) -> HttpResponse {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return server::method_not_allowed();
        }
        let path = req.uri().path();
        if path == "/health" {
            return json(
                StatusCode::OK,
                &serde_json::json!({"status": "Reviews is healthy"}),
            );
        }
        let Some(id) = server::one_segment_after(path, "/reviews/") else {
            return server::not_found();
        };
        let Ok(id) = id.parse::<u32>() else {
            return json(
                StatusCode::BAD_REQUEST,
                &ErrorBody::new("please provide numeric product id"),
            );
        };
        let ratings = match &self.ratings {
            None => None,
            Some(upstream) => {
                let headers = headers::forward(req.headers(), None);
                let result = upstream
                    .get_json::<Ratings>(&format!("/ratings/{id}"), headers)
                    .await;
                if let Err(e) = &result {
                    tracing::warn!(url = upstream.base_url(), error = %e, "ratings unavailable");
                }
                Some(result)
            }
        };
        json(StatusCode::OK, &self.build(id, ratings))
    }
}

#[cfg(test)]
mod tests;
