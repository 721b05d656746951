//! xDS conversion of the HTTP connection manager network filter: its route
//! source (RDS or inline), its HTTP filters, the options the proxy honours
//! (anything else that changes behaviour is refused) and its access logs.

use std::net::IpAddr;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::{
    http_protocol_options::HeadersWithUnderscoresAction, Http1ProtocolOptions,
    Http2ProtocolOptions, HttpProtocolOptions,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::{
        CodecType, ForwardClientCertDetails, PathWithEscapedSlashesAction, RouteSpecifier,
        ServerHeaderTransformation,
    },
    HttpConnectionManager as XdsHcm,
};

use super::access_log::access_logs;
use super::http_filters::http_filter;
use super::refuse_set;
use super::{bool_or, duration};
use crate::model::{
    EscapedSlashes, HcmOptions, HttpConnectionManager, HttpFilter, RouteConfig, RouteSource,
    ServerHeader,
};
use crate::xds::error::ConvertError;

pub use super::http_filters::ROUTER_NAME;

impl TryFrom<&XdsHcm> for HttpConnectionManager {
    type Error = ConvertError;

    fn try_from(hcm: &XdsHcm) -> Result<Self, ConvertError> {
        let routes = match &hcm.route_specifier {
            Some(RouteSpecifier::Rds(rds)) if rds.route_config_name.is_empty() => {
                return Err(ConvertError::Missing("rds.route_config_name"))
            }
            Some(RouteSpecifier::Rds(rds)) => RouteSource::Rds(rds.route_config_name.clone()),
            Some(RouteSpecifier::RouteConfig(rc)) => RouteSource::Inline(Arc::new(
                RouteConfig::try_from(rc).map_err(|e| e.at("route_config"))?,
            )),
            Some(RouteSpecifier::ScopedRoutes(_)) => {
                return Err(ConvertError::unsupported("scoped_routes"))
            }
            None => return Err(ConvertError::Missing("route_specifier")),
        };
        let mut http_filters = Vec::new();
        for (i, f) in hcm.http_filters.iter().enumerate() {
            if let Some(filter) = http_filter(f).map_err(|e| e.at(format!("http_filters[{i}]")))? {
                if matches!(http_filters.last(), Some(HttpFilter::Router)) {
                    return Err(ConvertError::invalid(
                        "http_filters",
                        "filters after the router",
                    ));
                }
                http_filters.push(filter);
            }
        }
        if !matches!(http_filters.last(), Some(HttpFilter::Router)) {
            return Err(ConvertError::invalid(
                "http_filters",
                format!("the last filter must be {ROUTER_NAME}"),
            ));
        }
        Ok(HttpConnectionManager {
            stat_prefix: hcm.stat_prefix.clone(),
            routes,
            http_filters,
            options: Arc::new(options(hcm)?),
            access_log: access_logs(&hcm.access_log)?,
        })
    }
}

/// The HCM fields that shape connections and requests.
#[allow(deprecated)]
fn options(hcm: &XdsHcm) -> Result<HcmOptions, ConvertError> {
    refuse_set(&[
        (
            CodecType::try_from(hcm.codec_type) != Ok(CodecType::Auto)
                && CodecType::try_from(hcm.codec_type) != Ok(CodecType::Http1)
                && CodecType::try_from(hcm.codec_type) != Ok(CodecType::Http2),
            "codec_type",
        ),
        (
            bool_or(hcm.add_user_agent.as_ref(), false),
            "add_user_agent",
        ),
        (
            hcm.tracing.as_ref().is_some_and(|t| t.provider.is_some()),
            "tracing.provider",
        ),
        (
            hcm.http1_safe_max_connection_duration,
            "http1_safe_max_connection_duration",
        ),
        (
            hcm.http3_protocol_options.is_some(),
            "http3_protocol_options",
        ),
        (
            hcm.scheme_header_transformation.is_some(),
            "scheme_header_transformation",
        ),
        (hcm.stream_flush_timeout.is_some(), "stream_flush_timeout"),
        (hcm.drain_timeout.is_some(), "drain_timeout"),
        (hcm.drain_timeout_jitter.is_some(), "drain_timeout_jitter"),
        (hcm.delayed_close_timeout.is_some(), "delayed_close_timeout"),
        (
            hcm.access_log_flush_interval.is_some(),
            "access_log_flush_interval",
        ),
        (
            hcm.flush_access_log_on_new_request,
            "flush_access_log_on_new_request",
        ),
        (hcm.access_log_options.is_some(), "access_log_options"),
        (
            !hcm.original_ip_detection_extensions.is_empty(),
            "original_ip_detection_extensions",
        ),
        (
            !hcm.early_header_mutation_extensions.is_empty(),
            "early_header_mutation_extensions",
        ),
        (!hcm.via.is_empty(), "via"),
        (
            hcm.forward_client_cert_details != ForwardClientCertDetails::Sanitize as i32,
            "forward_client_cert_details other than SANITIZE",
        ),
        (
            hcm.set_current_client_cert_details.is_some(),
            "set_current_client_cert_details",
        ),
        (
            hcm.forward_client_cert_matcher.is_some(),
            "forward_client_cert_matcher",
        ),
        (hcm.proxy_100_continue, "proxy_100_continue"),
        (
            hcm.represent_ipv4_remote_address_as_ipv4_mapped_ipv6,
            "represent_ipv4_remote_address_as_ipv4_mapped_ipv6",
        ),
        (hcm.request_id_extension.is_some(), "request_id_extension"),
        (hcm.local_reply_config.is_some(), "local_reply_config"),
        (hcm.strip_matching_host_port, "strip_matching_host_port"),
        (hcm.strip_port_mode.is_some(), "strip_any_host_port"),
        (
            hcm.stream_error_on_invalid_http_message.is_some(),
            "stream_error_on_invalid_http_message",
        ),
        (
            hcm.path_normalization_options.is_some(),
            "path_normalization_options",
        ),
        (hcm.strip_trailing_host_dot, "strip_trailing_host_dot"),
        (hcm.proxy_status_config.is_some(), "proxy_status_config"),
        (
            hcm.typed_header_validation_config.is_some(),
            "typed_header_validation_config",
        ),
        (hcm.append_x_forwarded_port, "append_x_forwarded_port"),
        (hcm.append_local_overload, "append_local_overload"),
        (
            hcm.add_proxy_protocol_connection_state.is_some(),
            "add_proxy_protocol_connection_state",
        ),
        (hcm.forward_proto_config.is_some(), "forward_proto_config"),
    ])?;
    let mut o = HcmOptions {
        use_remote_address: bool_or(hcm.use_remote_address.as_ref(), false),
        xff_num_trusted_hops: hcm.xff_num_trusted_hops,
        skip_xff_append: hcm.skip_xff_append,
        generate_request_id: bool_or(hcm.generate_request_id.as_ref(), true),
        preserve_external_request_id: hcm.preserve_external_request_id,
        always_set_request_id_in_response: hcm.always_set_request_id_in_response,
        normalize_path: bool_or(hcm.normalize_path.as_ref(), false),
        merge_slashes: hcm.merge_slashes,
        ..HcmOptions::default()
    };
    o.http1_only = CodecType::try_from(hcm.codec_type) == Ok(CodecType::Http1);
    o.http2_only = CodecType::try_from(hcm.codec_type) == Ok(CodecType::Http2);
    let timeout = |d: Option<&envoy_types::pb::google::protobuf::Duration>,
                   default: Option<std::time::Duration>,
                   at: &'static str| {
        match d {
            // Zero disables the timeout, as everywhere in Envoy.
            Some(d) => duration(d)
                .map(|d| Some(d).filter(|d| !d.is_zero()))
                .map_err(|e| e.at(at)),
            None => Ok(default),
        }
    };
    o.stream_idle_timeout = timeout(
        hcm.stream_idle_timeout.as_ref(),
        o.stream_idle_timeout,
        "stream_idle_timeout",
    )?;
    o.request_timeout = timeout(hcm.request_timeout.as_ref(), None, "request_timeout")?;
    o.request_headers_timeout = timeout(
        hcm.request_headers_timeout.as_ref(),
        None,
        "request_headers_timeout",
    )?;
    if let Some(kb) = &hcm.max_request_headers_kb {
        if kb.value == 0 || kb.value > 8192 {
            return Err(ConvertError::invalid(
                "max_request_headers_kb",
                kb.value.to_string(),
            ));
        }
        o.max_request_headers_kb = kb.value;
    }
    o.escaped_slashes =
        match PathWithEscapedSlashesAction::try_from(hcm.path_with_escaped_slashes_action) {
            Ok(PathWithEscapedSlashesAction::ImplementationSpecificDefault)
            | Ok(PathWithEscapedSlashesAction::KeepUnchanged) => EscapedSlashes::KeepUnchanged,
            Ok(PathWithEscapedSlashesAction::RejectRequest) => EscapedSlashes::Reject,
            Ok(PathWithEscapedSlashesAction::UnescapeAndRedirect) => {
                EscapedSlashes::UnescapeAndRedirect
            }
            Ok(PathWithEscapedSlashesAction::UnescapeAndForward) => {
                EscapedSlashes::UnescapeAndForward
            }
            Err(_) => {
                return Err(ConvertError::invalid(
                    "path_with_escaped_slashes_action",
                    hcm.path_with_escaped_slashes_action.to_string(),
                ))
            }
        };
    if !hcm.server_name.is_empty() {
        o.server_name = hcm.server_name.clone();
    }
    o.server_header = match ServerHeaderTransformation::try_from(hcm.server_header_transformation) {
        Ok(ServerHeaderTransformation::Overwrite) => ServerHeader::Overwrite,
        Ok(ServerHeaderTransformation::AppendIfAbsent) => ServerHeader::AppendIfAbsent,
        Ok(ServerHeaderTransformation::PassThrough) => ServerHeader::PassThrough,
        Err(_) => {
            return Err(ConvertError::invalid(
                "server_header_transformation",
                hcm.server_header_transformation.to_string(),
            ))
        }
    };
    for (i, u) in hcm.upgrade_configs.iter().enumerate() {
        if !u.filters.is_empty() {
            return Err(ConvertError::unsupported("filters").at(format!("upgrade_configs[{i}]")));
        }
        if u.upgrade_type.is_empty() {
            return Err(ConvertError::Missing("upgrade_type").at(format!("upgrade_configs[{i}]")));
        }
        if u.upgrade_type.eq_ignore_ascii_case("connect") {
            // CONNECT tunnels need `connect_matcher` routes and tunnelling,
            // which the proxy does not have.
            return Err(ConvertError::unsupported("upgrade_type CONNECT")
                .at(format!("upgrade_configs[{i}]")));
        }
        if bool_or(u.enabled.as_ref(), true) {
            o.upgrades.push(u.upgrade_type.to_ascii_lowercase());
        } else {
            o.upgrades_disabled
                .push(u.upgrade_type.to_ascii_lowercase());
        }
    }
    if let Some(common) = &hcm.common_http_protocol_options {
        common_options(common, &mut o).map_err(|e| e.at("common_http_protocol_options"))?;
    }
    if let Some(h1) = &hcm.http_protocol_options {
        http1_options(h1, &mut o).map_err(|e| e.at("http_protocol_options"))?;
    }
    if let Some(h2) = &hcm.http2_protocol_options {
        http2_options(h2, &mut o).map_err(|e| e.at("http2_protocol_options"))?;
    }
    if let Some(internal) = &hcm.internal_address_config {
        let mut cidrs = Vec::new();
        for (i, r) in internal.cidr_ranges.iter().enumerate() {
            let ip: IpAddr = r.address_prefix.parse().map_err(|_| {
                ConvertError::invalid("address_prefix", r.address_prefix.clone())
                    .at(format!("internal_address_config.cidr_ranges[{i}]"))
            })?;
            let len = r.prefix_len.as_ref().map_or(0, |l| l.value);
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if len > max {
                return Err(ConvertError::invalid("prefix_len", len.to_string())
                    .at(format!("internal_address_config.cidr_ranges[{i}]")));
            }
            cidrs.push((ip, len as u8));
        }
        o.internal_cidrs = Some(cidrs);
    }
    Ok(o)
}

fn common_options(c: &HttpProtocolOptions, o: &mut HcmOptions) -> Result<(), ConvertError> {
    refuse_set(&[
        (
            c.max_connection_duration_jitter.is_some(),
            "max_connection_duration_jitter",
        ),
        (
            c.max_response_headers_kb.is_some(),
            "max_response_headers_kb",
        ),
        (
            c.max_requests_per_connection.is_some(),
            "max_requests_per_connection",
        ),
        (
            c.headers_with_underscores_action != HeadersWithUnderscoresAction::Allow as i32,
            "headers_with_underscores_action",
        ),
    ])?;
    let positive = |d: Option<&envoy_types::pb::google::protobuf::Duration>, at: &'static str| {
        d.map(|d| duration(d).map_err(|e| e.at(at)))
            .transpose()
            .map(|d| d.filter(|d| !d.is_zero()))
    };
    if let Some(idle) = &c.idle_timeout {
        o.idle_timeout =
            Some(duration(idle).map_err(|e| e.at("idle_timeout"))?).filter(|d| !d.is_zero());
    }
    o.max_connection_duration = positive(
        c.max_connection_duration.as_ref(),
        "max_connection_duration",
    )?;
    o.max_stream_duration = positive(c.max_stream_duration.as_ref(), "max_stream_duration")?;
    if let Some(count) = &c.max_headers_count {
        o.max_headers_count = count.value.max(1);
    }
    Ok(())
}

#[allow(deprecated)]
fn http1_options(h1: &Http1ProtocolOptions, o: &mut HcmOptions) -> Result<(), ConvertError> {
    refuse_set(&[
        (
            !h1.default_host_for_http_10.is_empty(),
            "default_host_for_http_10",
        ),
        (h1.header_key_format.is_some(), "header_key_format"),
        (h1.allow_chunked_length, "allow_chunked_length"),
        (
            h1.override_stream_error_on_invalid_http_message.is_some(),
            "override_stream_error_on_invalid_http_message",
        ),
        (h1.send_fully_qualified_url, "send_fully_qualified_url"),
        (
            !h1.ignore_http_11_upgrade.is_empty(),
            "ignore_http_11_upgrade",
        ),
    ])?;
    // Absolute URLs are always understood (hyper parses them); custom
    // methods always pass; trailers always pass (as with enable_trailers).
    o.accept_http_10 = h1.accept_http_10;
    Ok(())
}

fn http2_options(h2: &Http2ProtocolOptions, o: &mut HcmOptions) -> Result<(), ConvertError> {
    #[allow(deprecated)]
    refuse_set(&[
        (h2.hpack_table_size.is_some(), "hpack_table_size"),
        (h2.allow_metadata, "allow_metadata"),
        (h2.max_outbound_frames.is_some(), "max_outbound_frames"),
        (
            h2.max_outbound_control_frames.is_some(),
            "max_outbound_control_frames",
        ),
        (
            h2.max_consecutive_inbound_frames_with_empty_payload
                .is_some(),
            "max_consecutive_inbound_frames_with_empty_payload",
        ),
        (
            h2.max_inbound_priority_frames_per_stream.is_some(),
            "max_inbound_priority_frames_per_stream",
        ),
        (
            h2.max_inbound_window_update_frames_per_data_frame_sent
                .is_some(),
            "max_inbound_window_update_frames_per_data_frame_sent",
        ),
        (
            h2.stream_error_on_invalid_http_messaging,
            "stream_error_on_invalid_http_messaging",
        ),
        (
            h2.override_stream_error_on_invalid_http_message.is_some(),
            "override_stream_error_on_invalid_http_message",
        ),
        (
            !h2.custom_settings_parameters.is_empty(),
            "custom_settings_parameters",
        ),
        (h2.use_oghttp2_codec.is_some(), "use_oghttp2_codec"),
        (h2.max_metadata_size.is_some(), "max_metadata_size"),
        (
            h2.enable_huffman_encoding.is_some(),
            "enable_huffman_encoding",
        ),
        (
            h2.max_header_field_size_kb.is_some(),
            "max_header_field_size_kb",
        ),
        (h2.disallow_obs_text.is_some(), "disallow_obs_text"),
        (h2.stream_reset_burst.is_some(), "stream_reset_burst"),
        (h2.stream_reset_rate.is_some(), "stream_reset_rate"),
    ])?;
    o.http2_allow_connect = h2.allow_connect;
    if let Some(streams) = &h2.max_concurrent_streams {
        o.http2_max_concurrent_streams = Some(streams.value);
    }
    o.http2_initial_stream_window_size = h2.initial_stream_window_size.as_ref().map(|v| v.value);
    o.http2_initial_connection_window_size =
        h2.initial_connection_window_size.as_ref().map(|v| v.value);
    if let Some(keepalive) = &h2.connection_keepalive {
        let interval = keepalive
            .interval
            .as_ref()
            .map(|d| duration(d).map_err(|e| e.at("connection_keepalive.interval")))
            .transpose()?;
        let timeout = keepalive
            .timeout
            .as_ref()
            .map(|d| duration(d).map_err(|e| e.at("connection_keepalive.timeout")))
            .transpose()?
            .ok_or(ConvertError::Missing("connection_keepalive.timeout"))?;
        o.http2_keepalive = Some((interval, timeout));
    }
    Ok(())
}
