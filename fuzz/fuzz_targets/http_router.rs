//! HTTP route selection as the HCM does it for each request: path
//! normalisation, the authority, the virtual host, the first matching
//! route, then the path rewrite or redirect of the route chosen.
//!
//! The input is `mesh_fuzz::records`: kind 0 is a RouteConfiguration
//! (protobuf, converted by `xds::convert`; the last one that converts is
//! used), kind 1 a byte of HCM path options, kind 2 a request as text:
//!
//! ```text
//! METHOD TARGET        (TARGET: origin form `/p?q` or absolute `http://h/p`)
//! name: value          (zero or more header lines, e.g. `host: example.com`)
//! ```

#![no_main]

use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use http::request::Parts;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use libfuzzer_sys::fuzz_target;
use mesh_proxy::hcm::authority::authority;
use mesh_proxy::hcm::path::{normalize, rewrite_path_with, PathVerdict};
use mesh_proxy::hcm::redirect::{location, RequestUrl};
use mesh_proxy::hcm::router::{select_route, select_virtual_host};
use mesh_proxy::model::{EscapedSlashes, HcmOptions, RouteAction, RouteConfig};
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let mut config: Option<RouteConfig> = None;
    let mut options = HcmOptions::default();
    let mut requests = Vec::new();
    for (kind, bytes) in mesh_fuzz::records(data) {
        match kind % 3 {
            0 => {
                let Ok(proto) = RouteConfiguration::decode(bytes) else {
                    continue;
                };
                if let Ok(converted) = RouteConfig::try_from(&proto) {
                    config = Some(converted);
                }
            }
            1 => options = path_options(bytes.first().copied().unwrap_or(0)),
            _ => requests.extend(request(bytes)),
        }
    }
    let Some(config) = config else {
        return;
    };
    for parts in requests.into_iter().take(8) {
        route(&config, &options, parts);
    }
});

/// One request through the HCM's routing steps.
fn route(config: &RouteConfig, options: &HcmOptions, mut parts: Parts) {
    match normalize(&parts.uri, options) {
        PathVerdict::Serve(None) => {}
        PathVerdict::Serve(Some(new)) => {
            // Normalising again changes nothing: what the route matched is
            // what an upstream proxy normalising the same way would see.
            let Ok(uri) = Uri::try_from(new.as_str()) else {
                return;
            };
            let again = normalize(&uri, options);
            assert!(
                matches!(&again, PathVerdict::Serve(None))
                    || again == PathVerdict::Serve(Some(new.clone())),
                "normalising {new:?} again gave {again:?}"
            );
            parts.uri = uri;
        }
        PathVerdict::Reject | PathVerdict::Redirect(_) => return,
    }
    let Some(authority) = authority(&parts).map(str::to_owned) else {
        return;
    };
    let Some(vhost) = select_virtual_host(config, &authority) else {
        return;
    };
    let Some(route) = select_route(vhost, &parts) else {
        return;
    };
    match &route.action {
        RouteAction::Forward(forward) => {
            let _ = rewrite_path_with(
                &parts.uri,
                &route.matcher.path,
                forward.prefix_rewrite.as_deref(),
                forward.regex_rewrite.as_ref(),
            );
        }
        RouteAction::Redirect(redirect) => {
            let url = RequestUrl {
                scheme: "http",
                forwarded_proto: "http",
                authority: &authority,
                uri: &parts.uri,
            };
            let _ = location(redirect, &route.matcher.path, url);
        }
        RouteAction::DirectResponse { .. } => {}
    }
}

/// HCM path options from the bits of one byte.
fn path_options(bits: u8) -> HcmOptions {
    HcmOptions {
        normalize_path: bits & 1 != 0,
        merge_slashes: bits & 2 != 0,
        escaped_slashes: match (bits >> 2) & 3 {
            0 => EscapedSlashes::KeepUnchanged,
            1 => EscapedSlashes::Reject,
            2 => EscapedSlashes::UnescapeAndRedirect,
            _ => EscapedSlashes::UnescapeAndForward,
        },
        ..HcmOptions::default()
    }
}

/// A request head from its text form; `None` when hyper would not have
/// parsed it into one (bad method, target or header).
fn request(text: &[u8]) -> Option<Parts> {
    let text = std::str::from_utf8(text).ok()?;
    let mut lines = text.split('\n');
    let (method, target) = lines.next()?.split_once(' ')?;
    let mut builder = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).ok()?)
        .uri(Uri::try_from(target).ok()?);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
        let value = HeaderValue::from_str(value.trim_start()).ok()?;
        builder = builder.header(name, value);
    }
    Some(builder.body(()).ok()?.into_parts().0)
}
