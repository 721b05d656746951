//! `meshctl local down`: asks the running `local up` to stop (SIGTERM to
//! its pid from `state.json`) and waits until it and every process it
//! started are gone. When `local up` itself died, it stops what that left.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;

use super::process::{group_alive, is_meshctl, pid_alive, signal_group, signal_pid};
use super::state::State;
use super::DownArgs;

/// Runs `local down`.
pub fn run(args: &DownArgs) -> anyhow::Result<ExitCode> {
    let dir = &args.state_dir;
    let Some(state) = State::load(dir)? else {
        println!("no local mesh is running for {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    };
    let timeout = Duration::from_secs(args.timeout);
    if is_meshctl(state.pid) {
        println!("stopping the local mesh (meshctl pid {}) ...", state.pid);
        signal_pid(state.pid, "TERM");
        if !wait_until(timeout, || !pid_alive(state.pid)) {
            bail!(
                "meshctl pid {} did not stop within {}s; its logs are in {}",
                state.pid,
                args.timeout,
                dir.join("logs").display()
            );
        }
    } else {
        println!(
            "meshctl pid {} is gone; stopping what it left behind",
            state.pid
        );
    }
    stop_leftovers(&state, dir);
    println!("local mesh stopped");
    Ok(ExitCode::SUCCESS)
}

/// Stops the group `local up` started, if anything of it still runs,
/// removes what a namespaces-mode run left (namespaces, links, rules,
/// tagged processes: only of runs whose meshctl is gone), and removes the
/// state file.
pub fn stop_leftovers(state: &State, dir: &Path) {
    if let Some(pgid) = state.pgid {
        if group_alive(pgid) {
            signal_group(pgid, "TERM");
            if !wait_until(Duration::from_secs(5), || !group_alive(pgid)) {
                signal_group(pgid, "KILL");
                wait_until(Duration::from_secs(5), || !group_alive(pgid));
            }
        }
    }
    if let Some(prefix) = &state.netns_prefix {
        match mesh_e2e::cleanup_run(prefix) {
            Ok(removed) => {
                for item in removed {
                    println!("removed {item}");
                }
            }
            Err(e) => eprintln!("warning: cannot remove the pods' leftovers: {e}"),
        }
    }
    State::remove(dir);
}

/// Polls `done` every 50 ms until it holds or `timeout` passes.
fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::state::ProcessInfo;
    use std::os::unix::process::CommandExt;

    #[test]
    fn down_without_a_mesh_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let args = DownArgs {
            state_dir: dir.path().to_path_buf(),
            timeout: 1,
        };
        assert_eq!(run(&args).unwrap(), ExitCode::SUCCESS);
    }

    #[test]
    fn stale_state_has_its_group_stopped_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        State {
            pid: u32::MAX - 1,
            config_dir: dir.path().join("config"),
            xds_address: String::new(),
            debug_address: String::new(),
            ingress_url: String::new(),
            pgid: Some(pid),
            processes: vec![ProcessInfo {
                name: "sleep".into(),
                pid,
            }],
            ready: true,
            netns_prefix: None,
        }
        .save(dir.path())
        .unwrap();
        let args = DownArgs {
            state_dir: dir.path().to_path_buf(),
            timeout: 1,
        };
        // The child is ours, so it stays a zombie until we reap it; the
        // group check treats zombies as gone.
        assert_eq!(run(&args).unwrap(), ExitCode::SUCCESS);
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(State::load(dir.path()).unwrap().is_none());
    }
}
