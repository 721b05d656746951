//! Reading a proxy's access log the way an operator does: the lines of
//! Istio's default text format (since Istio 1.8) that a sidecar prints on
//! stdout, with the mesh's reason appended in quotes (pilot adds
//! ` "%RESP(X-MESH-REASON)%"`; a real Envoy prints `-` there):
//!
//! ```text
//! [START] "METHOD PATH PROTOCOL" CODE FLAGS DETAILS TERMINATION "UPSTREAM_FAILURE"
//!   RECEIVED SENT DURATION SERVICE_TIME "XFF" "USER_AGENT" "REQUEST_ID" "AUTHORITY"
//!   "UPSTREAM_HOST" CLUSTER UPSTREAM_LOCAL DOWNSTREAM_LOCAL DOWNSTREAM_REMOTE SNI ROUTE ["REASON"]
//! ```
//!
//! The proxy's log file also has its own tracing lines; only lines of this
//! shape are entries. `CONNECTION_TERMINATION_DETAILS` may hold spaces
//! (TCP connections put the reason there), so it spans every bare word up
//! to the next quoted field.

/// One access log line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessLogEntry {
    /// The line as printed.
    pub raw: String,
    /// `GET`, or `-` for a TCP connection.
    pub method: String,
    /// Request path (`-` for TCP).
    pub path: String,
    /// Response code (0 for TCP or no response).
    pub status: u16,
    /// Envoy response flags (`UO`, `UH`, `FI,DI`), `-` for none.
    pub flags: String,
    /// `%RESPONSE_CODE_DETAILS%`.
    pub details: String,
    /// `%CONNECTION_TERMINATION_DETAILS%` (may contain spaces).
    pub termination: String,
    /// `%REQ(:AUTHORITY)%`.
    pub authority: String,
    /// `%UPSTREAM_HOST%`.
    pub upstream_host: String,
    /// `%UPSTREAM_CLUSTER%` (e.g. `outbound|9080|v1|reviews.default.svc.cluster.local`, `BlackHoleCluster`).
    pub upstream_cluster: String,
    /// `%DOWNSTREAM_LOCAL_ADDRESS%` (the original destination for captured connections).
    pub downstream_local: String,
    /// `%ROUTE_NAME%`.
    pub route: String,
    /// The quoted `x-mesh-reason` at the end, when present and not `-`.
    pub reason: Option<String>,
}

impl AccessLogEntry {
    /// True when the flags contain `flag` (flags are comma separated).
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.split(',').any(|f| f == flag)
    }

    /// Every place the mesh may have put its reason (the trailing field,
    /// then the termination details), for "does it say why" checks.
    pub fn explanation(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        if let Some(r) = &self.reason {
            parts.push(r);
        }
        if self.termination != "-" {
            parts.push(&self.termination);
        }
        parts.join(" | ")
    }
}

/// The access log entries in a proxy's log text, in order.
pub fn parse(log: &str) -> Vec<AccessLogEntry> {
    log.lines().filter_map(parse_line).collect()
}

/// A token of a line: a quoted field or a bare word.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Quoted(String),
    Bare(String),
}

fn tokens(rest: &str) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => s.push(chars.next()?),
                    c => s.push(c),
                }
            }
            out.push(Token::Quoted(s));
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                s.push(c);
                chars.next();
            }
            out.push(Token::Bare(s));
        }
    }
    Some(out)
}

/// One line, if it has the shape of an entry.
pub fn parse_line(line: &str) -> Option<AccessLogEntry> {
    let line = line.trim_end();
    let rest = line.strip_prefix('[')?;
    let (_start, rest) = rest.split_once("] ")?;
    let mut toks = tokens(rest)?.into_iter().peekable();
    let Some(Token::Quoted(request)) = toks.next() else {
        return None;
    };
    let mut request = request.split(' ');
    let (method, path) = (request.next()?.to_string(), request.next()?.to_string());
    let bare = |toks: &mut std::iter::Peekable<std::vec::IntoIter<Token>>| match toks.next() {
        Some(Token::Bare(s)) => Some(s),
        _ => None,
    };
    let status = bare(&mut toks)?.parse().unwrap_or(0);
    let flags = bare(&mut toks)?;
    let details = bare(&mut toks)?;
    let mut termination = Vec::new();
    while let Some(Token::Bare(_)) = toks.peek() {
        termination.extend(bare(&mut toks));
    }
    let mut e = AccessLogEntry {
        raw: line.to_string(),
        method,
        path,
        status,
        flags,
        details,
        termination: termination.join(" "),
        ..AccessLogEntry::default()
    };
    // "UPSTREAM_FAILURE" RECEIVED SENT DURATION SERVICE_TIME
    let rest: Vec<Token> = toks.collect();
    let quoted: Vec<&str> = rest
        .iter()
        .filter_map(|t| match t {
            Token::Quoted(s) => Some(s.as_str()),
            Token::Bare(_) => None,
        })
        .collect();
    let words: Vec<&str> = rest
        .iter()
        .filter_map(|t| match t {
            Token::Bare(s) => Some(s.as_str()),
            Token::Quoted(_) => None,
        })
        .collect();
    // Quoted: failure, xff, user agent, request id, authority, upstream
    // host, [reason]. Bare: 4 numbers, then cluster, upstream local,
    // downstream local, downstream remote, SNI, route.
    let q = |i: usize| quoted.get(i).map(|s| s.to_string()).unwrap_or_default();
    e.authority = q(4);
    e.upstream_host = q(5);
    e.reason = quoted
        .get(6)
        .filter(|r| !r.is_empty() && **r != "-")
        .map(|r| r.to_string());
    let w = |i: usize| words.get(i).map(|s| s.to_string()).unwrap_or_default();
    e.upstream_cluster = w(4);
    e.downstream_local = w(6);
    e.route = w(9);
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTTP: &str = r#"[2025-01-02T03:04:05.678Z] "GET /status/200 HTTP/1.1" 503 UO upstream_reset_before_response_started{overflow} - "-" 0 81 0 - "-" "mesh-e2e-tool" "5d2e-1" "httpbin:8000" "-" outbound|8000||httpbin.default.svc.cluster.local - 198.19.3.11:8000 198.18.3.12:40000 - default "UO overflow: DestinationRule default/httpbin maxConnections=1""#;
    const TCP: &str = r#"[2025-01-02T03:04:05.678Z] "- - -" 0 UH - UH blocked: outboundTrafficPolicy REGISTRY_ONLY "-" 0 0 1 - "-" "-" "-" "-" "-" BlackHoleCluster - 198.18.3.20:5432 198.18.3.12:50000 - - "-""#;

    #[test]
    fn reads_an_http_line_with_the_reason() {
        let e = parse_line(HTTP).expect("an entry");
        assert_eq!(
            (e.method.as_str(), e.path.as_str(), e.status),
            ("GET", "/status/200", 503)
        );
        assert!(e.has_flag("UO") && !e.has_flag("U"));
        assert_eq!(
            e.details,
            "upstream_reset_before_response_started{overflow}"
        );
        assert_eq!(e.authority, "httpbin:8000");
        assert_eq!(
            e.upstream_cluster,
            "outbound|8000||httpbin.default.svc.cluster.local"
        );
        assert_eq!(e.downstream_local, "198.19.3.11:8000");
        assert_eq!(e.route, "default");
        assert_eq!(
            e.reason.as_deref(),
            Some("UO overflow: DestinationRule default/httpbin maxConnections=1")
        );
    }

    #[test]
    fn reads_a_tcp_line_whose_termination_details_have_spaces() {
        let e = parse_line(TCP).expect("an entry");
        assert_eq!((e.method.as_str(), e.status), ("-", 0));
        assert!(e.has_flag("UH"));
        assert_eq!(
            e.termination,
            "UH blocked: outboundTrafficPolicy REGISTRY_ONLY"
        );
        assert_eq!(e.upstream_cluster, "BlackHoleCluster");
        assert_eq!(e.downstream_local, "198.18.3.20:5432");
        assert_eq!(e.reason, None);
        assert!(e.explanation().contains("REGISTRY_ONLY"));
    }

    #[test]
    fn other_log_lines_are_not_entries() {
        let log = format!(
            "2025-01-02T03:04:05.000Z  INFO mesh_proxy: listening on 0.0.0.0:15001\n{HTTP}\n[not an entry\n{TCP}\n"
        );
        let entries = parse(&log);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].upstream_cluster, "BlackHoleCluster");
    }
}
