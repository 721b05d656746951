//! xDS stage of the proxy (DESIGN.md, data plane): the ADS client that
//! talks to pilot, the conversion of Envoy resources into the proxy's own
//! model, and the status the admin server reports.
//!
//! ```text
//! pilot ══ADS══► client ─► ads::AdsState ─► convert ─► Snapshot ─► SnapshotStore ─► listeners
//!                  ▲            │ ACK / NACK                                       (data path)
//!                  └────────────┘                 status ─► admin (/config_dump, /ready)
//! ```
//!
//! Envoy protobuf types stay inside this module (STYLE.md rule 6).

pub mod ads;
pub mod client;
pub mod convert;
pub mod error;
pub mod node;
pub mod resource_type;
pub mod status;

pub use client::{run, XdsConfig};
pub use error::{ConvertError, ResourceError, XdsError};
pub use resource_type::ResourceType;
pub use status::XdsStatus;
