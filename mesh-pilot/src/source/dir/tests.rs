//! Directory source: loading, last-good versions, duplicates, deletions.

use super::*;

const SE: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: messenger, namespace: default}
spec:
  hosts: [messenger.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: messenger}}
"#;

const DR: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: messenger}
spec:
  host: messenger
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
"#;

fn vs(subset: &str) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: messenger}}
spec:
  hosts: [messenger]
  http:
  - route:
    - destination: {{host: messenger, subset: {subset}}}
"#
    )
}

fn vs_subset(snapshot: &ConfigSnapshot) -> Option<String> {
    snapshot.virtual_services().next().and_then(|v| {
        v.spec.http[0].route[0]
            .destination
            .as_ref()
            .and_then(|d| d.subset.clone())
    })
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn loads_yaml_files_and_ignores_others() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "se.yaml", SE);
    write(tmp.path(), "dr.yml", DR);
    write(tmp.path(), ".se.yaml.tmp", "not: [yaml");
    write(tmp.path(), "notes.txt", "hello");
    let mut src = DirSource::new(tmp.path());
    let snap = src.reload().unwrap().unwrap();
    assert_eq!(snap.version, 1);
    assert_eq!(snap.objects.len(), 2);
    assert!(snap.errors.is_empty(), "{:?}", snap.errors);
    // Nothing changed: no new snapshot.
    assert!(src.reload().unwrap().is_none());
}

#[test]
fn a_bad_edit_keeps_the_last_good_version() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "se.yaml", SE);
    write(tmp.path(), "dr.yaml", DR);
    write(tmp.path(), "vs.yaml", &vs("v1"));
    let mut src = DirSource::new(tmp.path());
    let snap = src.reload().unwrap().unwrap();
    assert_eq!(vs_subset(&snap).as_deref(), Some("v1"));

    // Unknown field: the file's error is reported, v1 keeps being served.
    write(tmp.path(), "vs.yaml", &vs("v2").replace("hosts:", "hostz:"));
    let snap = src.reload().unwrap().unwrap();
    assert_eq!(vs_subset(&snap).as_deref(), Some("v1"));
    assert_eq!(snap.errors.len(), 1, "{:?}", snap.errors);
    let err = &snap.errors[0];
    assert_eq!(err.file, tmp.path().join("vs.yaml"));
    assert_eq!(
        err.object.as_deref(),
        Some("VirtualService/default/messenger")
    );
    assert_eq!((err.path.as_str(), err.line), ("spec.hostz", Some(6)));

    // A route to a subset no DestinationRule defines (a cross-file check).
    write(tmp.path(), "vs.yaml", &vs("v9"));
    let snap = src.reload().unwrap().unwrap();
    assert_eq!(vs_subset(&snap).as_deref(), Some("v1"));
    assert!(
        snap.errors.iter().any(|e| e.message.contains("v9")
            && e.path == "spec.http[0].route[0].destination.subset"
            && e.line == Some(9)),
        "{:?}",
        snap.errors
    );

    // Fixed: served, errors gone.
    write(tmp.path(), "vs.yaml", &vs("v2"));
    let snap = src.reload().unwrap().unwrap();
    assert_eq!(vs_subset(&snap).as_deref(), Some("v2"));
    assert!(snap.errors.is_empty(), "{:?}", snap.errors);
}

#[test]
fn a_new_invalid_file_is_reported_and_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "se.yaml", SE);
    write(tmp.path(), "broken.yaml", "apiVersion: [unclosed");
    let mut src = DirSource::new(tmp.path());
    let snap = src.reload().unwrap().unwrap();
    assert_eq!(snap.objects.len(), 1);
    assert_eq!(snap.errors.len(), 1);
    assert_eq!(snap.errors[0].file, tmp.path().join("broken.yaml"));
    assert_eq!(snap.errors[0].kind, ErrorKind::Syntax);
}

#[test]
fn deletion_removes_objects_and_newer_duplicates_win_reported() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "se.yaml", SE);
    write(tmp.path(), "dr.yaml", DR);
    write(tmp.path(), "a-route.yaml", &vs("v1"));
    let mut src = DirSource::new(tmp.path());
    src.reload().unwrap();
    // A newer file with the same object wins; the shadowed copy is
    // reported, naming both files.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(tmp.path(), "z-route.yaml", &vs("v2"));
    let snap = src.reload().unwrap().unwrap();
    assert_eq!(vs_subset(&snap).as_deref(), Some("v2"));
    let (older, newer) = (
        tmp.path().join("a-route.yaml"),
        tmp.path().join("z-route.yaml"),
    );
    assert_eq!(
        snap.errors,
        vec![ConfigError::new(
            &older,
            ErrorKind::Duplicate,
            "metadata.name",
            format!(
                "also defined in {} (newer), which is served",
                newer.display()
            ),
        )
        .at_line(Some(4))
        .for_object(Some("VirtualService/default/messenger".into()))]
    );
    let served = snap.virtual_services().count();
    assert_eq!(served, 1);
    // Deleting it brings the older copy back, and the report goes.
    std::fs::remove_file(tmp.path().join("z-route.yaml")).unwrap();
    let snap = src.reload().unwrap().unwrap();
    assert_eq!(vs_subset(&snap).as_deref(), Some("v1"));
    assert!(snap.errors.is_empty(), "{:?}", snap.errors);
    std::fs::remove_file(tmp.path().join("a-route.yaml")).unwrap();
    let snap = src.reload().unwrap().unwrap();
    assert!(snap.virtual_services().next().is_none());
}

#[test]
fn duplicates_within_a_file_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "se.yaml", &format!("{SE}\n---\n{SE}"));
    let mut src = DirSource::new(tmp.path());
    let snap = src.reload().unwrap().unwrap();
    assert!(snap.objects.is_empty());
    let duplicate = snap.errors.iter().find(|e| e.kind == ErrorKind::Duplicate);
    assert_eq!(
        duplicate.map(|e| (e.path.as_str(), e.line)),
        Some(("metadata.name", Some(15))),
        "the second copy's metadata line: {:?}",
        snap.errors
    );
}

#[test]
fn a_missing_directory_is_an_error() {
    let mut src = DirSource::new("/nonexistent/mesh-pilot-test");
    assert!(src.reload().is_err());
}

#[test]
fn a_file_over_the_size_limit_is_refused_and_the_last_good_version_stays() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "dr.yaml", DR);
    let mut src = DirSource::new(tmp.path());
    let first = src.reload().unwrap().unwrap();
    assert_eq!(first.objects.len(), 1);
    // Grown to 50 MB (sparse: nothing is written, nothing may be read).
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(tmp.path().join("dr.yaml"))
        .unwrap();
    file.set_len(50 * 1024 * 1024).unwrap();
    let next = src.reload().unwrap().unwrap();
    assert_eq!(next.objects.len(), 1, "the last good version is served");
    assert_eq!(next.errors.len(), 1, "{:?}", next.errors);
    assert_eq!(next.errors[0].kind, ErrorKind::TooLarge);
    assert!(next.errors[0].message.contains("limit of 8 MiB"));
    assert!(next.errors[0].file.ends_with("dr.yaml"));
}

#[test]
fn files_past_the_directory_total_are_refused_in_name_order() {
    let tmp = tempfile::tempdir().unwrap();
    // Nine files of 7.5 MiB of comments each: 67.5 MiB in all.
    let filler = format!("{DR}{}", "# padding line of a big file\n".repeat(270_000));
    assert!(filler.len() as u64 <= mesh_api::MAX_FILE_BYTES);
    for i in 0..9 {
        let text = filler.replace("name: messenger", &format!("name: m{i}"));
        write(tmp.path(), &format!("f{i}.yaml"), &text);
    }
    let mut src = DirSource::new(tmp.path());
    let snapshot = src.reload().unwrap().unwrap();
    let total_errors: Vec<_> = snapshot
        .errors
        .iter()
        .filter(|e| e.kind == ErrorKind::TooLarge)
        .collect();
    assert_eq!(total_errors.len(), 1, "{:?}", snapshot.errors);
    assert!(total_errors[0].file.ends_with("f8.yaml"));
    assert!(total_errors[0].message.contains("limit of 64 MiB"));
    assert_eq!(snapshot.objects.len(), 8);
    // Removing one brings the last back.
    std::fs::remove_file(tmp.path().join("f0.yaml")).unwrap();
    let snapshot = src.reload().unwrap().unwrap();
    assert!(snapshot.errors.is_empty(), "{:?}", snapshot.errors);
    assert_eq!(snapshot.objects.len(), 8);
}
