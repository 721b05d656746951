//! Processes of the local driver: apps, sidecars and pilot, each in its own
//! process group with its output in a log file, each tagged with the run's
//! prefix in its environment (`MESH_E2E_RUN`) so that stopping a run, or
//! cleaning up after a crashed one, finds every descendant and nothing else.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::{kill_group, kill_pid, wait_until, Cmd};
use crate::E2eError;

/// Environment variable that marks a process as belonging to a run.
pub const RUN_ENV: &str = "MESH_E2E_RUN";

/// How long processes get between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// One long-running process of a run.
#[derive(Debug)]
struct Proc {
    label: String,
    child: Child,
    log: PathBuf,
}

/// Where and how to start a process.
#[derive(Debug, Clone)]
pub struct Spawn<'a> {
    /// `pod/container`, for logs and errors.
    pub label: &'a str,
    /// Network namespace to run in (`ip netns exec`); root namespace if `None`.
    pub netns: Option<&'a str>,
    /// Run as this UID and GID (through `setpriv`), e.g. the proxy's 1337.
    pub uid: Option<u32>,
    /// The command line.
    pub argv: &'a [String],
    /// Environment on top of PATH, RUST_LOG, NO_COLOR and the run tag;
    /// nothing else of the test's environment is passed on.
    pub env: &'a BTreeMap<String, String>,
    /// Log file (appended).
    pub log: &'a Path,
}

/// The processes of one run.
#[derive(Debug)]
pub struct Procs {
    run: String,
    procs: Vec<Proc>,
}

impl Procs {
    /// An empty set for the run with prefix `run`.
    pub fn new(run: &str) -> Procs {
        Procs {
            run: run.to_string(),
            procs: Vec::new(),
        }
    }

    /// The `ip netns exec NS [setpriv ...]` prefix for a command line.
    pub fn wrap(netns: Option<&str>, uid: Option<u32>, argv: &[String]) -> Vec<String> {
        let mut full = Vec::new();
        if let Some(ns) = netns {
            full.extend(["ip", "netns", "exec", ns].map(String::from));
        }
        if let Some(uid) = uid {
            full.extend([
                "setpriv".to_string(),
                format!("--reuid={uid}"),
                format!("--regid={uid}"),
                "--clear-groups".to_string(),
            ]);
        }
        full.extend(argv.iter().cloned());
        full
    }

    /// Starts a process; returns its pid.
    pub fn spawn(&mut self, spec: &Spawn<'_>) -> Result<u32, E2eError> {
        let argv = Procs::wrap(spec.netns, spec.uid, spec.argv);
        let Some((program, args)) = argv.split_first() else {
            return Err(E2eError::Invalid(format!("{}: empty command", spec.label)));
        };
        let log = open_log(spec.log)?;
        let err_log = log.try_clone().map_err(E2eError::io(spec.log))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            // Plain log files, no terminal colour codes.
            .env("NO_COLOR", "1")
            .envs(spec.env)
            .env(RUN_ENV, &self.run)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .process_group(0);
        let child = cmd.spawn().map_err(|source| E2eError::Spawn {
            program: program.clone(),
            source,
        })?;
        let pid = child.id();
        self.procs.push(Proc {
            label: spec.label.to_string(),
            child,
            log: spec.log.to_path_buf(),
        });
        Ok(pid)
    }

    /// Fails with the end of its log if the process `label` has exited.
    pub fn check_running(&mut self, label: &str) -> Result<(), E2eError> {
        for p in self.procs.iter_mut().filter(|p| p.label == label) {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Err(E2eError::Invalid(format!(
                    "{label} exited ({status}); end of {}:\n{}",
                    p.log.display(),
                    tail(&p.log, 30)
                )));
            }
        }
        Ok(())
    }

    /// Stops the process `label` (SIGTERM to its group, SIGKILL after the
    /// grace period) and forgets it, so it can be started again.
    pub fn stop(&mut self, label: &str) {
        let (stopping, kept): (Vec<Proc>, Vec<Proc>) = std::mem::take(&mut self.procs)
            .into_iter()
            .partition(|p| p.label == label);
        self.procs = kept;
        let deadline = Instant::now() + GRACE;
        for mut p in stopping {
            kill_group(p.child.id(), "TERM");
            if wait_until(&mut p.child, deadline).is_none() {
                kill_group(p.child.id(), "KILL");
                let _ = p.child.wait();
            }
        }
    }

    /// Stops every process of the run: SIGTERM to each group, SIGKILL after
    /// a grace period, then SIGKILL to anything left in the run's network
    /// namespaces or carrying the run's tag (a process that left its group).
    pub fn stop_all(&mut self, netns: &[String]) {
        for p in &self.procs {
            kill_group(p.child.id(), "TERM");
        }
        let deadline = Instant::now() + GRACE;
        for p in &mut self.procs {
            if wait_until(&mut p.child, deadline).is_none() {
                kill_group(p.child.id(), "KILL");
                let _ = p.child.wait();
            }
        }
        self.procs.clear();
        kill_leftovers(Some(&self.run), netns);
    }
}

/// SIGKILLs every process in `netns` or tagged with `run`, and waits briefly
/// for them to go (a namespace is only freed when its last process exits).
pub fn kill_leftovers(run: Option<&str>, netns: &[String]) {
    for _ in 0..20 {
        let mut pids = run.map(tagged_pids).unwrap_or_default();
        for ns in netns {
            if let Ok(out) = Cmd::new("ip").args(["netns", "pids", ns]).run() {
                pids.extend(out.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
        pids.retain(|p| *p != std::process::id());
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            kill_pid(pid, "KILL");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Pids whose environment has `MESH_E2E_RUN=run`.
pub fn tagged_pids(run: &str) -> Vec<u32> {
    let needle = format!("{RUN_ENV}={run}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// Run tags (`MESH_E2E_RUN` values) of all running processes.
pub fn all_run_tags() -> Vec<(u32, String)> {
    let prefix = format!("{RUN_ENV}=");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            let tag = env
                .split(|b| *b == 0)
                .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))?;
            Some((pid, String::from_utf8_lossy(tag).into_owned()))
        })
        .collect()
}

fn open_log(path: &Path) -> Result<File, E2eError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(E2eError::io(path))
}

/// Appends a command's output to a log file (for steps that run to completion).
pub fn append_log(path: &Path, text: &str) -> Result<(), E2eError> {
    use std::io::Write;
    open_log(path)?
        .write_all(text.as_bytes())
        .map_err(E2eError::io(path))
}

/// The last `lines` lines of a log file (empty if unreadable).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
