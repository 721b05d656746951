//! A throwaway network namespace for the root-only proxy tests
//! (`init_netns.rs`, `capture_netns.rs`): created with a veth pair whose
//! near end carries the "pod IP", removed with any process left in it when
//! the test ends, pass or fail.

#![allow(dead_code)]

use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

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
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Processes of this namespace are ours (its name is unique to this run).
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
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

/// False, after printing why, when the test cannot run (not root). The line
/// goes straight to stderr: libtest hides `print!` output of passing tests.
pub fn root_or_skip() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false);
    if !root {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"skipping: needs root for network namespaces\n",
        );
    }
    root
}
