//! `meshctl local down`: asks the running `local up` to stop (SIGTERM to
//! its pid from `state.json`) and waits until its lock on the state
//! directory is released, which happens only when that process is gone.
//! When `local up` itself died, it stops what that left: every process
//! tagged with the run, and in namespaces mode the run's namespaces, links
//! and rules.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use mesh_local::process::{alive, has_tag, kill_tagged, signal, signal_group, Signal};
use mesh_local::RunLock;

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
    if let Some(held) = RunLock::is_held(dir)? {
        let pid = held.pid.unwrap_or(state.pid);
        println!("stopping the local mesh (meshctl pid {pid}) ...");
        signal(pid, Signal::SIGTERM);
        let released = wait_until(timeout, || {
            RunLock::is_held(dir).is_ok_and(|held| held.is_none())
        });
        if !released {
            bail!(
                "meshctl pid {pid} did not stop within {}s; its logs are in {}",
                args.timeout,
                dir.join("logs").display()
            );
        }
        if State::load(dir)?.is_none() {
            // It stopped everything itself and removed its state.
            println!("local mesh stopped");
            return Ok(ExitCode::SUCCESS);
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

/// Stops what a `local up` that is gone left running: its processes (each
/// leads a group; a recorded pid counts only while it still carries the
/// run's tag, as pids are reused), anything tagged with its run, and in
/// namespaces mode the namespaces, links, rules and `/etc/netns` entries of
/// its prefix. Then removes the state file.
pub fn stop_leftovers(state: &State, dir: &Path) {
    let groups: Vec<u32> = state
        .processes
        .iter()
        .map(|p| p.pid)
        .filter(|pid| has_tag(*pid, &state.run))
        .collect();
    for pgid in &groups {
        signal_group(*pgid, Signal::SIGTERM);
    }
    let all_gone = || groups.iter().all(|pid| !alive(*pid));
    if !wait_until(Duration::from_secs(5), all_gone) {
        for pgid in &groups {
            signal_group(*pgid, Signal::SIGKILL);
        }
    }
    if !state.run.is_empty() {
        kill_tagged(&state.run);
    }
    if let Some(prefix) = &state.netns_prefix {
        match mesh_local::cleanup_run(prefix) {
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
    fn a_dead_runs_processes_are_stopped_and_its_state_removed() {
        let dir = tempfile::tempdir().unwrap();
        let run_tag = format!("meshtest{}x1", std::process::id());
        let mut leader = std::process::Command::new("/bin/sleep")
            .arg("30")
            .env(mesh_local::RUN_ENV, &run_tag)
            .process_group(0)
            .spawn()
            .unwrap();
        // A recorded pid that is no longer the run's (reused): left alone.
        let mut stranger = std::process::Command::new("/bin/sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        // A tagged process outside any recorded group.
        let mut stray = std::process::Command::new("/bin/sleep")
            .arg("30")
            .env(mesh_local::RUN_ENV, &run_tag)
            .process_group(0)
            .spawn()
            .unwrap();
        State {
            pid: u32::MAX - 1,
            config_dir: dir.path().join("config"),
            xds_address: String::new(),
            debug_address: String::new(),
            ingress_url: String::new(),
            run: run_tag,
            processes: vec![
                ProcessInfo {
                    name: "sleep".into(),
                    pid: leader.id(),
                },
                ProcessInfo {
                    name: "reused".into(),
                    pid: stranger.id(),
                },
            ],
            ready: true,
            netns_prefix: None,
        }
        .save(dir.path())
        .unwrap();
        let args = DownArgs {
            state_dir: dir.path().to_path_buf(),
            timeout: 1,
        };
        // No lock is held: the run is dead, its leftovers are stopped. The
        // children are ours, so they stay zombies until reaped; liveness
        // treats zombies as gone.
        assert_eq!(run(&args).unwrap(), ExitCode::SUCCESS);
        assert!(!leader.wait().unwrap().success());
        assert!(!stray.wait().unwrap().success());
        assert!(alive(stranger.id()), "a process not of the run was stopped");
        stranger.kill().unwrap();
        stranger.wait().unwrap();
        assert!(State::load(dir.path()).unwrap().is_none());
    }
}
