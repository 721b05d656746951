//! The state directory of a local mesh: `state.json` (where the running
//! mesh is, read by `apply`, `delete` and `local down`) and the `lock`, a
//! real file lock (`mesh_local::RunLock`) held by `local up` for its whole
//! life: two `local up` cannot share one directory, and "a mesh is running
//! here" means "the lock is held", whatever became of a pid.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use mesh_local::RunLock;
use serde::{Deserialize, Serialize};

/// `STATE/state.json`, as the contract gives it, plus what `local down`
/// needs to clean up after a `local up` that died (`run`, `processes`).
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
    /// The run's tag (`mesh<pid>x<n>`): every process `local up` started
    /// carries it in its environment (`MESH_LOCAL_RUN`).
    #[serde(default)]
    pub run: String,
    /// The processes `local up` started (each leads a process group).
    #[serde(default)]
    pub processes: Vec<ProcessInfo>,
    /// True once every proxy is ready and the ingress answers.
    #[serde(default)]
    pub ready: bool,
    /// Namespaces mode: the prefix of every network namespace, link and
    /// `/etc/netns` entry of the run (the same as `run`).
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

impl ProcessInfo {
    /// From the supervisor's `(name, pid)` list.
    pub fn list(processes: Vec<(String, u32)>) -> Vec<ProcessInfo> {
        processes
            .into_iter()
            .map(|(name, pid)| ProcessInfo { name, pid })
            .collect()
    }
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

    /// The state of the running mesh in `state_dir` (its lock is held), or
    /// an error saying that none is running.
    pub fn running(state_dir: &Path) -> anyhow::Result<State> {
        let held = RunLock::is_held(state_dir)?.is_some();
        match Self::load(state_dir)? {
            Some(state) if held => Ok(state),
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

/// Takes the lock on `state_dir` for this `local up`, or says which meshctl
/// holds it. Held until the returned guard is dropped or the process ends.
pub fn lock(state_dir: &Path) -> anyhow::Result<RunLock> {
    match RunLock::try_acquire(state_dir)? {
        Ok(lock) => Ok(lock),
        Err(held) => bail!(
            "another local mesh is already running for {} (meshctl pid {}); \
             stop it with `meshctl local down --state-dir {}`",
            state_dir.display(),
            held.pid
                .map_or_else(|| "unknown".to_string(), |p| p.to_string()),
            state_dir.display()
        ),
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
            run: "mesh42x1".into(),
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
    fn running_needs_the_lock_held() {
        let dir = tempfile::tempdir().unwrap();
        let err = State::running(dir.path()).unwrap_err();
        assert!(err.to_string().contains("no local mesh is running"));
        // A state file alone (a crashed run's) is not a running mesh.
        sample().save(dir.path()).unwrap();
        assert!(State::running(dir.path()).is_err());
        let guard = lock(dir.path()).unwrap();
        assert_eq!(State::running(dir.path()).unwrap(), sample());
        let again = lock(dir.path()).unwrap_err().to_string();
        assert!(
            again.contains(&format!("pid {}", std::process::id())),
            "{again}"
        );
        drop(guard);
        assert!(State::running(dir.path()).is_err());
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
