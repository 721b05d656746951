//! A deterministic, reviewable text form of generated xDS: prost's pretty
//! `Debug`, with `Any` payloads of the types the translator packs decoded
//! in place, and fields at their default value left out.

#![allow(dead_code)]

use envoy_types::pb::envoy::extensions::access_loggers::file::v3::FileAccessLog;
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::{Cors, CorsPolicy};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    DownstreamTlsContext, UpstreamTlsContext,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use mesh_pilot::translate::Output;
use prost::{Message, Name};

/// Render everything one proxy is sent.
pub fn output(out: &Output) -> String {
    let mut s = String::new();
    section(&mut s, "clusters (CDS)", &out.clusters);
    section(&mut s, "endpoints (EDS)", &out.endpoints);
    section(&mut s, "listeners (LDS)", &out.listeners);
    section(&mut s, "routes (RDS)", &out.routes);
    s
}

fn section<T: std::fmt::Debug>(s: &mut String, title: &str, items: &[T]) {
    s.push_str(&format!("## {title}: {}\n", items.len()));
    for item in items {
        s.push_str(&message(item));
        s.push('\n');
    }
}

/// Render one message.
pub fn message<T: std::fmt::Debug>(msg: &T) -> String {
    let decoded = decode_anys(&format!("{msg:#?}"));
    strip_defaults(&decoded)
}

fn decode<T: Message + Default + std::fmt::Debug>(bytes: &[u8]) -> Option<String> {
    T::decode(bytes).ok().map(|m| format!("{m:#?}"))
}

fn decode_known(type_url: &str, bytes: &[u8]) -> Option<String> {
    match type_url {
        u if u == HttpConnectionManager::type_url() => decode::<HttpConnectionManager>(bytes),
        u if u == Router::type_url() => decode::<Router>(bytes),
        u if u == TcpProxy::type_url() => decode::<TcpProxy>(bytes),
        u if u == HttpProtocolOptions::type_url() => decode::<HttpProtocolOptions>(bytes),
        u if u == FileAccessLog::type_url() => decode::<FileAccessLog>(bytes),
        u if u == Cors::type_url() => decode::<Cors>(bytes),
        u if u == CorsPolicy::type_url() => decode::<CorsPolicy>(bytes),
        u if u == HttpFault::type_url() => decode::<HttpFault>(bytes),
        u if u == PreviousHostsPredicate::type_url() => decode::<PreviousHostsPredicate>(bytes),
        u if u == UpstreamTlsContext::type_url() => decode::<UpstreamTlsContext>(bytes),
        u if u == DownstreamTlsContext::type_url() => decode::<DownstreamTlsContext>(bytes),
        _ => None,
    }
}

/// Replace `value: [bytes...]` after a known `type_url` with the decoded
/// message, recursively.
fn decode_anys(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    let mut type_url: Option<String> = None;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if let Some(url) = trimmed
            .strip_prefix("type_url: \"")
            .and_then(|r| r.strip_suffix("\","))
        {
            type_url = Some(url.to_string());
        } else if trimmed == "value: [" && type_url.is_some() {
            let indent = &line[..line.len() - trimmed.len()];
            let mut bytes = Vec::new();
            let mut j = i + 1;
            while j < lines.len() && lines[j].trim() != "]," {
                bytes.extend(lines[j].trim().trim_end_matches(',').parse::<u8>().ok());
                j += 1;
            }
            let url = type_url.take().unwrap_or_default();
            if let Some(decoded) = decode_known(&url, &bytes) {
                let decoded = decode_anys(&decoded);
                let mut first = true;
                for d in decoded.lines() {
                    if first {
                        out.push(format!("{indent}value: {d}"));
                        first = false;
                    } else {
                        out.push(format!("{indent}{d}"));
                    }
                }
                if let Some(last) = out.last_mut() {
                    last.push(',');
                }
                i = j + 1;
                continue;
            }
        }
        out.push(line.to_string());
        i += 1;
    }
    out.join("\n")
}

/// Drop `field: <default>,` lines: scalars at their zero value and enum
/// fields at their zero variant (except ones the contract names, like
/// `lb_policy: RoundRobin`, which stay visible).
fn strip_defaults(text: &str) -> String {
    const DEFAULTS: [&str; 18] = [
        "None,",
        "0,",
        "false,",
        "\"\",",
        "[],",
        "{},",
        "0.0,",
        "Unspecified,",
        "Auto,",
        "UseConfiguredProtocol,",
        "Default,",
        "Overwrite,",
        "Sanitize,",
        "ImplementationSpecificDefault,",
        "ServiceUnavailable,",
        "PassThroughInternalRedirect,",
        "Tcp,",
        "Unknown,",
    ];
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            match t.split_once(": ") {
                Some((field, value)) => {
                    let is_field = field
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '#');
                    !(is_field && DEFAULTS.contains(&value))
                }
                None => true,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
