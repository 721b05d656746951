//! xDS conversion of the `tcp_proxy` network filter: its cluster or
//! weighted clusters, timeouts, connect attempts and hash policy. What the
//! relay does not implement (tunnelling, on-demand clusters, subset
//! metadata, PROXY protocol TLVs) NACKs.

use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::ClusterSpecifier as TcpClusterSpecifier, TcpProxy as XdsTcpProxy,
};
use envoy_types::pb::envoy::r#type::v3::hash_policy::PolicySpecifier;
use envoy_types::pb::google::protobuf::Duration as PbDuration;

use super::access_log::access_logs;
use super::duration;
use crate::model::{
    ClusterTarget, TcpHashPolicy, TcpProxy, WeightedCluster, DEFAULT_TCP_IDLE_TIMEOUT,
};
use crate::xds::error::ConvertError;

impl TryFrom<&XdsTcpProxy> for TcpProxy {
    type Error = ConvertError;

    fn try_from(tcp: &XdsTcpProxy) -> Result<Self, ConvertError> {
        let refused = [
            (tcp.tunneling_config.is_some(), "tunneling_config"),
            (tcp.on_demand.is_some(), "on_demand"),
            (tcp.metadata_match.is_some(), "metadata_match"),
            (tcp.backoff_options.is_some(), "backoff_options"),
            (
                tcp.max_downstream_connection_duration_jitter_percentage
                    .is_some(),
                "max_downstream_connection_duration_jitter_percentage",
            ),
            (!tcp.proxy_protocol_tlvs.is_empty(), "proxy_protocol_tlvs"),
            (tcp.upstream_connect_mode != 0, "upstream_connect_mode"),
            (tcp.max_early_data_bytes.is_some(), "max_early_data_bytes"),
            (
                tcp.downstream_idle_timeout.is_some(),
                "downstream_idle_timeout",
            ),
            (tcp.upstream_idle_timeout.is_some(), "upstream_idle_timeout"),
        ];
        if let Some((_, field)) = refused.iter().find(|(set, _)| *set) {
            return Err(ConvertError::unsupported(*field));
        }
        let destination = match &tcp.cluster_specifier {
            Some(TcpClusterSpecifier::Cluster(c)) if !c.is_empty() => {
                ClusterTarget::Cluster(c.clone())
            }
            Some(TcpClusterSpecifier::WeightedClusters(w)) => {
                if let Some(i) = w.clusters.iter().position(|c| c.metadata_match.is_some()) {
                    return Err(ConvertError::unsupported("metadata_match")
                        .at(format!("weighted_clusters.clusters[{i}]")));
                }
                let arms: Vec<WeightedCluster> = w
                    .clusters
                    .iter()
                    .map(|c| WeightedCluster {
                        name: c.name.clone(),
                        weight: c.weight,
                    })
                    .collect();
                if arms.iter().map(|a| u64::from(a.weight)).sum::<u64>() == 0 {
                    return Err(ConvertError::invalid(
                        "weighted_clusters",
                        "total weight is 0",
                    ));
                }
                ClusterTarget::Weighted(arms)
            }
            _ => return Err(ConvertError::Missing("cluster")),
        };
        let max_connect_attempts = match &tcp.max_connect_attempts {
            None => 1,
            Some(n) if n.value >= 1 => n.value,
            Some(_) => {
                return Err(ConvertError::invalid(
                    "max_connect_attempts",
                    "must be at least 1",
                ))
            }
        };
        let hash_policy = match tcp.hash_policy.as_slice() {
            [] => None,
            [policy] => match &policy.policy_specifier {
                Some(PolicySpecifier::SourceIp(_)) => Some(TcpHashPolicy::SourceIp),
                Some(PolicySpecifier::FilterState(_)) => {
                    return Err(ConvertError::unsupported("hash_policy filter_state"))
                }
                None => return Err(ConvertError::Missing("hash_policy.policy_specifier")),
            },
            // Envoy itself accepts only one.
            _ => return Err(ConvertError::invalid("hash_policy", "more than one policy")),
        };
        Ok(TcpProxy {
            stat_prefix: tcp.stat_prefix.clone(),
            destination,
            idle_timeout: optional_timeout(
                tcp.idle_timeout.as_ref(),
                Some(DEFAULT_TCP_IDLE_TIMEOUT),
            )
            .map_err(|e| e.at("idle_timeout"))?,
            max_downstream_connection_duration: optional_timeout(
                tcp.max_downstream_connection_duration.as_ref(),
                None,
            )
            .map_err(|e| e.at("max_downstream_connection_duration"))?,
            max_connect_attempts,
            hash_policy,
            access_log: access_logs(&tcp.access_log)?,
        })
    }
}

/// A timeout field: unset gives `default`, `0s` disables it (Envoy's rule).
fn optional_timeout(
    value: Option<&PbDuration>,
    default: Option<std::time::Duration>,
) -> Result<Option<std::time::Duration>, ConvertError> {
    match value {
        None => Ok(default),
        Some(d) => duration(d).map(|d| Some(d).filter(|d| !d.is_zero())),
    }
}
