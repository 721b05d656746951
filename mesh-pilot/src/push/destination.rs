//! DestinationRule resolution, once per push: for every host, the one
//! merged rule Istio would apply to it, and from it the traffic policy of
//! each (subset, port) cluster. The cluster, endpoint and route builders
//! look rules up here instead of scanning the config.
//!
//! ```text
//!  destination_rules() ──► DestinationRules::build ──► for_host(HOST) ──► Rule
//!                                                       Rule::policy(subset, port) ──► TrafficPolicy
//! ```
//!
//! Istio's rules, followed here:
//! - Rules for the same host merge: the first one (in config order, which
//!   the source keeps stable) is the base; the subsets of later ones are
//!   added unless a subset of that name exists; a later traffic policy is
//!   used only when no earlier rule has one.
//! - An exact host beats a wildcard (`*.example.com`); of several matching
//!   wildcards the longest wins.
//! - A subset's policy overrides the rule's field by field
//!   (`connectionPool`, `loadBalancer`, `outlierDetection`, `tls`, ...), and
//!   `portLevelSettings` for the cluster's port replace those four fields
//!   whole (port-level settings do not inherit).

use std::collections::{BTreeMap, HashMap};

use mesh_api::names;
use mesh_api::types::traffic_policy::TrafficPolicy;
use mesh_api::{fqdn, host_matches};

use crate::source::ConfigSnapshot;

/// A DestinationRule subset.
#[derive(Debug, Clone, PartialEq)]
pub struct Subset {
    /// Subset name.
    pub name: String,
    /// Labels an endpoint must carry.
    pub labels: BTreeMap<String, String>,
    /// The subset's own traffic policy.
    pub policy: Option<TrafficPolicy>,
}

/// The merged DestinationRule of one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// `namespace/name` of the first (base) rule.
    pub namespace: String,
    /// Name of the first (base) rule.
    pub name: String,
    /// The rule-level traffic policy.
    pub policy: Option<TrafficPolicy>,
    /// The subsets, first definition of a name wins.
    pub subsets: Vec<Subset>,
}

impl Rule {
    /// Istio's `istio.config` path of the base rule, for metadata.
    pub fn config_path(&self) -> String {
        names::config_path("DestinationRule", &self.namespace, &self.name)
    }

    /// The subset called `name`.
    pub fn subset(&self, name: &str) -> Option<&Subset> {
        self.subsets.iter().find(|s| s.name == name)
    }

    /// The traffic policy of the cluster for `subset` (`""` for the whole
    /// service) on service port `port`, merged as Istio merges it.
    pub fn policy(&self, subset: &str, port: u32) -> Option<TrafficPolicy> {
        let base = self.policy.as_ref().map(|p| at_port(p, port));
        let sub = self.subset(subset).and_then(|s| s.policy.as_ref());
        match (base, sub) {
            (base, None) => base,
            (base, Some(sub)) => {
                let mut merged = base.unwrap_or_default();
                if sub.connection_pool.is_some() {
                    merged.connection_pool = sub.connection_pool.clone();
                }
                if sub.load_balancer.is_some() {
                    merged.load_balancer = sub.load_balancer.clone();
                }
                if sub.outlier_detection.is_some() {
                    merged.outlier_detection = sub.outlier_detection.clone();
                }
                if sub.tls.is_some() {
                    merged.tls = sub.tls.clone();
                }
                if sub.tunnel.is_some() {
                    merged.tunnel = sub.tunnel.clone();
                }
                if sub.proxy_protocol.is_some() {
                    merged.proxy_protocol = sub.proxy_protocol.clone();
                }
                if sub.retry_budget.is_some() {
                    merged.retry_budget = sub.retry_budget.clone();
                }
                Some(at_port(&merged_with_ports(merged, sub), port))
            }
        }
    }
}

/// `policy` with the port-level settings of `port` applied (they replace
/// the four fields whole) and none left.
fn at_port(policy: &TrafficPolicy, port: u32) -> TrafficPolicy {
    let mut out = TrafficPolicy {
        port_level_settings: Vec::new(),
        ..policy.clone()
    };
    let matching = policy
        .port_level_settings
        .iter()
        .find(|p| p.port.as_ref().is_some_and(|s| s.number == port));
    if let Some(p) = matching {
        out.connection_pool = p.connection_pool.clone();
        out.load_balancer = p.load_balancer.clone();
        out.outlier_detection = p.outlier_detection.clone();
        out.tls = p.tls.clone();
    }
    out
}

/// A subset's merged policy keeps the subset's port-level settings so they
/// apply after the merge.
fn merged_with_ports(mut merged: TrafficPolicy, sub: &TrafficPolicy) -> TrafficPolicy {
    merged.port_level_settings = sub.port_level_settings.clone();
    merged
}

/// Every host's merged rule, for one push.
#[derive(Debug, Default)]
pub struct DestinationRules {
    /// Exact host (FQDN, lower case) -> its rule.
    exact: HashMap<String, Rule>,
    /// Wildcard hosts (`*.example.com`) and their rules, longest first.
    wildcard: Vec<(String, Rule)>,
}

impl DestinationRules {
    /// Resolve the DestinationRules of a snapshot.
    pub fn build(config: &ConfigSnapshot) -> DestinationRules {
        let mut by_host: Vec<(String, Rule)> = Vec::new();
        let mut at: HashMap<String, usize> = HashMap::new();
        for dr in config.destination_rules() {
            let host = fqdn(&dr.spec.host, dr.namespace).to_ascii_lowercase();
            let i = *at.entry(host.clone()).or_insert_with(|| {
                by_host.push((
                    host.clone(),
                    Rule {
                        namespace: dr.namespace.to_string(),
                        name: dr.name.to_string(),
                        policy: None,
                        subsets: Vec::new(),
                    },
                ));
                by_host.len() - 1
            });
            let rule = &mut by_host[i].1;
            if rule.policy.is_none() {
                rule.policy = dr.spec.traffic_policy.clone();
            }
            for s in &dr.spec.subsets {
                if rule.subset(&s.name).is_none() {
                    rule.subsets.push(Subset {
                        name: s.name.clone(),
                        labels: s.labels.clone(),
                        policy: s.traffic_policy.clone(),
                    });
                }
            }
        }
        let mut rules = DestinationRules::default();
        for (host, rule) in by_host {
            if host.starts_with('*') {
                rules.wildcard.push((host, rule));
            } else {
                rules.exact.insert(host, rule);
            }
        }
        rules
            .wildcard
            .sort_by_key(|(host, _)| std::cmp::Reverse(host.len()));
        rules
    }

    /// The rule that applies to `host` (an FQDN): its exact rule, else the
    /// most specific wildcard rule matching it.
    pub fn for_host(&self, host: &str) -> Option<&Rule> {
        let lower = host.to_ascii_lowercase();
        if let Some(rule) = self.exact.get(&lower) {
            return Some(rule);
        }
        self.wildcard
            .iter()
            .find(|(pattern, _)| host_matches(pattern, &lower))
            .map(|(_, rule)| rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::snapshot_from_str;

    const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a, namespace: shop}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: RANDOM}
    connectionPool: {tcp: {maxConnections: 7}}
    portLevelSettings:
    - port: {number: 9443}
      loadBalancer: {simple: ROUND_ROBIN}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      connectionPool: {tcp: {maxConnections: 1}}
  - name: v2
    labels: {version: v2}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b, namespace: shop}
spec:
  host: reviews.shop.svc.cluster.local
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
  subsets:
  - name: v1
    labels: {version: other}
  - name: v3
    labels: {version: v3}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: wide, namespace: shop}
spec:
  host: "*.example.com"
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: narrow, namespace: shop}
spec:
  host: "*.api.example.com"
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
"#;

    fn rules() -> DestinationRules {
        DestinationRules::build(&snapshot_from_str("dr.yaml", CONFIG).unwrap())
    }

    #[test]
    fn rules_of_one_host_merge_first_wins() {
        let rules = rules();
        let rule = rules.for_host("reviews.shop.svc.cluster.local").unwrap();
        assert_eq!((rule.namespace.as_str(), rule.name.as_str()), ("shop", "a"));
        let names: Vec<&str> = rule.subsets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["v1", "v2", "v3"]);
        assert_eq!(rule.subset("v1").unwrap().labels["version"], "v1");
        assert_eq!(
            rule.config_path(),
            "/apis/networking.istio.io/v1/namespaces/shop/destination-rule/a"
        );
    }

    #[test]
    fn subset_and_port_policies_merge_as_istio() {
        use mesh_api::types::load_balancer::SimpleLb;
        let rules = rules();
        let rule = rules.for_host("reviews.shop.svc.cluster.local").unwrap();
        let max_conn = |p: &TrafficPolicy| {
            p.connection_pool
                .as_ref()
                .and_then(|c| c.tcp.as_ref())
                .and_then(|t| t.max_connections)
        };
        let simple = |p: &TrafficPolicy| p.load_balancer.as_ref().and_then(|l| l.simple);
        let whole = rule.policy("", 9080).unwrap();
        assert_eq!(
            (max_conn(&whole), simple(&whole)),
            (Some(7), Some(SimpleLb::Random))
        );
        // The subset overrides the pool, keeps the rule's balancer.
        let v1 = rule.policy("v1", 9080).unwrap();
        assert_eq!(
            (max_conn(&v1), simple(&v1)),
            (Some(1), Some(SimpleLb::Random))
        );
        // Port-level settings replace the four fields whole.
        let tls_port = rule.policy("", 9443).unwrap();
        assert_eq!(
            (max_conn(&tls_port), simple(&tls_port)),
            (None, Some(SimpleLb::RoundRobin))
        );
        assert!(whole.port_level_settings.is_empty());
    }

    #[test]
    fn exact_hosts_beat_wildcards_and_longer_wildcards_win() {
        let rules = rules();
        assert_eq!(rules.for_host("a.example.com").unwrap().name, "wide");
        assert_eq!(rules.for_host("v1.api.example.com").unwrap().name, "narrow");
        assert_eq!(
            rules
                .for_host("REVIEWS.shop.svc.cluster.local")
                .unwrap()
                .name,
            "a"
        );
        assert!(rules.for_host("example.com").is_none());
    }
}
