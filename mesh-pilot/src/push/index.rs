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

use super::delegate::merge_delegates;
use super::destination::{DestinationRules, Rule, Subset};
use super::sidecar::Sidecars;
use super::PushContext;
use crate::registry::{exported_to, resolve_export, InboundPort, Registry};
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
    /// `exportTo`, resolved (empty: every namespace).
    export_to: Vec<String>,
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
    /// Root VirtualServices with their delegates' routes merged in, by
    /// snapshot position.
    merged: BTreeMap<usize, VirtualServiceSpec>,
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
    /// Some ServiceEntry or VirtualService is not exported everywhere.
    export_restricted: bool,
    /// The Sidecar resources.
    sidecars: Sidecars,
    /// Endpoints carry localities and some rule asks for locality load
    /// balancing (outlier detection or a locality setting).
    locality_aware: bool,
}

impl PushIndex {
    /// Index a snapshot and the registry made from it.
    pub fn build(config: &ConfigSnapshot, registry: &Registry) -> PushIndex {
        let mut index = PushIndex {
            inbound: registry.inbound_by_address(),
            rules: DestinationRules::build(config),
            merged: merge_delegates(config),
            export_restricted: registry.services.values().any(|s| !s.export_to.is_empty()),
            locality_aware: has_localities(registry) && wants_locality(config),
            sidecars: Sidecars::build(config),
            ..PushIndex::default()
        };
        for gw in config.gateways() {
            index.gateways.push(GatewayInfo {
                at: gw.at,
                key: format!("{}/{}", gw.namespace, gw.name),
            });
        }
        // Istio's order: oldest first, then by name and namespace; it
        // decides which VirtualService a sidecar uses for a host, and the
        // order of a gateway's merged routes.
        let mut vss: Vec<_> = config.virtual_services().collect();
        vss.sort_by_key(|vs| (config.objects[vs.at].created_ms, vs.name, vs.namespace));
        for vs in vss {
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
            let http = vs.spec.http.iter().flat_map(|h| h.matches.iter());
            let tcp = vs.spec.tcp.iter().flat_map(|t| t.matches.iter());
            let tls = vs.spec.tls.iter().flat_map(|t| t.matches.iter());
            let selectors = http
                .map(|m| &m.source_labels)
                .chain(tcp.map(|m| &m.source_labels))
                .chain(tls.map(|m| &m.source_labels));
            for selector in selectors {
                if !selector.is_empty() && !index.selector_ids.contains_key(selector) {
                    index
                        .selector_ids
                        .insert(selector.clone(), index.selectors.len());
                    index.selectors.push(selector.clone());
                }
            }
            let export_to = resolve_export(&vs.spec.export_to, vs.namespace);
            index.export_restricted |= !export_to.is_empty();
            index.virtual_services.push(VsInfo {
                at: vs.at,
                hosts,
                export_to,
            });
        }
        index
    }
}

fn has_localities(registry: &Registry) -> bool {
    registry
        .services
        .values()
        .any(|s| s.endpoints.iter().any(|e| !e.locality.is_empty()))
}

/// Whether any traffic policy (rule, subset or port level) or the mesh
/// config could make endpoints depend on where the proxy is.
fn wants_locality(config: &ConfigSnapshot) -> bool {
    use mesh_api::types::traffic_policy::TrafficPolicy;
    let policy_wants = |p: &TrafficPolicy| {
        p.outlier_detection.is_some()
            || p.load_balancer
                .as_ref()
                .is_some_and(|l| l.locality_lb_setting.is_some())
            || p.port_level_settings.iter().any(|pl| {
                pl.outlier_detection.is_some()
                    || pl
                        .load_balancer
                        .as_ref()
                        .is_some_and(|l| l.locality_lb_setting.is_some())
            })
    };
    config.mesh.locality_lb_setting.is_some()
        || config.destination_rules().any(|dr| {
            dr.spec.traffic_policy.as_ref().is_some_and(policy_wants)
                || dr
                    .spec
                    .subsets
                    .iter()
                    .any(|s| s.traffic_policy.as_ref().is_some_and(policy_wants))
        })
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
        let mut vs = self.config.virtual_service_at(info.at)?;
        if let Some(merged) = self.index.merged.get(&info.at) {
            vs.spec = merged;
        }
        Some(BoundVs {
            vs,
            hosts: &info.hosts,
        })
    }

    /// The VirtualServices the mesh's sidecars use (`gateways` empty or
    /// naming `mesh`), in config order.
    pub fn mesh_virtual_services(&self) -> Vec<BoundVs<'_>> {
        let mesh = self.index.mesh.iter();
        mesh.filter_map(|p| self.bound_vs(*p)).collect()
    }

    /// The mesh VirtualService that applies to `host` (an FQDN) on
    /// sidecars, as Istio picks it: the oldest that names the host
    /// exactly, else of those with a wildcard host matching it, the most
    /// specific wildcard (the oldest of equals). Later ones for the same
    /// host are not used (Istio drops their duplicate domains).
    /// Only VirtualServices exported to `namespace` (the proxy's) count.
    pub fn mesh_virtual_services_for(&self, host: &str, namespace: &str) -> Vec<BoundVs<'_>> {
        let visible = |p: &usize| self.vs_exported(*p, namespace);
        let exact = self.index.mesh_by_host.get(&host.to_ascii_lowercase());
        if let Some(&first) = exact.and_then(|e| e.iter().find(|p| visible(p))) {
            return self.bound_vs(first).into_iter().collect();
        }
        let best = self
            .index
            .mesh_wildcard
            .iter()
            .filter(|p| visible(p))
            .filter_map(|&p| {
                let hosts = self.index.virtual_services.get(p)?.hosts.as_slice();
                let specificity = hosts
                    .iter()
                    .filter(|h| mesh_api::host_matches(h, host))
                    .map(|h| h.len())
                    .max()?;
                Some((specificity, p))
            })
            // Longest pattern first, then the oldest (lowest position).
            .max_by_key(|&(len, p)| (len, std::cmp::Reverse(p)));
        best.and_then(|(_, p)| self.bound_vs(p))
            .into_iter()
            .collect()
    }

    /// The VirtualServices bound to a Gateway, oldest first (their routes
    /// merge in this order).
    /// Only those exported to `namespace` (the gateway proxy's) count.
    pub fn gateway_virtual_services(
        &self,
        gateway: GatewayRef<'_>,
        namespace: &str,
    ) -> Vec<BoundVs<'_>> {
        let key = self.index.gateways.get(gateway.id).map(|g| g.key.as_str());
        let bound = key.and_then(|k| self.index.by_gateway.get(k));
        let bound = bound.map_or(&[][..], Vec::as_slice).iter();
        bound
            .filter(|p| self.vs_exported(**p, namespace))
            .filter_map(|p| self.bound_vs(*p))
            .collect()
    }

    /// Whether the VirtualService at index position `pos` is exported to
    /// `namespace`.
    fn vs_exported(&self, pos: usize, namespace: &str) -> bool {
        self.index
            .virtual_services
            .get(pos)
            .is_some_and(|v| exported_to(&v.export_to, namespace))
    }

    /// The id of the Sidecar resource of `proxy` (sidecars only).
    pub fn sidecar_for(&self, proxy: &crate::proxy::Proxy) -> Option<usize> {
        if proxy.proxy_type != crate::proxy::ProxyType::Sidecar || self.index.sidecars.is_empty() {
            return None;
        }
        self.index
            .sidecars
            .for_proxy(&proxy.namespace, &proxy.labels)
    }

    /// Whether Sidecar `id` imports port `port` of `service` for a proxy
    /// of `namespace`.
    pub fn sidecar_imports(
        &self,
        id: usize,
        namespace: &str,
        service: &crate::registry::Service,
        port: u32,
    ) -> bool {
        self.index.sidecars.imports(id, namespace, service, port)
    }

    /// The outbound traffic policy Sidecar `id` sets, if any.
    pub fn sidecar_outbound_mode(&self, id: usize) -> Option<crate::mesh_config::OutboundMode> {
        self.index.sidecars.outbound_mode(id)
    }

    /// Whether endpoints depend on the proxy's locality in this push.
    pub fn locality_aware(&self) -> bool {
        self.index.locality_aware
    }

    /// Whether some ServiceEntry or VirtualService hides itself from some
    /// namespace (`exportTo`): then what a proxy is sent depends on its
    /// namespace.
    pub fn export_restricted(&self) -> bool {
        self.index.export_restricted
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
            .gateway_virtual_services(gw, "edge")
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
    fn one_virtual_service_per_host_oldest_exact_then_most_specific_wildcard() {
        let yaml = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: wild, namespace: shop}
spec: {hosts: ["*.example.com"], http: [{route: [{destination: {host: b.example.com}}]}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: narrow, namespace: shop}
spec: {hosts: ["*.api.example.com"], http: [{route: [{destination: {host: b.example.com}}]}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: young, namespace: shop}
spec: {hosts: [b.example.com], http: [{route: [{destination: {host: b.example.com}}]}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: old, namespace: shop}
spec: {hosts: [B.example.com], http: [{route: [{destination: {host: b.example.com}}]}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge-only, namespace: shop}
spec: {hosts: [b.example.com], gateways: [gw], http: [{route: [{destination: {host: b.example.com}}]}]}
"#;
        let mut config = snapshot_from_str("h.yaml", yaml).unwrap();
        for o in &mut config.objects {
            o.created_ms = match o.name() {
                "young" => 300,
                "old" => 100,
                "edge-only" => 50,
                _ => 200,
            };
        }
        let ctx = PushContext::new(Arc::new(config));
        let names = |host: &str| -> Vec<&str> {
            ctx.mesh_virtual_services_for(host, "shop")
                .iter()
                .map(|b| b.vs.name)
                .collect()
        };
        assert_eq!(names("b.example.com"), ["old"], "oldest exact, any case");
        assert_eq!(names("B.EXAMPLE.com"), ["old"]);
        assert_eq!(names("c.example.com"), ["wild"]);
        assert_eq!(
            names("v1.api.example.com"),
            ["narrow"],
            "most specific wildcard"
        );
        assert!(names("example.com").is_empty());
        // The mesh's VirtualServices are in Istio's order: oldest first.
        let order: Vec<&str> = ctx
            .mesh_virtual_services()
            .iter()
            .map(|b| b.vs.name)
            .collect();
        assert_eq!(order, ["old", "narrow", "wild", "young"]);
    }

    #[test]
    fn export_to_hides_virtual_services_and_services_from_other_namespaces() {
        let yaml = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: private, namespace: shop}
spec:
  hosts: [cart.shop.svc.cluster.local]
  exportTo: ["."]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 198.18.0.5}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a-own, namespace: shop}
spec:
  hosts: [cart.shop.svc.cluster.local]
  exportTo: ["."]
  http: [{route: [{destination: {host: cart.shop.svc.cluster.local}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: everyone, namespace: shop}
spec:
  hosts: [cart.shop.svc.cluster.local]
  exportTo: ["*"]
  http: [{route: [{destination: {host: cart.shop.svc.cluster.local}}]}]
"#;
        let ctx = PushContext::new(Arc::new(snapshot_from_str("e.yaml", yaml).unwrap()));
        assert!(ctx.export_restricted());
        let host = "cart.shop.svc.cluster.local";
        let names = |ns: &str| -> Vec<&str> {
            ctx.mesh_virtual_services_for(host, ns)
                .iter()
                .map(|b| b.vs.name)
                .collect()
        };
        // By name `a-own` comes first, but only its own namespace sees it.
        assert_eq!(names("shop"), ["a-own"]);
        assert_eq!(names("default"), ["everyone"]);
        let svc = ctx.registry.service(host).unwrap();
        let view = |ns: &str| crate::translate::scope::ServiceView::new(&ctx, ns, None);
        assert!(view("shop").sees(&ctx, svc));
        assert!(!view("default").sees(&ctx, svc));
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
