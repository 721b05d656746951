//! The raw TCP subcommands: `serve-tcp` (line echo, optionally speaking
//! first, as a server-first protocol does), `tcp-send`, `tcp-first`,
//! `resolve` and `wait-tcp`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use mesh_e2e::http::connect;

use crate::Result;

/// A line echo; with `banner`, that line is sent first on every connection.
pub fn serve_tcp(listen: &str, banner: Option<String>) -> Result<()> {
    let listener = TcpListener::bind(listen).map_err(|e| format!("bind {listen}: {e}"))?;
    eprintln!("listening on {listen}");
    for stream in listener.incoming().flatten() {
        // Tests read the peer to see whether a sidecar relayed the connection.
        if let Ok(peer) = stream.peer_addr() {
            eprintln!("connection from {peer}");
        }
        let banner = banner.clone();
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            if let Err(e) = echo(stream, banner.as_deref()) {
                eprintln!("connection: {e}");
            }
        });
    }
    Ok(())
}

fn echo(stream: TcpStream, banner: Option<&str>) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    if let Some(banner) = banner {
        writeln!(out, "{banner}")?;
    }
    for line in BufReader::new(stream).lines() {
        writeln!(out, "{}", line?)?;
    }
    Ok(())
}

fn split_addr(addr: &str) -> Result<(&str, u16)> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("expected HOST:PORT, got {addr}"))?;
    Ok((
        host,
        port.parse().map_err(|_| format!("bad port in {addr}"))?,
    ))
}

/// Connects and, without sending anything, reads the first line the server
/// sends; prints it and how long it took (`LINE\nafter N ms`).
pub fn tcp_first(addr: &str, timeout: Duration) -> Result<()> {
    let (host, port) = split_addr(addr)?;
    let started = Instant::now();
    let stream = connect(host, port, timeout)?;
    let io = |e: std::io::Error| format!("{addr}: {e}");
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).map_err(io)?;
    if line.is_empty() {
        return Err(format!("{addr}: closed before sending anything"));
    }
    println!("{line}after {} ms", started.elapsed().as_millis());
    Ok(())
}

/// Prints the addresses `name` resolves to.
pub fn resolve(name: &str) -> Result<()> {
    let addrs = (name, 0)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {name}: {e}"))?;
    for addr in addrs {
        println!("{}", addr.ip());
    }
    Ok(())
}

/// Waits until a connection to `addr` succeeds.
pub fn wait_tcp(addr: &str, timeout: Duration) -> Result<()> {
    let (host, port) = split_addr(addr)?;
    let deadline = Instant::now() + timeout;
    loop {
        match connect(host, port, Duration::from_millis(500)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Sends one line, half-closes, prints everything received until EOF.
pub fn tcp_send(addr: &str, text: &str, timeout: Duration) -> Result<()> {
    let (host, port) = split_addr(addr)?;
    let mut stream = connect(host, port, timeout)?;
    let io = |e: std::io::Error| format!("{addr}: {e}");
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    writeln!(stream, "{text}").map_err(io)?;
    stream.shutdown(std::net::Shutdown::Write).map_err(io)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).map_err(io)?;
    print!("{reply}");
    Ok(())
}
