//! Watching the config directory: file events (create, write, rename,
//! delete) from `notify` wake a task that reloads the [`DirSource`] and
//! publishes the new snapshot. Events are coalesced through a channel of one
//! slot and given a short settle time, so "write temp file, rename over"
//! saves are read once, whole. A slow periodic rescan catches anything the
//! watcher misses (e.g. the directory itself being replaced).

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use super::dir::DirSource;
use super::ConfigSnapshot;
use crate::error::SourceError;

/// Time to let a burst of file events finish before reading. Short: the
/// push queue's debounce coalesces what a longer burst still splits.
const SETTLE: Duration = Duration::from_millis(10);
/// Rescan period when no events come.
const RESCAN: Duration = Duration::from_secs(5);

/// A running directory watch. Dropping it stops the file watcher.
pub struct DirWatch {
    _watcher: notify::RecommendedWatcher,
    /// The reload task.
    pub task: tokio::task::JoinHandle<()>,
}

/// Watch `source`'s directory, publishing each changed snapshot on `tx`,
/// until `shutdown` turns true. The first load must already be done.
pub fn spawn(
    source: DirSource,
    tx: watch::Sender<Arc<ConfigSnapshot>>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<DirWatch, SourceError> {
    let (events_tx, mut events) = mpsc::channel::<()>(1);
    let dir = source.dir().to_path_buf();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        match res {
            // A full channel already holds a wake-up: nothing is lost.
            Ok(ev) if !ev.kind.is_access() => {
                let _ = events_tx.try_send(());
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "file watch error"),
        }
    })
    .map_err(|source| SourceError::Watch {
        path: dir.clone(),
        source,
    })?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|source| SourceError::Watch {
            path: dir.clone(),
            source,
        })?;
    tracing::info!(dir = %dir.display(), "watching config directory");
    let task = tokio::spawn(async move {
        let mut source = Some(source);
        loop {
            tokio::select! {
                ev = events.recv() => {
                    if ev.is_none() {
                        return;
                    }
                    tokio::time::sleep(SETTLE).await;
                    while events.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(RESCAN) => {}
                _ = crate::drained(&mut shutdown) => return,
            }
            let Some(mut src) = source.take() else { return };
            let joined = tokio::task::spawn_blocking(move || {
                let result = src.reload();
                (src, result)
            })
            .await;
            let Ok((src, result)) = joined else {
                tracing::error!("config reload task failed; stopping the watch");
                return;
            };
            source = Some(src);
            match result {
                Ok(Some(snapshot)) => {
                    tracing::info!(
                        version = snapshot.version,
                        objects = snapshot.objects.len(),
                        errors = snapshot.errors.len(),
                        "config changed"
                    );
                    tx.send_replace(Arc::new(snapshot));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "config reload failed; keeping the last config")
                }
            }
        }
    });
    Ok(DirWatch {
        _watcher: watcher,
        task,
    })
}
