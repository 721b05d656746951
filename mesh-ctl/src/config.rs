//! meshctl's door to mesh-api: finding YAML files, loading them into typed
//! objects and validating them together. Every command that reads config
//! goes through here, so all of them report errors the same way
//! (`FILE:LINE: Kind/ns/name: path: message`).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use mesh_api::{ConfigError, Loaded};

/// Objects loaded from a set of files, and every problem found.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// The objects that loaded.
    pub objects: Vec<Loaded>,
    /// Load and validation errors.
    pub errors: Vec<ConfigError>,
}

/// The YAML files (`*.yaml`, `*.yml`) among `paths`: files as given,
/// directories listed (recursively when asked), sorted by name. Hidden
/// files (such as apply's temp files) are skipped.
pub fn yaml_files(paths: &[PathBuf], recursive: bool) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            collect_dir(path, recursive, &mut out)?;
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn collect_dir(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if recursive {
                collect_dir(&path, recursive, out)?;
            }
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads every file (each on its own: one bad file does not hide the
/// others) without cross-object checks.
pub fn load(files: &[PathBuf]) -> LoadResult {
    let mut result = LoadResult::default();
    for file in files {
        let loaded = mesh_api::load_file(file);
        result.objects.extend(loaded.objects);
        result.errors.extend(loaded.errors);
    }
    result
}

/// Loads `files` and validates all their objects together.
pub fn load_and_validate(files: &[PathBuf]) -> LoadResult {
    let mut result = load(files);
    result.errors.extend(mesh_api::validate(&result.objects));
    result
}

/// The problems `file` would have if it were applied on top of the config
/// in `current` (where the objects it names replace theirs). Problems of
/// other files are not its concern: a broken file already in the config
/// directory must not block a good change.
pub fn check_candidate(file: &Path, current: &[PathBuf]) -> Vec<ConfigError> {
    let mesh_api::LoadedFile {
        objects: incoming,
        mut errors,
        ..
    } = mesh_api::load_file(file);
    let keys: Vec<String> = incoming.iter().map(Loaded::key).collect();
    let mut candidate: Vec<Loaded> = load(current)
        .objects
        .into_iter()
        .filter(|l| !keys.contains(&l.key()))
        .collect();
    candidate.extend(incoming);
    errors.extend(
        mesh_api::validate(&candidate)
            .into_iter()
            .filter(|e| e.file == file),
    );
    errors
}
