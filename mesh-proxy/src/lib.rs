//! mesh-proxy, the data plane of DESIGN.md: a sidecar and gateway proxy
//! driven by xDS. One module per stage; each uses only the stages below it
//! and the shared modules, never a neighbour that uses it back:
//!
//! ```text
//!  xds/                  ADS client: pilot's resources converted, then ACKed
//!    │                   and published, or NACKed
//!    ▼
//!  model::SnapshotStore  the config: one immutable Snapshot, swapped whole
//!    │
//!    ▼
//!  listener/             accept, original destination, protocol detection,
//!    ├─────────────┐     filter chain
//!    ▼             ▼
//!  hcm/          tcp_proxy   the two network filters, side by side: HTTP
//!  (router,        │         connection manager, or bytes relayed as they are
//!   headers)       │
//!    ├─────────────┘
//!    ▼
//!  cluster/              pick a cluster and an endpoint (LB, DNS, original dst)
//!    │
//!    ▼
//!  upstream/             dial the endpoint, pool HTTP connections
//!
//!  data_plane            state listener/, hcm/ and tcp_proxy share: DataPlane
//!                        (store, LB state, pools) and Downstream (addresses)
//!  access_log            beside hcm/ and tcp_proxy: what each request or
//!                        connection did, written by one task per destination
//!  model, error          config types and the one request error, used by all
//!  admin, init           beside the path: the admin server (reads the store
//!                        and xDS status) and `mesh-proxy init` (iptables)
//! ```
//!
//! `main.rs` wires them: the xDS client publishes snapshots, the listener
//! stage serves from them, the admin server reports on both.

pub mod access_log;
pub mod admin;
pub mod cluster;
pub mod data_plane;
pub mod error;
pub mod hcm;
pub mod init;
pub mod listener;
pub mod model;
pub mod tcp_proxy;
pub mod upstream;
pub mod xds;
