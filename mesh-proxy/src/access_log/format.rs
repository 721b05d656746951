//! Rendering of [`Template`]s: access log lines (absent values as `-`) and
//! header values of the header mutations (absent values empty).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::request::Parts;
use http::HeaderMap;

use super::StreamInfo;
use crate::model::{HeaderLookup, JsonValue, LogFormat, Operator, Piece, Template};

/// What a template is rendered from.
#[derive(Debug, Clone, Copy)]
pub struct LogContext<'a> {
    /// The stream.
    pub info: &'a StreamInfo,
    /// The request head, as the client sent it (after the HCM's own
    /// header work).
    pub request: Option<&'a Parts>,
    /// The response headers sent downstream.
    pub response: Option<&'a HeaderMap>,
    /// The response trailers.
    pub trailers: Option<&'a HeaderMap>,
}

/// One access log line, with its newline for JSON formats (a text format
/// carries its own).
pub fn render_line(format: &LogFormat, ctx: &LogContext<'_>) -> String {
    match format {
        LogFormat::Text(template) => render(template, ctx, "-"),
        LogFormat::Json {
            fields,
            omit_empty_values,
        } => {
            let mut line = json_object(fields, ctx, *omit_empty_values).to_string();
            line.push('\n');
            line
        }
    }
}

fn json_object(
    fields: &[(String, JsonValue)],
    ctx: &LogContext<'_>,
    omit_empty: bool,
) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for (key, value) in fields {
        let value = match value {
            JsonValue::Object(inner) => json_object(inner, ctx, omit_empty),
            JsonValue::Template(t) => {
                let numeric = matches!(
                    t.pieces.as_slice(),
                    [Piece::Operator(
                        Operator::ResponseCode
                            | Operator::BytesReceived
                            | Operator::BytesSent
                            | Operator::Duration
                            | Operator::RequestDuration
                            | Operator::ResponseDuration
                            | Operator::UpstreamRequestAttemptCount
                    )]
                );
                let text = render(t, ctx, "");
                if text.is_empty() {
                    if omit_empty {
                        continue;
                    }
                    serde_json::Value::Null
                } else if numeric {
                    text.parse::<u64>()
                        .map(serde_json::Value::from)
                        .unwrap_or(serde_json::Value::String(text))
                } else {
                    serde_json::Value::String(text)
                }
            }
        };
        object.insert(key.clone(), value);
    }
    serde_json::Value::Object(object)
}

/// A template rendered as text; `absent` stands for a value that is not
/// there (`-` in logs, empty in header values).
pub fn render(template: &Template, ctx: &LogContext<'_>, absent: &str) -> String {
    let mut out = String::new();
    for piece in &template.pieces {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Operator(op) => match value(op, ctx) {
                Some(v) => out.push_str(&v),
                None => out.push_str(absent),
            },
        }
    }
    out
}

fn header(map: Option<&HeaderMap>, lookup: &HeaderLookup) -> Option<String> {
    let map = map?;
    let value = map
        .get(lookup.name.as_str())
        .or_else(|| lookup.alternative.as_deref().and_then(|alt| map.get(alt)))?;
    let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
    Some(truncate(text, lookup.max_length))
}

fn truncate(mut text: String, max: Option<usize>) -> String {
    if let Some(max) = max {
        if text.len() > max {
            let mut end = max;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
    }
    text
}

fn request_header(parts: Option<&Parts>, lookup: &HeaderLookup) -> Option<String> {
    let parts = parts?;
    let one = |name: &str| -> Option<String> {
        match name {
            ":path" => Some(
                parts
                    .uri
                    .path_and_query()
                    .map_or("/", |pq| pq.as_str())
                    .to_owned(),
            ),
            ":method" => Some(parts.method.as_str().to_owned()),
            // As the HCM reads it: the absolute URI's, else Host.
            ":authority" => match parts.uri.authority() {
                Some(authority) => Some(authority.as_str().to_owned()),
                None => parts
                    .headers
                    .get(http::header::HOST)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            },
            ":scheme" => parts.uri.scheme_str().map(str::to_owned),
            _ => parts
                .headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        }
    };
    let text = one(&lookup.name).or_else(|| lookup.alternative.as_deref().and_then(one))?;
    Some(truncate(text, lookup.max_length))
}

fn millis(d: Option<Duration>) -> Option<String> {
    d.map(|d| d.as_millis().to_string())
}

fn without_port(addr: SocketAddr) -> String {
    addr.ip().to_string()
}

fn value(op: &Operator, ctx: &LogContext<'_>) -> Option<String> {
    let info = ctx.info;
    Some(match op {
        Operator::StartTime(format) => start_time(info.start, format.as_deref()),
        Operator::Request(lookup) => return request_header(ctx.request, lookup),
        Operator::Response(lookup) => return header(ctx.response, lookup),
        Operator::Trailer(lookup) => return header(ctx.trailers, lookup),
        Operator::Protocol => info.protocol?.to_owned(),
        Operator::ResponseCode => info.response_code.unwrap_or(0).to_string(),
        Operator::ResponseFlags => info.flags.to_string(),
        Operator::ResponseCodeDetails => info.details.clone()?,
        Operator::ConnectionTerminationDetails => info.termination_details.clone()?,
        Operator::UpstreamTransportFailureReason => info.upstream_failure.clone()?,
        Operator::BytesReceived => info.bytes_received.to_string(),
        Operator::BytesSent => info.bytes_sent.to_string(),
        Operator::Duration => millis(Some(info.ended.unwrap_or_else(|| info.elapsed())))?,
        Operator::RequestDuration => millis(info.request_done)?,
        Operator::ResponseDuration => millis(info.first_byte)?,
        Operator::UpstreamHost | Operator::UpstreamRemoteAddress => info.upstream_host?.to_string(),
        Operator::UpstreamCluster | Operator::UpstreamClusterRaw => {
            info.upstream_cluster.clone()?
        }
        Operator::UpstreamLocalAddress => info.upstream_local?.to_string(),
        Operator::UpstreamRequestAttemptCount => info.attempts.to_string(),
        Operator::DownstreamLocalAddress => info.downstream_local.to_string(),
        Operator::DownstreamLocalAddressWithoutPort => without_port(info.downstream_local),
        Operator::DownstreamLocalPort => info.downstream_local.port().to_string(),
        Operator::DownstreamRemoteAddress => info.downstream_remote.to_string(),
        Operator::DownstreamRemoteAddressWithoutPort => without_port(info.downstream_remote),
        Operator::DownstreamRemotePort => info.downstream_remote.port().to_string(),
        Operator::DownstreamDirectRemoteAddress => info.downstream_peer.to_string(),
        Operator::DownstreamDirectRemoteAddressWithoutPort => without_port(info.downstream_peer),
        Operator::RequestedServerName => info.server_name.clone()?,
        Operator::RouteName => info.route_name.clone().filter(|n| !n.is_empty())?,
        Operator::Hostname => hostname(),
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "-".to_owned())
}

/// Civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `START_TIME`: Envoy's default `2024-05-01T12:00:00.123Z`, or a strftime
/// format (the specifiers conversion let through), always in UTC.
fn start_time(at: SystemTime, format: Option<&str>) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let nanos = since.subsec_nanos();
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let (h, mi, s) = (rem / 3600, (rem / 60) % 60, rem % 60);
    let Some(format) = format else {
        return format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
            nanos / 1_000_000
        );
    };
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let _ = match chars.next() {
            Some('Y') => write!(out, "{y:04}"),
            Some('m') => write!(out, "{mo:02}"),
            Some('d') => write!(out, "{d:02}"),
            Some('H') => write!(out, "{h:02}"),
            Some('M') => write!(out, "{mi:02}"),
            Some('S') => write!(out, "{s:02}"),
            Some('s') => write!(out, "{secs}"),
            Some('z') => write!(out, "+0000"),
            Some('Z') => write!(out, "UTC"),
            Some('F') => write!(out, "{y:04}-{mo:02}-{d:02}"),
            Some('T') => write!(out, "{h:02}:{mi:02}:{s:02}"),
            Some('%') => write!(out, "%"),
            Some('f') => write!(out, "{nanos:09}"),
            Some(digit @ '1'..='9') => {
                chars.next(); // the `f`
                let width = digit.to_digit(10).unwrap_or(3) as usize;
                let text = format!("{nanos:09}");
                write!(out, "{}", &text[..width.min(9)])
            }
            _ => Ok(()),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_as_envoy_prints_it() {
        let at = UNIX_EPOCH + Duration::from_millis(1_714_564_800_123);
        assert_eq!(start_time(at, None), "2024-05-01T12:00:00.123Z");
        assert_eq!(
            start_time(at, Some("%Y/%m/%d %H:%M:%S.%3f %z")),
            "2024/05/01 12:00:00.123 +0000"
        );
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(-1), (1969, 12, 31));
    }
}
