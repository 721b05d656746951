//! Access log part of the model: where an HCM's or a tcp_proxy's log lines
//! go and what they look like, as the `access_log` stage writes them.

use std::path::PathBuf;

use serde::Serialize;

use super::format::Template;

/// One `access_log` entry of an HCM or tcp_proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessLog {
    /// Where lines go.
    pub sink: LogSink,
    /// What a line looks like.
    pub format: LogFormat,
    /// Which requests are logged (all when `None`).
    pub filter: Option<LogFilter>,
}

/// Where an access log writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum LogSink {
    /// Appended to a file (`envoy.access_loggers.file`); `/dev/stdout`
    /// works as in Envoy.
    File(PathBuf),
    /// `envoy.access_loggers.stdout`.
    Stdout,
    /// `envoy.access_loggers.stderr`.
    Stderr,
}

/// The shape of a log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum LogFormat {
    /// Text with substitutions; a line ends where the template says
    /// (Envoy's default format ends in a newline).
    Text(Template),
    /// One JSON object per line.
    Json {
        /// Keys in order, each with its value template.
        fields: Vec<(String, JsonValue)>,
        /// Leave out keys whose value is empty.
        omit_empty_values: bool,
    },
}

/// A value of a JSON log format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum JsonValue {
    /// A string template; a lone numeric operator renders as a number.
    Template(Template),
    /// A nested object.
    Object(Vec<(String, JsonValue)>),
}

/// Access log filters the proxy evaluates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum LogFilter {
    /// `status_code_filter`: compare the response code.
    StatusCode {
        /// How to compare.
        op: Comparison,
        /// With what.
        value: u32,
    },
    /// `response_flag_filter`: any of these flags (any flag when empty).
    ResponseFlags(Vec<String>),
    /// `duration_filter`: compare the duration in milliseconds.
    Duration {
        /// How to compare.
        op: Comparison,
        /// With what.
        value: u32,
    },
    /// `not_health_check_filter`: the proxy has no health check requests,
    /// so every request passes.
    NotHealthCheck,
    /// `and_filter`.
    And(Vec<LogFilter>),
    /// `or_filter`.
    Or(Vec<LogFilter>),
}

/// `ComparisonFilter.op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Comparison {
    /// `EQ`.
    Eq,
    /// `GE`.
    Ge,
    /// `LE`.
    Le,
    /// `NE`.
    Ne,
}
