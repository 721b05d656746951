//! The lookups of one push, built once per config version (STYLE.md rule
//! 13, as istiod's PushContext): DestinationRule subsets by host, the
//! VirtualServices of the mesh and of each Gateway with their hosts already
//! resolved, the `sourceLabels` selectors any route matches on, and the
//! inbound ports of every workload address. The translator reads these
//! instead of scanning (and formatting) the whole config per proxy.
//!
//! ```text
//!  ConfigSnapshot + Registry ──► PushIndex::build ──► PushContext::{subsets, inbound_ports,
//!                                                        mesh_virtual_services, gateways, ...}
//! ```

use std::collections::{BTreeMap, HashMap};

use mesh_api::{fqdn, GatewaySpec, VirtualServiceSpec};

use super::destination::{DestinationRules, Rule, Subset};
use super::PushContext;
use crate::registry::{InboundPort, Registry};
use crate::source::{ConfigSnapshot, Named};

/// The `gateways` entry that means "the sidecars of the mesh".
pub const MESH_GATEWAY: &str = "mesh";

/// What the index knows of one VirtualService.
#[derive(Debug, Clone)]
struct VsInfo {
    /// Position in the snapshot's objects.
    at: usize,
    /// `spec.hosts` as FQDNs (short names resolved in the VS's namespace).
    hosts: Vec<String>,
}

/// What the index knows of one Gateway.
#[derive(Debug, Clone)]
struct GatewayInfo {
    /// Position in the snapshot's objects.
    at: usize,
    /// `namespace/name`, the form VirtualServices bind to.
    key: String,
}

/// A VirtualService with its hosts resolved.
#[derive(Debug, Clone, Copy)]
pub struct BoundVs<'a> {
    /// The VirtualService.
    pub vs: Named<'a, VirtualServiceSpec>,
    /// Its `spec.hosts` as FQDNs.
    pub hosts: &'a [String],
}

/// The indexes of one push.
#[derive(Debug, Default)]
pub struct PushIndex {
    /// Every host's merged DestinationRule.
    rules: DestinationRules,
    /// Every VirtualService, in config order.
    virtual_services: Vec<VsInfo>,
    /// Positions (in `virtual_services`) of those the sidecars use.
    mesh: Vec<usize>,
    /// Lower-cased exact host -> positions of the mesh VirtualServices
    /// naming it, in config order.
    mesh_by_host: HashMap<String, Vec<usize>>,
    /// Positions of the mesh VirtualServices with a wildcard host.
    mesh_wildcard: Vec<usize>,
    /// Gateway `namespace/name` -> positions of the VirtualServices bound
    /// to it, in config order.
    by_gateway: HashMap<String, Vec<usize>>,
    /// Every Gateway, in config order.
    gateways: Vec<GatewayInfo>,
    /// Distinct non-empty `sourceLabels` of any route match, by id.
    selectors: Vec<BTreeMap<String, String>>,
    /// Selector -> its id in `selectors`.
    selector_ids: HashMap<BTreeMap<String, String>, usize>,
    /// Workload address -> the ports its sidecar receives.
    inbound: HashMap<String, Vec<InboundPort>>,
}

impl PushIndex {
    /// Index a snapshot and the registry made from it.
    pub fn build(config: &ConfigSnapshot, registry: &Registry) -> PushIndex {
        let mut index = PushIndex {
            inbound: registry.inbound_by_address(),
            rules: DestinationRules::build(config),
            ..PushIndex::default()
        };
        for gw in config.gateways() {
            index.gateways.push(GatewayInfo {
                at: gw.at,
                key: format!("{}/{}", gw.namespace, gw.name),
            });
        }
        for vs in config.virtual_services() {
            let pos = index.virtual_services.len();
            let gateways = &vs.spec.gateways;
            let hosts: Vec<String> = vs
                .spec
                .hosts
                .iter()
                .map(|h| fqdn(h, vs.namespace))
                .collect();
            if gateways.is_empty() || gateways.iter().any(|g| g == MESH_GATEWAY) {
                index.mesh.push(pos);
                for h in &hosts {
                    if h.starts_with('*') {
                        if index.mesh_wildcard.last() != Some(&pos) {
                            index.mesh_wildcard.push(pos);
                        }
                        continue;
                    }
                    let named = index
                        .mesh_by_host
                        .entry(h.to_ascii_lowercase())
                        .or_default();
                    if named.last() != Some(&pos) {
                        named.push(pos);
                    }
                }
            }
            for g in gateways {
                let key = match g.split_once('/') {
                    Some(_) => g.clone(),
                    None => format!("{}/{g}", vs.namespace),
                };
                let bound = index.by_gateway.entry(key).or_default();
                // `[gw, default/gw]` binds once.
                if bound.last() != Some(&pos) {
                    bound.push(pos);
                }
            }
            for m in vs.spec.http.iter().flat_map(|h| h.matches.iter()) {
                let selector = &m.source_labels;
                if !selector.is_empty() && !index.selector_ids.contains_key(selector) {
                    index
                        .selector_ids
                        .insert(selector.clone(), index.selectors.len());
                    index.selectors.push(selector.clone());
                }
            }
            index.virtual_services.push(VsInfo { at: vs.at, hosts });
        }
        index
    }
}

/// Whether a VirtualService `gateways` entry (`name`, `ns/name` or `mesh`)
/// of a VirtualService in `vs_namespace` names the Gateway `ns/name`.
/// Compares in place: this runs inside route generation loops.
pub fn names_gateway(entry: &str, vs_namespace: &str, gateway: (&str, &str)) -> bool {
    match entry.split_once('/') {
        Some((ns, name)) => (ns, name) == gateway,
        None => (vs_namespace, entry) == gateway,
    }
}

/// A Gateway of the push: its position in the index and its object.
#[derive(Debug, Clone, Copy)]
pub struct GatewayRef<'a> {
    /// Its id within this push (see [`PushContext::gateway`]).
    pub id: usize,
    /// The Gateway.
    pub gateway: Named<'a, GatewaySpec>,
}

/// The lookups, on the push context that owns the index.
impl PushContext {
    /// The DestinationRule subsets of `host` (an FQDN).
    pub fn subsets(&self, host: &str) -> &[Subset] {
        self.destination_rule(host)
            .map_or(&[], |r| r.subsets.as_slice())
    }

    /// The merged DestinationRule of `host` (an FQDN), if one applies.
    pub fn destination_rule(&self, host: &str) -> Option<&Rule> {
        self.index.rules.for_host(host)
    }

    /// The ports the workload at `ip` receives (as
    /// [`Registry::inbound_ports`]).
    pub fn inbound_ports(&self, ip: &str) -> &[InboundPort] {
        self.index.inbound.get(ip).map_or(&[], Vec::as_slice)
    }

    fn bound_vs(&self, pos: usize) -> Option<BoundVs<'_>> {
        let info = self.index.virtual_services.get(pos)?;
        Some(BoundVs {
            vs: self.config.virtual_service_at(info.at)?,
            hosts: &info.hosts,
        })
    }

    /// The VirtualServices the mesh's sidecars use (`gateways` empty or
    /// naming `mesh`), in config order.
    pub fn mesh_virtual_services(&self) -> Vec<BoundVs<'_>> {
        let mesh = self.index.mesh.iter();
        mesh.filter_map(|p| self.bound_vs(*p)).collect()
    }

    /// The mesh VirtualServices with a host matching `host` (an FQDN), in
    /// config order: those naming it exactly, from the by-host index, and
    /// those with a wildcard host that matches it.
    pub fn mesh_virtual_services_for(&self, host: &str) -> Vec<BoundVs<'_>> {
        let exact = self.index.mesh_by_host.get(&host.to_ascii_lowercase());
        let exact = exact.map_or(&[][..], Vec::as_slice);
        let wild = self.index.mesh_wildcard.iter().copied().filter(|p| {
            let hosts = self
                .index
                .virtual_services
                .get(*p)
                .map(|v| v.hosts.as_slice());
            hosts
                .unwrap_or_default()
                .iter()
                .any(|h| mesh_api::host_matches(h, host))
        });
        let mut positions: Vec<usize> = exact.iter().copied().chain(wild).collect();
        positions.sort_unstable();
        positions.dedup();
        positions
            .into_iter()
            .filter_map(|p| self.bound_vs(p))
            .collect()
    }

    /// The VirtualServices bound to a Gateway, in config order.
    pub fn gateway_virtual_services(&self, gateway: GatewayRef<'_>) -> Vec<BoundVs<'_>> {
        let key = self.index.gateways.get(gateway.id).map(|g| g.key.as_str());
        let bound = key.and_then(|k| self.index.by_gateway.get(k));
        let bound = bound.map_or(&[][..], Vec::as_slice).iter();
        bound.filter_map(|p| self.bound_vs(*p)).collect()
    }

    /// Every Gateway, in config order.
    pub fn gateways(&self) -> impl Iterator<Item = GatewayRef<'_>> {
        (0..self.index.gateways.len()).filter_map(|id| self.gateway(id))
    }

    /// The Gateway with this id.
    pub fn gateway(&self, id: usize) -> Option<GatewayRef<'_>> {
        let info = self.index.gateways.get(id)?;
        Some(GatewayRef {
            id,
            gateway: self.config.gateway_at(info.at)?,
        })
    }

    /// The distinct non-empty `sourceLabels` selectors of the push's route
    /// matches; a proxy's route scope records which of them it matches.
    pub fn source_selectors(&self) -> &[BTreeMap<String, String>] {
        &self.index.selectors
    }

    /// The id (position in [`PushContext::source_selectors`]) of a
    /// `sourceLabels` selector of this push.
    pub fn source_selector(&self, labels: &BTreeMap<String, String>) -> Option<usize> {
        self.index.selector_ids.get(labels).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::snapshot_from_str;
    use std::sync::Arc;

    const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: both, namespace: edge}
spec:
  hosts: [a]
  gateways: [gw, mesh, edge/gw]
  http: [{match: [{sourceLabels: {app: x}}, {sourceLabels: {app: x}}], route: [{destination: {host: a}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mesh-only, namespace: shop}
spec:
  hosts: [b.example.com]
  http: [{match: [{sourceLabels: {app: y}}], route: [{destination: {host: b.example.com}}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a, namespace: edge}
spec:
  host: a
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a2, namespace: edge}
spec:
  host: a.edge.svc.cluster.local
  subsets: [{name: v1, labels: {version: other}}, {name: v2, labels: {version: v2}}]
"#;

    fn ctx() -> PushContext {
        PushContext::new(Arc::new(snapshot_from_str("i.yaml", CONFIG).unwrap()))
    }

    #[test]
    fn virtual_services_by_gateway_and_for_the_mesh() {
        let ctx = ctx();
        let mesh: Vec<(&str, &[String])> = ctx
            .mesh_virtual_services()
            .iter()
            .map(|b| (b.vs.name, b.hosts))
            .collect();
        assert_eq!(
            mesh,
            [
                ("both", &["a.edge.svc.cluster.local".to_string()][..]),
                ("mesh-only", &["b.example.com".to_string()][..]),
            ]
        );
        let gw = ctx.gateways().next().unwrap();
        let bound: Vec<&str> = ctx
            .gateway_virtual_services(gw)
            .iter()
            .map(|b| b.vs.name)
            .collect();
        assert_eq!(bound, ["both"], "two entries naming one gateway bind once");
        assert!(names_gateway("gw", "edge", ("edge", "gw")));
        assert!(names_gateway("edge/gw", "shop", ("edge", "gw")));
        assert!(!names_gateway("gw", "shop", ("edge", "gw")));
        assert!(!names_gateway("mesh", "edge", ("edge", "gw")));
    }

    #[test]
    fn mesh_virtual_services_by_host_keep_config_order_and_wildcards() {
        let yaml = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: wild, namespace: shop}
spec: {hosts: ["*.example.com"], http: [{route: [{destination: {host: b.example.com}}]}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: exact, namespace: shop}
spec: {hosts: [B.example.com, b.example.com], http: [{route: [{destination: {host: b.example.com}}]}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge-only, namespace: shop}
spec: {hosts: [b.example.com], gateways: [gw], http: [{route: [{destination: {host: b.example.com}}]}]}
"#;
        let ctx = PushContext::new(Arc::new(snapshot_from_str("h.yaml", yaml).unwrap()));
        let names = |host: &str| -> Vec<&str> {
            ctx.mesh_virtual_services_for(host)
                .iter()
                .map(|b| b.vs.name)
                .collect()
        };
        // The same as scanning every mesh VirtualService, in config order.
        for host in [
            "b.example.com",
            "B.EXAMPLE.com",
            "c.example.com",
            "example.com",
            "b",
        ] {
            let scanned: Vec<&str> = ctx
                .mesh_virtual_services()
                .iter()
                .filter(|b| b.hosts.iter().any(|h| mesh_api::host_matches(h, host)))
                .map(|b| b.vs.name)
                .collect();
            assert_eq!(names(host), scanned, "{host}");
        }
        assert_eq!(names("b.example.com").len(), 2);
        assert_eq!(names("c.example.com"), ["wild"]);
        assert!(names("example.com").is_empty());
    }

    #[test]
    fn subsets_first_definition_wins_and_selectors_are_distinct() {
        let ctx = ctx();
        let subsets: Vec<(&str, &str)> = ctx
            .subsets("a.edge.svc.cluster.local")
            .iter()
            .map(|s| (s.name.as_str(), s.labels["version"].as_str()))
            .collect();
        assert_eq!(subsets, [("v1", "v1"), ("v2", "v2")]);
        assert!(ctx.subsets("a").is_empty());
        assert_eq!(ctx.source_selectors().len(), 2);
        let x = BTreeMap::from([("app".to_string(), "x".to_string())]);
        assert_eq!(ctx.source_selector(&x), Some(0));
    }
}
