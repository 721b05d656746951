//! xDS conversion of header mutations (`request_headers_to_add` and
//! friends) at every level of a route configuration.

use envoy_types::pb::envoy::config::core::v3::{
    header_value_option::HeaderAppendAction, HeaderValueOption,
};

use super::format::parse_template;
use crate::model::{AppendAction, HeaderAdd, HeaderMutations};
use crate::xds::error::ConvertError;

/// The four header mutation lists of one level.
pub(super) fn mutations(
    request_add: &[HeaderValueOption],
    request_remove: &[String],
    response_add: &[HeaderValueOption],
    response_remove: &[String],
) -> Result<HeaderMutations, ConvertError> {
    Ok(HeaderMutations {
        request_add: adds(request_add, "request_headers_to_add")?,
        request_remove: removes(request_remove, "request_headers_to_remove")?,
        response_add: adds(response_add, "response_headers_to_add")?,
        response_remove: removes(response_remove, "response_headers_to_remove")?,
    })
}

fn removes(names: &[String], field: &str) -> Result<Vec<String>, ConvertError> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let lower = name.to_ascii_lowercase();
            // Envoy refuses to remove pseudo-headers and Host.
            if lower.starts_with(':')
                || lower == "host"
                || http::HeaderName::from_bytes(lower.as_bytes()).is_err()
            {
                return Err(ConvertError::invalid(
                    "header name",
                    format!("{name:?} cannot be removed"),
                )
                .at(format!("{field}[{i}]")));
            }
            Ok(lower)
        })
        .collect()
}

// The deprecated `append` BoolValue still decides when set, as in Envoy.
#[allow(deprecated)]
fn adds(options: &[HeaderValueOption], field: &str) -> Result<Vec<HeaderAdd>, ConvertError> {
    options
        .iter()
        .enumerate()
        .map(|(i, option)| add(option).map_err(|e| e.at(format!("{field}[{i}]"))))
        .collect()
}

#[allow(deprecated)]
fn add(option: &HeaderValueOption) -> Result<HeaderAdd, ConvertError> {
    let header = option
        .header
        .as_ref()
        .ok_or(ConvertError::Missing("header"))?;
    let name = header.key.to_ascii_lowercase();
    if name.starts_with(':') || name == "host" {
        return Err(ConvertError::invalid(
            "header.key",
            format!("{name:?} cannot be set by a header mutation"),
        ));
    }
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(ConvertError::invalid(
            "header.key",
            format!("{name:?} is not a header name"),
        ));
    }
    let raw;
    let value = if header.value.is_empty() && !header.raw_value.is_empty() {
        raw = String::from_utf8(header.raw_value.clone())
            .map_err(|_| ConvertError::invalid("header.raw_value", "not UTF-8"))?;
        raw.as_str()
    } else {
        header.value.as_str()
    };
    let template = parse_template(value).map_err(|e| e.at("header.value"))?;
    let action = match option.append.as_ref() {
        Some(append) if option.append_action != 0 => {
            let _ = append;
            return Err(ConvertError::invalid(
                "append",
                "append and append_action are both set",
            ));
        }
        Some(append) if append.value => AppendAction::AppendIfExistsOrAdd,
        Some(_) => AppendAction::OverwriteIfExistsOrAdd,
        None => match HeaderAppendAction::try_from(option.append_action) {
            Ok(HeaderAppendAction::AppendIfExistsOrAdd) => AppendAction::AppendIfExistsOrAdd,
            Ok(HeaderAppendAction::AddIfAbsent) => AppendAction::AddIfAbsent,
            Ok(HeaderAppendAction::OverwriteIfExistsOrAdd) => AppendAction::OverwriteIfExistsOrAdd,
            Ok(HeaderAppendAction::OverwriteIfExists) => AppendAction::OverwriteIfExists,
            Err(_) => {
                return Err(ConvertError::invalid(
                    "append_action",
                    option.append_action.to_string(),
                ))
            }
        },
    };
    Ok(HeaderAdd {
        name,
        value: template,
        action,
        keep_empty_value: option.keep_empty_value,
    })
}
