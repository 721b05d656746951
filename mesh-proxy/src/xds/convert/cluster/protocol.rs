//! Conversion of a cluster's connection settings: the upstream protocol and
//! pool options of `envoy.extensions.upstreams.http.v3.HttpProtocolOptions`
//! (or the deprecated cluster fields it replaced), and TCP keepalive.

use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::ClusterProtocolSelection, Cluster as XdsCluster,
};
use envoy_types::pb::envoy::config::core::v3::{
    Http2ProtocolOptions, HttpProtocolOptions as CommonOptions, UpstreamHttpProtocolOptions,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{explicit_http_config::ProtocolConfig, UpstreamProtocolOptions},
    HttpProtocolOptions,
};
use prost::Name;

use super::super::{duration, unpack};
use crate::model::{PoolSettings, TcpKeepalive};
use crate::xds::error::ConvertError;

/// What the HTTP options of a cluster come to.
pub(super) struct HttpOptions {
    pub http2: bool,
    pub use_downstream: bool,
    pub pool: PoolSettings,
    /// `upstream_http_protocol_options.auto_sni`.
    pub auto_sni: bool,
    /// `upstream_http_protocol_options.auto_san_validation`.
    pub auto_san_validation: bool,
}

/// The cluster's HTTP options: the typed extension when present, else the
/// deprecated fields.
#[allow(deprecated)]
pub(super) fn http_options(c: &XdsCluster) -> Result<HttpOptions, ConvertError> {
    let key = HttpProtocolOptions::full_name();
    let mut out = HttpOptions {
        http2: false,
        use_downstream: false,
        pool: PoolSettings::default(),
        auto_sni: false,
        auto_san_validation: false,
    };
    for name in c.typed_extension_protocol_options.keys() {
        if *name != key && name != "envoy.extensions.upstreams.http.v3.HttpProtocolOptions" {
            return Err(ConvertError::unsupported(format!(
                "typed_extension_protocol_options[{name}]"
            )));
        }
    }
    if let Some(any) = c.typed_extension_protocol_options.get(&key) {
        let at = |e: ConvertError| e.at(format!("typed_extension_protocol_options[{key}]"));
        let opts: HttpProtocolOptions = unpack(any).map_err(at)?;
        extension(&opts, &mut out).map_err(at)?;
        return Ok(out);
    }
    // The deprecated cluster fields.
    if let Some(common) = &c.common_http_protocol_options {
        common_options(common, &mut out.pool).map_err(|e| e.at("common_http_protocol_options"))?;
    }
    if let Some(n) = &c.max_requests_per_connection {
        out.pool.max_requests_per_connection = Some(n.value).filter(|n| *n > 0);
    }
    if let Some(h2) = &c.http2_protocol_options {
        out.http2 = true;
        http2_options(h2, &mut out.pool).map_err(|e| e.at("http2_protocol_options"))?;
    }
    if let Some(upstream) = &c.upstream_http_protocol_options {
        upstream_options(upstream, &mut out).map_err(|e| e.at("upstream_http_protocol_options"))?;
    }
    match ClusterProtocolSelection::try_from(c.protocol_selection) {
        Ok(ClusterProtocolSelection::UseConfiguredProtocol) => {}
        Ok(ClusterProtocolSelection::UseDownstreamProtocol) => out.use_downstream = true,
        Err(_) => {
            return Err(ConvertError::invalid(
                "protocol_selection",
                format!("unknown value {}", c.protocol_selection),
            ))
        }
    }
    Ok(out)
}

fn extension(opts: &HttpProtocolOptions, out: &mut HttpOptions) -> Result<(), ConvertError> {
    if !opts.http_filters.is_empty() {
        return Err(ConvertError::unsupported("http_filters"));
    }
    if opts.header_validation_config.is_some() {
        return Err(ConvertError::unsupported("header_validation_config"));
    }
    if opts.outlier_detection.is_some() {
        return Err(ConvertError::unsupported("outlier_detection"));
    }
    if !opts.request_mirror_policies.is_empty() {
        return Err(ConvertError::unsupported("request_mirror_policies"));
    }
    if let Some(common) = &opts.common_http_protocol_options {
        common_options(common, &mut out.pool).map_err(|e| e.at("common_http_protocol_options"))?;
    }
    if let Some(upstream) = &opts.upstream_http_protocol_options {
        upstream_options(upstream, out).map_err(|e| e.at("upstream_http_protocol_options"))?;
    }
    match &opts.upstream_protocol_options {
        None => {}
        Some(UpstreamProtocolOptions::ExplicitHttpConfig(e)) => match &e.protocol_config {
            None | Some(ProtocolConfig::HttpProtocolOptions(_)) => {}
            Some(ProtocolConfig::Http2ProtocolOptions(h2)) => {
                out.http2 = true;
                http2_options(h2, &mut out.pool)
                    .map_err(|e| e.at("explicit_http_config.http2_protocol_options"))?;
            }
            Some(ProtocolConfig::Http3ProtocolOptions(_)) => {
                return Err(ConvertError::unsupported("http3_protocol_options"))
            }
        },
        Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(d)) => {
            if d.http3_protocol_options.is_some() {
                return Err(ConvertError::unsupported(
                    "use_downstream_protocol_config.http3_protocol_options",
                ));
            }
            out.use_downstream = true;
            if let Some(h2) = &d.http2_protocol_options {
                http2_options(h2, &mut out.pool)
                    .map_err(|e| e.at("use_downstream_protocol_config.http2_protocol_options"))?;
            }
        }
        Some(UpstreamProtocolOptions::AutoConfig(_)) => {
            return Err(ConvertError::unsupported("auto_config (ALPN selection)"))
        }
    }
    Ok(())
}

fn common_options(common: &CommonOptions, pool: &mut PoolSettings) -> Result<(), ConvertError> {
    if common.max_stream_duration.is_some() {
        return Err(ConvertError::unsupported("max_stream_duration"));
    }
    if common.max_connection_duration_jitter.is_some() {
        return Err(ConvertError::unsupported("max_connection_duration_jitter"));
    }
    if common.headers_with_underscores_action != 0 {
        return Err(ConvertError::unsupported("headers_with_underscores_action"));
    }
    if let Some(t) = &common.idle_timeout {
        let t = duration(t).map_err(|e| e.at("idle_timeout"))?;
        // 0 disables the idle timeout (Envoy).
        pool.idle_timeout = Some(t).filter(|t| !t.is_zero());
    }
    if let Some(t) = &common.max_connection_duration {
        let t = duration(t).map_err(|e| e.at("max_connection_duration"))?;
        pool.max_connection_duration = Some(t).filter(|t| !t.is_zero());
    }
    if let Some(n) = &common.max_requests_per_connection {
        pool.max_requests_per_connection = Some(n.value).filter(|n| *n > 0);
    }
    Ok(())
}

fn http2_options(h2: &Http2ProtocolOptions, pool: &mut PoolSettings) -> Result<(), ConvertError> {
    if h2.allow_connect {
        return Err(ConvertError::unsupported("allow_connect"));
    }
    if h2.allow_metadata {
        return Err(ConvertError::unsupported("allow_metadata"));
    }
    if let Some(n) = &h2.max_concurrent_streams {
        if n.value == 0 {
            return Err(ConvertError::invalid(
                "max_concurrent_streams",
                "must be positive",
            ));
        }
        pool.max_concurrent_streams = n.value;
    }
    Ok(())
}

fn upstream_options(
    upstream: &UpstreamHttpProtocolOptions,
    out: &mut HttpOptions,
) -> Result<(), ConvertError> {
    if !upstream.override_auto_sni_header.is_empty() {
        return Err(ConvertError::unsupported("override_auto_sni_header"));
    }
    out.auto_sni = upstream.auto_sni;
    out.auto_san_validation = upstream.auto_san_validation;
    Ok(())
}

/// `upstream_connection_options.tcp_keepalive`.
pub(super) fn tcp_keepalive(c: &XdsCluster) -> Result<Option<TcpKeepalive>, ConvertError> {
    let Some(options) = &c.upstream_connection_options else {
        return Ok(None);
    };
    if options.happy_eyeballs_config.is_some() {
        return Err(ConvertError::unsupported("happy_eyeballs_config"));
    }
    if options.set_local_interface_name_on_upstream_connections {
        return Err(ConvertError::unsupported(
            "set_local_interface_name_on_upstream_connections",
        ));
    }
    let Some(k) = &options.tcp_keepalive else {
        return Ok(None);
    };
    let secs = |v: &Option<envoy_types::pb::google::protobuf::UInt32Value>| {
        v.as_ref().map(|v| Duration::from_secs(u64::from(v.value)))
    };
    Ok(Some(TcpKeepalive {
        probes: k.keepalive_probes.as_ref().map(|v| v.value),
        time: secs(&k.keepalive_time),
        interval: secs(&k.keepalive_interval),
    }))
}
