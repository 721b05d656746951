//! The supervisor of `local up`: starts each planned process with its log
//! file, keeps them all in one process group of their own (so a terminal's
//! Ctrl-C reaches only meshctl, which stops them in order, and so a crashed
//! meshctl's children can still be found and stopped as a group), notices
//! when one exits, and stops them all: SIGTERM, then SIGKILL after a grace
//! period.
//!
//! Signals are sent with the `kill` program, as the workspace forbids
//! `unsafe` (no direct `kill(2)`), and liveness is read from `/proc`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use tokio::process::{Child, Command};

use super::plan::ProcessSpec;
use super::state::ProcessInfo;

/// Environment variables never passed to the mesh's own processes: they
/// would send the proxies' and pilot's HTTP through some other proxy.
const PROXY_VARS: [&str; 6] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// A started process.
#[derive(Debug)]
struct Running {
    name: String,
    pid: u32,
    log: PathBuf,
    child: Child,
    exited: Option<ExitStatus>,
}

/// Every process `local up` started.
#[derive(Debug)]
pub struct Supervisor {
    log_dir: PathBuf,
    pgid: Option<u32>,
    running: Vec<Running>,
}

/// A process that stopped on its own.
#[derive(Debug, Clone)]
pub struct Exited {
    /// Its name.
    pub name: String,
    /// How it ended.
    pub status: ExitStatus,
    /// Its log file.
    pub log: PathBuf,
}

impl Supervisor {
    /// A supervisor writing logs to `log_dir`.
    pub fn new(log_dir: &Path) -> Self {
        Supervisor {
            log_dir: log_dir.to_path_buf(),
            pgid: None,
            running: Vec::new(),
        }
    }

    /// The process group of every started process, once one is started.
    pub fn pgid(&self) -> Option<u32> {
        self.pgid
    }

    /// Name and pid of every started process.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        self.running
            .iter()
            .map(|r| ProcessInfo {
                name: r.name.clone(),
                pid: r.pid,
            })
            .collect()
    }

    /// Starts `spec`, its stdout and stderr going to `logs/NAME.log`.
    pub fn spawn(&mut self, spec: &ProcessSpec) -> anyhow::Result<()> {
        if !spec.program.is_file() {
            return Err(anyhow!(
                "{}: program {} not found (build the binaries first: `cargo build --workspace --bins`, \
                 or point --bin-dir at them)",
                spec.name,
                spec.program.display()
            ));
        }
        let log = self.log_dir.join(format!("{}.log", spec.name));
        let out =
            fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("cannot reopen {}", log.display()))?;
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            // Last resort if meshctl unwinds without stopping them.
            .kill_on_drop(true)
            // 0 makes the first child the leader of a new group.
            .process_group(self.pgid.map_or(0, |g| g as i32));
        if spec.mesh {
            for var in PROXY_VARS {
                cmd.env_remove(var);
            }
        }
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {} ({})", spec.name, spec.program.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("{} exited at once", spec.name))?;
        self.pgid.get_or_insert(pid);
        tracing::info!(name = %spec.name, pid, "started");
        self.running.push(Running {
            name: spec.name.clone(),
            pid,
            log,
            child,
            exited: None,
        });
        Ok(())
    }

    /// Processes that exited since the last call.
    pub fn newly_exited(&mut self) -> Vec<Exited> {
        let mut out = Vec::new();
        for r in &mut self.running {
            if r.exited.is_some() {
                continue;
            }
            if let Ok(Some(status)) = r.child.try_wait() {
                r.exited = Some(status);
                out.push(Exited {
                    name: r.name.clone(),
                    status,
                    log: r.log.clone(),
                });
            }
        }
        out
    }

    /// Stops everything: SIGTERM to the group, SIGKILL to what is left after
    /// `grace`, then reaps every child.
    pub async fn stop(&mut self, grace: Duration) {
        let Some(pgid) = self.pgid else {
            return;
        };
        signal_group(pgid, "TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && !self.all_exited() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !self.all_exited() {
            tracing::warn!("processes still running after {grace:?}, killing them");
            signal_group(pgid, "KILL");
        }
        for r in &mut self.running {
            if r.exited.is_none() {
                if let Ok(Ok(status)) =
                    tokio::time::timeout(Duration::from_secs(5), r.child.wait()).await
                {
                    r.exited = Some(status);
                }
            }
        }
        // Grandchildren, if any, left in the group.
        if group_alive(pgid) {
            signal_group(pgid, "KILL");
        }
    }

    fn all_exited(&mut self) -> bool {
        self.newly_exited();
        self.running.iter().all(|r| r.exited.is_some())
    }
}

/// The last `n` lines of a log, for error messages.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Sends `SIGNAL` (`TERM`, `KILL`, ...) to the process `pid`.
pub fn signal_pid(pid: u32, signal: &str) -> bool {
    run_kill(signal, &pid.to_string())
}

/// Sends `SIGNAL` to every process of group `pgid`.
pub fn signal_group(pgid: u32, signal: &str) -> bool {
    run_kill(signal, &format!("-{pgid}"))
}

fn run_kill(signal: &str, target: &str) -> bool {
    std::process::Command::new("kill")
        .args(["-s", signal, "--", target])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// True while `pid` exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// True while `pid` is alive and is a `meshctl`.
pub fn is_meshctl(pid: u32) -> bool {
    pid_alive(pid)
        && fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "meshctl")
}

/// True while some live process is in group `pgid`.
pub fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            return false;
        };
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let (_, rest) = stat.rsplit_once(')')?;
                // Fields after the name: state, ppid, pgrp, ...
                let mut fields = rest.split_whitespace();
                let state = fields.next()?;
                let pgrp = fields.nth(1)?.parse::<u32>().ok()?;
                Some(pgrp == pgid && state != "Z" && state != "X")
            })
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(name: &str) -> ProcessSpec {
        ProcessSpec {
            name: name.into(),
            program: "/bin/sleep".into(),
            args: vec!["30".into()],
            env: vec![],
            mesh: false,
        }
    }

    #[tokio::test]
    async fn children_share_one_group_and_stop_together() {
        let dir = tempfile::tempdir().unwrap();
        let mut sup = Supervisor::new(dir.path());
        sup.spawn(&sleeper("a")).unwrap();
        sup.spawn(&sleeper("b")).unwrap();
        let pgid = sup.pgid().unwrap();
        assert_eq!(pgid, sup.processes()[0].pid);
        assert!(group_alive(pgid));
        assert!(sup.processes().iter().all(|p| pid_alive(p.pid)));
        assert!(dir.path().join("a.log").exists());
        sup.stop(Duration::from_secs(5)).await;
        assert!(sup.processes().iter().all(|p| !pid_alive(p.pid)));
        assert!(!group_alive(pgid));
    }

    #[tokio::test]
    async fn notices_a_process_that_exits() {
        let dir = tempfile::tempdir().unwrap();
        let mut sup = Supervisor::new(dir.path());
        let spec = ProcessSpec {
            name: "short".into(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "echo bye; exit 3".into()],
            env: vec![],
            mesh: true,
        };
        sup.spawn(&spec).unwrap();
        let mut exited = Vec::new();
        for _ in 0..100 {
            exited = sup.newly_exited();
            if !exited.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(exited.len(), 1);
        assert_eq!(exited[0].status.code(), Some(3));
        assert_eq!(log_tail(&exited[0].log, 5), "bye");
        assert!(sup.newly_exited().is_empty());
        sup.stop(Duration::from_secs(1)).await;
    }

    #[test]
    fn missing_program_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut sup = Supervisor::new(dir.path());
        let mut spec = sleeper("x");
        spec.program = dir.path().join("nope");
        let err = sup.spawn(&spec).unwrap_err().to_string();
        assert!(err.contains("cargo build --workspace --bins"), "{err}");
    }

    #[test]
    fn liveness_of_self_and_of_nothing() {
        assert!(pid_alive(std::process::id()));
        assert!(!is_meshctl(std::process::id()));
        assert!(!pid_alive(u32::MAX - 1));
    }
}
