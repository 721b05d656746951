//! The processes a run starts (upstream, pilot, sidecars, load
//! generators), each with its output in a log file and killed when its
//! guard drops: at the end of a run, on an error, and on Ctrl-C (the
//! `dataplane` command turns SIGINT/SIGTERM into an early return, so the
//! guards drop as on any error).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// How long a killed process gets to be reaped.
const REAP_LIMIT: Duration = Duration::from_secs(5);

/// A long-running child, killed when dropped.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Start `cmd` as `name`, stdout and stderr to `logs/NAME.log`.
    pub fn spawn(name: &str, mut cmd: Command, logs: &Path) -> anyhow::Result<Self> {
        let log = logs.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone().context("clone log handle")?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .with_context(|| format!("start {name}: {cmd:?}"))?;
        Ok(Self {
            name: name.to_string(),
            child,
            log,
        })
    }

    /// Its process id (`taskset` execs its command, so this is the pid of
    /// the program itself).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An error naming the process and the tail of its log if it has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.exited(status)),
            Err(e) => Err(anyhow::anyhow!("{}: wait: {e}", self.name)),
        }
    }

    fn exited(&self, status: ExitStatus) -> anyhow::Error {
        anyhow::anyhow!(
            "{} exited early ({status}); last lines of {}:\n{}",
            self.name,
            self.log.display(),
            log_tail(&self.log, 20)
        )
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let deadline = Instant::now() + REAP_LIMIT;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `program args...` pinned to `cpu` with `taskset -c`, which execs the
/// program in place.
pub fn pinned(cpu: u32, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new("taskset");
    cmd.arg("-c").arg(cpu.to_string()).arg(program);
    cmd
}

/// Poll `check` every 50 ms until it returns `Some`, at most `limit`; on
/// the way, fail early if any of `procs` has exited.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    limit: Duration,
    procs: &mut [&mut Proc],
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        for p in procs.iter_mut() {
            p.check_running()?;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
