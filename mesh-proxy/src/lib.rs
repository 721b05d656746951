//! Proxy library.
pub mod model;
pub mod admin;
pub mod xds;
