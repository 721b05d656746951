//! Readiness probes from inside a pod's network namespace, as a kubelet
//! would run them, with no helper binary: a short-lived thread enters the
//! namespace with `setns(2)` (which moves only the calling thread) and
//! connects from there, so the pod's own loopback (the proxy's admin on
//! 127.0.0.1:15000) and its address are reachable without capture.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use nix::sched::{setns, CloneFlags};

use crate::LocalError;

/// Where `ip netns` keeps the namespace handles.
const NETNS_RUN: &str = "/run/netns";

/// Runs `f` on a thread inside network namespace `netns` (root namespace
/// when `None`) and returns its result.
pub fn in_netns<T, F>(netns: Option<&str>, f: F) -> Result<T, LocalError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let handle = match netns {
        Some(ns) => {
            let path = Path::new(NETNS_RUN).join(ns);
            Some(File::open(&path).map_err(LocalError::io(&path))?)
        }
        None => None,
    };
    let what = format!("setns into {}", netns.unwrap_or("the root namespace"));
    std::thread::spawn(move || {
        if let Some(handle) = handle {
            setns(handle, CloneFlags::CLONE_NEWNET).map_err(LocalError::sys(what))?;
        }
        Ok(f())
    })
    .join()
    .map_err(|_| LocalError::Invalid("probe thread panicked".into()))?
}

/// True when a TCP connection to `addr` succeeds within `timeout`.
pub fn tcp(netns: Option<&str>, addr: SocketAddr, timeout: Duration) -> Result<bool, LocalError> {
    in_netns(netns, move || {
        TcpStream::connect_timeout(&addr, timeout).is_ok()
    })
}

/// The status of `GET path` on `addr` (HTTP/1.1, `Connection: close`), or
/// `None` when it cannot connect or the answer is not HTTP.
pub fn http_status(
    netns: Option<&str>,
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<Option<u16>, LocalError> {
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nuser-agent: mesh-local\r\nconnection: close\r\n\r\n");
    in_netns(netns, move || get_status(addr, &request, timeout))
}

fn get_status(addr: SocketAddr, request: &str, timeout: Duration) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    // The status line is all we need: "HTTP/1.1 200 OK".
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < head.len() {
        match stream.read(&mut head[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
        if head[..len].contains(&b'\n') {
            break;
        }
    }
    let line = std::str::from_utf8(&head[..len]).ok()?;
    let mut words = line.split_whitespace();
    words.next().filter(|v| v.starts_with("HTTP/"))?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn probes_in_the_root_namespace() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            s.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
        });
        let status = http_status(None, addr, "/ready", Duration::from_secs(2)).unwrap();
        assert_eq!(status, Some(503));
        server.join().unwrap();
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(!tcp(None, closed, Duration::from_millis(200)).unwrap());
        assert_eq!(
            http_status(None, closed, "/", Duration::from_millis(200)).unwrap(),
            None
        );
    }

    #[test]
    fn an_unknown_namespace_is_an_error() {
        let addr = "127.0.0.1:9".parse().unwrap();
        let err = tcp(Some("no-such-netns-here"), addr, Duration::from_millis(10)).unwrap_err();
        assert!(err.to_string().contains("no-such-netns-here"), "{err}");
    }
}
