//! xDS conversion of Envoy's substitution format strings (access log
//! formats and header values) into [`Template`]s. An operator the proxy
//! cannot render is refused by name, so pilot sees which one.

use crate::model::{HeaderLookup, Operator, Piece, Template};
use crate::xds::error::ConvertError;

/// Parses `text`: literal runs, `%%` for a percent sign, and operators
/// `%NAME%`, `%NAME(ARG)%`, `%NAME(ARG):LEN%`.
pub(super) fn parse_template(text: &str) -> Result<Template, ConvertError> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        literal.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            literal.push('%');
            rest = tail;
            continue;
        }
        let (operator, tail) = operator(after)?;
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        pieces.push(Piece::Operator(operator));
        rest = tail;
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(Template { pieces })
}

/// One operator from just after its opening `%`; returns the text after
/// its closing `%`.
fn operator(text: &str) -> Result<(Operator, &str), ConvertError> {
    let name_end = text
        .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .unwrap_or(text.len());
    let name = &text[..name_end];
    let mut rest = &text[name_end..];
    let mut arg = None;
    if let Some(inner) = rest.strip_prefix('(') {
        let close = inner
            .find(')')
            .ok_or_else(|| ConvertError::invalid("format", format!("{name}( is not closed")))?;
        arg = Some(&inner[..close]);
        rest = &inner[close + 1..];
    }
    let mut max_length = None;
    if let Some(inner) = rest.strip_prefix(':') {
        let digits = inner
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(inner.len());
        max_length = Some(inner[..digits].parse::<usize>().map_err(|_| {
            ConvertError::invalid("format", format!("{name}: length is not a number"))
        })?);
        rest = &inner[digits..];
    }
    let Some(rest) = rest.strip_prefix('%') else {
        return Err(ConvertError::invalid(
            "format",
            format!("operator {name:?} is not closed with %"),
        ));
    };
    if name.is_empty() {
        return Err(ConvertError::invalid("format", "empty operator %%"));
    }
    let lookup = |arg: Option<&str>| -> Result<HeaderLookup, ConvertError> {
        let arg = arg
            .filter(|a| !a.is_empty())
            .ok_or_else(|| ConvertError::invalid("format", format!("{name} needs a header")))?;
        let (main, alternative) = match arg.split_once('?') {
            Some((main, alt)) => (main, Some(alt.to_ascii_lowercase())),
            None => (arg, None),
        };
        Ok(HeaderLookup {
            name: main.to_ascii_lowercase(),
            alternative,
            max_length,
        })
    };
    let no_arg = |op: Operator| -> Result<Operator, ConvertError> {
        match arg {
            Some(_) => Err(ConvertError::unsupported(format!(
                "format operator {name} with an argument"
            ))),
            None => Ok(op),
        }
    };
    let op = match name {
        "START_TIME" => Operator::StartTime(
            arg.filter(|a| !a.is_empty())
                .map(|a| {
                    let format = a.to_owned();
                    check_time_format(&format).map(|()| format)
                })
                .transpose()?,
        ),
        "REQ" => Operator::Request(lookup(arg)?),
        "RESP" => Operator::Response(lookup(arg)?),
        "TRAILER" => Operator::Trailer(lookup(arg)?),
        "PROTOCOL" => no_arg(Operator::Protocol)?,
        "RESPONSE_CODE" => no_arg(Operator::ResponseCode)?,
        "RESPONSE_FLAGS" => no_arg(Operator::ResponseFlags)?,
        "RESPONSE_CODE_DETAILS" => no_arg(Operator::ResponseCodeDetails)?,
        "CONNECTION_TERMINATION_DETAILS" => no_arg(Operator::ConnectionTerminationDetails)?,
        "UPSTREAM_TRANSPORT_FAILURE_REASON" => no_arg(Operator::UpstreamTransportFailureReason)?,
        "BYTES_RECEIVED" => no_arg(Operator::BytesReceived)?,
        "BYTES_SENT" => no_arg(Operator::BytesSent)?,
        "DURATION" => no_arg(Operator::Duration)?,
        "REQUEST_DURATION" => no_arg(Operator::RequestDuration)?,
        "RESPONSE_DURATION" => no_arg(Operator::ResponseDuration)?,
        "UPSTREAM_HOST" => no_arg(Operator::UpstreamHost)?,
        "UPSTREAM_CLUSTER" => no_arg(Operator::UpstreamCluster)?,
        "UPSTREAM_CLUSTER_RAW" => no_arg(Operator::UpstreamClusterRaw)?,
        "UPSTREAM_LOCAL_ADDRESS" => no_arg(Operator::UpstreamLocalAddress)?,
        "UPSTREAM_REMOTE_ADDRESS" => no_arg(Operator::UpstreamRemoteAddress)?,
        "UPSTREAM_REQUEST_ATTEMPT_COUNT" => no_arg(Operator::UpstreamRequestAttemptCount)?,
        "DOWNSTREAM_LOCAL_ADDRESS" => no_arg(Operator::DownstreamLocalAddress)?,
        "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => {
            no_arg(Operator::DownstreamLocalAddressWithoutPort)?
        }
        "DOWNSTREAM_LOCAL_PORT" => no_arg(Operator::DownstreamLocalPort)?,
        "DOWNSTREAM_REMOTE_ADDRESS" => no_arg(Operator::DownstreamRemoteAddress)?,
        "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => {
            no_arg(Operator::DownstreamRemoteAddressWithoutPort)?
        }
        "DOWNSTREAM_REMOTE_PORT" => no_arg(Operator::DownstreamRemotePort)?,
        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS" => no_arg(Operator::DownstreamDirectRemoteAddress)?,
        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT" => {
            no_arg(Operator::DownstreamDirectRemoteAddressWithoutPort)?
        }
        "REQUESTED_SERVER_NAME" => no_arg(Operator::RequestedServerName)?,
        "ROUTE_NAME" => no_arg(Operator::RouteName)?,
        "HOSTNAME" => no_arg(Operator::Hostname)?,
        other => {
            return Err(ConvertError::unsupported(format!(
                "format operator %{other}%"
            )))
        }
    };
    Ok((op, rest))
}

/// The strftime specifiers `START_TIME(...)` may use: those the renderer
/// implements.
fn check_time_format(format: &str) -> Result<(), ConvertError> {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        match chars.next() {
            Some('Y' | 'm' | 'd' | 'H' | 'M' | 'S' | 's' | 'z' | 'Z' | 'F' | 'T' | '%') => {}
            Some(digit @ '1'..='9') if chars.next() == Some('f') => {
                let _ = digit;
            }
            Some('f') => {}
            other => {
                return Err(ConvertError::unsupported(format!(
                    "START_TIME specifier %{}",
                    other.map(String::from).unwrap_or_default()
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_operators_literals_and_lengths() {
        let t = parse_template(
            "[%START_TIME%] \"%REQ(X-ENVOY-ORIGINAL-PATH?:PATH):10%\" 100%% %RESPONSE_FLAGS%\n",
        )
        .unwrap();
        assert_eq!(t.pieces.len(), 7, "{t:?}");
        assert_eq!(t.pieces[0], Piece::Literal("[".into()));
        assert_eq!(t.pieces[1], Piece::Operator(Operator::StartTime(None)));
        assert_eq!(
            t.pieces[3],
            Piece::Operator(Operator::Request(HeaderLookup {
                name: "x-envoy-original-path".into(),
                alternative: Some(":path".into()),
                max_length: Some(10),
            }))
        );
        assert_eq!(t.pieces[4], Piece::Literal("\" 100% ".into()));
        assert_eq!(parse_template("plain").unwrap().as_literal(), Some("plain"));
    }

    #[test]
    fn istios_default_format_with_the_mesh_reason_parses() {
        let istio = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME% \"%RESP(X-MESH-REASON)%\"\n";
        let t = parse_template(istio).unwrap();
        let operators = t
            .pieces
            .iter()
            .filter(|p| matches!(p, Piece::Operator(_)))
            .count();
        assert_eq!(operators, 25);
        assert!(parse_template(super::super::DEFAULT_FORMAT).is_ok());
    }

    #[test]
    fn unknown_operators_are_named() {
        let err = parse_template("%DYNAMIC_METADATA(x)%")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "unsupported format operator %DYNAMIC_METADATA%");
        let err = parse_template("%REQ(x)").unwrap_err().to_string();
        assert!(err.contains("not closed"), "{err}");
        assert!(parse_template("%START_TIME(%Y-%m-%dT%H:%M:%3fZ)%").is_ok());
        assert!(parse_template("%START_TIME(%a)%").is_err());
    }
}
