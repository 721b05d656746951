//! The proxies' access log, from the mesh config (`accessLogFile`,
//! `accessLogFormat`, `accessLogEncoding`), as Istio configures Envoy's
//! file logger on every HTTP connection manager and TCP proxy.
//!
//! The default text format is Istio's, with the mesh's own reason for a
//! response it made itself appended in quotes (`%RESP(X-MESH-REASON)%`,
//! which a real Envoy prints as `-`), so a log line says which rule or
//! limit answered.

use std::sync::OnceLock;

use envoy_types::pb::envoy::config::accesslog::v3::{access_log, AccessLog};
use envoy_types::pb::envoy::config::core::v3::{
    data_source, substitution_format_string, DataSource, SubstitutionFormatString,
};
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{
    file_access_log::AccessLogFormat, FileAccessLog,
};
use envoy_types::pb::google::protobuf::{value, Struct, Value};

use super::filters::{proto_map, typed_config};
use crate::mesh_config::{AccessLogEncoding, MeshConfig};

/// Name of Envoy's file access logger.
pub const FILE_ACCESS_LOG: &str = "envoy.access_loggers.file";

/// Istio's default text format, plus the mesh's reason header.
pub const DEFAULT_TEXT_FORMAT: &str = concat!(
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" ",
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% ",
    "\"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ",
    "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" ",
    "\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER_RAW% ",
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% ",
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME% \"%RESP(X-MESH-REASON)%\"\n"
);

/// Istio's default JSON fields, plus `mesh_reason`.
const JSON_FIELDS: [(&str, &str); 25] = [
    ("start_time", "%START_TIME%"),
    ("route_name", "%ROUTE_NAME%"),
    ("method", "%REQ(:METHOD)%"),
    ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
    ("protocol", "%PROTOCOL%"),
    ("response_code", "%RESPONSE_CODE%"),
    ("response_flags", "%RESPONSE_FLAGS%"),
    ("response_code_details", "%RESPONSE_CODE_DETAILS%"),
    (
        "connection_termination_details",
        "%CONNECTION_TERMINATION_DETAILS%",
    ),
    ("bytes_received", "%BYTES_RECEIVED%"),
    ("bytes_sent", "%BYTES_SENT%"),
    ("duration", "%DURATION%"),
    (
        "upstream_service_time",
        "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    ),
    ("x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"),
    ("user_agent", "%REQ(USER-AGENT)%"),
    ("request_id", "%REQ(X-REQUEST-ID)%"),
    ("authority", "%REQ(:AUTHORITY)%"),
    ("upstream_host", "%UPSTREAM_HOST%"),
    ("upstream_cluster", "%UPSTREAM_CLUSTER_RAW%"),
    ("upstream_local_address", "%UPSTREAM_LOCAL_ADDRESS%"),
    ("downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%"),
    ("downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"),
    ("requested_server_name", "%REQUESTED_SERVER_NAME%"),
    (
        "upstream_transport_failure_reason",
        "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    ),
    ("mesh_reason", "%RESP(X-MESH-REASON)%"),
];

/// The access loggers of every HCM and TCP proxy; none when the mesh
/// config turns the log off.
pub fn access_logs(mesh: &MeshConfig) -> Vec<AccessLog> {
    let Some(path) = mesh.access_log_path() else {
        return Vec::new();
    };
    let format = match mesh.access_log_encoding {
        AccessLogEncoding::Text => {
            substitution_format_string::Format::TextFormatSource(DataSource {
                specifier: Some(data_source::Specifier::InlineString(
                    mesh.access_log_format
                        .clone()
                        .unwrap_or_else(|| DEFAULT_TEXT_FORMAT.to_string()),
                )),
                ..Default::default()
            })
        }
        AccessLogEncoding::Json => {
            substitution_format_string::Format::JsonFormat(json_format().clone())
        }
    };
    let file = FileAccessLog {
        path: path.to_string(),
        access_log_format: Some(AccessLogFormat::LogFormat(SubstitutionFormatString {
            format: Some(format),
            ..Default::default()
        })),
    };
    vec![AccessLog {
        name: FILE_ACCESS_LOG.to_string(),
        config_type: Some(access_log::ConfigType::TypedConfig(typed_config(&file))),
        ..Default::default()
    }]
}

/// One JSON format struct per process: protobuf maps encode in their
/// iteration order, and every clone of this one keeps it, so listeners
/// carrying it encode the same bytes every push.
fn json_format() -> &'static Struct {
    static FORMAT: OnceLock<Struct> = OnceLock::new();
    FORMAT.get_or_init(|| {
        let mut fields = proto_map();
        for (key, op) in JSON_FIELDS {
            fields.insert(
                key.to_string(),
                Value {
                    kind: Some(value::Kind::StringValue(op.to_string())),
                },
            );
        }
        Struct { fields }
    })
}
