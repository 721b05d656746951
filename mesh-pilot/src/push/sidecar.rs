//! `Sidecar` resources, once per push: which one applies to a proxy, and
//! what it lets the proxy know of. A sidecar is told only of the services
//! its Sidecar's `egress[].hosts` import (a smaller config per proxy), and
//! its unknown outbound traffic follows the Sidecar's
//! `outboundTrafficPolicy` over the mesh's.
//!
//! ```text
//!  Sidecars::build ──► for_proxy(namespace, labels) ──► id ──► imports(id, proxy ns, service, port)
//!                                                          └─► outbound_mode(id)
//! ```
//!
//! Istio's choice of Sidecar: in the proxy's namespace, the oldest whose
//! `workloadSelector` matches the proxy's labels, else the namespace's
//! Sidecar without a selector, else the one without a selector in the root
//! namespace (mesh config `rootNamespace`, `istio-system`). Gateways have
//! none. An egress host is `NAMESPACE/DNSNAME`: the namespace `*` (any),
//! `.` (the proxy's own), `~` (none) or a name; the DNS name `*`, a
//! `*.suffix` wildcard or an FQDN, matched against the service's hosts.

use mesh_api::host_matches;
use mesh_api::types::sidecar::{OutboundTrafficMode, SidecarSpec};

use crate::mesh_config::OutboundMode;
use crate::registry::{labels_match, Service};
use crate::source::ConfigSnapshot;

/// One Sidecar of the push.
#[derive(Debug, Clone)]
struct Entry {
    namespace: String,
    spec: SidecarSpec,
    created_ms: u64,
    name: String,
}

/// The Sidecars of a push.
#[derive(Debug, Default)]
pub struct Sidecars {
    /// In Istio's order: oldest first, then name.
    entries: Vec<Entry>,
    /// The mesh's root namespace.
    root: String,
}

impl Sidecars {
    /// The Sidecars of a snapshot.
    pub fn build(config: &ConfigSnapshot) -> Sidecars {
        let mut entries: Vec<Entry> = config
            .sidecars()
            .map(|s| Entry {
                namespace: s.namespace.to_string(),
                spec: s.spec.clone(),
                created_ms: config.objects[s.at].created_ms,
                name: s.name.to_string(),
            })
            .collect();
        entries.sort_by(|a, b| (a.created_ms, &a.name).cmp(&(b.created_ms, &b.name)));
        Sidecars {
            entries,
            root: config.mesh.root_namespace().to_string(),
        }
    }

    /// Whether the push has any Sidecar.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The Sidecar (its id) of a sidecar proxy of `namespace` with `labels`.
    pub fn for_proxy(
        &self,
        namespace: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Option<usize> {
        let in_ns = |e: &Entry, ns: &str| e.namespace == ns;
        let selected = self.entries.iter().position(|e| {
            in_ns(e, namespace)
                && e.spec
                    .workload_selector
                    .as_ref()
                    .is_some_and(|s| labels_match(&s.labels, labels))
        });
        let default_of = |ns: &str| {
            self.entries
                .iter()
                .position(|e| in_ns(e, ns) && e.spec.workload_selector.is_none())
        };
        selected
            .or_else(|| default_of(namespace))
            .or_else(|| default_of(&self.root))
    }

    /// Whether the Sidecar `id` imports port `port` of `service` for a
    /// proxy of `namespace`: some egress listener (of that port, or of any
    /// port) lists a host matching it.
    pub fn imports(&self, id: usize, namespace: &str, service: &Service, port: u32) -> bool {
        let Some(entry) = self.entries.get(id) else {
            return true;
        };
        entry.spec.egress.iter().any(|listener| {
            let port_ok = listener
                .port
                .as_ref()
                .is_none_or(|p| p.number == 0 || p.number == port);
            port_ok
                && listener
                    .hosts
                    .iter()
                    .any(|h| egress_host_matches(h, namespace, service))
        })
    }

    /// The outbound traffic policy the Sidecar `id` sets, if any.
    pub fn outbound_mode(&self, id: usize) -> Option<OutboundMode> {
        let mode = self
            .entries
            .get(id)?
            .spec
            .outbound_traffic_policy
            .as_ref()?
            .mode?;
        Some(match mode {
            OutboundTrafficMode::RegistryOnly => OutboundMode::RegistryOnly,
            OutboundTrafficMode::AllowAny => OutboundMode::AllowAny,
        })
    }
}

/// `NAMESPACE/DNSNAME` against a service, for a proxy of `namespace`.
fn egress_host_matches(host: &str, proxy_namespace: &str, service: &Service) -> bool {
    let (ns, name) = host.split_once('/').unwrap_or(("*", host));
    let ns_ok = match ns {
        "*" => true,
        "." => service.namespace == proxy_namespace,
        "~" => false,
        ns => service.namespace == ns,
    };
    ns_ok && (name == "*" || host_matches(name, &service.hostname))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use crate::source::snapshot_from_str;
    use std::collections::BTreeMap;

    const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ratings, namespace: shop}
spec:
  workloadSelector: {labels: {app: ratings}}
  egress:
  - port: {number: 5432, name: tcp, protocol: TCP}
    hosts: ["*/db.example.com"]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: istio-system}
spec:
  egress: [{hosts: ["*/*.example.com"]}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cart, namespace: shop}
spec:
  hosts: [cart.shop.svc.cluster.local]
  ports: [{number: 80, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: data}
spec:
  hosts: [db.example.com]
  ports: [{number: 5432, name: tcp, protocol: TCP}, {number: 9090, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: other, namespace: data}
spec:
  hosts: [other.data.svc.cluster.local]
  ports: [{number: 80, name: http, protocol: HTTP}]
"#;

    #[test]
    fn the_sidecar_of_a_proxy_and_what_it_imports() {
        let config = snapshot_from_str("s.yaml", CONFIG).unwrap();
        let registry = Registry::build(&config);
        let sidecars = Sidecars::build(&config);
        let labels = |app: &str| BTreeMap::from([("app".to_string(), app.to_string())]);
        let svc = |h: &str| registry.service(h).unwrap();
        let default = sidecars.for_proxy("shop", &labels("cart")).unwrap();
        let ratings = sidecars.for_proxy("shop", &labels("ratings")).unwrap();
        let elsewhere = sidecars.for_proxy("prod", &labels("x")).unwrap();
        assert_ne!(default, ratings);
        // `./*`: the proxy's own namespace only.
        assert!(sidecars.imports(default, "shop", svc("cart.shop.svc.cluster.local"), 80));
        assert!(!sidecars.imports(default, "shop", svc("db.example.com"), 5432));
        // A port-bound egress listener imports only that port.
        assert!(sidecars.imports(ratings, "shop", svc("db.example.com"), 5432));
        assert!(!sidecars.imports(ratings, "shop", svc("db.example.com"), 9090));
        assert!(!sidecars.imports(ratings, "shop", svc("cart.shop.svc.cluster.local"), 80));
        assert_eq!(
            sidecars.outbound_mode(ratings),
            Some(OutboundMode::RegistryOnly)
        );
        assert_eq!(sidecars.outbound_mode(default), None);
        // The root namespace's default applies where a namespace has none.
        assert!(sidecars.imports(elsewhere, "prod", svc("db.example.com"), 9090));
        assert!(!sidecars.imports(elsewhere, "prod", svc("other.data.svc.cluster.local"), 80));
    }
}
