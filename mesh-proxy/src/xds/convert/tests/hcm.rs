//! HCM conversion: the options the proxy honours, the HTTP filters, the
//! access logs (and tcp_proxy's), and the NACK of everything else.

use envoy_types::pb::envoy::config::accesslog::v3::{
    access_log, access_log_filter::FilterSpecifier, comparison_filter, AccessLog, AccessLogFilter,
    ComparisonFilter, StatusCodeFilter,
};
use envoy_types::pb::envoy::config::core::v3::{
    data_source, substitution_format_string, DataSource, Http2ProtocolOptions, HttpProtocolOptions,
    RuntimeUInt32, SubstitutionFormatString,
};
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{
    file_access_log, FileAccessLog,
};
use envoy_types::pb::envoy::extensions::access_loggers::stream::v3::StdoutAccessLog;
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    fault_abort, FaultAbort, HttpFault,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager, HttpConnectionManager as XdsHcm,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy, TcpProxy as XdsTcpProxy,
};
use envoy_types::pb::google::protobuf::{BoolValue, Duration as PbDuration, Struct, Value};
use envoy_types::util::pack_any;

use super::*;
use crate::model::{
    AbortStatus, EscapedSlashes, HttpConnectionManager as Hcm, HttpFilter as ModelFilter,
    LogFilter, LogFormat, LogSink, Operator, Piece, TcpProxy as ModelTcp,
};

fn convert(h: &XdsHcm) -> Result<Hcm, String> {
    Hcm::try_from(h).map_err(|e| e.to_string())
}

fn file_log(format: Option<file_access_log::AccessLogFormat>) -> AccessLog {
    AccessLog {
        name: "envoy.access_loggers.file".into(),
        filter: None,
        config_type: Some(access_log::ConfigType::TypedConfig(pack_any(
            FileAccessLog {
                path: "/dev/stdout".into(),
                access_log_format: format,
            },
        ))),
    }
}

fn text(format: &str) -> Option<file_access_log::AccessLogFormat> {
    Some(file_access_log::AccessLogFormat::LogFormat(
        SubstitutionFormatString {
            format: Some(substitution_format_string::Format::TextFormatSource(
                DataSource {
                    specifier: Some(data_source::Specifier::InlineString(format.into())),
                    ..Default::default()
                },
            )),
            ..Default::default()
        },
    ))
}

#[test]
fn options_envoy_defaults_and_settings() {
    let got = convert(&hcm(rds("r"))).unwrap();
    let o = &got.options;
    assert!(!o.use_remote_address && o.generate_request_id);
    assert_eq!(o.stream_idle_timeout.map(|d| d.as_secs()), Some(300));
    assert_eq!(o.idle_timeout.map(|d| d.as_secs()), Some(3600));
    assert_eq!(
        (o.max_request_headers_kb, o.server_name.as_str()),
        (60, "envoy")
    );

    let mut h = hcm(rds("r"));
    h.use_remote_address = Some(BoolValue { value: true });
    h.xff_num_trusted_hops = 2;
    h.skip_xff_append = true;
    h.stream_idle_timeout = Some(PbDuration {
        seconds: 0,
        nanos: 0,
    });
    h.request_timeout = Some(PbDuration {
        seconds: 3,
        nanos: 0,
    });
    h.path_with_escaped_slashes_action =
        http_connection_manager::PathWithEscapedSlashesAction::UnescapeAndRedirect as i32;
    h.merge_slashes = true;
    h.server_name = "istio-envoy".into();
    h.upgrade_configs = vec![http_connection_manager::UpgradeConfig {
        upgrade_type: "WebSocket".into(),
        ..Default::default()
    }];
    h.http2_protocol_options = Some(Http2ProtocolOptions {
        allow_connect: true,
        ..Default::default()
    });
    h.common_http_protocol_options = Some(HttpProtocolOptions {
        idle_timeout: Some(PbDuration {
            seconds: 60,
            nanos: 0,
        }),
        ..Default::default()
    });
    let got = convert(&h).unwrap();
    let o = &got.options;
    assert!(o.use_remote_address && o.skip_xff_append && o.merge_slashes);
    assert_eq!(o.xff_num_trusted_hops, 2);
    assert_eq!(o.stream_idle_timeout, None, "0 disables it");
    assert_eq!(o.request_timeout.map(|d| d.as_secs()), Some(3));
    assert_eq!(o.escaped_slashes, EscapedSlashes::UnescapeAndRedirect);
    assert_eq!(o.server_name, "istio-envoy");
    assert_eq!(o.upgrades, ["websocket"]);
    assert!(o.http2_allow_connect);
    assert_eq!(o.idle_timeout.map(|d| d.as_secs()), Some(60));
}

#[test]
fn options_that_change_behaviour_are_refused() {
    let refused = |f: &dyn Fn(&mut XdsHcm), what: &str| {
        let mut h = hcm(rds("r"));
        f(&mut h);
        let err = convert(&h).unwrap_err();
        assert!(
            err.contains(&format!("unsupported {what}")),
            "{what}: {err}"
        );
    };
    refused(
        &|h| h.codec_type = http_connection_manager::CodecType::Http3 as i32,
        "codec_type",
    );
    refused(&|h| h.via = "mesh".into(), "via");
    refused(
        &|h| {
            h.forward_client_cert_details =
                http_connection_manager::ForwardClientCertDetails::AppendForward as i32
        },
        "forward_client_cert_details",
    );
    refused(
        &|h| h.local_reply_config = Some(Default::default()),
        "local_reply_config",
    );
    refused(
        &|h| {
            h.upgrade_configs = vec![http_connection_manager::UpgradeConfig {
                upgrade_type: "CONNECT".into(),
                ..Default::default()
            }]
        },
        "upgrade_type CONNECT",
    );
    refused(
        &|h| {
            h.http_filters = vec![HttpFilter {
                name: "envoy.filters.http.router".into(),
                config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(Router {
                    suppress_envoy_headers: true,
                    ..Default::default()
                }))),
                ..Default::default()
            }]
        },
        "suppress_envoy_headers",
    );
}

#[test]
fn fault_and_cors_filters_in_order() {
    let mut h = hcm(rds("r"));
    let fault = HttpFault {
        abort: Some(FaultAbort {
            error_type: Some(fault_abort::ErrorType::GrpcStatus(14)),
            ..Default::default()
        }),
        max_active_faults: Some(envoy_types::pb::google::protobuf::UInt32Value { value: 3 }),
        ..Default::default()
    };
    h.http_filters = vec![
        HttpFilter {
            name: "envoy.filters.http.fault".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(fault))),
            ..Default::default()
        },
        HttpFilter {
            name: "envoy.filters.http.cors".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
                Cors::default(),
            ))),
            ..Default::default()
        },
        router_filter(),
    ];
    let got = convert(&h).unwrap();
    let [ModelFilter::Fault(f), ModelFilter::Cors, ModelFilter::Router] =
        got.http_filters.as_slice()
    else {
        panic!("{:?}", got.http_filters)
    };
    assert!(matches!(
        f.abort.as_ref().unwrap().status,
        AbortStatus::Grpc(14)
    ));
    assert_eq!(
        f.abort.as_ref().unwrap().percentage.numerator,
        0,
        "unset percentage is 0%"
    );
    assert_eq!(f.max_active_faults, Some(3));
    let bad = HttpFault {
        upstream_cluster: "x".into(),
        ..Default::default()
    };
    h.http_filters[0].config_type = Some(http_filter::ConfigType::TypedConfig(pack_any(bad)));
    assert!(convert(&h)
        .unwrap_err()
        .contains("unsupported upstream_cluster"));
}

#[test]
fn access_logs_formats_filters_and_unknown_operators() {
    let mut h = hcm(rds("r"));
    h.access_log = vec![
        file_log(None),
        file_log(text("%RESPONSE_CODE% %RESP(X-MESH-REASON)%\n")),
    ];
    h.access_log[1].filter = Some(AccessLogFilter {
        filter_specifier: Some(FilterSpecifier::StatusCodeFilter(StatusCodeFilter {
            comparison: Some(ComparisonFilter {
                op: comparison_filter::Op::Ge as i32,
                value: Some(RuntimeUInt32 {
                    default_value: 500,
                    runtime_key: String::new(),
                }),
            }),
        })),
    });
    let got = convert(&h).unwrap();
    // The default path is the stream the proxy holds, not a file to reopen.
    assert_eq!(got.access_log[0].sink, LogSink::Stdout);
    let LogFormat::Text(default) = &got.access_log[0].format else {
        panic!()
    };
    assert_eq!(
        default.pieces[1],
        Piece::Operator(Operator::StartTime(None)),
        "Envoy's default format"
    );
    assert!(matches!(
        got.access_log[1].filter,
        Some(LogFilter::StatusCode { value: 500, .. })
    ));

    let mut json = Struct::default();
    json.fields.insert(
        "code".into(),
        Value {
            kind: Some(envoy_types::pb::google::protobuf::value::Kind::StringValue(
                "%RESPONSE_CODE%".into(),
            )),
        },
    );
    h.access_log = vec![AccessLog {
        name: "envoy.access_loggers.stdout".into(),
        filter: None,
        config_type: Some(access_log::ConfigType::TypedConfig(pack_any(StdoutAccessLog {
            access_log_format: Some(
                envoy_types::pb::envoy::extensions::access_loggers::stream::v3::stdout_access_log::AccessLogFormat::LogFormat(
                    SubstitutionFormatString {
                        format: Some(substitution_format_string::Format::JsonFormat(json)),
                        omit_empty_values: true,
                        ..Default::default()
                    },
                ),
            ),
        }))),
    }];
    let got = convert(&h).unwrap();
    assert_eq!(got.access_log[0].sink, LogSink::Stdout);
    assert!(matches!(
        got.access_log[0].format,
        LogFormat::Json {
            omit_empty_values: true,
            ..
        }
    ));

    h.access_log = vec![file_log(text("%RESPONSE_CODE% %UPSTREAM_PEER_CERT%\n"))];
    let err = convert(&h).unwrap_err();
    assert!(
        err.contains("access_log[0]")
            && err.contains("unsupported format operator %UPSTREAM_PEER_CERT%"),
        "{err}"
    );
}

#[test]
fn tcp_proxy_access_log() {
    let tcp = XdsTcpProxy {
        stat_prefix: "t".into(),
        cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster("c".into())),
        access_log: vec![file_log(text(
            "%RESPONSE_FLAGS% %CONNECTION_TERMINATION_DETAILS%\n",
        ))],
        ..Default::default()
    };
    let got = ModelTcp::try_from(&tcp).unwrap();
    assert_eq!(got.access_log.len(), 1);
}
