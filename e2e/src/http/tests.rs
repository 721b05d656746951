use std::io::{Cursor, Read};
use std::net::TcpListener;

use super::*;

fn read(raw: &[u8]) -> Result<HttpResponse, String> {
    read_response(
        &mut Cursor::new(raw.to_vec()),
        false,
        Duration::from_secs(1),
    )
}

#[test]
fn reads_content_length_chunked_and_close_delimited_bodies() {
    let cl = read(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Version: v1\r\n\r\nhiEXTRA").unwrap();
    assert_eq!((cl.status, cl.body.as_str()), (200, "hi"));
    assert_eq!(cl.header("x-version"), Some("v1"));
    let chunked = b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n";
    assert_eq!(read(chunked).unwrap().body, "abcd");
    let trailers = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\ngrpc-status: 0\r\n\r\n";
    assert_eq!(read(trailers).unwrap().body, "ok");
    let close = read(b"HTTP/1.0 404 Not Found\r\n\r\nnope").unwrap();
    assert_eq!((close.status, close.body.as_str()), (404, "nope"));
    let no_body =
        read(b"HTTP/1.1 301 Moved\r\nlocation: https://x/\r\ncontent-length: 0\r\n\r\n").unwrap();
    assert_eq!(no_body.header("location"), Some("https://x/"));
}

#[test]
fn incomplete_or_broken_responses_are_errors() {
    assert!(read(b"HTTP/1.1 200 OK\r\n").is_err());
    assert!(read(b"HTTP/1.1 2x0 OK\r\n\r\n").is_err());
    assert!(read(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort").is_err());
    assert!(read(b"").is_err());
    assert!(read(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n").is_err());
}

#[test]
fn does_not_wait_for_close_when_the_body_is_framed() {
    // A server that answers and keeps the connection open.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap();
        let req = String::from_utf8_lossy(&buf[..n]).into_owned();
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
            .unwrap();
        std::thread::sleep(Duration::from_secs(3));
        req
    });
    let started = Instant::now();
    let mut req = Request::get("http://svc.example:81/p?q=1")
        .method("POST")
        .header("end-user", "jason")
        .timeout(Duration::from_secs(2));
    req.connect_to = Some(addr);
    req.body = b"abc".to_vec();
    let r = send(&req).unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "hello"));
    assert!(started.elapsed() < Duration::from_secs(2));
    let seen = server.join().unwrap();
    assert!(
        seen.starts_with("POST /p?q=1 HTTP/1.1\r\nhost: svc.example:81\r\n"),
        "{seen}"
    );
    assert!(
        seen.contains("end-user: jason\r\n") && seen.ends_with("\r\n\r\nabc"),
        "{seen}"
    );
}

#[test]
fn fetch_output_round_trips() {
    let r = HttpResponse {
        status: 504,
        headers: vec![("x-mesh-reason".into(), "UT upstream timeout: x".into())],
        body: "upstream request timeout\n\nsecond paragraph".into(),
    };
    let back = parse_fetch_output(&format_fetch_output(&r)).unwrap();
    assert_eq!(back, r);
    assert!(parse_fetch_output("HTTP x\n\n").is_err());
}

#[test]
fn splits_urls_and_tool_args() {
    assert_eq!(split_url("http://a:1/x/y"), Ok(("a:1", "/x/y")));
    assert_eq!(split_url("ws://a"), Ok(("a", "/")));
    assert!(split_url("ftp://a").is_err());
    assert_eq!(authority_addr("a"), Ok(("a".to_string(), 80)));
    assert!(authority_addr("a:x").is_err());
    let args = Request::get("http://r:9080/")
        .header("end-user", "jason")
        .tool_args();
    assert_eq!(
        args[..4],
        ["fetch", "http://r:9080/", "-H", "end-user: jason"]
    );
}

#[test]
fn reads_curl_include_output() {
    let r = parse_curl_include(
        "HTTP/1.1 301 Moved Permanently\r\nLocation: https://x.example.com/\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://x.example.com/"));
    assert!(parse_curl_include("nothing").is_err());
}
