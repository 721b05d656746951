//! The state directory of a local mesh: `state.json` (where the running
//! mesh is, read by `apply`, `delete` and `local down`) and the `lock` that
//! keeps two `local up` from sharing one directory.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};

use super::process;

/// `STATE/state.json`, as the contract gives it, plus what `local down`
/// needs to clean up after a `local up` that died (`pgid`, `processes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// pid of the `meshctl local up` process.
    pub pid: u32,
    /// Pilot's watched config directory.
    pub config_dir: PathBuf,
    /// Pilot's xDS address.
    pub xds_address: String,
    /// Pilot's debug address (`/debug/configz`, `/debug/syncz`).
    pub debug_address: String,
    /// The sample's front page through the ingress gateway.
    pub ingress_url: String,
    /// Process group of every process `local up` started.
    #[serde(default)]
    pub pgid: Option<u32>,
    /// The processes `local up` started.
    #[serde(default)]
    pub processes: Vec<ProcessInfo>,
    /// True once every proxy is ready and the ingress answers.
    #[serde(default)]
    pub ready: bool,
    /// Namespaces mode: the prefix of every network namespace, link,
    /// `/etc/netns` entry and process tag of the run (`mesh<pid>x<n>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns_prefix: Option<String>,
}

/// One process started by `local up`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Its name (and log file name).
    pub name: String,
    /// Its pid.
    pub pid: u32,
}

impl State {
    /// `DIR/state.json`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("state.json")
    }

    /// The state of the mesh in `state_dir`, `None` when there is none.
    pub fn load(state_dir: &Path) -> anyhow::Result<Option<State>> {
        let path = Self::path(state_dir);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(anyhow!("cannot read {}: {e}", path.display())),
        };
        let state = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid state file", path.display()))?;
        Ok(Some(state))
    }

    /// The state of the running mesh in `state_dir`, or an error saying
    /// that none is running.
    pub fn running(state_dir: &Path) -> anyhow::Result<State> {
        match Self::load(state_dir)? {
            Some(state) if process::is_meshctl(state.pid) => Ok(state),
            _ => bail!(
                "no local mesh is running for {} (start one with `meshctl local up -f samples/postcard`)",
                state_dir.display()
            ),
        }
    }

    /// Writes `state.json` atomically.
    pub fn save(&self, state_dir: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        write_atomic(&Self::path(state_dir), text.as_bytes())
    }

    /// Removes `state.json`, if there.
    pub fn remove(state_dir: &Path) {
        let _ = fs::remove_file(Self::path(state_dir));
    }
}

/// Writes `path` through a hidden temp file beside it and a rename, so a
/// reader (or pilot's watcher) never sees half a file.
pub fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", path.display()))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| anyhow!("{} has no file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        bail!("cannot write {}: {e}", path.display());
    }
    Ok(())
}

/// The lock on a state directory, released (file removed) on drop.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
}

impl Lock {
    /// Takes the lock on `state_dir`, or says which meshctl holds it. A lock
    /// left by a meshctl that no longer runs is taken over.
    pub fn acquire(state_dir: &Path) -> anyhow::Result<Lock> {
        let path = state_dir.join("lock");
        for _ in 0..2 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    writeln!(f, "{}", std::process::id())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    return Ok(Lock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    if let Some(pid) = holder.filter(|pid| process::is_meshctl(*pid)) {
                        bail!(
                            "another local mesh is already running for {} (meshctl pid {pid}); \
                             stop it with `meshctl local down --state-dir {}`",
                            state_dir.display(),
                            state_dir.display()
                        );
                    }
                    tracing::info!(path = %path.display(), "removing a stale lock");
                    let _ = fs::remove_file(&path);
                }
                Err(e) => bail!("cannot create {}: {e}", path.display()),
            }
        }
        bail!("cannot take the lock {}", path.display())
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        State {
            pid: std::process::id(),
            config_dir: "/tmp/x/config".into(),
            xds_address: "127.0.0.1:15010".into(),
            debug_address: "127.0.0.1:15014".into(),
            ingress_url: "http://127.0.0.1:8080/".into(),
            pgid: Some(42),
            processes: vec![ProcessInfo {
                name: "mesh-pilot".into(),
                pid: 43,
            }],
            ready: true,
            netns_prefix: None,
        }
    }

    #[test]
    fn state_round_trips_and_has_the_contract_keys() {
        let dir = tempfile::tempdir().unwrap();
        sample().save(dir.path()).unwrap();
        assert_eq!(State::load(dir.path()).unwrap(), Some(sample()));
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(State::path(dir.path())).unwrap()).unwrap();
        for key in [
            "pid",
            "config_dir",
            "xds_address",
            "debug_address",
            "ingress_url",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        State::remove(dir.path());
        assert_eq!(State::load(dir.path()).unwrap(), None);
    }

    #[test]
    fn running_needs_a_live_meshctl() {
        let dir = tempfile::tempdir().unwrap();
        let err = State::running(dir.path()).unwrap_err();
        assert!(err.to_string().contains("no local mesh is running"));
        // The test binary is not meshctl, so its own pid does not count.
        sample().save(dir.path()).unwrap();
        assert!(State::running(dir.path()).is_err());
    }

    #[test]
    fn lock_is_exclusive_only_against_a_live_meshctl() {
        let dir = tempfile::tempdir().unwrap();
        let lock = Lock::acquire(dir.path()).unwrap();
        // The holder (this test process) is not meshctl: a second acquire
        // treats the lock as stale and takes it over.
        let again = Lock::acquire(dir.path()).unwrap();
        drop(again);
        drop(lock);
        assert!(!dir.path().join("lock").exists());
    }

    #[test]
    fn write_atomic_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        write_atomic(&path, b"x: 1\n").unwrap();
        write_atomic(&path, b"x: 2\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "x: 2\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
