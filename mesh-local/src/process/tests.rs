//! The supervisor against real processes (`/bin/sh`, `/bin/sleep`): groups,
//! exits, stopping, tags and the liveness rule for zombies.

use super::*;

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn spawn(sup: &mut Supervisor, dir: &Path, name: &str, words: &[&str]) -> u32 {
    let argv = argv(words);
    sup.spawn(&Spawn {
        name,
        argv: &argv,
        netns: None,
        uid: None,
        env: &BTreeMap::from([("GREETING".to_string(), "hi".to_string())]),
        log: &dir.join(format!("{name}.log")),
    })
    .expect("spawn")
}

fn run_tag() -> String {
    format!(
        "test{}x{:?}",
        std::process::id(),
        std::thread::current().id()
    )
    .replace(['(', ')', ' '], "")
}

#[test]
fn each_process_leads_its_own_group_and_all_stop_together() {
    let dir = tempfile::tempdir().unwrap();
    let mut sup = Supervisor::new(&run_tag());
    let a = spawn(&mut sup, dir.path(), "a", &["/bin/sleep", "30"]);
    // A child that forks a grandchild into its group, then lingers.
    let b = spawn(
        &mut sup,
        dir.path(),
        "b",
        &["/bin/sh", "-c", "sleep 30 & wait"],
    );
    assert_ne!(a, b);
    assert!(group_alive(a) && group_alive(b));
    assert_eq!(stat_fields(a).map(|(_, g)| g), Some(a));
    assert!(alive(a) && alive(b));
    sup.stop_all(Duration::from_secs(5));
    assert!(!alive(a) && !alive(b));
    assert!(!group_alive(a) && !group_alive(b), "grandchild left");
    assert!(tagged_pids(sup.run()).is_empty());
}

#[test]
fn processes_get_only_their_own_environment_and_the_tag() {
    let dir = tempfile::tempdir().unwrap();
    let tag = run_tag();
    let mut sup = Supervisor::new(&tag);
    std::env::set_var("MESH_LOCAL_TEST_SECRET", "leak");
    let script = "echo \"$GREETING|$MESH_LOCAL_RUN|$NO_COLOR|${MESH_LOCAL_TEST_SECRET:-none}\"";
    spawn(&mut sup, dir.path(), "env", &["/bin/sh", "-c", script]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while sup.newly_exited().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        tail(&dir.path().join("env.log"), 1),
        format!("hi|{tag}|1|none")
    );
}

#[test]
fn notices_a_process_that_exits_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut sup = Supervisor::new(&run_tag());
    spawn(
        &mut sup,
        dir.path(),
        "short",
        &["/bin/sh", "-c", "echo bye; exit 3"],
    );
    let mut exited = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while exited.is_empty() && Instant::now() < deadline {
        exited = sup.newly_exited();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(exited.len(), 1);
    assert_eq!(exited[0].status.code(), Some(3));
    assert_eq!(tail(&exited[0].log, 5), "bye");
    assert!(sup.newly_exited().is_empty());
    let err = sup.check_running("short").unwrap_err().to_string();
    assert!(err.contains("short exited") && err.contains("bye"), "{err}");
}

#[test]
fn stop_of_one_lets_it_start_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut sup = Supervisor::new(&run_tag());
    let first = spawn(&mut sup, dir.path(), "pilot", &["/bin/sleep", "30"]);
    sup.stop("pilot", Duration::from_secs(5));
    assert!(!alive(first));
    assert!(sup.processes().is_empty());
    let second = spawn(&mut sup, dir.path(), "pilot", &["/bin/sleep", "30"]);
    assert!(sup.check_running("pilot").is_ok());
    sup.stop_all(Duration::from_secs(5));
    assert!(!alive(second));
}

#[test]
fn a_missing_program_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut sup = Supervisor::new(&run_tag());
    let missing = dir.path().join("nope");
    let argv = vec![missing.to_string_lossy().into_owned()];
    let err = sup
        .spawn(&Spawn {
            name: "x",
            argv: &argv,
            netns: None,
            uid: None,
            env: &BTreeMap::new(),
            log: &dir.path().join("x.log"),
        })
        .unwrap_err();
    assert!(matches!(err, LocalError::Missing(_)), "{err}");
}

#[test]
fn a_zombie_is_not_alive() {
    let mut child = Command::new("/bin/true").spawn().unwrap();
    let pid = child.id();
    // Not reaped yet: a zombie once it has exited.
    let deadline = Instant::now() + Duration::from_secs(5);
    while state(pid) != Some('Z') && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(state(pid), Some('Z'));
    assert!(!alive(pid));
    child.wait().unwrap();
    assert!(!alive(pid));
    assert!(alive(std::process::id()));
    assert!(!alive(0) && !alive(u32::MAX));
    assert!(!is_program(std::process::id(), "meshctl"));
}
