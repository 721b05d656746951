//! Proxy library.
pub mod model;
