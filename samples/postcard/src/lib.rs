//! The postcard sample: a `greeter` web page that shows a message fetched
//! from a `messenger` service. Both are ordinary HTTP servers that know
//! nothing about the mesh, except that `greeter` sends its outbound call
//! through the HTTP proxy named in `HTTP_PROXY` (the sidecar in loopback
//! mode) and forwards the tracing headers it received.
//!
//! The binaries in `src/bin/` are thin: the handlers live here so that the
//! unit tests can drive them without sockets.

pub mod card;
pub mod greeter;
pub mod messenger;
pub mod server;
