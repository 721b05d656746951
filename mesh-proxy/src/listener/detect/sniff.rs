//! The pure part of protocol detection: given the bytes peeked so far, is
//! this HTTP/1.x, an HTTP/2 preface, a TLS ClientHello, something else, or
//! too early to say? No I/O, so every case is a plain unit test.

use super::{tls, Detected, H2C, HTTP11, TLS};

/// The HTTP/2 connection preface a prior-knowledge (h2c) client sends first.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Request methods an HTTP/1.x request line may start with (RFC 9110 and
/// the WebDAV ones Envoy's parser knows).
const METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "SEARCH",
    "PURGE",
];

/// The outcome of looking at a prefix of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniff {
    /// Known now.
    Done(Detected),
    /// The bytes are a prefix of something known; wait for more.
    NeedMore,
}

/// How one protocol sees the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Yes,
    No,
    Maybe,
}

/// Classify the first bytes of a connection. `last` says no more bytes will
/// be looked at (buffer full, EOF or timeout): a prefix that could still be
/// a request is then decided on what it shows.
pub fn classify(bytes: &[u8], last: bool) -> Sniff {
    if bytes.is_empty() {
        return if last {
            Sniff::Done(Detected::raw())
        } else {
            Sniff::NeedMore
        };
    }
    if tls::looks_like_tls(bytes) {
        return match tls::parse(bytes) {
            // A record header and the ClientHello type byte at least.
            Ok(hello) if hello.complete || (last && bytes.len() >= 6) => Sniff::Done(Detected {
                transport_protocol: TLS,
                application_protocols: hello.alpn,
                server_name: hello.server_name,
            }),
            Ok(_) if !last => Sniff::NeedMore,
            _ => Sniff::Done(Detected::raw()),
        };
    }
    let h2 = h2_preface(bytes);
    let h1 = http1(bytes, last);
    match (h2, h1) {
        (Verdict::Yes, _) => Sniff::Done(Detected::plaintext(H2C)),
        (_, Verdict::Yes) => Sniff::Done(Detected::plaintext(HTTP11)),
        (Verdict::Maybe, _) | (_, Verdict::Maybe) if !last => Sniff::NeedMore,
        _ => Sniff::Done(Detected::raw()),
    }
}

fn h2_preface(bytes: &[u8]) -> Verdict {
    if bytes.len() >= H2_PREFACE.len() {
        if bytes.starts_with(H2_PREFACE) {
            Verdict::Yes
        } else {
            Verdict::No
        }
    } else if H2_PREFACE.starts_with(bytes) {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// `METHOD SP request-target SP HTTP/1.x CRLF`. With `last`, a well-formed
/// method and target without the line end yet (a very long URL) is HTTP.
fn http1(bytes: &[u8], last: bool) -> Verdict {
    let Some(space) = bytes.iter().position(|b| *b == b' ') else {
        let prefix_of_method = METHODS.iter().any(|m| m.as_bytes().starts_with(bytes));
        return if prefix_of_method && !last {
            Verdict::Maybe
        } else {
            Verdict::No
        };
    };
    if !METHODS.iter().any(|m| m.as_bytes() == &bytes[..space]) {
        return Verdict::No;
    }
    let rest = &bytes[space + 1..];
    let Some(end) = rest.iter().position(|b| *b == b'\n') else {
        // Still inside the request line: only visible characters and spaces.
        if !rest
            .iter()
            .all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\r')
        {
            return Verdict::No;
        }
        return if last && !rest.is_empty() && rest[0] != b' ' {
            Verdict::Yes
        } else if last {
            Verdict::No
        } else {
            Verdict::Maybe
        };
    };
    let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
    let Some(version_at) = line.iter().rposition(|b| *b == b' ') else {
        return Verdict::No;
    };
    let (target, version) = (&line[..version_at], &line[version_at + 1..]);
    let target_ok = !target.is_empty() && target.iter().all(u8::is_ascii_graphic);
    if target_ok && (version == b"HTTP/1.1" || version == b"HTTP/1.0") {
        Verdict::Yes
    } else {
        Verdict::No
    }
}
