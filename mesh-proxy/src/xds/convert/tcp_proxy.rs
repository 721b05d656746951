//! xDS conversion of the `tcp_proxy` network filter: its cluster or
//! weighted clusters.

use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::ClusterSpecifier as TcpClusterSpecifier, TcpProxy as XdsTcpProxy,
};

use crate::model::{ClusterTarget, TcpProxy, WeightedCluster};
use crate::xds::error::ConvertError;

impl TryFrom<&XdsTcpProxy> for TcpProxy {
    type Error = ConvertError;

    fn try_from(tcp: &XdsTcpProxy) -> Result<Self, ConvertError> {
        if tcp.tunneling_config.is_some() {
            return Err(ConvertError::unsupported("tunneling_config"));
        }
        let destination = match &tcp.cluster_specifier {
            Some(TcpClusterSpecifier::Cluster(c)) if !c.is_empty() => {
                ClusterTarget::Cluster(c.clone())
            }
            Some(TcpClusterSpecifier::WeightedClusters(w)) => {
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
        Ok(TcpProxy {
            stat_prefix: tcp.stat_prefix.clone(),
            destination,
        })
    }
}
