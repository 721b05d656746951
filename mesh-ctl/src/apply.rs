//! `meshctl apply` and `meshctl delete`: change the running local mesh's
//! config directory, which pilot watches, the way kubectl changes a
//! cluster's objects.
//!
//! An applied object replaces the document of the same `Kind/ns/name` in
//! whichever file holds it (so there is never a duplicate, not even for a
//! moment), or goes into a new `applied-KIND-NS-NAME.yaml`. Every file is
//! written atomically (temp file + rename). Input is validated together
//! with the current config first; if it has errors nothing changes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use mesh_api::{ConfigError, ErrorKind};

use crate::config;
use crate::docs::{self, Doc, ObjectId};
use crate::local::state::{write_atomic, State};

/// What happened to one applied object, as kubectl says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did not exist.
    Created,
    /// It existed and changed.
    Configured,
    /// It existed as it is.
    Unchanged,
    /// It is not a `networking.istio.io` object, so not the mesh's to keep.
    Skipped,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped (not a networking.istio.io object)",
        }
    }
}

/// `meshctl apply -f FILE`.
pub fn apply(file: &Path, state_dir: &Path) -> anyhow::Result<ExitCode> {
    let state = State::running(state_dir)?;
    match apply_to_dir(file, &state.config_dir)? {
        Ok(results) => {
            for (id, outcome) in results {
                println!("{} {}", id.resource(), outcome.word());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for err in &errors {
                eprintln!("{err}");
            }
            eprintln!(
                "error: {} is invalid ({} issue(s)); nothing was changed",
                file.display(),
                errors.len()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `meshctl delete -f FILE`.
pub fn delete(file: &Path, state_dir: &Path) -> anyhow::Result<ExitCode> {
    let state = State::running(state_dir)?;
    let (deleted, missing) = delete_from_dir(file, &state.config_dir)?;
    for id in &deleted {
        println!("{} \"{}\" deleted", id.resource_type(), id.name);
    }
    for id in &missing {
        eprintln!(
            "Error from server (NotFound): {} \"{}\" not found",
            id.resource_type(),
            id.name
        );
    }
    warn_about_remaining_issues(&state.config_dir);
    Ok(if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The result of checking and applying a file: what happened to each
/// object, or the problems that stopped it (nothing written), printed as
/// `FILE:LINE: Kind/ns/name: path: message`.
pub type Applied = Result<Vec<(ObjectId, Outcome)>, Vec<ConfigError>>;

/// After a delete, says whether what is left refers to what is gone (a
/// VirtualService naming a subset of a deleted DestinationRule, ...): pilot
/// will report it and keep its last good config for those objects.
fn warn_about_remaining_issues(config_dir: &Path) {
    let Ok(files) = config::yaml_files(&[config_dir.to_path_buf()], false) else {
        return;
    };
    let errors = config::load_and_validate(&files).errors;
    if !errors.is_empty() {
        eprintln!("warning: the config now has {} issue(s):", errors.len());
        for err in errors {
            eprintln!("  {err}");
        }
    }
}

/// Applies `file` to `config_dir`. I/O failures are the outer error.
pub fn apply_to_dir(file: &Path, config_dir: &Path) -> anyhow::Result<Applied> {
    let text =
        fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let current = config::yaml_files(&[config_dir.to_path_buf()], false)?;
    let errors = config::check_candidate(file, &current);
    if !errors.is_empty() {
        return Ok(Err(errors));
    }

    let mut results = Vec::new();
    let mut incoming: Vec<(ObjectId, Doc)> = Vec::new();
    for doc in docs::split(&text) {
        match doc.id() {
            Some(id) if doc.is_mesh_object() => incoming.push((id, doc)),
            Some(id) => results.push((id, Outcome::Skipped)),
            None => {}
        }
    }
    if incoming.is_empty() {
        return Ok(Err(vec![ConfigError::new(
            file,
            ErrorKind::MissingField,
            "",
            "no networking.istio.io objects to apply",
        )]));
    }

    let mut holders = index_dir(config_dir, &current)?;
    // Files to rewrite, with their documents as they will be.
    let mut rewrites: BTreeMap<PathBuf, Vec<Doc>> = BTreeMap::new();
    for (id, doc) in incoming {
        match holders.remove(&id) {
            Some(path) => {
                let docs = match rewrites.get_mut(&path) {
                    Some(docs) => docs,
                    None => {
                        let text = fs::read_to_string(&path)
                            .with_context(|| format!("cannot read {}", path.display()))?;
                        rewrites.entry(path.clone()).or_insert(docs::split(&text))
                    }
                };
                let slot = docs
                    .iter_mut()
                    .find(|d| d.id().as_ref() == Some(&id))
                    .ok_or_else(|| anyhow!("{} changed while applying", path.display()))?;
                let outcome = if slot.value == doc.value {
                    Outcome::Unchanged
                } else {
                    Outcome::Configured
                };
                if outcome == Outcome::Configured {
                    *slot = doc;
                }
                results.push((id, outcome));
            }
            None => {
                let path = config_dir.join(id.file_name());
                rewrites.insert(path, vec![doc]);
                results.push((id, Outcome::Created));
            }
        }
    }
    for (path, docs) in rewrites {
        write_atomic(&path, docs::join(&docs).as_bytes())?;
    }
    Ok(Ok(results))
}

/// Removes the objects `file` names from `config_dir`: (deleted, not found).
pub fn delete_from_dir(
    file: &Path,
    config_dir: &Path,
) -> anyhow::Result<(Vec<ObjectId>, Vec<ObjectId>)> {
    let text =
        fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let ids: Vec<ObjectId> = docs::split(&text)
        .iter()
        .filter(|d| d.is_mesh_object())
        .filter_map(Doc::id)
        .collect();
    if ids.is_empty() {
        bail!(
            "{}: no networking.istio.io objects (with kind and metadata.name) to delete",
            file.display()
        );
    }
    let current = config::yaml_files(&[config_dir.to_path_buf()], false)?;
    let holders = index_dir(config_dir, &current)?;
    let mut by_file: BTreeMap<PathBuf, Vec<ObjectId>> = BTreeMap::new();
    let (mut deleted, mut missing) = (Vec::new(), Vec::new());
    for id in ids {
        match holders.get(&id) {
            Some(path) => {
                by_file.entry(path.clone()).or_default().push(id.clone());
                deleted.push(id);
            }
            None => missing.push(id),
        }
    }
    for (path, gone) in by_file {
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let kept: Vec<Doc> = docs::split(&text)
            .into_iter()
            .filter(|d| d.id().is_none_or(|id| !gone.contains(&id)))
            .collect();
        if docs::holds_no_object(&kept) {
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        } else {
            write_atomic(&path, docs::join(&kept).as_bytes())?;
        }
    }
    Ok((deleted, missing))
}

/// Which file of the config directory holds each object (first wins).
fn index_dir(config_dir: &Path, files: &[PathBuf]) -> anyhow::Result<BTreeMap<ObjectId, PathBuf>> {
    let mut index = BTreeMap::new();
    for path in files {
        let text =
            fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        for id in docs::split(&text).iter().filter_map(Doc::id) {
            index.entry(id).or_insert_with(|| path.clone());
        }
    }
    tracing::debug!(dir = %config_dir.display(), objects = index.len(), "indexed config");
    Ok(index)
}

#[cfg(test)]
mod tests;
