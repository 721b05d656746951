//! Detection on real loopback sockets (every protocol, split writes,
//! silence, EOF) and on plain byte slices (prefixes, the ClientHello parser
//! with truncated, mutated and random input).

use std::time::{Duration, Instant};

use rand::{Rng, RngCore, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::sniff::H2_PREFACE;
use super::*;

/// A ClientHello as a TLS 1.2/1.3 client sends it, optionally padded with an
/// extension of `padding` bytes placed before SNI (as big key shares are).
pub(crate) fn client_hello(sni: Option<&str>, alpn: &[&str], padding: usize) -> Vec<u8> {
    let mut extensions = Vec::new();
    let mut ext = |kind: u16, data: &[u8]| {
        extensions.extend_from_slice(&kind.to_be_bytes());
        extensions.extend_from_slice(&(data.len() as u16).to_be_bytes());
        extensions.extend_from_slice(data);
    };
    if padding > 0 {
        ext(21, &vec![0; padding]);
    }
    if let Some(name) = sni {
        let mut data = Vec::new();
        data.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
        data.push(0);
        data.extend_from_slice(&(name.len() as u16).to_be_bytes());
        data.extend_from_slice(name.as_bytes());
        ext(0, &data);
    }
    if !alpn.is_empty() {
        let mut list = Vec::new();
        for p in alpn {
            list.push(p.len() as u8);
            list.extend_from_slice(p.as_bytes());
        }
        let mut data = (list.len() as u16).to_be_bytes().to_vec();
        data.extend_from_slice(&list);
        ext(16, &data);
    }
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]); // random
    body.push(32);
    body.extend_from_slice(&[9; 32]); // session id
    body.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x02]); // cipher suites
    body.extend_from_slice(&[1, 0]); // compression: null
    body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    body.extend_from_slice(&extensions);
    let mut handshake = vec![1];
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 3, 1];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

fn done(bytes: &[u8]) -> Detected {
    match classify(bytes, false) {
        Sniff::Done(d) => d,
        Sniff::NeedMore => panic!("undecided on {:?}", String::from_utf8_lossy(bytes)),
    }
}

#[test]
fn http1_request_lines() {
    for line in [
        "GET / HTTP/1.1\r\n",
        "POST /api/v1?x=1 HTTP/1.0\r\nHost: a\r\n",
        "OPTIONS * HTTP/1.1\r\n",
        "DELETE http://messenger:9080/x HTTP/1.1\n",
    ] {
        assert_eq!(done(line.as_bytes()), Detected::plaintext(HTTP11), "{line}");
    }
    for line in [
        "GET / HTTP/2.0\r\n",
        "FETCH / HTTP/1.1\r\n",
        "GET  HTTP/1.1\r\n",
        "get / HTTP/1.1\r\n",
        "GET /\x01 HTTP/1.1\r\n",
        "SSH-2.0-OpenSSH_9.6\r\n",
        "* OK IMAP4rev1 ready\r\n",
    ] {
        assert_eq!(done(line.as_bytes()), Detected::raw(), "{line:?}");
    }
}

#[test]
fn prefixes_wait_for_more_and_decide_when_no_more_comes() {
    for prefix in [
        "G",
        "GE",
        "GET",
        "GET ",
        "GET /pa",
        "GET /path HTTP/1.",
        "P",
        "PR",
        "PRI * HTTP/2.0\r\n",
    ] {
        assert_eq!(
            classify(prefix.as_bytes(), false),
            Sniff::NeedMore,
            "{prefix:?}"
        );
    }
    // At the end (timeout, EOF, buffer full) a long but well-formed request
    // line is HTTP; a bare method or a preface prefix is not.
    let long = format!("GET /{} ", "a".repeat(2000));
    assert_eq!(
        classify(long.as_bytes(), true),
        Sniff::Done(Detected::plaintext(HTTP11))
    );
    assert_eq!(classify(b"GET", true), Sniff::Done(Detected::raw()));
    assert_eq!(classify(b"PRI * HTTP", true), Sniff::Done(Detected::raw()));
    assert_eq!(classify(b"", true), Sniff::Done(Detected::raw()));
    assert_eq!(classify(b"", false), Sniff::NeedMore);
}

#[test]
fn h2c_preface() {
    let mut bytes = H2_PREFACE.to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // SETTINGS
    assert_eq!(done(&bytes), Detected::plaintext(H2C));
    assert_eq!(done(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"), Detected::raw());
}

#[test]
fn tls_client_hello_gives_sni_and_alpn() {
    let hello = client_hello(Some("Reviews.Default.svc"), &["h2", "http/1.1"], 0);
    let detected = done(&hello);
    assert_eq!(detected.transport_protocol, TLS);
    assert_eq!(detected.server_name.as_deref(), Some("reviews.default.svc"));
    assert_eq!(detected.application_protocols, ["h2", "http/1.1"]);
    let bare = done(&client_hello(None, &[], 0));
    assert_eq!((bare.transport_protocol, bare.server_name), (TLS, None));
    // A cut hello waits, and at the end is TLS with what was read.
    let cut = &hello[..hello.len() - 3];
    assert_eq!(classify(cut, false), Sniff::NeedMore);
    let Sniff::Done(at_end) = classify(cut, true) else {
        panic!("undecided at the end")
    };
    assert_eq!(at_end.transport_protocol, TLS);
    assert_eq!(at_end.server_name.as_deref(), Some("reviews.default.svc"));
}

#[test]
fn client_hello_parser_on_every_prefix() {
    let hello = client_hello(Some("a.example.com"), &["h2"], 40);
    let full = tls::parse(&hello).unwrap();
    assert!(full.complete);
    for cut in 0..hello.len() {
        let partial = tls::parse(&hello[..cut]).unwrap();
        assert!(!partial.complete, "prefix {cut} claims to be complete");
        if let Some(name) = partial.server_name {
            assert_eq!(name, "a.example.com");
        }
    }
}

#[test]
fn client_hello_parser_rejects_impossible_structures() {
    let mut hello = client_hello(Some("a.example.com"), &[], 0);
    hello[5] = 2; // ServerHello
    assert!(tls::parse(&hello).is_err());
    let mut hello = client_hello(Some("a.example.com"), &[], 0);
    let at = hello.len() - "a.example.com".len() + 1;
    hello[at] = b'/'; // not a host name byte
    assert!(tls::parse(&hello).is_err());
    assert!(tls::parse(&[0x16, 3, 1, 0, 0]).is_err(), "empty record");
    assert!(tls::parse(&[0x17, 3, 3, 0, 5]).is_err(), "not a handshake");
}

#[test]
fn random_and_mutated_input_never_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let hello = client_hello(Some("svc.ns.svc.cluster.local"), &["h2", "http/1.1"], 300);
    for round in 0..20_000 {
        let mut bytes = if round % 2 == 0 {
            let mut bytes = vec![0u8; rng.random_range(0..600)];
            rng.fill_bytes(&mut bytes);
            if round % 4 == 0 && bytes.len() > 2 {
                bytes[0] = 0x16;
                bytes[1] = 3;
            }
            bytes
        } else {
            hello.clone()
        };
        if round % 2 == 1 {
            for _ in 0..rng.random_range(1..6) {
                let at = rng.random_range(0..bytes.len());
                bytes[at] = rng.random();
            }
            bytes.truncate(rng.random_range(0..=bytes.len()));
        }
        let _ = tls::parse(&bytes);
        let _ = classify(&bytes, round % 3 == 0);
    }
}

/// A connected pair: (client side, server side).
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

#[tokio::test]
async fn detect_peeks_without_consuming() {
    let (mut client, mut server) = pair().await;
    let request = b"GET /hello HTTP/1.1\r\nHost: messenger:9080\r\n\r\n";
    client.write_all(request).await.unwrap();
    let detected = detect(&server, Duration::from_secs(5)).await;
    assert_eq!(detected, Detected::plaintext(HTTP11));
    let mut read = vec![0; request.len()];
    server.read_exact(&mut read).await.unwrap();
    assert_eq!(read, request, "the filter still sees every byte");
}

#[tokio::test]
async fn detect_each_protocol_on_a_socket() {
    let mut h2 = H2_PREFACE.to_vec();
    h2.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let cases: Vec<(Vec<u8>, Detected)> = vec![
        (h2, Detected::plaintext(H2C)),
        (
            client_hello(Some("db.example.com"), &[], 1500),
            Detected {
                transport_protocol: TLS,
                application_protocols: vec![],
                server_name: Some("db.example.com".into()),
            },
        ),
        (b"\x00\x01binary protocol".to_vec(), Detected::raw()),
    ];
    for (bytes, expected) in cases {
        let (mut client, server) = pair().await;
        client.write_all(&bytes).await.unwrap();
        assert_eq!(detect(&server, Duration::from_secs(5)).await, expected);
    }
}

#[tokio::test]
async fn detect_waits_for_split_writes() {
    let (mut client, server) = pair().await;
    let writer = tokio::spawn(async move {
        client.write_all(b"GE").await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        client.write_all(b"T /x HTT").await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        client.write_all(b"P/1.1\r\n\r\n").await.unwrap();
        client
    });
    assert_eq!(
        detect(&server, Duration::from_secs(5)).await,
        Detected::plaintext(HTTP11)
    );
    drop(writer.await.unwrap());

    let (mut client, server) = pair().await;
    let hello = client_hello(Some("split.example.com"), &["h2"], 0);
    let writer = tokio::spawn(async move {
        client.write_all(&hello[..20]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        client.write_all(&hello[20..]).await.unwrap();
        client
    });
    let detected = detect(&server, Duration::from_secs(5)).await;
    assert_eq!(detected.server_name.as_deref(), Some("split.example.com"));
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn silence_prefix_or_eof_end_as_raw_within_the_timeout() {
    let timeout = Duration::from_millis(80);
    // A server-first client says nothing.
    let (_client, server) = pair().await;
    let started = Instant::now();
    assert_eq!(detect(&server, timeout).await, Detected::raw());
    let waited = started.elapsed();
    assert!(waited >= timeout && waited < timeout * 5, "{waited:?}");
    // A prefix that never completes.
    let (mut client, server) = pair().await;
    client.write_all(b"GET /never").await.unwrap();
    let started = Instant::now();
    assert_eq!(detect(&server, timeout).await, Detected::plaintext(HTTP11));
    assert!(started.elapsed() < timeout * 5);
    // The client closes at once.
    let (client, server) = pair().await;
    drop(client);
    let started = Instant::now();
    assert_eq!(
        detect(&server, Duration::from_secs(5)).await,
        Detected::raw()
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}
