//! Protocol detection, between dispatch and filter chain selection (accept
//! ─► original destination ─► dispatch ─► **detect** ─► filter chain): the
//! proxy's own http_inspector and tls_inspector. It peeks at the first bytes
//! the client sent, never consuming them, so the chosen filter sees the
//! connection from its first byte.
//!
//! ```text
//! peek ≤ 1 KiB ─► "GET / HTTP/1.1\r\n"        ─► raw_buffer + http/1.1
//!              ├► "PRI * HTTP/2.0\r\n\r\nSM…"  ─► raw_buffer + h2c
//!              ├► 0x16 0x03 … ClientHello     ─► tls + SNI + ALPN (peeks up to 16 KiB)
//!              ├► a prefix of one of these     ─► wait for more (bounded)
//!              └► anything else, EOF, timeout ─► raw_buffer, no protocol
//! ```
//!
//! Only listeners whose filter chains ask for it run detection
//! (`super::select::needs_detection`); server-first protocols sit behind
//! listeners that don't, so they never wait here.

pub mod sniff;
#[cfg(test)]
mod tests;
pub mod tls;

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

pub use sniff::{classify, Sniff};

/// Default of `--protocol-detection-timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);
/// How much is peeked for HTTP: a request line longer than this still
/// counts as HTTP if what was seen of it is well formed.
pub const MAX_PEEK: usize = 1024;
/// How much is peeked for a TLS ClientHello (one full TLS record): hellos
/// with post-quantum key shares are well over 1 KiB.
pub const MAX_TLS_PEEK: usize = (1 << 14) + 5;
/// Pause between peeks while a prefix waits for the rest: `peek` returns at
/// once while any data is queued, so it cannot wait for *more* data itself.
const PARTIAL_POLL: Duration = Duration::from_millis(2);

/// Transport protocol of a connection without TLS (Envoy's name).
pub const RAW_BUFFER: &str = "raw_buffer";
/// Transport protocol of a connection that starts with a ClientHello.
pub const TLS: &str = "tls";
/// Application protocol of HTTP/1.0 and HTTP/1.1 clients.
pub const HTTP11: &str = "http/1.1";
/// Application protocol of HTTP/2 prior-knowledge clients.
pub const H2C: &str = "h2c";

/// What detection learnt about a connection; what filter chains match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// [`RAW_BUFFER`] or [`TLS`].
    pub transport_protocol: &'static str,
    /// `http/1.1` or `h2c` for plaintext HTTP, the ALPN list for TLS.
    pub application_protocols: Vec<String>,
    /// The TLS SNI host name, lower-cased.
    pub server_name: Option<String>,
}

impl Detected {
    /// A connection nothing was learnt about: plaintext, unknown protocol.
    pub fn raw() -> Detected {
        Detected {
            transport_protocol: RAW_BUFFER,
            application_protocols: Vec::new(),
            server_name: None,
        }
    }

    fn plaintext(protocol: &str) -> Detected {
        Detected {
            application_protocols: vec![protocol.to_owned()],
            ..Detected::raw()
        }
    }
}

/// Peek at `stream` until its first bytes say what it is, for at most
/// `timeout`. Never reads (consumes) anything and never fails: an error,
/// EOF, silence or unknown bytes all give [`Detected::raw`].
pub async fn detect(stream: &TcpStream, timeout: Duration) -> Detected {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; MAX_PEEK];
    let mut seen = 0;
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(error)) => {
                tracing::debug!(%error, "peek failed; treating as raw TCP");
                return Detected::raw();
            }
            Err(_) => return timed_out(&buf[..seen]),
        };
        if n == 0 {
            // EOF before a single byte.
            return Detected::raw();
        }
        seen = n;
        let full = n == buf.len();
        if full && buf.len() < MAX_TLS_PEEK && tls::looks_like_tls(&buf[..n]) {
            buf.resize(MAX_TLS_PEEK, 0);
            continue;
        }
        if let Sniff::Done(detected) = classify(&buf[..n], full) {
            return detected;
        }
        if tokio::time::timeout_at(deadline, tokio::time::sleep(PARTIAL_POLL))
            .await
            .is_err()
        {
            return timed_out(&buf[..seen]);
        }
    }
}

fn timed_out(seen: &[u8]) -> Detected {
    tracing::debug!(bytes = seen.len(), "protocol detection timed out");
    match classify(seen, true) {
        Sniff::Done(detected) => detected,
        Sniff::NeedMore => Detected::raw(),
    }
}
