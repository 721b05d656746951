//! `mesh-e2e-tool`: what the e2e suites run inside pods. Blocking std I/O
//! (only the gRPC subcommands start a small tokio runtime), so it starts
//! instantly and resolves names exactly as an app does (getaddrinfo, hence
//! the pod's `/etc/hosts`):
//!
//! - servers: `serve-http` (versions, deterministic failures, delays,
//!   header echo, counters, a failure switch; optionally TLS: see
//!   `serve.rs`), `serve-tcp` (line echo, optionally server-first),
//!   `serve-ws` (WebSocket echo), `serve-grpc` (gRPC health);
//! - clients: `fetch URL` (one request, status, headers and body printed),
//!   `load URL` (N requests, C at a time, counted, JSON), `ws-echo`,
//!   `grpc-check`, `tcp-send`, `tcp-first` (a server-first protocol through
//!   capture), `resolve NAME`, `wait-tcp ADDR`.

mod client;
mod grpc;
mod serve;
mod tcp;
mod ws;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Test helper run inside e2e pods")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Request options of `fetch` and `load`.
#[derive(Args, Clone)]
struct RequestArgs {
    /// Method.
    #[arg(short = 'X', long = "method", default_value = "GET")]
    method: String,
    /// A request header `NAME: VALUE` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// Request body.
    #[arg(long)]
    data: Option<String>,
    /// Connect to IP:PORT instead of resolving the URL's host (`HOST:PORT:IP`, as curl).
    #[arg(long)]
    resolve: Option<String>,
    /// Connect to this address instead of resolving the URL's host.
    #[arg(long)]
    connect_to: Option<String>,
    /// Per-request timeout.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
}

impl RequestArgs {
    fn options(self) -> client::RequestOptions {
        client::RequestOptions {
            method: self.method,
            headers: self.headers,
            data: self.data,
            resolve: self.resolve,
            connect_to: self.connect_to,
            timeout_ms: self.timeout_ms,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve HTTP/1.1 (keep-alive); see the options for test behaviour.
    ServeHttp {
        #[arg(long)]
        listen: String,
        /// Body of every answer (default `served by VERSION`).
        #[arg(long)]
        body: Option<String>,
        /// Sent as `x-version` and in the default body.
        #[arg(long)]
        version: Option<String>,
        /// Every K-th request fails with --fail-status.
        #[arg(long)]
        fail_every: Option<u64>,
        #[arg(long, default_value_t = 503)]
        fail_status: u16,
        /// Wait this long before every answer.
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// List the request line and headers in the body.
        #[arg(long)]
        echo_headers: bool,
        /// Serve TLS with this certificate chain (PEM) ...
        #[arg(long)]
        tls_cert: Option<String>,
        /// ... and this key (PEM).
        #[arg(long)]
        tls_key: Option<String>,
    },
    /// Serve a TCP line echo, optionally sending a banner first.
    ServeTcp {
        #[arg(long)]
        listen: String,
        #[arg(long)]
        banner: Option<String>,
    },
    /// Serve a WebSocket echo.
    ServeWs {
        #[arg(long)]
        listen: String,
    },
    /// Serve the gRPC health service.
    ServeGrpc {
        #[arg(long)]
        listen: String,
        /// A service name reported SERVING besides the server's own `""`.
        #[arg(long, default_value = "mesh.e2e.Echo")]
        service: String,
    },
    /// One request; prints the status, headers and body.
    Fetch {
        url: String,
        #[command(flatten)]
        request: RequestArgs,
    },
    /// N requests, C at a time; prints a JSON report.
    Load {
        url: String,
        #[arg(short = 'n', long, default_value_t = 100)]
        requests: usize,
        #[arg(short = 'c', long, default_value_t = 1)]
        concurrency: usize,
        /// Response header whose values are counted (repeatable).
        #[arg(long = "count-header")]
        count_headers: Vec<String>,
        /// Regex over the body; its first group is counted.
        #[arg(long)]
        body_pattern: Option<String>,
        /// Stop sending after this long.
        #[arg(long, default_value_t = 300)]
        max_seconds: u64,
        #[command(flatten)]
        request: RequestArgs,
    },
    /// Send TEXT over a WebSocket and print the echo.
    WsEcho {
        url: String,
        text: String,
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
    /// One gRPC Health/Check call; prints a JSON answer.
    GrpcCheck {
        addr: String,
        #[arg(long, default_value = "")]
        service: String,
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

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let ms = Duration::from_millis;
    let result = match Cli::parse().cmd {
        Cmd::ServeHttp {
            listen,
            body,
            version,
            fail_every,
            fail_status,
            delay_ms,
            echo_headers,
            tls_cert,
            tls_key,
        } => serve::serve_http(serve::HttpOptions {
            listen,
            body,
            version,
            fail_every,
            fail_status,
            delay_ms,
            echo_headers,
            tls_cert,
            tls_key,
        }),
        Cmd::ServeTcp { listen, banner } => tcp::serve_tcp(&listen, banner),
        Cmd::ServeWs { listen } => ws::serve_ws(&listen),
        Cmd::ServeGrpc { listen, service } => grpc::serve_grpc(&listen, &service),
        Cmd::Fetch { url, request } => client::fetch(&url, &request.options()),
        Cmd::Load {
            url,
            requests,
            concurrency,
            count_headers,
            body_pattern,
            max_seconds,
            request,
        } => client::load(
            &url,
            &request.options(),
            &client::LoadOptions {
                requests,
                concurrency,
                count_headers,
                body_pattern,
                max_seconds,
            },
        ),
        Cmd::WsEcho {
            url,
            text,
            timeout_ms,
        } => ws::ws_echo(&url, &text, ms(timeout_ms)),
        Cmd::GrpcCheck {
            addr,
            service,
            timeout_ms,
        } => grpc::grpc_check(&addr, &service, ms(timeout_ms)),
        Cmd::Resolve { name } => tcp::resolve(&name),
        Cmd::WaitTcp { addr, timeout_ms } => tcp::wait_tcp(&addr, ms(timeout_ms)),
        Cmd::TcpFirst { addr, timeout_ms } => tcp::tcp_first(&addr, ms(timeout_ms)),
        Cmd::TcpSend {
            addr,
            text,
            timeout_ms,
        } => tcp::tcp_send(&addr, &text, ms(timeout_ms)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesh-e2e-tool: {e}");
            ExitCode::FAILURE
        }
    }
}
