//! An Istio `HTTPMatchRequest` as an Envoy `RouteMatch`, as Istio writes
//! it: the path (exact, prefix, regex; case-insensitive on request), and
//! headers, `withoutHeaders`, method, authority and scheme as header
//! matchers, query parameters as query parameter matchers. A regex of just
//! `*` means "present", as in Istio.

use envoy_types::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, query_parameter_matcher::QueryParameterMatchSpecifier,
    route_match, HeaderMatcher, QueryParameterMatcher, RouteMatch,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher, RegexMatcher, StringMatcher};
use envoy_types::pb::google::protobuf::BoolValue;
use mesh_api::{HttpMatchRequest, StringMatch};

/// A match on a path prefix.
pub fn prefix_match(prefix: &str) -> RouteMatch {
    RouteMatch {
        path_specifier: Some(route_match::PathSpecifier::Prefix(prefix.to_string())),
        ..Default::default()
    }
}

/// The route match of one Istio match.
pub fn route_match(m: &HttpMatchRequest) -> RouteMatch {
    use mesh_api::StringMatcher as M;
    let path_specifier = match m.uri.as_ref().and_then(|u| u.matcher()) {
        Some(M::Exact(p)) => route_match::PathSpecifier::Path(p.to_string()),
        Some(M::Prefix(p)) => route_match::PathSpecifier::Prefix(p.to_string()),
        Some(M::Regex(r)) => route_match::PathSpecifier::SafeRegex(regex(r)),
        None => route_match::PathSpecifier::Prefix("/".to_string()),
    };
    let mut headers: Vec<HeaderMatcher> = Vec::new();
    for (name, sm) in &m.headers {
        headers.push(header(name, sm));
    }
    for (name, sm) in &m.without_headers {
        let mut h = header(name, sm);
        h.invert_match = true;
        // A header that is absent does not match the value, so the inverted
        // match holds (Istio's reading of withoutHeaders).
        h.treat_missing_header_as_empty = !is_presence(sm);
        headers.push(h);
    }
    headers.sort_by(|a, b| a.name.cmp(&b.name));
    let pseudo = [
        (":method", &m.method),
        (":authority", &m.authority),
        (":scheme", &m.scheme),
    ];
    for (name, sm) in pseudo {
        if let Some(sm) = sm {
            headers.push(header(name, sm));
        }
    }
    let query_parameters = m
        .query_params
        .iter()
        .map(|(name, sm)| QueryParameterMatcher {
            name: name.clone(),
            query_parameter_match_specifier: Some(if is_presence(sm) {
                QueryParameterMatchSpecifier::PresentMatch(true)
            } else {
                match string_matcher(sm) {
                    Some(m) => QueryParameterMatchSpecifier::StringMatch(m),
                    None => QueryParameterMatchSpecifier::PresentMatch(true),
                }
            }),
        })
        .collect();
    RouteMatch {
        path_specifier: Some(path_specifier),
        case_sensitive: Some(BoolValue {
            value: m.ignore_uri_case != Some(true),
        }),
        headers,
        query_parameters,
        ..Default::default()
    }
}

/// An empty match (`name: {}`) or the regex `*`: the header is present.
fn is_presence(sm: &StringMatch) -> bool {
    sm.matcher().is_none() || sm.regex.as_deref() == Some("*")
}

fn header(name: &str, sm: &StringMatch) -> HeaderMatcher {
    let specifier = if is_presence(sm) {
        HeaderMatchSpecifier::PresentMatch(true)
    } else {
        match string_matcher(sm) {
            Some(m) => HeaderMatchSpecifier::StringMatch(m),
            None => HeaderMatchSpecifier::PresentMatch(true),
        }
    };
    HeaderMatcher {
        name: name.to_ascii_lowercase(),
        header_match_specifier: Some(specifier),
        ..Default::default()
    }
}

/// An Istio string match as Envoy's.
pub fn string_matcher(sm: &StringMatch) -> Option<StringMatcher> {
    use mesh_api::StringMatcher as M;
    let pattern = match sm.matcher()? {
        M::Exact(s) => string_matcher::MatchPattern::Exact(s.to_string()),
        M::Prefix(s) => string_matcher::MatchPattern::Prefix(s.to_string()),
        M::Regex(s) => string_matcher::MatchPattern::SafeRegex(regex(s)),
    };
    Some(StringMatcher {
        match_pattern: Some(pattern),
        ..Default::default()
    })
}

/// A safe regex (RE2).
pub fn regex(r: &str) -> RegexMatcher {
    RegexMatcher {
        regex: r.to_string(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn match_of(yaml: &str) -> RouteMatch {
        route_match(&serde_yaml::from_str(yaml).unwrap())
    }

    #[test]
    fn headers_query_and_absence_as_istio_writes_them() {
        let m = match_of(
            "uri: {prefix: /api}\nignoreUriCase: true\nheaders: {end-user: {exact: jason}, x-any: {}}\nwithoutHeaders: {x-skip: {exact: '1'}}\nqueryParams: {v: {regex: '*'}, q: {exact: a}}\nmethod: {exact: GET}",
        );
        assert_eq!(m.case_sensitive, Some(BoolValue { value: false }));
        let names: Vec<&str> = m.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["end-user", "x-any", "x-skip", ":method"]);
        assert_eq!(
            m.headers[1].header_match_specifier,
            Some(HeaderMatchSpecifier::PresentMatch(true))
        );
        assert!(m.headers[2].invert_match && m.headers[2].treat_missing_header_as_empty);
        let q: Vec<(&str, bool)> = m
            .query_parameters
            .iter()
            .map(|q| {
                let present = matches!(
                    q.query_parameter_match_specifier,
                    Some(QueryParameterMatchSpecifier::PresentMatch(true))
                );
                (q.name.as_str(), present)
            })
            .collect();
        assert_eq!(q, [("q", false), ("v", true)]);
    }
}
