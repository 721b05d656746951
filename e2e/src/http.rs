//! A minimal HTTP/1.1 GET for the test process itself (the ingress gateway
//! seen from outside the mesh) and the response parser that
//! `mesh-e2e-tool fetch` shares. Std only: one request per connection.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::cluster::HttpResponse;
use crate::E2eError;

/// GETs `url` (`http://HOST[:PORT]/PATH`) from the test process, with
/// `timeout` for connecting and for each read.
pub fn get(url: &str, timeout: Duration) -> Result<HttpResponse, E2eError> {
    let failed = |what: String| E2eError::Invalid(format!("GET {url}: {what}"));
    let (authority, path) = split_url(url).map_err(failed)?;
    let addr = authority_addr(authority)
        .map_err(failed)?
        .to_socket_addrs()
        .map_err(|e| failed(e.to_string()))?
        .next()
        .ok_or_else(|| failed("no address".into()))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| failed(e.to_string()))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| failed(e.to_string()))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {authority}\r\nuser-agent: mesh-e2e\r\nconnection: close\r\n\r\n"
    )
    .map_err(|e| failed(e.to_string()))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| failed(e.to_string()))?;
    let (status, body) = parse_response(&raw).map_err(failed)?;
    Ok(HttpResponse {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Splits `http://AUTHORITY/PATH` into the authority and the path (`/` if none).
pub fn split_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs: {url}"))?;
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

/// Status and body of a whole HTTP/1.1 response (content-length, chunked or
/// until close).
pub fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("response has no complete head")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let body = &raw[end + 4..];
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("bad status line")?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return Ok((status, dechunk(body)?));
    }
    let body = match header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(len) => body.get(..len).ok_or("body shorter than content-length")?,
        None => body,
    };
    Ok((status, body.to_vec()))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| "bad chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(body.get(..size).ok_or("truncated chunk")?);
        body = body.get(size + 2..).ok_or("truncated chunk end")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_chunked_and_close_delimited_bodies() {
        let cl = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhiEXTRA";
        assert_eq!(parse_response(cl), Ok((200, b"hi".to_vec())));
        let chunked = b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Ok((502, b"abcd".to_vec())));
        let close = b"HTTP/1.0 404 Not Found\r\n\r\nnope";
        assert_eq!(parse_response(close), Ok((404, b"nope".to_vec())));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 2x0 OK\r\n\r\n").is_err());
    }

    #[test]
    fn splits_urls() {
        assert_eq!(split_url("http://a:1/x/y"), Ok(("a:1", "/x/y")));
        assert_eq!(split_url("http://a"), Ok(("a", "/")));
        assert!(split_url("https://a").is_err());
        assert_eq!(authority_addr("a"), Ok(("a".to_string(), 80)));
        assert!(authority_addr("a:x").is_err());
    }
}
