//! Cluster part of the model: clusters and their endpoint discovery, load
//! balancing, circuit breakers, outlier detection and connection settings,
//! and the EDS load assignments, as the cluster and upstream stages read
//! them. Every default here is Envoy's, so a field pilot leaves out means
//! what it means to Envoy.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// An upstream cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    /// Resource name, e.g. `outbound|9080|v1|messenger.default.svc.cluster.local`.
    pub name: String,
    /// `alt_stat_name`: the name to report the cluster's stats under, when
    /// pilot gives one.
    pub alt_stat_name: Option<String>,
    /// Which config object the cluster was made from, and why the mesh
    /// made it (`filter_metadata` `istio.config` and `mesh.reason`).
    pub metadata: ConfigMetadata,
    /// How its endpoints are found.
    pub discovery: Discovery,
    /// Load balancing policy.
    pub lb_policy: LbPolicy,
    /// The policy's parameters and the priority / locality settings.
    pub lb: LbConfig,
    /// TCP connect timeout (Envoy's default 5 s).
    pub connect_timeout: Duration,
    /// Speak HTTP/2 (prior knowledge, or ALPN `h2` over TLS) to the
    /// upstream. With [`Cluster::use_downstream_protocol`] this is ignored.
    pub http2: bool,
    /// `use_downstream_protocol_config`: the upstream request uses the
    /// downstream request's protocol (HTTP/2 for HTTP/2, else HTTP/1.1).
    pub use_downstream_protocol: bool,
    /// Connection pool settings (`common_http_protocol_options`, HTTP/2
    /// stream limit).
    pub pool: PoolSettings,
    /// Source address to bind before connecting (`upstream_bind_config`),
    /// e.g. 127.0.0.6, which the capture rules let through uncaptured.
    pub upstream_bind: Option<IpAddr>,
    /// `upstream_connection_options.tcp_keepalive`.
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Circuit breaker limits of the DEFAULT priority.
    pub circuit_breakers: CircuitBreakers,
    /// Passive health checking; `None` without `outlier_detection`.
    pub outlier_detection: Option<OutlierDetection>,
    /// Upstream TLS origination (`envoy.transport_sockets.tls`).
    pub tls: Option<Arc<UpstreamTls>>,
}

impl Cluster {
    /// A cluster with Envoy's defaults for everything but its name and
    /// discovery (round robin, 5 s connect timeout, HTTP/1.1, default
    /// circuit breakers, no outlier detection, plaintext).
    pub fn new(name: impl Into<String>, discovery: Discovery) -> Cluster {
        Cluster {
            name: name.into(),
            alt_stat_name: None,
            metadata: ConfigMetadata::default(),
            discovery,
            lb_policy: LbPolicy::RoundRobin,
            lb: LbConfig::default(),
            connect_timeout: Duration::from_secs(5),
            http2: false,
            use_downstream_protocol: false,
            pool: PoolSettings::default(),
            upstream_bind: None,
            tcp_keepalive: None,
            circuit_breakers: CircuitBreakers::default(),
            outlier_detection: None,
            tls: None,
        }
    }

    /// Whether a request that came in as `downstream` goes upstream as
    /// HTTP/2: the downstream's protocol with `use_downstream_protocol`,
    /// else the cluster's explicit protocol.
    pub fn upstream_http2(&self, downstream: http::Version) -> bool {
        if self.use_downstream_protocol {
            downstream == http::Version::HTTP_2
        } else {
            self.http2
        }
    }

    /// How messages name the config behind this cluster: the Istio object
    /// (`DestinationRule default/reviews`) when the metadata says, else
    /// `cluster NAME`.
    pub fn describe(&self) -> String {
        self.metadata
            .describe()
            .unwrap_or_else(|| format!("cluster {}", self.name))
    }
}

/// The config provenance pilot puts in a resource's `filter_metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConfigMetadata {
    /// `istio.config`: the object's path,
    /// `/apis/networking.istio.io/v1/namespaces/NS/destination-rule/NAME`.
    pub config: Option<String>,
    /// `mesh.reason`: why the mesh made the resource up itself.
    pub reason: Option<String>,
}

impl ConfigMetadata {
    /// `Kind namespace/name` of [`ConfigMetadata::config`], when it has
    /// Istio's path shape.
    pub fn describe(&self) -> Option<String> {
        self.config
            .as_deref()
            .and_then(mesh_api::names::describe_config_path)
    }
}

/// Endpoint discovery of a cluster.
#[derive(Debug, Clone, Serialize)]
pub enum Discovery {
    /// Endpoints from EDS under this service name.
    Eds {
        /// EDS `cluster_name` to look up in [`Snapshot::endpoints`](super::Snapshot).
        service_name: String,
    },
    /// Fixed endpoints (STATIC), with their priorities and localities.
    Static(Arc<LoadAssignment>),
    /// STRICT_DNS: every address of every host is an endpoint.
    StrictDns(DnsDiscovery),
    /// LOGICAL_DNS: only the first address of the latest answer for the one
    /// host is the endpoint.
    LogicalDns(DnsDiscovery),
    /// Connect to the connection's original destination.
    OriginalDst,
}

/// The hosts of a DNS cluster and how to resolve them.
#[derive(Debug, Clone, Serialize)]
pub struct DnsDiscovery {
    /// Host names (or literal IPs) with their port, weight, priority and
    /// locality, in `load_assignment` order.
    pub hosts: Vec<DnsHost>,
    /// The localities the hosts refer to by index.
    pub localities: Vec<LocalityLb>,
    /// `dns_refresh_rate` (Envoy's default 5 s).
    pub refresh_rate: Duration,
    /// `respect_dns_ttl`: refresh at the answer's TTL instead.
    pub respect_ttl: bool,
    /// `dns_lookup_family` (Envoy's default AUTO).
    pub family: DnsLookupFamily,
    /// How long a lookup may take before it counts as failed (5 s).
    pub timeout: Duration,
}

/// One host of a DNS cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsHost {
    /// The name to resolve.
    pub host: String,
    /// The port of every address it resolves to.
    pub port: u16,
    /// Load balancing weight of each resolved address.
    pub weight: u32,
    /// Priority of its `LocalityLbEndpoints`.
    pub priority: u32,
    /// Index into [`DnsDiscovery::localities`].
    pub locality: usize,
}

/// `dns_lookup_family`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DnsLookupFamily {
    /// IPv6 addresses if there are any, else IPv4 (Envoy's default).
    Auto,
    /// Only IPv4.
    V4Only,
    /// Only IPv6.
    V6Only,
    /// IPv4 addresses if there are any, else IPv6.
    V4Preferred,
    /// Every address of both families.
    All,
}

/// Load balancing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LbPolicy {
    /// Weighted round robin.
    RoundRobin,
    /// Weighted random.
    Random,
    /// Fewest active requests per weight among `choice_count` random hosts.
    LeastRequest,
    /// Consistent hashing on a ring (Ketama-like).
    RingHash,
    /// Consistent hashing on a Maglev lookup table.
    Maglev,
    /// The cluster picks its own host (ORIGINAL_DST).
    ClusterProvided,
}

/// Parameters of the load balancing policies and of priority / locality
/// selection (`common_lb_config`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LbConfig {
    /// `least_request_lb_config.choice_count` (default 2).
    pub choice_count: u32,
    /// `ring_hash_lb_config.minimum_ring_size` (default 1024).
    pub ring_min: u64,
    /// `ring_hash_lb_config.maximum_ring_size` (default 8M).
    pub ring_max: u64,
    /// `maglev_lb_config.table_size` (default 65537, a prime).
    pub maglev_table_size: u64,
    /// Slow start of round robin / least request.
    pub slow_start: Option<SlowStart>,
    /// `common_lb_config.healthy_panic_threshold` in percent (default 50,
    /// 0 disables panic mode).
    pub healthy_panic_threshold: f64,
    /// `common_lb_config.locality_weighted_lb_config`: choose a locality by
    /// its weight times its health first.
    pub locality_weighted: bool,
}

impl Default for LbConfig {
    fn default() -> Self {
        LbConfig {
            choice_count: 2,
            ring_min: 1024,
            ring_max: 8 * 1024 * 1024,
            maglev_table_size: 65537,
            slow_start: None,
            healthy_panic_threshold: 50.0,
            locality_weighted: false,
        }
    }
}

/// `slow_start_config`: a host new to the cluster gets its weight scaled
/// by `max(min_weight_percent, (age / window) ^ (1 / aggression))` until
/// it is `window` old.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlowStart {
    /// `slow_start_window`.
    pub window: Duration,
    /// `aggression` (default 1.0, linear).
    pub aggression: f64,
    /// `min_weight_percent` as a fraction (default 0.1).
    pub min_weight: f64,
}

/// HTTP connection pool settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolSettings {
    /// `common_http_protocol_options.idle_timeout`: a connection with no
    /// request for this long is closed (Envoy's default 1 h; `None`: 0,
    /// never).
    pub idle_timeout: Option<Duration>,
    /// `max_requests_per_connection`: a connection is closed after this
    /// many requests (`None`: unlimited).
    pub max_requests_per_connection: Option<u32>,
    /// `max_connection_duration`: a connection older than this takes no
    /// new request and is closed once idle.
    pub max_connection_duration: Option<Duration>,
    /// `http2_protocol_options.max_concurrent_streams` (default 2^31 - 1):
    /// past it a new HTTP/2 connection is opened.
    pub max_concurrent_streams: u32,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            idle_timeout: Some(Duration::from_secs(3600)),
            max_requests_per_connection: None,
            max_connection_duration: None,
            max_concurrent_streams: 2_147_483_647,
        }
    }
}

/// `tcp_keepalive` of upstream sockets; unset fields keep the OS default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TcpKeepalive {
    /// `keepalive_probes`.
    pub probes: Option<u32>,
    /// `keepalive_time`: idle time before the first probe.
    pub time: Option<Duration>,
    /// `keepalive_interval`: between probes.
    pub interval: Option<Duration>,
}

/// Circuit breaker limits (`circuit_breakers.thresholds`, DEFAULT priority).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CircuitBreakers {
    /// Upstream connections of the cluster, HTTP and TCP (Istio
    /// `maxConnections`).
    pub max_connections: u32,
    /// Requests waiting for a connection (Istio `http1MaxPendingRequests`).
    pub max_pending_requests: u32,
    /// Requests in flight to the cluster (Istio `http2MaxRequests`).
    pub max_requests: u32,
    /// Retries in flight to the cluster (Istio `maxRetries`).
    pub max_retries: u32,
}

impl Default for CircuitBreakers {
    /// Envoy's defaults when a cluster sets no thresholds.
    fn default() -> Self {
        CircuitBreakers {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
        }
    }
}

/// `outlier_detection`, with Envoy's defaults for unset fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutlierDetection {
    /// `consecutive_5xx` (5).
    pub consecutive_5xx: u32,
    /// `enforcing_consecutive_5xx` in percent (100).
    pub enforcing_consecutive_5xx: u32,
    /// `consecutive_gateway_failure` (5): 502, 503, 504.
    pub consecutive_gateway_failure: u32,
    /// `enforcing_consecutive_gateway_failure` (0).
    pub enforcing_consecutive_gateway_failure: u32,
    /// `split_external_local_origin_errors`: connect failures, resets and
    /// timeouts count on their own instead of as 5xx.
    pub split_local_origin: bool,
    /// `consecutive_local_origin_failure` (5).
    pub consecutive_local_origin_failure: u32,
    /// `enforcing_consecutive_local_origin_failure` (100).
    pub enforcing_consecutive_local_origin_failure: u32,
    /// `interval` between sweeps (10 s).
    pub interval: Duration,
    /// `base_ejection_time` (30 s), times the number of ejections.
    pub base_ejection_time: Duration,
    /// `max_ejection_time` (300 s).
    pub max_ejection_time: Duration,
    /// `max_ejection_percent` (10); one host is always ejectable.
    pub max_ejection_percent: u32,
    /// Success-rate ejection at each sweep.
    pub success_rate: SuccessRate,
    /// Failure-percentage ejection at each sweep.
    pub failure_percentage: FailurePercentage,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        OutlierDetection {
            consecutive_5xx: 5,
            enforcing_consecutive_5xx: 100,
            consecutive_gateway_failure: 5,
            enforcing_consecutive_gateway_failure: 0,
            split_local_origin: false,
            consecutive_local_origin_failure: 5,
            enforcing_consecutive_local_origin_failure: 100,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
            success_rate: SuccessRate::default(),
            failure_percentage: FailurePercentage::default(),
        }
    }
}

/// Success-rate outlier ejection: a host whose success rate over the last
/// interval is below `mean - stdev × stdev_factor / 1000` of the hosts with
/// enough requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SuccessRate {
    /// `enforcing_success_rate` (100).
    pub enforcing: u32,
    /// `success_rate_minimum_hosts` (5).
    pub minimum_hosts: u32,
    /// `success_rate_request_volume` (100).
    pub request_volume: u32,
    /// `success_rate_stdev_factor` (1900).
    pub stdev_factor: u32,
}

impl Default for SuccessRate {
    fn default() -> Self {
        SuccessRate {
            enforcing: 100,
            minimum_hosts: 5,
            request_volume: 100,
            stdev_factor: 1900,
        }
    }
}

/// Failure-percentage outlier ejection: a host whose failures over the
/// last interval are at least `threshold` percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FailurePercentage {
    /// `enforcing_failure_percentage` (0).
    pub enforcing: u32,
    /// `failure_percentage_threshold` (85).
    pub threshold: u32,
    /// `failure_percentage_minimum_hosts` (5).
    pub minimum_hosts: u32,
    /// `failure_percentage_request_volume` (50).
    pub request_volume: u32,
}

impl Default for FailurePercentage {
    fn default() -> Self {
        FailurePercentage {
            enforcing: 0,
            threshold: 85,
            minimum_hosts: 5,
            request_volume: 50,
        }
    }
}

/// Upstream TLS origination, converted and checked at conversion time (the
/// files named in the config were read then).
#[derive(Clone, Serialize)]
pub struct UpstreamTls {
    /// `sni`: the server name sent; `None` sends none.
    pub sni: Option<String>,
    /// `auto_sni` (cluster HTTP options): send the request's host as SNI
    /// instead, so connections are pooled per host name.
    pub auto_sni: bool,
    /// `alpn_protocols` offered.
    pub alpn: Vec<String>,
    /// Whether the server's chain is verified (`validation_context` with a
    /// `trusted_ca`); without one, as in Envoy, any certificate is taken.
    pub verify: bool,
    /// Subject alt name matchers as written, for the config dump.
    pub san_matchers: Vec<String>,
    /// Whether a client certificate is presented (MUTUAL).
    pub client_certificate: bool,
    /// The rustls configuration built from all of the above.
    #[serde(skip)]
    pub config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("sni", &self.sni)
            .field("auto_sni", &self.auto_sni)
            .field("alpn", &self.alpn)
            .field("verify", &self.verify)
            .field("san_matchers", &self.san_matchers)
            .field("client_certificate", &self.client_certificate)
            .finish()
    }
}

/// EDS resource (or a STATIC cluster's `load_assignment`): the endpoints of
/// one cluster, with their priorities and localities.
#[derive(Debug, Clone, Serialize)]
pub struct LoadAssignment {
    /// Cluster (service) name.
    pub cluster_name: String,
    /// Every endpoint of every priority, unhealthy ones included (they
    /// count in the priority's total).
    pub endpoints: Vec<Endpoint>,
    /// The localities [`Endpoint::locality`] indexes.
    pub localities: Vec<LocalityLb>,
    /// `policy.overprovisioning_factor` in percent (default 140).
    pub overprovisioning_factor: u32,
}

impl LoadAssignment {
    /// One priority-0 group in the default locality holding `endpoints`.
    pub fn new(cluster_name: impl Into<String>, endpoints: Vec<Endpoint>) -> LoadAssignment {
        LoadAssignment {
            cluster_name: cluster_name.into(),
            endpoints,
            localities: vec![LocalityLb::default()],
            overprovisioning_factor: DEFAULT_OVERPROVISIONING_FACTOR,
        }
    }
}

/// Envoy's `overprovisioning_factor` when the assignment sets none.
pub const DEFAULT_OVERPROVISIONING_FACTOR: u32 = 140;

/// One `LocalityLbEndpoints` group's locality and weight.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LocalityLb {
    /// `locality.region`.
    pub region: String,
    /// `locality.zone`.
    pub zone: String,
    /// `locality.sub_zone`.
    pub sub_zone: String,
    /// `load_balancing_weight`; 0 when unset (such a locality takes no
    /// traffic under locality-weighted balancing, as in Envoy).
    pub weight: u32,
}

/// One upstream endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Socket address.
    pub address: SocketAddr,
    /// Load balancing weight (>= 1).
    pub weight: u32,
    /// Whether EDS says it can take traffic (not UNHEALTHY, DRAINING or
    /// TIMEOUT).
    pub healthy: bool,
    /// Priority of its group (0 is the highest).
    pub priority: u32,
    /// Index into [`LoadAssignment::localities`].
    pub locality: usize,
}

impl Endpoint {
    /// A healthy priority-0 endpoint in the first locality.
    pub fn new(address: SocketAddr, weight: u32) -> Endpoint {
        Endpoint {
            address,
            weight,
            healthy: true,
            priority: 0,
            locality: 0,
        }
    }
}
