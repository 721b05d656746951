//! The bookinfo sample, in Rust: a book's page (`productpage`) assembled from
//! three services, `details`, `reviews` (versions v1, v2 and v3) and
//! `ratings`, faithful to the well-known Istio sample.
//!
//! ```text
//!                       ┌──► details
//! client ──► productpage┤
//!                       └──► reviews v1 (no stars)
//!                            reviews v2 (black stars) ──► ratings
//!                            reviews v3 (red stars)   ──► ratings
//! ```
//!
//! The apps know nothing about the mesh. They call each other by service
//! name (`http://reviews:9080`), forward the tracing headers and `end-user`
//! they received, and send their calls through `HTTP_PROXY` only when it is
//! set (the sidecar in loopback mode). The binaries in `src/bin/` are thin:
//! the handlers live here so that unit tests can drive them without sockets.

pub mod client;
pub mod details;
pub mod error;
pub mod headers;
pub mod model;
pub mod productpage;
pub mod ratings;
pub mod reviews;
pub mod server;
