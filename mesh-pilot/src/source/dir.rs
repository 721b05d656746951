//! The directory source: every `*.yaml`/`*.yml` file of a directory, loaded
//! and validated with mesh-api, assembled into a [`ConfigSnapshot`].
//!
//! Rules:
//! - A file with errors (its own, or cross-object ones reported on its
//!   objects, such as a route to an undefined subset) is skipped as a whole
//!   and its errors reported; if an earlier version of it was accepted, that
//!   version keeps being served, so a bad edit never takes config away.
//! - When two files define the same object, the most recently written file
//!   wins (a newer file is a newer intent); the other copy is shadowed and
//!   reported as an error of the older file (the rest of that file is still
//!   served).
//! - Errors stay [`ConfigError`] values from mesh-api to the snapshot; each
//!   new one is logged once, at warn, with its file, line, object and field
//!   path as fields.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use mesh_api::{ConfigError, ErrorKind, Loaded};

use super::{ConfigObject, ConfigSnapshot};
use crate::error::SourceError;
use crate::mesh_config::MeshConfig;

/// A time as ms since the Unix epoch (0 before it).
fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Most bytes of config served from one directory (64 MiB): files past it,
/// in name order, are refused with an error naming the limit.
pub const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;

/// Rounds of "drop the files with cross-object errors and check again".
const CROSS_CHECK_ROUNDS: usize = 3;

#[derive(Debug)]
struct FileState {
    /// Hash of the content last read.
    content: u64,
    modified: SystemTime,
    /// The current content's objects when they pass the file's own checks.
    current: Option<Vec<Loaded>>,
    /// The file's own errors (load and per-object validation).
    errors: Vec<ConfigError>,
    /// Objects of the last version that was accepted into a snapshot.
    last_good: Option<Vec<Loaded>>,
    /// The file's size when last read.
    size: u64,
}

/// The state of a watched config directory.
#[derive(Debug)]
pub struct DirSource {
    dir: PathBuf,
    files: BTreeMap<String, FileState>,
    /// `Kind/ns/name` -> when it was first seen (its file's modification
    /// time then), the object's creation time for ordering.
    first_seen: HashMap<String, u64>,
    mesh: MeshConfig,
    current: ConfigSnapshot,
}

impl DirSource {
    /// A source for `dir`; nothing is read until [`DirSource::reload`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirSource {
            dir: dir.into(),
            files: BTreeMap::new(),
            first_seen: HashMap::new(),
            mesh: MeshConfig::default(),
            current: ConfigSnapshot::default(),
        }
    }

    /// Use these mesh-wide settings in every snapshot.
    pub fn with_mesh_config(mut self, mesh: MeshConfig) -> Self {
        self.mesh = mesh;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The snapshot as of the last reload.
    pub fn current(&self) -> &ConfigSnapshot {
        &self.current
    }

    /// Re-read the directory. Returns the new snapshot when the config or
    /// its errors changed, `None` when nothing did.
    pub fn reload(&mut self) -> Result<Option<ConfigSnapshot>, SourceError> {
        let names = self.list()?;
        self.files.retain(|name, _| names.contains(name));
        for name in &names {
            self.read_file(name);
        }
        self.limit_total(&names);
        let (objects, errors) = self.assemble();
        let mut next = ConfigSnapshot::new(self.current.version + 1, objects, errors);
        next.mesh = self.mesh.clone();
        if self.current.version > 0
            && next.objects == self.current.objects
            && next.errors == self.current.errors
        {
            return Ok(None);
        }
        for e in next
            .errors
            .iter()
            .filter(|e| !self.current.errors.contains(e))
        {
            tracing::warn!(
                file = %e.file.display(),
                line = e.line,
                object = e.object.as_deref(),
                path = %e.path,
                kind = ?e.kind,
                "{}",
                e.message
            );
        }
        self.current = next;
        Ok(Some(self.current.clone()))
    }

    /// Refuse the files that take the directory past [`MAX_TOTAL_BYTES`]
    /// (in name order); they are read again at the next reload, so one
    /// fits again once others shrink.
    fn limit_total(&mut self, names: &[String]) {
        let mut total: u64 = 0;
        for name in names {
            let Some(state) = self.files.get_mut(name) else {
                continue;
            };
            total = total.saturating_add(state.size);
            if total > MAX_TOTAL_BYTES && state.current.is_some() {
                state.current = None;
                state.content = 0;
                state.errors = vec![ConfigError::new(
                    self.dir.join(name),
                    ErrorKind::TooLarge,
                    "",
                    format!(
                        "the config directory holds {} with this file, over the limit of {} \
                         in all; this file is not served",
                        mesh_api::fmt_bytes(total),
                        mesh_api::fmt_bytes(MAX_TOTAL_BYTES)
                    ),
                )];
            }
        }
    }

    fn list(&self) -> Result<Vec<String>, SourceError> {
        let read_err = |source| SourceError::ReadDir {
            path: self.dir.clone(),
            source,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let name = entry.file_name().to_string_lossy().to_string();
            // Hidden files are editors' and `meshctl apply`'s temp files.
            if !name.starts_with('.') && mesh_api::is_yaml_file(&entry.path()) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn read_file(&mut self, name: &str) {
        let path = self.dir.join(name);
        // Over the size limit: refused without reading it, and whatever
        // version of it was served before stays served.
        if let Ok(meta) = std::fs::metadata(&path) {
            if meta.len() > mesh_api::MAX_FILE_BYTES {
                let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                let content = meta.len() ^ unix_ms(modified);
                if self.files.get(name).is_some_and(|f| f.content == content) {
                    return;
                }
                let errors = vec![mesh_api::too_large(&path, meta.len())];
                self.record(name, content, modified, None, errors, 0);
                return;
            }
        }
        let read = read_bounded(&path).map(|text| {
            let modified = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            (text, modified)
        });
        let (content, modified, current, errors, size) = match read {
            Ok((text, modified)) => {
                let mut h = DefaultHasher::new();
                text.hash(&mut h);
                let content = h.finish();
                if self.files.get(name).is_some_and(|f| f.content == content) {
                    return;
                }
                let (objects, errors) = check_file(&path, &text);
                let current = errors.is_empty().then_some(objects);
                (content, modified, current, errors, text.len() as u64)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Renamed away between listing and reading.
                self.files.remove(name);
                return;
            }
            Err(e) => {
                let err =
                    ConfigError::new(&path, ErrorKind::Io, "", format!("cannot read file: {e}"));
                (0, SystemTime::UNIX_EPOCH, None, vec![err], 0)
            }
        };
        if let Some(objects) = &current {
            tracing::info!(file = %path.display(), objects = objects.len(), "read");
        }
        self.record(name, content, modified, current, errors, size);
    }

    /// What was read of file `name` now (its last good objects are kept).
    fn record(
        &mut self,
        name: &str,
        content: u64,
        modified: SystemTime,
        current: Option<Vec<Loaded>>,
        errors: Vec<ConfigError>,
        size: u64,
    ) {
        let state = self.files.entry(name.to_string()).or_insert(FileState {
            content,
            modified,
            current: None,
            errors: Vec::new(),
            last_good: None,
            size: 0,
        });
        state.content = content;
        state.modified = modified;
        state.current = current;
        state.errors = errors;
        state.size = size;
    }

    /// The objects to serve and the errors to report; records which
    /// versions were accepted.
    fn assemble(&mut self) -> (Vec<ConfigObject>, Vec<ConfigError>) {
        // Newest file first, so its copy of a duplicated object wins.
        let mut order: Vec<&String> = self.files.keys().collect();
        order.sort_by(|a, b| {
            let (fa, fb) = (&self.files[*a], &self.files[*b]);
            fb.modified.cmp(&fa.modified).then_with(|| b.cmp(a))
        });
        let order: Vec<String> = order.into_iter().cloned().collect();
        // Files whose current content is held back by cross-object errors.
        let mut held_back: BTreeMap<String, Vec<ConfigError>> = BTreeMap::new();
        let mut chosen = Vec::new();
        let mut shadowed = Vec::new();
        for round in 0..CROSS_CHECK_ROUNDS {
            (chosen, shadowed) = self.choose(&order, &held_back);
            let loaded: Vec<Loaded> = chosen.iter().map(|(_, l, _)| l.clone()).collect();
            // An error names the file of the object it is about, as that
            // object was loaded: look its file entry up by that.
            let files: HashMap<&Path, (&String, bool)> = chosen
                .iter()
                .map(|(name, l, is_current)| (l.file.as_path(), (name, *is_current)))
                .collect();
            let mut new_errors = false;
            for err in mesh_api::validate(&loaded) {
                let Some(&(name, is_current)) = files.get(err.file.as_path()) else {
                    continue;
                };
                let held = held_back.entry(name.clone()).or_default();
                if !held.contains(&err) {
                    held.push(err);
                    // Only dropping the file's current content can help.
                    new_errors |= is_current && round + 1 < CROSS_CHECK_ROUNDS;
                }
            }
            if !new_errors {
                break;
            }
        }
        let mut accepted: BTreeSet<String> = BTreeSet::new();
        let mut objects = Vec::new();
        for (name, loaded, is_current) in chosen {
            if is_current {
                accepted.insert(name.clone());
            }
            // `metadata.creationTimestamp` when the YAML has one (kubectl
            // output does), else the file's modification time when the
            // object was first seen.
            let modified = self.files.get(&name).map_or(0, |f| unix_ms(f.modified));
            let created_ms = match &loaded.object.metadata().creation_timestamp {
                Some(ts) => u64::try_from(ts.unix_nanos() / 1_000_000).unwrap_or(0),
                None => *self.first_seen.entry(loaded.key()).or_insert(modified),
            };
            objects.push(ConfigObject {
                file: self.dir.join(&name).display().to_string(),
                object: loaded.object,
                created_ms,
            });
        }
        // Forget objects that are gone: one recreated later is new.
        let live: BTreeSet<String> = objects.iter().map(|o| o.object.key()).collect();
        self.first_seen.retain(|key, _| live.contains(key));
        let mut errors = Vec::new();
        for (name, state) in self.files.iter_mut() {
            if accepted.contains(name) {
                state.last_good = state.current.clone();
            }
            errors.extend(state.errors.iter().cloned());
        }
        errors.extend(held_back.into_values().flatten());
        errors.extend(shadowed);
        errors.sort();
        errors.dedup();
        (objects, errors)
    }

    /// For each file (newest first): its current objects unless invalid or
    /// held back, else its last good ones; duplicates dropped. Each entry is
    /// (file, object, whether it is from the current content). Also returns
    /// an error for each dropped duplicate, naming the file served.
    fn choose(
        &self,
        order: &[String],
        held_back: &BTreeMap<String, Vec<ConfigError>>,
    ) -> (Vec<(String, Loaded, bool)>, Vec<ConfigError>) {
        let mut seen: HashMap<String, &String> = HashMap::new();
        let mut out = Vec::new();
        let mut shadowed = Vec::new();
        for name in order {
            let state = &self.files[name];
            let (objects, is_current) = match &state.current {
                Some(objs) if !held_back.contains_key(name) => (Some(objs), true),
                _ => (state.last_good.as_ref(), false),
            };
            for loaded in objects.into_iter().flatten() {
                let key = loaded.key();
                if let Some(winner) = seen.get(&key) {
                    let message = format!(
                        "also defined in {} (newer), which is served",
                        self.dir.join(winner).display()
                    );
                    let err = ConfigError::new(
                        self.dir.join(name),
                        ErrorKind::Duplicate,
                        "metadata.name",
                        message,
                    )
                    .at_line(loaded.line_of("metadata.name"))
                    .for_object(Some(key));
                    shadowed.push(err);
                    continue;
                }
                seen.insert(key, name);
                out.push((name.clone(), loaded.clone(), is_current));
            }
        }
        (out, shadowed)
    }
}

/// The file's text, reading at most one byte past [`mesh_api::MAX_FILE_BYTES`]
/// (a file that grew after its size was checked is cut there, and
/// `load_str` refuses it as too large).
fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(mesh_api::MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > mesh_api::MAX_FILE_BYTES {
        // Only its length matters now.
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    String::from_utf8(bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

/// Load a file and run the checks that need only the file itself: load
/// errors, per-object validation, and duplicates within the file.
fn check_file(path: &Path, text: &str) -> (Vec<Loaded>, Vec<ConfigError>) {
    let (objects, mut errors) = mesh_api::load_str(path, text);
    errors.extend(objects.iter().flat_map(mesh_api::validate_object));
    let mut keys = BTreeSet::new();
    for o in &objects {
        if !keys.insert(o.key()) {
            errors.push(
                ConfigError::new(
                    path,
                    ErrorKind::Duplicate,
                    "metadata.name",
                    "defined twice in this file",
                )
                .at_line(o.line_of("metadata.name"))
                .for_object(Some(o.key())),
            );
        }
    }
    (objects, errors)
}

#[cfg(test)]
mod tests;
