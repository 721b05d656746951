//! The benchmark suite's shared parts: process CPU and memory from /proc,
//! and the figures a run reports.
//!
//! ```text
//!  bin/pilot-scale  ── N services, M ADS clients ──► mesh-pilot (release)
//!  bin/mesh-bench   ── oha / echo load ──► direct | Envoy pair | mesh-proxy pair
//!          both read procstat.rs for CPU seconds and RSS of what they started
//! ```

pub mod dataplane;
pub mod pilot;
pub mod procstat;
