//! The one process supervisor of the local runtime, for `meshctl local up`
//! (loopback and namespaces modes) and the e2e local driver alike: starts
//! each long-running process (pilot, proxies, apps) with its output in a log
//! file, in a process group of its own (so a terminal's Ctrl-C reaches only
//! the supervisor, which stops them in order) and tagged with the run's id
//! in its environment ([`RUN_ENV`]), so that stopping a run, or cleaning up
//! after a crashed one, finds every descendant and nothing else.
//!
//! Signals and liveness go through `nix` (`kill(2)`, `killpg(2)`); a zombie
//! counts as gone everywhere ([`alive`]).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg};
use nix::unistd::Pid;

pub use nix::sys::signal::Signal;

use crate::LocalError;

/// Environment variable that marks a process as belonging to a run.
pub const RUN_ENV: &str = "MESH_LOCAL_RUN";

/// Variables passed on from the supervisor's own environment; nothing else
/// is, so a process sees only what its spec gives it (as in a pod), and
/// never an `HTTP_PROXY` meant for the person's shell.
const PASSED_ENV: [&str; 2] = ["PATH", "RUST_LOG"];

/// Where and how to start one process.
#[derive(Debug, Clone)]
pub struct Spawn<'a> {
    /// Its name: `pilot`, `greeter-v1/proxy`; for logs and errors.
    pub name: &'a str,
    /// The command line.
    pub argv: &'a [String],
    /// Network namespace to run in (through `ip netns exec`, which also
    /// gives it the namespace's `/etc/netns/NS/hosts`); root namespace if
    /// `None`.
    pub netns: Option<&'a str>,
    /// Run as this UID and GID (supplementary groups dropped, through
    /// `setpriv`), e.g. the proxy's 1337.
    pub uid: Option<u32>,
    /// Environment on top of PATH, RUST_LOG (default `info`), NO_COLOR and
    /// the run tag.
    pub env: &'a BTreeMap<String, String>,
    /// Log file (appended): stdout and stderr.
    pub log: &'a Path,
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

/// One long-running process of a run.
#[derive(Debug)]
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reaps it if it has exited; true once it has.
    fn poll(&mut self) -> bool {
        if self.exited.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = Some(status);
            }
        }
        self.exited.is_some()
    }
}

/// The processes of one run.
#[derive(Debug)]
pub struct Supervisor {
    run: String,
    procs: Vec<Proc>,
}

impl Supervisor {
    /// An empty set for the run tagged `run` (its prefix, e.g. `mesh123x1`).
    pub fn new(run: &str) -> Supervisor {
        Supervisor {
            run: run.to_string(),
            procs: Vec::new(),
        }
    }

    /// The run's tag.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// The `ip netns exec NS [setpriv ...]` prefix for a command line: `ip`
    /// needs root to enter the namespace (and mount its hosts file), so the
    /// UID is dropped after it, by util-linux's `setpriv`.
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

    /// Starts a process; returns its pid (also its process group).
    pub fn spawn(&mut self, spec: &Spawn<'_>) -> Result<u32, LocalError> {
        let argv = Supervisor::wrap(spec.netns, spec.uid, spec.argv);
        let Some((program, args)) = argv.split_first() else {
            return Err(LocalError::Invalid(format!("{}: empty command", spec.name)));
        };
        if let Some(own) = spec.argv.first().filter(|p| p.contains('/')) {
            if !Path::new(own).is_file() {
                return Err(LocalError::Missing(format!(
                    "{}: program {own} not found",
                    spec.name
                )));
            }
        }
        let log = open_log(spec.log)?;
        if let Some(uid) = spec.uid {
            // The process may reopen its own stdout (`/dev/stdout`, where
            // proxies write access logs), as it can in a container: the
            // file is then its user's.
            std::os::unix::fs::chown(spec.log, Some(uid), Some(uid))
                .map_err(LocalError::io(spec.log))?;
        }
        let err_log = log.try_clone().map_err(LocalError::io(spec.log))?;
        let mut cmd = Command::new(program);
        cmd.args(args).env_clear();
        for key in PASSED_ENV {
            if let Some(value) = std::env::var_os(key) {
                cmd.env(key, value);
            }
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        cmd
            // Plain log files, no terminal colour codes.
            .env("NO_COLOR", "1")
            .envs(spec.env)
            .env(RUN_ENV, &self.run)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .process_group(0);
        let child = cmd.spawn().map_err(|source| LocalError::Spawn {
            program: program.clone(),
            source,
        })?;
        let pid = child.id();
        self.procs.push(Proc {
            name: spec.name.to_string(),
            child,
            log: spec.log.to_path_buf(),
            exited: None,
        });
        Ok(pid)
    }

    /// Name and pid of every process started (running or not).
    pub fn processes(&self) -> Vec<(String, u32)> {
        self.procs
            .iter()
            .map(|p| (p.name.clone(), p.pid()))
            .collect()
    }

    /// Processes that exited since the last call.
    pub fn newly_exited(&mut self) -> Vec<Exited> {
        let mut out = Vec::new();
        for p in &mut self.procs {
            if p.exited.is_none() && p.poll() {
                out.push(Exited {
                    name: p.name.clone(),
                    status: p.exited.unwrap_or_default(),
                    log: p.log.clone(),
                });
            }
        }
        out
    }

    /// Fails with the end of its log if the process `name` has exited.
    pub fn check_running(&mut self, name: &str) -> Result<(), LocalError> {
        for p in self.procs.iter_mut().filter(|p| p.name == name) {
            if p.poll() {
                let status = p.exited.map(|s| s.to_string()).unwrap_or_default();
                return Err(LocalError::Invalid(format!(
                    "{name} exited ({status}); end of {}:\n{}",
                    p.log.display(),
                    tail(&p.log, 30)
                )));
            }
        }
        Ok(())
    }

    /// Stops the process `name` (SIGTERM to its group, SIGKILL after
    /// `grace`) and forgets it, so it can be started again.
    pub fn stop(&mut self, name: &str, grace: Duration) {
        let (mut stopping, kept): (Vec<Proc>, Vec<Proc>) = std::mem::take(&mut self.procs)
            .into_iter()
            .partition(|p| p.name == name);
        self.procs = kept;
        stop_procs(&mut stopping, grace);
    }

    /// Stops every process of the run: SIGTERM to each group, SIGKILL after
    /// `grace`, every child reaped; then SIGKILL to anything still carrying
    /// the run's tag (a descendant that left its group).
    pub fn stop_all(&mut self, grace: Duration) {
        stop_procs(&mut self.procs, grace);
        kill_tagged(&self.run);
    }
}

impl Drop for Supervisor {
    /// Last resort when the owner unwinds without stopping them.
    fn drop(&mut self) {
        if self.procs.iter_mut().any(|p| !p.poll()) {
            self.stop_all(Duration::from_secs(1));
        }
    }
}

fn stop_procs(procs: &mut [Proc], grace: Duration) {
    for p in procs.iter_mut() {
        if !p.poll() {
            signal_group(p.pid(), Signal::SIGTERM);
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !procs.iter_mut().all(Proc::poll) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in procs.iter_mut() {
        if !p.poll() {
            signal_group(p.pid(), Signal::SIGKILL);
            if let Ok(status) = p.child.wait() {
                p.exited = Some(status);
            }
        }
        // Descendants left in its group (the leader may have gone first).
        if group_alive(p.pid()) {
            signal_group(p.pid(), Signal::SIGKILL);
        }
    }
}

/// Sends `signal` to process `pid`; false if it could not (gone, not ours).
pub fn signal(pid: u32, signal: Signal) -> bool {
    to_pid(pid).is_some_and(|pid| kill(pid, signal).is_ok())
}

/// Sends `signal` to every process of group `pgid`; false if there is none.
pub fn signal_group(pgid: u32, signal: Signal) -> bool {
    to_pid(pgid).is_some_and(|pgid| killpg(pgid, signal).is_ok())
}

fn to_pid(pid: u32) -> Option<Pid> {
    // 0 and negative pids address groups or everything: never from a u32 here.
    i32::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .map(Pid::from_raw)
}

/// True while `pid` exists and is not a zombie: a process that exited but
/// was not reaped yet has stopped for every purpose of ours.
pub fn alive(pid: u32) -> bool {
    let Some(p) = to_pid(pid) else {
        return false;
    };
    match kill(p, None) {
        Ok(()) | Err(Errno::EPERM) => !matches!(state(pid), Some('Z' | 'X') | None),
        Err(_) => false,
    }
}

/// True while `pid` is alive and its program is `name` (`/proc/PID/comm`).
pub fn is_program(pid: u32, name: &str) -> bool {
    alive(pid)
        && std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
}

/// True while some live process is in group `pgid`.
pub fn group_alive(pgid: u32) -> bool {
    proc_pids().into_iter().any(|pid| {
        stat_fields(pid).is_some_and(|(state, pgrp)| pgrp == pgid && state != 'Z' && state != 'X')
    })
}

/// Pids of the live processes whose environment has `MESH_LOCAL_RUN=run`.
pub fn tagged_pids(run: &str) -> Vec<u32> {
    proc_pids()
        .into_iter()
        .filter(|pid| has_tag(*pid, run))
        .collect()
}

/// True while `pid` is alive and carries the tag of `run`: the check that a
/// recorded pid is still the process it was (pids are reused).
pub fn has_tag(pid: u32, run: &str) -> bool {
    let needle = format!("{RUN_ENV}={run}");
    alive(pid)
        && std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
}

/// Run tags ([`RUN_ENV`] values) of all running processes.
pub fn all_run_tags() -> Vec<(u32, String)> {
    let prefix = format!("{RUN_ENV}=");
    proc_pids()
        .into_iter()
        .filter_map(|pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            let tag = env
                .split(|b| *b == 0)
                .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))?;
            Some((pid, String::from_utf8_lossy(tag).into_owned()))
        })
        .collect()
}

/// SIGKILLs every process tagged with `run` (never this process), waiting
/// briefly for them to go.
pub fn kill_tagged(run: &str) {
    kill_until_gone(|| tagged_pids(run));
}

/// SIGKILLs what `pids` lists until it lists nothing (at most ~2 s): a
/// network namespace is only freed when its last process is gone.
pub fn kill_until_gone(mut pids: impl FnMut() -> Vec<u32>) {
    for _ in 0..20 {
        let mut left = pids();
        left.retain(|p| *p != std::process::id());
        if left.is_empty() {
            return;
        }
        for pid in left {
            signal(pid, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn proc_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// State letter and process group from `/proc/PID/stat`.
fn stat_fields(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised name: state, ppid, pgrp, ...
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let pgrp = fields.nth(1)?.parse().ok()?;
    Some((state, pgrp))
}

fn state(pid: u32) -> Option<char> {
    stat_fields(pid).map(|(state, _)| state)
}

fn open_log(path: &Path) -> Result<File, LocalError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(LocalError::io(path))
}

/// Appends a command's output to a log file (for steps that run to completion).
pub fn append_log(path: &Path, text: &str) -> Result<(), LocalError> {
    use std::io::Write;
    open_log(path)?
        .write_all(text.as_bytes())
        .map_err(LocalError::io(path))
}

/// The last `lines` lines of a log file (empty if unreadable).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests;
