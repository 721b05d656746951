//! `serve-http`: the test upstream. HTTP/1.1 with keep-alive (sidecars
//! reuse upstream connections), optionally over TLS (a backend that
//! terminates TLS itself, behind a passthrough gateway). What a scenario
//! controls and reads:
//!
//! - `--version NAME`: `x-version` on every answer, and `served by NAME`
//!   as the body;
//! - `--fail-every K --fail-status CODE`: the K-th, 2K-th, ... request
//!   (counted by this instance) fails with CODE (retries);
//! - `--delay-ms N`: every answer waits N ms (timeouts, breakers);
//! - `--echo-headers`: the body also lists the request line and headers
//!   (`x-envoy-attempt-count`, `x-forwarded-proto`, `-shadow` hosts);
//! - `GET /__count`: `{"served": N, "hosts": {HOST: N}}`, requests served so
//!   far (not counting these control requests);
//! - `GET /__fail?status=503` turns every answer into that status until
//!   `GET /__heal` (outlier detection).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::Result;

/// How the server answers.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    pub listen: String,
    pub body: Option<String>,
    pub version: Option<String>,
    pub fail_every: Option<u64>,
    pub fail_status: u16,
    pub delay_ms: u64,
    pub echo_headers: bool,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
}

/// What every connection shares.
struct State {
    opts: HttpOptions,
    served: AtomicU64,
    failing: Mutex<Option<u16>>,
    hosts: Mutex<BTreeMap<String, u64>>,
}

/// A parsed request.
struct Incoming {
    method: String,
    target: String,
    minor: u8,
    headers: Vec<(String, String)>,
}

impl Incoming {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn keep_alive(&self) -> bool {
        let close = self
            .header("connection")
            .is_some_and(|v| v.to_ascii_lowercase().contains("close"));
        self.minor >= 1 && !close
    }
}

/// Serves until killed.
pub fn serve_http(opts: HttpOptions) -> Result<()> {
    let tls = match (&opts.tls_cert, &opts.tls_key) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    let listener =
        TcpListener::bind(&opts.listen).map_err(|e| format!("bind {}: {e}", opts.listen))?;
    eprintln!(
        "listening on {}{}",
        opts.listen,
        if tls.is_some() { " (TLS)" } else { "" }
    );
    let state = Arc::new(State {
        opts,
        served: AtomicU64::new(0),
        failing: Mutex::new(None),
        hosts: Mutex::new(BTreeMap::new()),
    });
    for stream in listener.incoming().flatten() {
        if let Ok(peer) = stream.peer_addr() {
            eprintln!("connection from {peer}");
        }
        let (state, tls) = (state.clone(), tls.clone());
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
            let _ = stream.set_nodelay(true);
            let result = match tls {
                Some(config) => serve_tls(stream, config, &state),
                None => {
                    let mut stream = stream;
                    serve_connection(&mut stream, &state)
                }
            };
            if let Err(e) = result {
                eprintln!("connection: {e}");
            }
        });
    }
    Ok(())
}

fn tls_config(cert: &str, key: &str) -> Result<Arc<rustls::ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{cert}: {e}"))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| format!("{cert}: {e}"))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{key}: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    Ok(Arc::new(config))
}

fn serve_tls(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    state: &State,
) -> std::io::Result<()> {
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    // Complete the handshake first, so the SNI the client sent is known.
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    if let Some(sni) = tls.conn.server_name() {
        eprintln!("tls server name {sni}");
    }
    serve_connection(&mut tls, state)
}

/// Requests of one connection, in turn, until it closes.
fn serve_connection<S: Read + Write>(stream: &mut S, state: &State) -> std::io::Result<()> {
    let mut buf = Vec::new();
    while let Some(req) = read_request(stream, &mut buf)? {
        eprintln!("{} {} HTTP/1.{}", req.method, req.target, req.minor);
        let keep = req.keep_alive();
        let (status, headers, body) = answer(&req, state);
        let mut out = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n",
            reason_phrase(status),
            body.len()
        );
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if !keep {
            out.push_str("connection: close\r\n");
        }
        out.push_str("\r\n");
        out.push_str(&body);
        stream.write_all(out.as_bytes())?;
        stream.flush()?;
        if !keep {
            break;
        }
    }
    Ok(())
}

/// Reads one request (head and body) from `stream`; `None` at a clean end.
fn read_request<S: Read>(stream: &mut S, buf: &mut Vec<u8>) -> std::io::Result<Option<Incoming>> {
    let mut chunk = [0u8; 8192];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 96];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(len)) => {
                let incoming = Incoming {
                    method: req.method.unwrap_or("GET").to_string(),
                    target: req.path.unwrap_or("/").to_string(),
                    minor: req.version.unwrap_or(1),
                    headers: req
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                };
                buf.drain(..len);
                skip_body(stream, buf, &incoming)?;
                return Ok(Some(incoming));
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(std::io::Error::other(format!("bad request: {e}"))),
        }
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("request head too large"));
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(std::io::Error::other("closed inside a request head")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // An idle keep-alive connection (a proxy's pool) timing out
            // between requests is a normal end, not an error.
            Err(e)
                if buf.is_empty()
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        }
    }
}

/// Consumes the request body (its content is not used), leaving what
/// follows it (a pipelined request) in `buf`.
fn skip_body<S: Read>(stream: &mut S, buf: &mut Vec<u8>, req: &Incoming) -> std::io::Result<()> {
    let mut chunk = [0u8; 8192];
    let mut fill = |buf: &mut Vec<u8>| -> std::io::Result<()> {
        match stream.read(&mut chunk)? {
            0 => Err(std::io::Error::other("closed inside a request body")),
            n => {
                buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    };
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
                fill(buf)?;
                continue;
            };
            let size_text = String::from_utf8_lossy(&buf[..end]).into_owned();
            let hex = size_text.split(';').next().unwrap_or("").trim().to_string();
            let size = usize::from_str_radix(&hex, 16)
                .map_err(|_| std::io::Error::other("bad chunk size"))?;
            if size == 0 {
                // Last chunk, then trailers up to an empty line.
                while !buf[end + 2..].starts_with(b"\r\n")
                    && !buf[end + 2..].windows(4).any(|w| w == b"\r\n\r\n")
                {
                    fill(buf)?;
                }
                let rest = &buf[end + 2..];
                let trailer_end = if rest.starts_with(b"\r\n") {
                    2
                } else {
                    rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4
                };
                buf.drain(..end + 2 + trailer_end);
                return Ok(());
            }
            while buf.len() < end + 2 + size + 2 {
                fill(buf)?;
            }
            buf.drain(..end + 2 + size + 2);
        }
    }
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < len {
        fill(buf)?;
    }
    buf.drain(..len);
    Ok(())
}

type Answer = (u16, Vec<(String, String)>, String);

fn answer(req: &Incoming, state: &State) -> Answer {
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let mut headers = Vec::new();
    if let Some(v) = &state.opts.version {
        headers.push(("x-version".to_string(), v.clone()));
    }
    let lock = |m: &Mutex<Option<u16>>| *m.lock().unwrap_or_else(|e| e.into_inner());
    match path {
        "/__count" => {
            let hosts = state
                .hosts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let body = serde_json::json!({
                "served": state.served.load(Ordering::SeqCst),
                "hosts": hosts,
            });
            return (200, headers, body.to_string());
        }
        "/__fail" => {
            let status = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("status="))
                .and_then(|s| s.parse().ok())
                .filter(|s| (100..600).contains(s))
                .unwrap_or(503);
            *state.failing.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
            return (200, headers, format!("failing with {status}\n"));
        }
        "/__heal" => {
            *state.failing.lock().unwrap_or_else(|e| e.into_inner()) = None;
            return (200, headers, "healed\n".into());
        }
        _ => {}
    }
    let n = state.served.fetch_add(1, Ordering::SeqCst) + 1;
    let host = req.header("host").unwrap_or("-").to_string();
    *state
        .hosts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(host)
        .or_default() += 1;
    if state.opts.delay_ms > 0 {
        std::thread::sleep(Duration::from_millis(state.opts.delay_ms));
    }
    let opts = &state.opts;
    let failed = lock(&state.failing).or_else(|| {
        opts.fail_every
            .filter(|k| *k > 0 && n % k == 0)
            .map(|_| opts.fail_status)
    });
    let who = opts.version.as_deref().unwrap_or("mesh-e2e-tool");
    let mut body = match (failed, &opts.body) {
        (Some(status), _) => format!("{who} failed request {n} with {status}"),
        (None, Some(body)) => body.clone(),
        (None, None) => format!("served by {who}"),
    };
    if opts.echo_headers {
        body.push_str(&format!(
            "\n{} {} HTTP/1.{}\n",
            req.method, req.target, req.minor
        ));
        for (k, v) in &req.headers {
            body.push_str(&format!("{}: {v}\n", k.to_ascii_lowercase()));
        }
    }
    (failed.unwrap_or(200), headers, body)
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
