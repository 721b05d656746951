//! A simulated sidecar: one real ADS stream (its own HTTP/2 connection),
//! subscribing and ACKing as Envoy does in state-of-the-world mode: CDS and
//! LDS as wildcards, then EDS for the EDS clusters CDS named and RDS for
//! the route configs LDS named, every response ACKed at once. Each
//! received response is reported to the harness with the time its ACK was
//! sent.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use envoy_types::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, HttpConnectionManager,
};
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use envoy_types::pb::google::protobuf::Any;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

/// The four xDS types, in the order Envoy asks for them.
pub const CDS: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
/// Endpoints.
pub const EDS: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
/// Listeners.
pub const LDS: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
/// Routes.
pub const RDS: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

/// One response a simulated proxy received and ACKed.
#[derive(Debug, Clone)]
pub struct Event {
    /// Which proxy.
    pub proxy: usize,
    /// Its type URL (one of the four consts).
    pub type_url: &'static str,
    /// `version_info`.
    pub version: String,
    /// Resources in it.
    pub resources: usize,
    /// Its encoded size.
    pub bytes: usize,
    /// When its ACK was sent.
    pub acked_at: Instant,
    /// The same, on the wall clock (to compare with pilot's push start).
    pub acked_wall: SystemTime,
}

/// Why a simulated proxy stopped.
#[derive(Debug)]
pub enum Ended {
    /// Could not connect or open the stream.
    Connect(String),
    /// The stream ended or failed.
    Stream(String),
    /// A response could not be decoded.
    Decode(String),
}

/// The same proxy on an incremental (delta) stream, as Envoy with
/// `api_type: DELTA_GRPC`: CDS and LDS wildcard, EDS and RDS subscribed and
/// unsubscribed by name as clusters and listeners come and go, every
/// response ACKed with its nonce alone.
pub async fn run_delta(
    id: usize,
    addr: SocketAddr,
    node: Node,
    names: Arc<Names>,
    events: mpsc::UnboundedSender<Event>,
) -> Ended {
    let mut client = match connect(id, addr).await {
        Ok(c) => c,
        Err(e) => return e,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let request = |type_url: &str, nonce: &str| DeltaDiscoveryRequest {
        type_url: type_url.to_string(),
        response_nonce: nonce.to_string(),
        ..Default::default()
    };
    let mut first = request(CDS, "");
    first.node = Some(node);
    let _ = tx.send(first);
    let _ = tx.send(request(LDS, ""));
    let mut stream = match client
        .delta_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await
    {
        Ok(s) => s.into_inner(),
        Err(e) => return Ended::Connect(e.to_string()),
    };
    // Cluster or listener name -> the EDS or RDS names it leads to.
    let mut leads: HashMap<&'static str, HashMap<String, Vec<String>>> = HashMap::new();
    let mut subscribed: HashMap<&'static str, BTreeSet<String>> = HashMap::new();
    loop {
        let resp = match stream.message().await {
            Ok(Some(r)) => r,
            Ok(None) => return Ended::Stream("stream closed by pilot".into()),
            Err(e) => return Ended::Stream(e.to_string()),
        };
        let Some(type_url) = [CDS, EDS, LDS, RDS]
            .into_iter()
            .find(|t| *t == resp.type_url)
        else {
            continue;
        };
        let _ = tx.send(request(type_url, &resp.nonce));
        let _ = events.send(Event {
            proxy: id,
            type_url,
            version: resp.system_version_info.clone(),
            resources: resp.resources.len(),
            bytes: resp.encoded_len(),
            acked_at: Instant::now(),
            acked_wall: SystemTime::now(),
        });
        let (follow, decode): (&'static str, NamesOf) = match type_url {
            CDS => (EDS, eds_cluster),
            LDS => (RDS, route_names),
            _ => continue,
        };
        let map = leads.entry(type_url).or_default();
        for name in &resp.removed_resources {
            map.remove(name);
        }
        for r in &resp.resources {
            let Some(any) = &r.resource else { continue };
            match names.of(std::slice::from_ref(any), decode) {
                Ok(n) => {
                    map.insert(r.name.clone(), n);
                }
                Err(e) => return Ended::Decode(e),
            }
        }
        let want: BTreeSet<String> = map.values().flatten().cloned().collect();
        let have = subscribed.entry(follow).or_default();
        let subscribe: Vec<String> = want.difference(have).cloned().collect();
        let unsubscribe: Vec<String> = have.difference(&want).cloned().collect();
        if subscribe.is_empty() && unsubscribe.is_empty() {
            continue;
        }
        *have = want;
        let _ = tx.send(DeltaDiscoveryRequest {
            type_url: follow.to_string(),
            resource_names_subscribe: subscribe,
            resource_names_unsubscribe: unsubscribe,
            ..Default::default()
        });
    }
}

/// Connect attempts before a simulated proxy gives up.
const CONNECT_ATTEMPTS: u32 = 20;

/// What a cluster or listener resource leads to: EDS or RDS names.
type NamesOf = fn(&Any) -> Result<Vec<String>, String>;

/// Names the resources of a CDS or LDS response lead to, by a hash of
/// each resource's bytes, shared by every simulated proxy.
#[derive(Debug, Default)]
pub struct Names {
    memo: Mutex<HashMap<u64, Vec<String>>>,
}

impl Names {
    /// The EDS names (from clusters) or RDS names (from listeners) of
    /// `resources`, sorted and deduplicated.
    fn of(&self, resources: &[Any], decode: NamesOf) -> Result<Vec<String>, String> {
        let keys: Vec<u64> = resources
            .iter()
            .map(|a| {
                let mut h = DefaultHasher::new();
                a.type_url.hash(&mut h);
                a.value.hash(&mut h);
                h.finish()
            })
            .collect();
        let mut found: Vec<Option<Vec<String>>> = {
            let memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
            keys.iter().map(|k| memo.get(k).cloned()).collect()
        };
        let mut learned = Vec::new();
        for (i, slot) in found.iter_mut().enumerate() {
            if slot.is_none() {
                let names = decode(&resources[i])?;
                learned.push((keys[i], names.clone()));
                *slot = Some(names);
            }
        }
        if !learned.is_empty() {
            let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
            memo.extend(learned);
        }
        let all: BTreeSet<String> = found.into_iter().flatten().flatten().collect();
        Ok(all.into_iter().collect())
    }
}

/// An ADS client of pilot at `addr`, retrying refused or reset
/// connections with jittered backoff as Envoy does.
async fn connect(id: usize, addr: SocketAddr) -> Result<AdsClient, Ended> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match AggregatedDiscoveryServiceClient::connect(format!("http://{addr}")).await {
            Ok(c) => return Ok(c.max_decoding_message_size(256 << 20)),
            Err(e) if attempt >= CONNECT_ATTEMPTS => return Err(Ended::Connect(e.to_string())),
            Err(_) => {
                // Jittered exponential backoff, 25 ms doubling to 1 s.
                let base = 25u64 << attempt.min(6);
                let jitter = (id as u64 * 7919 + u64::from(attempt) * 104_729) % base;
                tokio::time::sleep(Duration::from_millis(base.min(1000) / 2 + jitter / 2)).await;
            }
        }
    }
}

type AdsClient = AggregatedDiscoveryServiceClient<tonic::transport::Channel>;

/// Run proxy `id` against pilot at `addr` until its stream ends, reporting
/// each ACKed response on `events`.
pub async fn run(
    id: usize,
    addr: SocketAddr,
    node: Node,
    names: Arc<Names>,
    events: mpsc::UnboundedSender<Event>,
) -> Ended {
    let mut client = match connect(id, addr).await {
        Ok(c) => c,
        Err(e) => return e,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let send = |req: DiscoveryRequest| tx.send(req).is_ok();
    let first = |type_url: &str, names: Vec<String>| DiscoveryRequest {
        node: Some(node.clone()),
        type_url: type_url.to_string(),
        resource_names: names,
        ..Default::default()
    };
    send(first(CDS, Vec::new()));
    send(first(LDS, Vec::new()));
    let mut stream = match client
        .stream_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await
    {
        Ok(s) => s.into_inner(),
        Err(e) => return Ended::Connect(e.to_string()),
    };
    let mut eds_names: Option<Vec<String>> = None;
    let mut rds_names: Option<Vec<String>> = None;
    loop {
        let resp = match stream.message().await {
            Ok(Some(r)) => r,
            Ok(None) => return Ended::Stream("stream closed by pilot".into()),
            Err(e) => return Ended::Stream(e.to_string()),
        };
        let Some(type_url) = [CDS, EDS, LDS, RDS]
            .into_iter()
            .find(|t| *t == resp.type_url)
        else {
            continue;
        };
        // What the response makes this proxy subscribe to next.
        let follow = match type_url {
            CDS => names
                .of(&resp.resources, eds_cluster)
                .map(|n| Some((EDS, n))),
            LDS => names
                .of(&resp.resources, route_names)
                .map(|n| Some((RDS, n))),
            _ => Ok(None),
        };
        let follow = match follow {
            Ok(f) => f,
            Err(e) => return Ended::Decode(e),
        };
        let names = match type_url {
            EDS => eds_names.clone().unwrap_or_default(),
            RDS => rds_names.clone().unwrap_or_default(),
            _ => Vec::new(),
        };
        send(DiscoveryRequest {
            version_info: resp.version_info.clone(),
            response_nonce: resp.nonce.clone(),
            type_url: type_url.to_string(),
            resource_names: names,
            ..Default::default()
        });
        let _ = events.send(Event {
            proxy: id,
            type_url,
            version: resp.version_info.clone(),
            resources: resp.resources.len(),
            bytes: resp.encoded_len(),
            acked_at: Instant::now(),
            acked_wall: SystemTime::now(),
        });
        let Some((follow_type, names)) = follow else {
            continue;
        };
        let current = if follow_type == EDS {
            &mut eds_names
        } else {
            &mut rds_names
        };
        if current.as_ref() == Some(&names) || names.is_empty() {
            continue;
        }
        // The first request of a type carries no nonce; a changed name
        // list is a request with the last nonce of that type, which the
        // harness does not track: pilot answers a changed set either way.
        *current = Some(names.clone());
        send(first(follow_type, names));
    }
}

fn decode<M: Message + Default>(any: &Any) -> Result<M, String> {
    M::decode(any.value.as_slice()).map_err(|e| format!("{}: {e}", any.type_url))
}

/// The EDS name a cluster resource leads to, if it is an EDS cluster.
fn eds_cluster(any: &Any) -> Result<Vec<String>, String> {
    let c: Cluster = decode(any)?;
    let eds = matches!(
        c.cluster_discovery_type,
        Some(ClusterDiscoveryType::Type(t)) if t == DiscoveryType::Eds as i32
    );
    if !eds {
        return Ok(Vec::new());
    }
    let service = c
        .eds_cluster_config
        .map(|e| e.service_name)
        .filter(|s| !s.is_empty());
    Ok(vec![service.unwrap_or(c.name)])
}

/// Route config names the HTTP connection managers of a listener use.
fn route_names(any: &Any) -> Result<Vec<String>, String> {
    use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
    let l: Listener = decode(any)?;
    let mut names = Vec::new();
    let chains = l.filter_chains.iter().chain(l.default_filter_chain.iter());
    for filter in chains.flat_map(|c| c.filters.iter()) {
        let Some(ConfigType::TypedConfig(tc)) = &filter.config_type else {
            continue;
        };
        if tc.type_url != HCM {
            continue;
        }
        let hcm: HttpConnectionManager = decode(tc)?;
        if let Some(RouteSpecifier::Rds(rds)) = hcm.route_specifier {
            names.push(rds.route_config_name);
        }
    }
    Ok(names)
}
