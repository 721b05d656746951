//! The lock on a run's state directory: a real `flock(2)` on `DIR/lock`,
//! held for as long as the run's supervisor lives. The kernel drops it when
//! that process dies however it dies, so a stale lock cannot exist, and
//! "is a mesh running here" is "is the lock held" (no pid guessing). The
//! holder's pid is written into the file for messages only.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::LocalError;

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct RunLock {
    _file: Flock<File>,
    path: PathBuf,
}

/// Who holds a lock that could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The lock file.
    pub path: PathBuf,
    /// The pid the holder wrote, if readable.
    pub pid: Option<u32>,
}

impl RunLock {
    /// `DIR/lock`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("lock")
    }

    /// Takes the lock on `dir` without waiting: `Ok(Err(held))` when another
    /// process holds it.
    pub fn try_acquire(dir: &Path) -> Result<Result<RunLock, Held>, LocalError> {
        let path = RunLock::path(dir);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(LocalError::io(&path))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut locked) => {
                let pid = format!("{}\n", std::process::id());
                let written = locked
                    .set_len(0)
                    .and_then(|()| locked.rewind())
                    .and_then(|()| locked.write_all(pid.as_bytes()));
                written.map_err(LocalError::io(&path))?;
                Ok(Ok(RunLock {
                    _file: locked,
                    path,
                }))
            }
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                Ok(Err(Held {
                    pid: text.trim().parse().ok(),
                    path,
                }))
            }
            Err((_, errno)) => Err(LocalError::Sys {
                what: format!("flock {}", path.display()),
                source: errno,
            }),
        }
    }

    /// True while some process holds the lock on `dir`.
    pub fn is_held(dir: &Path) -> Result<Option<Held>, LocalError> {
        if !RunLock::path(dir).exists() {
            return Ok(None);
        }
        Ok(RunLock::try_acquire(dir)?.err())
    }

    /// The lock file.
    pub fn file(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(RunLock::is_held(dir.path()).unwrap(), None);
        let lock = RunLock::try_acquire(dir.path()).unwrap().unwrap();
        // A second open file description conflicts, even in this process.
        let held = RunLock::try_acquire(dir.path()).unwrap().unwrap_err();
        assert_eq!(held.pid, Some(std::process::id()));
        assert_eq!(
            RunLock::is_held(dir.path()).unwrap().map(|h| h.pid),
            Some(Some(std::process::id()))
        );
        drop(lock);
        assert_eq!(RunLock::is_held(dir.path()).unwrap(), None);
        assert!(RunLock::try_acquire(dir.path()).unwrap().is_ok());
    }

    #[test]
    fn a_killed_holder_leaves_no_lock() {
        let dir = tempfile::tempdir().unwrap();
        let lock_file = RunLock::path(dir.path());
        // Another process holds it: a shell locks fd 9 with util-linux
        // flock(1) (flock(2) too), then becomes `sleep` keeping the fd.
        let script = format!(
            "exec 9>>'{}' && flock 9 && exec sleep 30",
            lock_file.display()
        );
        let mut holder = std::process::Command::new("/bin/sh")
            .args(["-c", &script])
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while RunLock::is_held(dir.path()).unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "flock never took it");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        holder.kill().unwrap();
        holder.wait().unwrap();
        assert_eq!(RunLock::is_held(dir.path()).unwrap(), None);
    }
}
