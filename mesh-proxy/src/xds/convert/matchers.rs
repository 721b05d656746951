//! xDS conversion of the matchers routes, retry policies and filters share:
//! header matchers, string matchers, anchored regexes and regex rewrites.

use envoy_types::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, HeaderMatcher as XdsHeaderMatcher,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    string_matcher::MatchPattern, RegexMatchAndSubstitute, StringMatcher,
};
use regex::Regex;

use crate::model::{HeaderMatchKind, HeaderMatcher, RegexRewrite};
use crate::xds::error::ConvertError;

/// Compiles an Envoy `safe_regex` (RE2 syntax, matching the WHOLE input) for
/// the `regex` crate, whose matches are otherwise unanchored; with the size
/// limits mesh-api's validation checks ([`mesh_api::re2::whole_match`]).
pub fn compile_whole_match(re: &str) -> Result<Regex, ConvertError> {
    mesh_api::re2::whole_match(re).map_err(|source| ConvertError::Regex {
        regex: re.to_owned(),
        source: Box::new(source),
    })
}

/// A `RegexMatchAndSubstitute`: the pattern applies unanchored (every match
/// is replaced, as RE2's `GlobalReplace`), and the substitution's `\N`
/// group references become the `regex` crate's `${N}`.
pub(super) fn regex_rewrite(r: &RegexMatchAndSubstitute) -> Result<RegexRewrite, ConvertError> {
    let pattern = r.pattern.as_ref().ok_or(ConvertError::Missing("pattern"))?;
    let regex =
        mesh_api::re2::unanchored(&pattern.regex).map_err(|source| ConvertError::Regex {
            regex: pattern.regex.clone(),
            source: Box::new(source),
        })?;
    let mut substitution = String::with_capacity(r.substitution.len());
    let mut chars = r.substitution.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(d) if d.is_ascii_digit() => {
                    let group = d.to_digit(10).unwrap_or(0) as usize;
                    if group > regex.captures_len() - 1 {
                        return Err(ConvertError::invalid(
                            "substitution",
                            format!("\\{group} names no group of {:?}", pattern.regex),
                        ));
                    }
                    substitution.push_str(&format!("${{{group}}}"));
                }
                Some('\\') => substitution.push('\\'),
                _ => {
                    return Err(ConvertError::invalid(
                        "substitution",
                        "a backslash must be followed by a digit or a backslash",
                    ))
                }
            },
            '$' => substitution.push_str("$$"),
            other => substitution.push(other),
        }
    }
    Ok(RegexRewrite {
        regex,
        substitution,
    })
}

// Envoy still accepts the deprecated `*_match` forms, and so do we.
#[allow(deprecated)]
impl TryFrom<&XdsHeaderMatcher> for HeaderMatcher {
    type Error = ConvertError;

    fn try_from(h: &XdsHeaderMatcher) -> Result<Self, ConvertError> {
        if h.name.is_empty() {
            return Err(ConvertError::Missing("name"));
        }
        let kind = match &h.header_match_specifier {
            Some(HeaderMatchSpecifier::StringMatch(sm)) => {
                string_match(sm).map_err(|e| e.at("string_match"))?
            }
            Some(HeaderMatchSpecifier::ExactMatch(v)) => HeaderMatchKind::Exact(v.clone()),
            Some(HeaderMatchSpecifier::PrefixMatch(v)) => HeaderMatchKind::Prefix(v.clone()),
            Some(HeaderMatchSpecifier::SuffixMatch(v)) => HeaderMatchKind::Suffix(v.clone()),
            Some(HeaderMatchSpecifier::ContainsMatch(v)) => HeaderMatchKind::Contains(v.clone()),
            Some(HeaderMatchSpecifier::SafeRegexMatch(re)) => HeaderMatchKind::Regex(
                compile_whole_match(&re.regex).map_err(|e| e.at("safe_regex_match"))?,
            ),
            Some(HeaderMatchSpecifier::PresentMatch(p)) => HeaderMatchKind::Present(*p),
            Some(HeaderMatchSpecifier::RangeMatch(_)) => {
                return Err(ConvertError::unsupported("range_match"))
            }
            // Envoy: no specifier means "the header is present".
            None => HeaderMatchKind::Present(true),
        };
        Ok(HeaderMatcher {
            name: h.name.to_ascii_lowercase(),
            kind,
            invert: h.invert_match,
            treat_missing_as_empty: h.treat_missing_header_as_empty,
        })
    }
}

/// Header matchers of a list field, each error placed at its index.
pub(super) fn header_matchers(
    list: &[XdsHeaderMatcher],
    field: &str,
) -> Result<Vec<HeaderMatcher>, ConvertError> {
    list.iter()
        .enumerate()
        .map(|(i, h)| HeaderMatcher::try_from(h).map_err(|e| e.at(format!("{field}[{i}]"))))
        .collect()
}

/// A `StringMatcher`; `ignore_case` turns literal matches into a
/// case-insensitive regex, since the model's literals are case sensitive.
pub(super) fn string_match(sm: &StringMatcher) -> Result<HeaderMatchKind, ConvertError> {
    let pattern = sm
        .match_pattern
        .as_ref()
        .ok_or(ConvertError::Missing("match_pattern"))?;
    if let MatchPattern::SafeRegex(re) = pattern {
        return compile_whole_match(&re.regex)
            .map(HeaderMatchKind::Regex)
            .map_err(|e| e.at("safe_regex"));
    }
    let literal = |s: &String, kind: fn(String) -> HeaderMatchKind, re: fn(&str) -> String| {
        if sm.ignore_case {
            compile_whole_match(&format!("(?i:{})", re(&regex::escape(s))))
                .map(HeaderMatchKind::Regex)
        } else {
            Ok(kind(s.clone()))
        }
    };
    match pattern {
        MatchPattern::Exact(s) => literal(s, HeaderMatchKind::Exact, |e| e.to_owned()),
        MatchPattern::Prefix(s) => literal(s, HeaderMatchKind::Prefix, |e| format!("{e}.*")),
        MatchPattern::Suffix(s) => literal(s, HeaderMatchKind::Suffix, |e| format!(".*{e}")),
        MatchPattern::Contains(s) => literal(s, HeaderMatchKind::Contains, |e| format!(".*{e}.*")),
        MatchPattern::SafeRegex(_) | MatchPattern::Custom(_) => {
            Err(ConvertError::unsupported("custom string matcher"))
        }
    }
}
