//! A throwaway network namespace for root-only tests (mesh-proxy's init and
//! capture tests): created with a veth pair whose near end carries the "pod
//! IP", removed with any process left in it when the test ends, pass or
//! fail. Its name is unique to the run (`TAG-PID-NANOS`), so parallel tests
//! never share one.

use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use mesh_local::net::netns_pids;
use mesh_local::process::kill_until_gone;

/// A network namespace deleted (with the processes left in it) on drop.
pub struct Netns {
    /// The namespace's name, unique to this run.
    pub name: String,
}

impl Netns {
    /// A namespace `TAG-PID-NANOS` with `lo` up and a veth pair `mpv0`/`mpv1`
    /// inside it, `mpv0` holding `pod_cidr` (e.g. `198.18.0.2/24`).
    pub fn create(tag: &str, pod_cidr: &str) -> Netns {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!("{tag}-{}-{nanos}", std::process::id());
        ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        for args in [
            "ip link set lo up".to_string(),
            "ip link add mpv0 type veth peer name mpv1".to_string(),
            format!("ip addr add {pod_cidr} dev mpv0"),
            "ip link set mpv0 up".to_string(),
            "ip link set mpv1 up".to_string(),
        ] {
            ns.ok(&args.split(' ').collect::<Vec<_>>());
        }
        ns
    }

    /// `args` run inside the namespace.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        cmd
    }

    /// Run `args` inside the namespace; its stdout, failing the test on error.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(&mut self.cmd(args))
    }

    /// Pids of the processes inside the namespace.
    pub fn pids(&self) -> Vec<u32> {
        netns_pids(std::slice::from_ref(&self.name))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Processes of this namespace are ours (its name is unique to this run).
        kill_until_gone(|| self.pids());
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Run `cmd`; its stdout, failing the test with its output when it fails.
pub fn ok(cmd: &mut Command) -> String {
    let out: Output = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
