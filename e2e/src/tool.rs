//! What `mesh-e2e-tool` prints that scenarios read back, defined once for
//! both sides of the pod boundary (the load report is [`crate::load`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The answer to one gRPC Health/Check call (`grpc-check`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrpcAnswer {
    /// The gRPC status code (0 = OK, 5 = NOT_FOUND, 14 = UNAVAILABLE).
    pub code: i32,
    /// Its name (`Ok`, `NotFound`, `Unavailable`).
    pub code_name: String,
    /// `grpc-message`.
    pub message: String,
    /// `SERVING`, `NOT_SERVING`, ... when the call succeeded.
    pub serving: Option<String>,
    /// Response headers and trailers (tonic merges a unary call's
    /// trailers into its metadata), names lower-case.
    pub metadata: BTreeMap<String, String>,
}

impl GrpcAnswer {
    /// Metadata as text (binary values lossily).
    pub fn metadata_of(map: &tonic::metadata::MetadataMap) -> BTreeMap<String, String> {
        map.clone()
            .into_headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect()
    }
}
