//! xDS stage, reporting: what the ADS client accepted and rejected, shared
//! with the admin server (`/ready`, `/config_dump`), warming listeners too. Updated by the client
//! after each response; read by admin requests. The lock is never held
//! across an `.await`.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;

use crate::xds::resource_type::ResourceType;

/// A rejected response, as recorded for the admin server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nack {
    /// Type URL of the rejected response.
    pub type_url: String,
    /// The `version_info` the response carried.
    pub version: String,
    /// The response's nonce.
    pub nonce: String,
    /// Each failing resource and why, one per line.
    pub reason: String,
}

/// A point-in-time copy of the client's status.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusView {
    /// An ADS stream to pilot is open.
    pub connected: bool,
    /// Last ACKed version per type URL.
    pub acked: BTreeMap<String, String>,
    /// Last NACK per type URL.
    pub nacks: BTreeMap<String, Nack>,
    /// The most recent NACK of any type.
    pub last_nack: Option<Nack>,
    /// Listeners LDS asked for that wait for their routes or endpoints
    /// (their older version, if any, still serving).
    pub warming_listeners: Vec<String>,
    /// Every listener of an accepted LDS was warm at least once (Envoy's
    /// end of initialisation).
    pub warmed: bool,
}

/// Shared xDS status: written by the ADS client, read by admin.
#[derive(Debug, Default)]
pub struct XdsStatus {
    inner: Mutex<StatusView>,
}

impl XdsStatus {
    /// An empty status: not connected, nothing applied.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, StatusView> {
        // A panic elsewhere while holding the lock leaves plain data that is
        // still consistent enough to report.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the current status.
    pub fn view(&self) -> StatusView {
        self.lock().clone()
    }

    /// Listeners and clusters have each been applied at least once, and
    /// the listeners have warmed (their routes and endpoints arrived).
    pub fn ready(&self) -> bool {
        let view = self.lock();
        view.warmed
            && [ResourceType::Listener, ResourceType::Cluster]
                .iter()
                .all(|t| view.acked.contains_key(t.type_url()))
    }

    /// The ACKed version of one type, if any.
    pub fn acked(&self, ty: ResourceType) -> Option<String> {
        self.lock().acked.get(ty.type_url()).cloned()
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.lock().connected = connected;
    }

    pub(crate) fn record_ack(&self, type_url: &str, version: &str) {
        self.lock()
            .acked
            .insert(type_url.to_owned(), version.to_owned());
    }

    pub(crate) fn set_warming(&self, warming: Vec<String>) {
        let mut view = self.lock();
        if warming.is_empty() && view.acked.contains_key(ResourceType::Listener.type_url()) {
            view.warmed = true;
        }
        view.warming_listeners = warming;
    }

    pub(crate) fn record_nack(&self, nack: Nack) {
        let mut view = self.lock();
        view.nacks.insert(nack.type_url.clone(), nack.clone());
        view.last_nack = Some(nack);
    }
}
