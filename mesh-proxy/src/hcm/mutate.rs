//! Header mutations of the route configuration, virtual host, route and
//! weighted cluster, applied in Envoy's order: most specific level first
//! (so the least specific has the last word), or the reverse with
//! `most_specific_header_mutations_wins`; at each level removals, then
//! additions. Values are rendered with the `%OPERATOR%` formatter.

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

use crate::access_log::format::{render, LogContext};
use crate::model::{AppendAction, HeaderAdd, HeaderMutations};

/// The levels that apply to one request, in evaluation order.
pub fn levels<'a>(
    most_specific_wins: bool,
    route_config: &'a HeaderMutations,
    vhost: &'a HeaderMutations,
    route: &'a HeaderMutations,
    arm: Option<&'a HeaderMutations>,
) -> Vec<&'a HeaderMutations> {
    let mut levels: Vec<&HeaderMutations> = arm.into_iter().collect();
    levels.extend([route, vhost, route_config]);
    levels.retain(|l| !l.is_empty());
    if most_specific_wins {
        levels.reverse();
    }
    levels
}

/// Apply the request side of `levels` to `headers`.
pub fn apply_request(levels: &[&HeaderMutations], headers: &mut HeaderMap, ctx: &LogContext<'_>) {
    for level in levels {
        apply(&level.request_remove, &level.request_add, headers, ctx);
    }
}

/// Apply the response side of `levels` to `headers`.
pub fn apply_response(levels: &[&HeaderMutations], headers: &mut HeaderMap, ctx: &LogContext<'_>) {
    for level in levels {
        apply(&level.response_remove, &level.response_add, headers, ctx);
    }
}

fn apply(remove: &[String], add: &[HeaderAdd], headers: &mut HeaderMap, ctx: &LogContext<'_>) {
    for name in remove {
        headers.remove(name.as_str());
    }
    for header in add {
        let Ok(name) = HeaderName::from_bytes(header.name.as_bytes()) else {
            continue;
        };
        let value = match header.value.as_literal() {
            Some(text) => text.to_owned(),
            None => render(&header.value, ctx, ""),
        };
        if value.is_empty() && !header.keep_empty_value {
            continue;
        }
        let Ok(value) = HeaderValue::from_str(&value) else {
            continue;
        };
        match header.action {
            AppendAction::AppendIfExistsOrAdd => {
                headers.append(name, value);
            }
            AppendAction::AddIfAbsent => {
                if !headers.contains_key(&name) {
                    headers.insert(name, value);
                }
            }
            AppendAction::OverwriteIfExistsOrAdd => {
                headers.insert(name, value);
            }
            AppendAction::OverwriteIfExists => {
                if headers.contains_key(&name) {
                    headers.insert(name, value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::StreamInfo;
    use crate::model::{Operator, Piece, Template};

    fn add(name: &str, value: Template, action: AppendAction) -> HeaderAdd {
        HeaderAdd {
            name: name.into(),
            value,
            action,
            keep_empty_value: false,
        }
    }

    #[test]
    fn least_specific_level_has_the_last_word_by_default() {
        let level = |value: &str| HeaderMutations {
            request_add: vec![add(
                "x-level",
                Template::literal(value),
                AppendAction::OverwriteIfExistsOrAdd,
            )],
            ..HeaderMutations::default()
        };
        let (config, vhost, route, arm) = (
            level("config"),
            level("vhost"),
            level("route"),
            level("arm"),
        );
        let info = StreamInfo::new(
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        let ctx = LogContext {
            info: &info,
            request: None,
            response: None,
            trailers: None,
        };
        let mut headers = HeaderMap::new();
        apply_request(
            &levels(false, &config, &vhost, &route, Some(&arm)),
            &mut headers,
            &ctx,
        );
        assert_eq!(headers["x-level"], "config");
        let mut headers = HeaderMap::new();
        apply_request(
            &levels(true, &config, &vhost, &route, Some(&arm)),
            &mut headers,
            &ctx,
        );
        assert_eq!(headers["x-level"], "arm");
    }

    #[test]
    fn append_actions_and_formatters() {
        let info = StreamInfo::new(
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.9:2".parse().unwrap(),
        );
        let ctx = LogContext {
            info: &info,
            request: None,
            response: None,
            trailers: None,
        };
        let peer = Template {
            pieces: vec![Piece::Operator(Operator::DownstreamRemoteAddress)],
        };
        let level = HeaderMutations {
            request_remove: vec!["x-gone".into()],
            request_add: vec![
                add(
                    "x-a",
                    Template::literal("2"),
                    AppendAction::AppendIfExistsOrAdd,
                ),
                add("x-b", Template::literal("new"), AppendAction::AddIfAbsent),
                add(
                    "x-c",
                    Template::literal("only-if"),
                    AppendAction::OverwriteIfExists,
                ),
                add(
                    "x-d",
                    Template::literal("only-if"),
                    AppendAction::OverwriteIfExists,
                ),
                add("x-peer", peer, AppendAction::OverwriteIfExistsOrAdd),
                add(
                    "x-empty",
                    Template::literal(""),
                    AppendAction::OverwriteIfExistsOrAdd,
                ),
            ],
            ..HeaderMutations::default()
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-a", HeaderValue::from_static("1"));
        headers.insert("x-b", HeaderValue::from_static("old"));
        headers.insert("x-c", HeaderValue::from_static("old"));
        headers.insert("x-gone", HeaderValue::from_static("1"));
        apply_request(&[&level], &mut headers, &ctx);
        let all = |name: &str| -> Vec<&str> {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        assert_eq!(all("x-a"), ["1", "2"]);
        assert_eq!(all("x-b"), ["old"]);
        assert_eq!(all("x-c"), ["only-if"]);
        assert!(all("x-d").is_empty());
        assert_eq!(all("x-peer"), ["127.0.0.9:2"]);
        assert!(all("x-empty").is_empty() && all("x-gone").is_empty());
    }
}
