//! `mesh-e2e-tool`: what the e2e suites run inside pods. Blocking std I/O (no
//! async runtime; the HTTP parser is the library's), so it
//! starts instantly and resolves names exactly as an app does (getaddrinfo,
//! hence the pod's `/etc/hosts`):
//!
//! - `serve-http --listen ADDR --body TEXT`: answers every request with TEXT;
//! - `serve-tcp --listen ADDR [--banner TEXT]`: line echo, optionally
//!   speaking first (a server-first protocol);
//! - `fetch URL`: one HTTP/1.1 GET, prints `HTTP <status>`, a blank line, the body;
//! - `tcp-first ADDR`: connect, say nothing, print the server's first line
//!   (a server-first protocol through capture);
//! - `resolve NAME`, `wait-tcp ADDR`, `tcp-send ADDR TEXT`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use mesh_e2e::http;

#[derive(Parser)]
#[command(about = "Test helper run inside e2e pods")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve HTTP/1.1, answering every request with a fixed body.
    ServeHttp {
        #[arg(long)]
        listen: String,
        #[arg(long, default_value = "ok")]
        body: String,
    },
    /// Serve a TCP line echo, optionally sending a banner first.
    ServeTcp {
        #[arg(long)]
        listen: String,
        #[arg(long)]
        banner: Option<String>,
    },
    /// GET a URL and print the status and body.
    Fetch {
        url: String,
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
    /// Print the addresses a name resolves to.
    Resolve { name: String },
    /// Wait until a TCP connect to ADDR succeeds.
    WaitTcp {
        addr: String,
        #[arg(long, default_value_t = 10000)]
        timeout_ms: u64,
    },
    /// Connect, send nothing, print the first line the server sends.
    TcpFirst {
        addr: String,
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
    /// Send one line over TCP and print everything received until EOF.
    TcpSend {
        addr: String,
        text: String,
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().cmd {
        Cmd::ServeHttp { listen, body } => serve(&listen, move |s| serve_http(s, &body)),
        Cmd::ServeTcp { listen, banner } => {
            serve(&listen, move |s| serve_tcp(s, banner.as_deref()))
        }
        Cmd::Fetch { url, timeout_ms } => fetch(&url, Duration::from_millis(timeout_ms)),
        Cmd::Resolve { name } => resolve(&name),
        Cmd::WaitTcp { addr, timeout_ms } => wait_tcp(&addr, Duration::from_millis(timeout_ms)),
        Cmd::TcpFirst { addr, timeout_ms } => tcp_first(&addr, Duration::from_millis(timeout_ms)),
        Cmd::TcpSend {
            addr,
            text,
            timeout_ms,
        } => tcp_send(&addr, &text, Duration::from_millis(timeout_ms)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesh-e2e-tool: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, String>;

fn serve<F>(listen: &str, handle: F) -> Result<()>
where
    F: Fn(TcpStream) -> std::io::Result<()> + Send + Sync + Clone + 'static,
{
    let listener = TcpListener::bind(listen).map_err(|e| format!("bind {listen}: {e}"))?;
    eprintln!("listening on {listen}");
    for stream in listener.incoming().flatten() {
        // Tests read the peer to see whether a sidecar relayed the connection.
        if let Ok(peer) = stream.peer_addr() {
            eprintln!("connection from {peer}");
        }
        let handle = handle.clone();
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            if let Err(e) = handle(stream) {
                eprintln!("connection: {e}");
            }
        });
    }
    Ok(())
}

fn serve_http(stream: TcpStream, body: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    eprintln!("{}", request_line.trim_end());
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn serve_tcp(stream: TcpStream, banner: Option<&str>) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    if let Some(banner) = banner {
        writeln!(out, "{banner}")?;
    }
    for line in BufReader::new(stream).lines() {
        writeln!(out, "{}", line?)?;
    }
    Ok(())
}

/// Resolves `host:port` the way an app does and connects to the first
/// address that answers.
fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream> {
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

fn fetch(url: &str, timeout: Duration) -> Result<()> {
    let (authority, path) = http::split_url(url)?;
    let (host, port) = http::authority_addr(authority)?;
    let mut stream = connect(&host, port, timeout)?;
    let io = |e: std::io::Error| format!("{url}: {e}");
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {authority}\r\nuser-agent: mesh-e2e-tool\r\nconnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    let (status, body) = http::parse_response(&raw)?;
    print!("HTTP {status}\n\n{}", String::from_utf8_lossy(&body));
    Ok(())
}

/// Connects and, without sending anything, reads the first line the server
/// sends; prints it and how long it took (`LINE\nafter N ms`).
fn tcp_first(addr: &str, timeout: Duration) -> Result<()> {
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

fn resolve(name: &str) -> Result<()> {
    let addrs = (name, 0)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {name}: {e}"))?;
    for addr in addrs {
        println!("{}", addr.ip());
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

fn wait_tcp(addr: &str, timeout: Duration) -> Result<()> {
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

fn tcp_send(addr: &str, text: &str, timeout: Duration) -> Result<()> {
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
