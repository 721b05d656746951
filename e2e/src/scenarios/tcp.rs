//! A non-HTTP TCP service through capture: a line-echo server and a
//! server-first one (it greets before reading), both declared as `tcp`
//! ports, so the sidecars relay bytes without protocol detection. The echo
//! comes back byte for byte; the greeting arrives while the client says
//! nothing; the servers see their peer as the inbound sidecar (127.0.0.6),
//! which shows the connection really went through capture.

use super::{client, eventually, tool_pod, with_logs, CONVERGE};
use crate::cluster::{Cluster, Sidecar};
use crate::E2eError;

const ECHO_PORT: u16 = 9000;
const BANNER_PORT: u16 = 9001;
const BANNER: &str = "220 tcp-banner ready (server speaks first)";
/// A line with spaces, tabs, punctuation and multi-byte UTF-8.
const LINE: &str = "PING through capture: \t0123456789 ~!@#$%^&*()_+ äöü € 🚀 end";
/// Well above any protocol detection window (100 ms), well below a stall.
const FIRST_BYTE_LIMIT_MS: u64 = 1500;

const PODS: [&str; 3] = ["client", "tcp-echo-v1", "tcp-banner-v1"];

/// Deploys the two TCP servers and a client, all with mesh-proxy.
pub fn tcp_through_capture(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    let echo_listen = format!("0.0.0.0:{ECHO_PORT}");
    let banner_listen = format!("0.0.0.0:{BANNER_PORT}");
    let echo = tool_pod(
        cluster,
        "tcp-echo-v1",
        "tcp-echo",
        &["serve-tcp", "--listen", &echo_listen],
    )
    .port("tcp", ECHO_PORT, "TCP");
    let banner = tool_pod(
        cluster,
        "tcp-banner-v1",
        "tcp-banner",
        &["serve-tcp", "--listen", &banner_listen, "--banner", BANNER],
    )
    .port("tcp-banner", BANNER_PORT, "TCP");
    cluster.deploy(&echo)?;
    cluster.deploy(&banner)?;
    cluster.deploy(&client(cluster, Sidecar::MeshProxy))?;
    check(cluster).map_err(|e| with_logs(cluster, &PODS, e))
}

fn check(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    let tool = cluster.tool()?;
    let echo_addr = format!("tcp-echo:{ECHO_PORT}");
    let expected = format!("{LINE}\n");
    eventually("the echo through capture", CONVERGE, || {
        let out = cluster
            .exec("client", &[&tool, "tcp-send", &echo_addr, LINE])
            .map_err(|e| e.to_string())?;
        if out.success() && out.stdout == expected {
            Ok(())
        } else {
            Err(format!(
                "stdout {:?} (expected {expected:?}), stderr {:?}",
                out.stdout,
                out.stderr.trim()
            ))
        }
    })?;

    let banner_addr = format!("tcp-banner:{BANNER_PORT}");
    let ms = eventually("the server-first greeting", CONVERGE, || {
        let out = cluster
            .exec("client", &[&tool, "tcp-first", &banner_addr])
            .map_err(|e| e.to_string())?;
        let mut lines = out.stdout.lines();
        match (out.success(), lines.next(), lines.next()) {
            (true, Some(line), Some(after)) if line == BANNER => after
                .trim_start_matches("after ")
                .trim_end_matches(" ms")
                .parse::<u64>()
                .map_err(|_| format!("bad timing line {after:?}")),
            _ => Err(format!(
                "stdout {:?}, stderr {:?}",
                out.stdout,
                out.stderr.trim()
            )),
        }
    })?;
    if ms > FIRST_BYTE_LIMIT_MS {
        return Err(E2eError::Invalid(format!(
            "the server-first greeting took {ms} ms (limit {FIRST_BYTE_LIMIT_MS} ms): \
             something waited for the client to speak"
        )));
    }

    for pod in ["tcp-echo-v1", "tcp-banner-v1"] {
        let logs = cluster.logs(pod)?;
        if !logs.contains("connection from 127.0.0.6:") {
            return Err(E2eError::Invalid(format!(
                "{pod} should have been reached through its inbound sidecar \
                 (peer 127.0.0.6), its log has no such connection"
            )));
        }
    }
    Ok(())
}
