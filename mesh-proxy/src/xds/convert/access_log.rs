//! xDS conversion of `access_log[]` entries of the HCM and tcp_proxy:
//! file, stdout and stderr loggers, their text or JSON formats, and the
//! filters the proxy evaluates.

use envoy_types::pb::envoy::config::accesslog::v3::{
    access_log, access_log_filter::FilterSpecifier, comparison_filter::Op,
    AccessLog as XdsAccessLog, AccessLogFilter, ComparisonFilter,
};
use envoy_types::pb::envoy::config::core::v3::{
    data_source, substitution_format_string::Format, SubstitutionFormatString,
};
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{
    file_access_log, FileAccessLog,
};
use envoy_types::pb::envoy::extensions::access_loggers::stream::v3::{
    stderr_access_log, stdout_access_log, StderrAccessLog, StdoutAccessLog,
};
use envoy_types::pb::google::protobuf::{value::Kind, Struct};
use prost::Name;

use super::format::parse_template;
use super::{type_name, unpack};
use crate::model::{AccessLog, Comparison, JsonValue, LogFilter, LogFormat, LogSink, Template};
use crate::xds::error::ConvertError;

/// Envoy's default access log format, used when a logger sets none.
pub const DEFAULT_FORMAT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

/// The `access_log` list of a filter.
pub(crate) fn access_logs(list: &[XdsAccessLog]) -> Result<Vec<AccessLog>, ConvertError> {
    list.iter()
        .enumerate()
        .map(|(i, l)| access_log(l).map_err(|e| e.at(format!("access_log[{i}]"))))
        .collect()
}

fn access_log(l: &XdsAccessLog) -> Result<AccessLog, ConvertError> {
    let Some(access_log::ConfigType::TypedConfig(any)) = &l.config_type else {
        return Err(ConvertError::Missing("typed_config"));
    };
    let kind = type_name(&any.type_url);
    let (sink, format) = if kind == FileAccessLog::full_name() {
        let file: FileAccessLog = unpack(any)?;
        if file.path.is_empty() {
            return Err(ConvertError::Missing("path"));
        }
        #[allow(deprecated)]
        let format = match &file.access_log_format {
            None => default_format()?,
            Some(file_access_log::AccessLogFormat::LogFormat(f)) => substitution(f)?,
            Some(file_access_log::AccessLogFormat::Format(text)) => {
                LogFormat::Text(parse_template(text)?)
            }
            Some(file_access_log::AccessLogFormat::JsonFormat(s)) => LogFormat::Json {
                fields: json_fields(s)?,
                omit_empty_values: false,
            },
            Some(file_access_log::AccessLogFormat::TypedJsonFormat(_)) => {
                return Err(ConvertError::unsupported("typed_json_format"))
            }
        };
        (file_sink(&file.path), format)
    } else if kind == StdoutAccessLog::full_name() {
        let out: StdoutAccessLog = unpack(any)?;
        let format = match &out.access_log_format {
            None => default_format()?,
            Some(stdout_access_log::AccessLogFormat::LogFormat(f)) => substitution(f)?,
        };
        (LogSink::Stdout, format)
    } else if kind == StderrAccessLog::full_name() {
        let err: StderrAccessLog = unpack(any)?;
        let format = match &err.access_log_format {
            None => default_format()?,
            Some(stderr_access_log::AccessLogFormat::LogFormat(f)) => substitution(f)?,
        };
        (LogSink::Stderr, format)
    } else {
        return Err(ConvertError::unsupported(format!("access logger {kind}")));
    };
    Ok(AccessLog {
        sink,
        format,
        filter: l
            .filter
            .as_ref()
            .map(|f| filter(f).map_err(|e| e.at("filter")))
            .transpose()?,
    })
}

fn default_format() -> Result<LogFormat, ConvertError> {
    Ok(LogFormat::Text(parse_template(DEFAULT_FORMAT)?))
}

#[allow(deprecated)]
fn substitution(f: &SubstitutionFormatString) -> Result<LogFormat, ConvertError> {
    if !f.formatters.is_empty() {
        return Err(ConvertError::unsupported("log_format.formatters"));
    }
    if f.json_format_options.is_some() {
        return Err(ConvertError::unsupported("log_format.json_format_options"));
    }
    let at = |e: ConvertError| e.at("log_format");
    match &f.format {
        None => default_format(),
        Some(Format::TextFormat(text)) => Ok(LogFormat::Text(parse_template(text).map_err(at)?)),
        Some(Format::TextFormatSource(ds)) => match &ds.specifier {
            Some(data_source::Specifier::InlineString(text)) => {
                Ok(LogFormat::Text(parse_template(text).map_err(at)?))
            }
            Some(data_source::Specifier::InlineBytes(bytes)) => {
                let text = String::from_utf8(bytes.clone())
                    .map_err(|_| ConvertError::invalid("text_format_source", "not UTF-8"))?;
                Ok(LogFormat::Text(parse_template(&text).map_err(at)?))
            }
            _ => Err(ConvertError::unsupported(
                "text_format_source (only inline_string)",
            )),
        },
        Some(Format::JsonFormat(s)) => Ok(LogFormat::Json {
            fields: json_fields(s).map_err(at)?,
            omit_empty_values: f.omit_empty_values,
        }),
    }
}

fn json_fields(s: &Struct) -> Result<Vec<(String, JsonValue)>, ConvertError> {
    let mut keys: Vec<&String> = s.fields.keys().collect();
    // protobuf maps have no order; Envoy writes keys sorted too.
    keys.sort();
    keys.into_iter()
        .map(|key| {
            let value = match &s.fields[key].kind {
                Some(Kind::StringValue(text)) => JsonValue::Template(
                    parse_template(text).map_err(|e| e.at(format!("json_format.{key}")))?,
                ),
                Some(Kind::NumberValue(n)) => JsonValue::Template(Template::literal(n.to_string())),
                Some(Kind::BoolValue(b)) => JsonValue::Template(Template::literal(b.to_string())),
                Some(Kind::StructValue(inner)) => JsonValue::Object(json_fields(inner)?),
                _ => {
                    return Err(ConvertError::unsupported(format!(
                        "json_format value kind of {key:?}"
                    )))
                }
            };
            Ok((key.clone(), value))
        })
        .collect()
}

fn filter(f: &AccessLogFilter) -> Result<LogFilter, ConvertError> {
    Ok(match &f.filter_specifier {
        Some(FilterSpecifier::StatusCodeFilter(s)) => {
            let (op, value) = comparison(s.comparison.as_ref())?;
            LogFilter::StatusCode { op, value }
        }
        Some(FilterSpecifier::DurationFilter(d)) => {
            let (op, value) = comparison(d.comparison.as_ref())?;
            LogFilter::Duration { op, value }
        }
        Some(FilterSpecifier::ResponseFlagFilter(r)) => LogFilter::ResponseFlags(r.flags.clone()),
        Some(FilterSpecifier::NotHealthCheckFilter(_)) => LogFilter::NotHealthCheck,
        Some(FilterSpecifier::AndFilter(a)) => {
            LogFilter::And(a.filters.iter().map(filter).collect::<Result<_, _>>()?)
        }
        Some(FilterSpecifier::OrFilter(o)) => {
            LogFilter::Or(o.filters.iter().map(filter).collect::<Result<_, _>>()?)
        }
        Some(other) => {
            let name = format!("{other:?}");
            let name = name.split('(').next().unwrap_or("filter").to_owned();
            return Err(ConvertError::unsupported(format!(
                "access log filter {name}"
            )));
        }
        None => return Err(ConvertError::Missing("filter_specifier")),
    })
}

fn comparison(c: Option<&ComparisonFilter>) -> Result<(Comparison, u32), ConvertError> {
    let c = c.ok_or(ConvertError::Missing("comparison"))?;
    let op = match Op::try_from(c.op) {
        Ok(Op::Eq) => Comparison::Eq,
        Ok(Op::Ge) => Comparison::Ge,
        Ok(Op::Le) => Comparison::Le,
        Ok(Op::Ne) => Comparison::Ne,
        Err(_) => return Err(ConvertError::invalid("comparison.op", c.op.to_string())),
    };
    let value = c
        .value
        .as_ref()
        .ok_or(ConvertError::Missing("comparison.value"))?
        .default_value;
    Ok((op, value))
}

/// The sink of a file logger's `path`. `/dev/stdout` and `/dev/stderr` (the
/// mesh's default) are the streams the proxy already holds rather than
/// files to reopen: reopening them fails when the proxy runs as another user
/// than the one that opened the file they point to.
fn file_sink(path: &str) -> LogSink {
    match path {
        "/dev/stdout" => LogSink::Stdout,
        "/dev/stderr" => LogSink::Stderr,
        other => LogSink::File(other.into()),
    }
}
