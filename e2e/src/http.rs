//! A small blocking HTTP/1.1 client, shared by the test process (the
//! ingress gateway seen from outside the mesh) and `mesh-e2e-tool` (`fetch`,
//! `load`, inside pods): one request per connection, any method and
//! headers, the response's status, headers and body, and never a redirect
//! followed (tests look at `location`). Heads are parsed by `httparse`
//! (hyper's parser); the body is framed by content-length, chunked, or the
//! end of the connection, so a proxy that keeps the connection open after
//! the response does not stall the client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::E2eError;

/// Largest head accepted from a server.
const MAX_HEAD: usize = 64 * 1024;
/// Largest body kept (tests never need more).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// An HTTP response as seen from inside a pod.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Response headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body, lossily decoded.
    pub body: String,
}

impl HttpResponse {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// `http://HOST[:PORT]/PATH?QUERY`.
    pub url: String,
    /// Extra request headers, in order (a `host` or `user-agent` here
    /// replaces the default one).
    pub headers: Vec<(String, String)>,
    /// Request body (sent with a content-length when not empty).
    pub body: Vec<u8>,
    /// Connect here instead of resolving the URL's host (curl's
    /// `--resolve`): the Host header still names the URL's authority.
    pub connect_to: Option<SocketAddr>,
    /// Limit for connecting and for each read.
    pub timeout: Duration,
}

impl Request {
    /// A GET of `url` with a 5 s timeout.
    pub fn get(url: &str) -> Request {
        Request {
            method: "GET".into(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            connect_to: None,
            timeout: Duration::from_secs(5),
        }
    }

    /// Adds a request header.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the method.
    pub fn method(mut self, method: &str) -> Request {
        self.method = method.to_string();
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = timeout;
        self
    }

    /// The `mesh-e2e-tool fetch` arguments that make this request.
    pub fn tool_args(&self) -> Vec<String> {
        let mut args = vec!["fetch".to_string(), self.url.clone()];
        if self.method != "GET" {
            args.extend(["-X".to_string(), self.method.clone()]);
        }
        for (k, v) in &self.headers {
            args.extend(["-H".to_string(), format!("{k}: {v}")]);
        }
        if !self.body.is_empty() {
            args.extend([
                "--data".to_string(),
                String::from_utf8_lossy(&self.body).into_owned(),
            ]);
        }
        if let Some(addr) = self.connect_to {
            args.extend(["--connect-to".to_string(), addr.to_string()]);
        }
        args.extend([
            "--timeout-ms".to_string(),
            self.timeout.as_millis().to_string(),
        ]);
        args
    }
}

/// GETs `url` from the test process with `timeout` for connecting and reads.
pub fn get(url: &str, timeout: Duration) -> Result<HttpResponse, E2eError> {
    send(&Request::get(url).timeout(timeout))
        .map_err(|e| E2eError::Invalid(format!("GET {url}: {e}")))
}

/// Sends `req` and reads the whole response; the error is a short
/// observation (`connect 198.18.3.12:80: Connection refused`).
pub fn send(req: &Request) -> Result<HttpResponse, String> {
    let (authority, path) = split_url(&req.url)?;
    let mut stream = match req.connect_to {
        Some(addr) => TcpStream::connect_timeout(&addr, req.timeout)
            .map_err(|e| format!("connect {addr}: {e}"))?,
        None => {
            let (host, port) = authority_addr(authority)?;
            connect(&host, port, req.timeout)?
        }
    };
    let io = |e: std::io::Error| format!("{}: {e}", req.url);
    stream.set_read_timeout(Some(req.timeout)).map_err(io)?;
    stream.set_write_timeout(Some(req.timeout)).map_err(io)?;
    let _ = stream.set_nodelay(true);
    stream
        .write_all(&request_bytes(req, authority, path))
        .map_err(io)?;
    read_response(&mut stream, req.method == "HEAD", req.timeout)
}

/// The request's bytes: the request line, `host`, `user-agent` and
/// `connection: close` unless given, the caller's headers, the body.
fn request_bytes(req: &Request, authority: &str, path: &str) -> Vec<u8> {
    let has = |name: &str| {
        req.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    let mut head = format!("{} {path} HTTP/1.1\r\n", req.method);
    if !has("host") {
        head.push_str(&format!("host: {authority}\r\n"));
    }
    if !has("user-agent") {
        head.push_str("user-agent: mesh-e2e-tool\r\n");
    }
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !req.body.is_empty() && !has("content-length") {
        head.push_str(&format!("content-length: {}\r\n", req.body.len()));
    }
    if !has("connection") {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&req.body);
    bytes
}

/// Resolves `host:port` the way an app does (getaddrinfo, hence the pod's
/// `/etc/hosts`) and connects to the first address that answers.
pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {host}: {e}"))?
        .collect();
    let mut last = format!("{host} resolved to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("connect {addr}: {e}"),
        }
    }
    Err(last)
}

/// Reads one response from `stream`: head first, then the body as framed.
pub fn read_response(
    stream: &mut impl Read,
    head_only: bool,
    timeout: Duration,
) -> Result<HttpResponse, String> {
    let deadline = Instant::now() + timeout.max(Duration::from_millis(1)) * 4;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 16 * 1024];
    let mut eof = false;
    loop {
        if let Some(parsed) = parse_head(&buf)? {
            let (status, headers, head_len) = parsed;
            let framing = framing(status, &headers, head_only);
            loop {
                if let Some(body) = framing.complete(&buf[head_len..], eof)? {
                    return Ok(HttpResponse {
                        status,
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                }
                if eof {
                    return Err("connection closed before the body was complete".into());
                }
                eof = read_more(stream, &mut buf, &mut chunk, deadline)?;
            }
        }
        if eof {
            return Err(if buf.is_empty() {
                "connection closed without a response".into()
            } else {
                "connection closed inside the response head".into()
            });
        }
        if buf.len() > MAX_HEAD {
            return Err("response head too large".into());
        }
        eof = read_more(stream, &mut buf, &mut chunk, deadline)?;
    }
}

/// Reads once; true at the end of the stream.
fn read_more(
    stream: &mut impl Read,
    buf: &mut Vec<u8>,
    chunk: &mut [u8],
    deadline: Instant,
) -> Result<bool, String> {
    if Instant::now() > deadline {
        return Err("response took too long".into());
    }
    match stream.read(chunk) {
        Ok(0) => Ok(true),
        Ok(n) => {
            if buf.len() + n > MAX_HEAD + MAX_BODY {
                return Err("response too large".into());
            }
            buf.extend_from_slice(&chunk[..n]);
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(format!("read: {e}")),
    }
}

type Head = (u16, Vec<(String, String)>, usize);

/// Status, headers (names lower-cased) and head length, once complete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let status = resp.code.ok_or("response without a status")?;
            let headers = resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).trim().to_string(),
                    )
                })
                .collect();
            Ok(Some((status, headers, len)))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(format!("bad response head: {e}")),
    }
}

/// How the body of a response ends.
enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

fn framing(status: u16, headers: &[(String, String)], head_only: bool) -> Framing {
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        return Framing::None;
    }
    let value = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if value("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        return Framing::Chunked;
    }
    match value("content-length").and_then(|v| v.parse().ok()) {
        Some(len) => Framing::Length(len),
        None => Framing::UntilClose,
    }
}

impl Framing {
    /// The body if `data` holds all of it.
    fn complete(&self, data: &[u8], eof: bool) -> Result<Option<Vec<u8>>, String> {
        Ok(match self {
            Framing::None => Some(Vec::new()),
            Framing::Length(len) => data.get(..*len).map(<[u8]>::to_vec),
            Framing::Chunked => dechunk(data)?,
            Framing::UntilClose => eof.then(|| data.to_vec()),
        })
    }
}

/// The decoded body of a chunked message, or `None` while incomplete.
fn dechunk(mut data: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_hex:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            // Trailers (if any) end with an empty line.
            let done = data.starts_with(b"\r\n") || data.windows(4).any(|w| w == b"\r\n\r\n");
            return Ok(done.then_some(out));
        }
        let Some(chunk) = data.get(..size) else {
            return Ok(None);
        };
        out.extend_from_slice(chunk);
        match data.get(size..size + 2) {
            Some(b"\r\n") => data = &data[size + 2..],
            Some(_) => return Err("chunk without its CRLF".into()),
            None => return Ok(None),
        }
    }
}

/// Splits `http://AUTHORITY/PATH` (or `https://`, `ws://`) into the
/// authority and the path (`/` if none).
pub fn split_url(url: &str) -> Result<(&str, &str), String> {
    let rest = ["http://", "https://", "ws://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))
        .ok_or_else(|| format!("only http:// and ws:// URLs: {url}"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    Ok((authority, if path.is_empty() { "/" } else { path }))
}

/// `HOST:PORT` of an authority, port 80 when absent.
pub fn authority_addr(authority: &str) -> Result<(String, u16), String> {
    match authority.rsplit_once(':') {
        Some((h, p)) => Ok((
            h.to_string(),
            p.parse().map_err(|_| format!("bad port in {authority}"))?,
        )),
        None => Ok((authority.to_string(), 80)),
    }
}

/// Writes a response as `mesh-e2e-tool fetch` prints it: `HTTP <status>`,
/// one `name: value` line per header, a blank line, the body.
pub fn format_fetch_output(r: &HttpResponse) -> String {
    let mut out = format!("HTTP {}\n", r.status);
    for (k, v) in &r.headers {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out.push('\n');
    out.push_str(&r.body);
    out
}

/// Reads [`format_fetch_output`] back.
pub fn parse_fetch_output(stdout: &str) -> Result<HttpResponse, E2eError> {
    let bad = || E2eError::Invalid(format!("unexpected fetch output: {stdout:?}"));
    let (head, body) = stdout.split_once("\n\n").unwrap_or((stdout, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP "))
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(bad)?;
    let headers = lines
        .map(|l| {
            l.split_once(": ")
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(bad)
        })
        .collect::<Result<_, _>>()?;
    Ok(HttpResponse {
        status,
        headers,
        body: body.to_string(),
    })
}

/// Reads `curl -i` output: the head as sent, then the decoded body.
pub fn parse_curl_include(stdout: &str) -> Result<HttpResponse, E2eError> {
    let bad = || E2eError::Invalid(format!("unexpected curl output: {stdout:?}"));
    let (head, body) = stdout
        .split_once("\r\n\r\n")
        .or_else(|| stdout.split_once("\n\n"))
        .ok_or_else(bad)?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: body.to_string(),
    })
}

#[cfg(test)]
mod tests;
