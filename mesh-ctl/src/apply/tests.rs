//! apply/delete against a copy of the postcard config.

use std::collections::BTreeMap;

use super::*;

fn sample_mesh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/postcard/mesh")
}

/// A config dir holding a copy of the sample's mesh/*.yaml.
fn config_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(sample_mesh()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}

fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

fn route(name: &str, subset: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: {name}\nspec:\n  hosts: [messenger]\n  http:\n  - route:\n    - destination: {{host: messenger, subset: {subset}}}\n"
    )
}

#[test]
fn apply_replaces_the_object_where_it_lives() {
    let dir = config_dir();
    let file = sample_mesh().join("routes/all-v2.yaml");
    let results = apply_to_dir(&file, dir.path()).unwrap().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(
        results[0].0.resource(),
        "virtualservice.networking.istio.io/messenger"
    );
    assert_eq!(results[0].1, Outcome::Configured);
    let route = fs::read_to_string(dir.path().join("messenger-route.yaml")).unwrap();
    assert!(route.contains("subset: v2"));
    assert!(!route.contains("subset: v1"));
    // No second copy anywhere, and the whole config is still valid.
    let files = config::yaml_files(&[dir.path().to_path_buf()], false).unwrap();
    assert!(config::load_and_validate(&files).errors.is_empty());
    // Applying again changes nothing.
    let again = apply_to_dir(&file, dir.path()).unwrap().unwrap();
    assert_eq!(again[0].1, Outcome::Unchanged);
}

#[test]
fn apply_keeps_other_documents_of_a_file() {
    let dir = config_dir();
    let before = fs::read_to_string(dir.path().join("destination-rules.yaml")).unwrap();
    let dr = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: greeter\nspec:\n  host: greeter\n  subsets:\n  - name: v1\n    labels: {version: v1}\n  - name: v9\n    labels: {version: v9}\n";
    let input = tempfile::tempdir().unwrap();
    let file = write(input.path(), "dr.yaml", dr);
    let results = apply_to_dir(&file, dir.path()).unwrap().unwrap();
    assert_eq!(results[0].1, Outcome::Configured);
    let after = fs::read_to_string(dir.path().join("destination-rules.yaml")).unwrap();
    assert!(after.contains("v9"));
    // The messenger rule, after the replaced one, is untouched text.
    let tail = &before[before.find("name: messenger").unwrap()..];
    assert!(after.ends_with(tail));
}

#[test]
fn a_new_object_gets_its_own_file() {
    let dir = config_dir();
    let input = tempfile::tempdir().unwrap();
    let file = write(input.path(), "new.yaml", &route("messenger-extra", "v2"));
    let results = apply_to_dir(&file, dir.path()).unwrap().unwrap();
    assert_eq!(results[0].1, Outcome::Created);
    assert!(dir
        .path()
        .join("applied-virtualservice-default-messenger-extra.yaml")
        .exists());
}

#[test]
fn unknown_subset_is_rejected_and_nothing_changes() {
    let dir = config_dir();
    let before = snapshot(dir.path());
    let input = tempfile::tempdir().unwrap();
    let file = write(input.path(), "bad.yaml", &route("messenger", "v3"));
    let errors = apply_to_dir(&file, dir.path()).unwrap().unwrap_err();
    assert!(
        errors.iter().any(|e| e.file == file
            && e.path == "spec.http[0].route[0].destination.subset"
            && e.kind == mesh_api::ErrorKind::UnresolvedReference),
        "{errors:?}"
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn unknown_field_is_rejected_and_nothing_changes() {
    let dir = config_dir();
    let before = snapshot(dir.path());
    let input = tempfile::tempdir().unwrap();
    let file = write(
        input.path(),
        "typo.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hostz: [a]\n",
    );
    let errors = apply_to_dir(&file, dir.path()).unwrap().unwrap_err();
    assert!(
        errors.iter().any(|e| e.path == "spec.hostz"
            && e.line == Some(5)
            && e.object.as_deref() == Some("VirtualService/default/x")),
        "{errors:?}"
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_broken_file_in_the_config_dir_does_not_block_apply() {
    let dir = config_dir();
    write(
        dir.path(),
        "broken.yaml",
        "kind: VirtualService\nmetadata: {name: [\n",
    );
    let file = sample_mesh().join("routes/canary-80-20.yaml");
    let results = apply_to_dir(&file, dir.path()).unwrap().unwrap();
    assert_eq!(results[0].1, Outcome::Configured);
}

#[test]
fn delete_removes_the_object_and_empty_files() {
    let dir = config_dir();
    let file = sample_mesh().join("routes/all-v2.yaml");
    let (deleted, missing) = delete_from_dir(&file, dir.path()).unwrap();
    assert_eq!(deleted.len(), 1);
    assert!(missing.is_empty());
    // messenger-route.yaml held only that object.
    assert!(!dir.path().join("messenger-route.yaml").exists());
    let (deleted, missing) = delete_from_dir(&file, dir.path()).unwrap();
    assert!(deleted.is_empty());
    assert_eq!(missing.len(), 1);
}

#[test]
fn delete_keeps_the_rest_of_a_file() {
    let dir = config_dir();
    let input = tempfile::tempdir().unwrap();
    let file = write(
        input.path(),
        "del.yaml",
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: greeter\n",
    );
    let (deleted, _) = delete_from_dir(&file, dir.path()).unwrap();
    assert_eq!(deleted.len(), 1);
    let left = fs::read_to_string(dir.path().join("destination-rules.yaml")).unwrap();
    assert!(left.contains("name: messenger"));
    assert!(!left.contains("name: greeter"));
}

#[test]
fn objects_of_other_groups_are_skipped() {
    let dir = config_dir();
    let before = snapshot(dir.path());
    let input = tempfile::tempdir().unwrap();
    let deployment =
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: greeter-v1}\nspec: {}\n";
    let file = write(
        input.path(),
        "mixed.yaml",
        &format!("{deployment}---\n{}", route("messenger", "v2")),
    );
    let results = apply_to_dir(&file, dir.path()).unwrap().unwrap();
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(results[0].1, Outcome::Skipped, "{results:?}");
    assert_eq!(results[1].1, Outcome::Configured);
    assert!(!dir
        .path()
        .join("applied-deployment-default-greeter-v1.yaml")
        .exists());

    let only = write(input.path(), "only.yaml", deployment);
    assert!(apply_to_dir(&only, dir.path()).unwrap().is_err());
    assert!(delete_from_dir(&only, dir.path()).is_err());
    assert_ne!(snapshot(dir.path()), before);
}
