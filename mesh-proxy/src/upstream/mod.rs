//! The upstream stage of the data path (cluster LB ─► **upstream pool** ─►
//! endpoint): dial the endpoint the load balancer chose (connect timeout,
//! source address, TCP keepalive, TLS origination), count every connection
//! against the cluster's `max_connections`, and keep HTTP connections
//! pooled per cluster and endpoint.
//!
//! ```text
//!  pool.rs  send(): max_requests ─► http1.rs (one request per connection, FIFO pending queue)
//!                                └► http2.rs (streams up to max_concurrent_streams per connection)
//!           connect_tcp(): max_connections ─► connect.rs
//!  connect.rs  TCP (bind, keepalive, nodelay) ─► tls.rs (rustls) ─► UpstreamStream (holds the slot)
//! ```

pub mod connect;
mod http1;
mod http2;
pub mod pool;
pub mod tls;

pub use connect::{connect, ConnectFailure, UpstreamStream};

/// The body type requests are sent upstream with: the downstream body,
/// streamed, never buffered whole.
pub type RequestBody = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, hyper::Error>;
pub use pool::{UpstreamBody, UpstreamPool};
