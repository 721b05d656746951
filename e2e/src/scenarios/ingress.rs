//! The ingress gateway, seen from the test process as a client outside
//! the cluster would see it:
//!
//! - bookinfo's `bookinfo-gateway.yaml` shape (port 80, hosts `*`): a list
//!   of exact paths and a `/static` prefix to one service, a `/api` prefix
//!   to another, anything else 404 with `x-mesh-reason: NR ...`;
//! - an HTTPS server (`tls.mode: SIMPLE`, an rcgen certificate in the
//!   shared files) checked with `curl --cacert` for the body and the
//!   certificate, beside `httpsRedirect: true` on port 80 for the same
//!   host (301 to https, while other hosts on port 80 are still served);
//! - TLS `PASSTHROUGH` by SNI to two backends that terminate TLS
//!   themselves (their own certificates reach the client).

use std::net::SocketAddr;
use std::time::Duration;

use super::checks::Checks;
use super::resilience::server;
use super::{settle, tool_pod, with_logs};
use crate::certs::TestCa;
use crate::cluster::{Cluster, HttpResponse};
use crate::http::{self, Request};
use crate::E2eError;
use mesh_local::cmd::{self, Cmd};

const PATHS: &str = include_str!("../../istio/ingress-paths.yaml");
const HTTPS: &str = include_str!("../../istio/ingress-https-redirect.yaml");
const PASSTHROUGH: &str = include_str!("../../istio/ingress-tls-passthrough.yaml");

const PODS: [&str; 5] = [
    "web-v1",
    "api-v1",
    "tls-a-v1",
    "tls-b-v1",
    "istio-ingressgateway",
];

/// The three ingress behaviours on one gateway.
pub fn ingress_gateway(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    if cmd::which("curl").is_none() {
        return Err(E2eError::missing("curl (apt-get install -y curl)"));
    }
    let ca = TestCa::new("mesh e2e ingress CA")?;
    let ca_path = std::env::temp_dir().join(format!("mesh-e2e-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_path, ca.cert_pem()).map_err(E2eError::io(&ca_path))?;
    let result = run(cluster, &ca, &ca_path.to_string_lossy());
    let _ = std::fs::remove_file(&ca_path);
    result
}

fn run(cluster: &mut dyn Cluster, ca: &TestCa, ca_file: &str) -> Result<(), E2eError> {
    let mut files = std::collections::BTreeMap::new();
    for name in [
        "secure.example.com",
        "tls-a.example.com",
        "tls-b.example.com",
    ] {
        let leaf = ca.issue(&[name])?;
        let cert = cluster.put_file(&format!("{name}.crt"), &leaf.cert_pem)?;
        let key = cluster.put_file(&format!("{name}.key"), &leaf.key_pem)?;
        files.insert(name, (cert, key));
    }
    cluster.deploy(&server(
        cluster,
        "web-v1",
        "web",
        "web",
        &["--echo-headers"],
    ))?;
    cluster.deploy(&server(cluster, "api-v1", "api", "api", &[]))?;
    for backend in ["tls-a", "tls-b"] {
        let (cert, key) = &files[format!("{backend}.example.com").as_str()];
        let w = tool_pod(
            cluster,
            &format!("{backend}-v1"),
            backend,
            &[
                "serve-http",
                "--listen",
                "0.0.0.0:8443",
                "--version",
                backend,
                "--tls-cert",
                cert,
                "--tls-key",
                key,
            ],
        )
        .label("version", "v1")
        .port("tls", 8443, "TLS");
        cluster.deploy(&w)?;
    }
    cluster.deploy_ingress()?;
    let mut checks = Checks::new();
    checks.run("exact paths and prefixes on port 80", || paths(cluster));
    checks.run("HTTPS (SIMPLE) and httpsRedirect", || {
        let (cert, key) = &files["secure.example.com"];
        https(cluster, cert, key, ca_file)
    });
    checks.run("TLS passthrough by SNI", || passthrough(cluster, ca_file));
    checks.finish().map_err(|e| with_logs(cluster, &PODS, e))
}

fn address(cluster: &dyn Cluster, port: u16) -> Result<SocketAddr, E2eError> {
    let addr = cluster.ingress_address(port)?;
    addr.parse()
        .map_err(|_| E2eError::Invalid(format!("ingress address {addr:?} for port {port}")))
}

/// A request from the test process to ingress port 80 with Host `host`.
fn via_80(cluster: &dyn Cluster, host: &str, path: &str) -> Result<HttpResponse, String> {
    let mut req = Request::get(&format!("http://{host}{path}"));
    req.connect_to = Some(address(cluster, 80).map_err(|e| e.to_string())?);
    http::send(&req)
}

fn paths(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    cluster.apply(PATHS)?;
    let routed: [(&str, Option<&str>); 9] = [
        ("/productpage", Some("web")),
        ("/static/bookinfo.css", Some("web")),
        ("/login", Some("web")),
        ("/logout", Some("web")),
        ("/api", Some("api")),
        ("/api/v1/products", Some("api")),
        ("/productpage/more", None),
        ("/loginx", None),
        ("/", None),
    ];
    settle("each path reaches its service", || {
        for (path, to) in routed {
            let r = via_80(cluster, "bookinfo.example.com", path)?;
            let ok = match to {
                Some(v) => r.status == 200 && r.header("x-version") == Some(v),
                None => {
                    r.status == 404
                        && r.header(crate::REASON_HEADER)
                            .is_some_and(|v| v.starts_with("NR"))
                }
            };
            if !ok {
                return Err(format!(
                    "{path}: status {}, x-version {:?}, x-mesh-reason {:?} (expected {})",
                    r.status,
                    r.header("x-version"),
                    r.header(crate::REASON_HEADER),
                    to.map_or("404 with `NR ...`".to_string(), |v| format!("200 from {v}"))
                ));
            }
        }
        Ok(())
    })
}

/// What curl got: exit status, the response head and body, stderr
/// (verbose: it names the server certificate's subject).
struct Curled {
    ok: bool,
    response: Option<HttpResponse>,
    stderr: String,
}

impl Curled {
    /// True when the server's certificate was issued to `name` (curl
    /// verified it against the test CA, or it would have failed).
    fn certificate_of(&self, name: &str) -> bool {
        self.ok && self.stderr.contains(&format!("CN={name}"))
    }

    /// The end of curl's stderr, for messages.
    fn said(&self) -> String {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.starts_with("> "))
            .collect();
        lines[lines.len().saturating_sub(6)..].join(" / ")
    }
}

/// `curl --cacert CA --resolve NAME:PORT:IP https://NAME:PORT/PATH` from
/// the test process, to ingress port `port`.
fn curl(
    cluster: &dyn Cluster,
    port: u16,
    name: &str,
    path: &str,
    ca: &str,
) -> Result<Curled, E2eError> {
    let addr = address(cluster, port)?;
    let out = Cmd::new("curl")
        .args([
            "-sS",
            "-v",
            "-i",
            "--max-time",
            "5",
            "--cacert",
            ca,
            "--resolve",
        ])
        .arg(format!("{name}:{}:{}", addr.port(), addr.ip()))
        .arg(format!("https://{name}:{}{path}", addr.port()))
        .timeout(Duration::from_secs(20))
        .output()?;
    let response = crate::http::parse_curl_include(&out.stdout).ok();
    Ok(Curled {
        ok: out.success(),
        response,
        stderr: out.stderr.trim().to_string(),
    })
}

fn https(cluster: &mut dyn Cluster, cert: &str, key: &str, ca: &str) -> Result<(), E2eError> {
    cluster.apply(&HTTPS.replace("{{CERT}}", cert).replace("{{KEY}}", key))?;
    settle("https://secure.example.com with our certificate", || {
        let c = curl(cluster, 443, "secure.example.com", "/productpage", ca)
            .map_err(|e| e.to_string())?;
        match &c.response {
            Some(r)
                if c.certificate_of("secure.example.com")
                    && r.status == 200
                    && r.header("x-version") == Some("web")
                    && r.body.contains("x-forwarded-proto: https") =>
            {
                Ok(())
            }
            _ => Err(format!(
                "curl ok={} response {:?}; curl said: {}",
                c.ok,
                c.response,
                c.said()
            )),
        }
    })?;
    settle("http://secure.example.com redirects to https", || {
        let r = via_80(cluster, "secure.example.com", "/productpage?u=1")?;
        let location = r.header("location").unwrap_or("");
        if r.status == 301 && location == "https://secure.example.com/productpage?u=1" {
            Ok(())
        } else {
            Err(format!("status {}, location {location:?}", r.status))
        }
    })?;
    // The redirect is for that host only: port 80's `*` still serves.
    let other =
        via_80(cluster, "bookinfo.example.com", "/productpage").map_err(E2eError::Invalid)?;
    if other.status != 200 || other.header("x-version") != Some("web") {
        return Err(E2eError::Invalid(format!(
            "other hosts on port 80 should still be served: status {}",
            other.status
        )));
    }
    Ok(())
}

fn passthrough(cluster: &mut dyn Cluster, ca: &str) -> Result<(), E2eError> {
    cluster.apply(PASSTHROUGH)?;
    settle("each SNI name reaches its own TLS backend", || {
        for backend in ["tls-a", "tls-b"] {
            let name = format!("{backend}.example.com");
            let c = curl(cluster, 15443, &name, "/", ca).map_err(|e| e.to_string())?;
            let want = format!("served by {backend}");
            match &c.response {
                // The backend's own certificate: the gateway did not terminate.
                Some(r) if c.certificate_of(&name) && r.status == 200 && r.body == want => {}
                _ => {
                    return Err(format!(
                        "{name}: curl ok={} response {:?}; curl said: {}",
                        c.ok,
                        c.response,
                        c.said()
                    ))
                }
            }
        }
        Ok(())
    })
}
