//! Running the system tools the runtime is made of (`ip`, `iptables`, and
//! for the test drivers `kubectl`, `kind`, `docker`) to completion: every
//! call has a time limit, its own process group (so a timeout kills the
//! whole tree) and an error that shows the command line and its stderr.
//! Long-running processes belong to [`crate::process::Supervisor`] instead.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::process::signal_group;
use crate::LocalError;

/// How long a command may run unless [`Cmd::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A command line to run to completion.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

/// What a finished command printed, and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Finished {
    /// True for exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl Cmd {
    /// `program` with no arguments yet.
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the command.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Cmd {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Feeds `input` on standard input.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(input.into());
        self
    }

    /// Replaces the time limit.
    pub fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = timeout;
        self
    }

    /// The command line as a person would type it.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| {
                if a.is_empty() || a.contains(char::is_whitespace) {
                    format!("'{a}'")
                } else {
                    a.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs it and requires success; returns standard output.
    pub fn run(&self) -> Result<String, LocalError> {
        let done = self.output()?;
        if done.success() {
            Ok(done.stdout)
        } else {
            Err(self.failed(&done))
        }
    }

    /// The error for a finished but failed run of this command.
    pub fn failed(&self, done: &Finished) -> LocalError {
        LocalError::Command {
            command: self.display(),
            status: done
                .code
                .map_or_else(|| "killed by a signal".to_string(), |c| format!("exit {c}")),
            stderr: done.stderr.trim().to_string(),
        }
    }

    /// Runs it to completion or to its time limit, whatever the exit code.
    pub fn output(&self) -> Result<Finished, LocalError> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn().map_err(|source| LocalError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        if let (Some(input), Some(mut pipe)) = (self.stdin.clone(), child.stdin.take()) {
            // Written from a thread: a large input must not block us while
            // the child is blocked writing its output.
            std::thread::spawn(move || pipe.write_all(&input));
        }
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let status = wait_until(&mut child, Instant::now() + self.timeout);
        let Some(status) = status else {
            signal_group(child.id(), Signal::SIGKILL);
            let _ = child.wait();
            return Err(LocalError::Timeout {
                what: self.display(),
                seconds: self.timeout.as_secs(),
            });
        };
        Ok(Finished {
            code: status.code(),
            stdout: joined(stdout),
            stderr: joined(stderr),
        })
    }
}

/// Waits for `child` until `deadline`; `None` if it is still running.
pub fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => return None,
            // The child is ours; a wait error means it is gone already.
            Err(_) => return child.wait().ok(),
        }
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> Option<JoinHandle<Vec<u8>>> {
    pipe.map(|mut pipe| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    })
}

fn joined(handle: Option<JoinHandle<Vec<u8>>>) -> String {
    handle
        .and_then(|h| h.join().ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The full path of `program` on PATH, if it is there.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// True when this process runs as root (effective UID 0): what network
/// namespaces, iptables and running the proxy as UID 1337 need.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
