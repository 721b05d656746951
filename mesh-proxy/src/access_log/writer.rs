//! The access log writers: one bounded queue and one writer task per
//! destination (file path, stdout, stderr), so that writing never blocks a
//! request. A full queue drops the line and counts it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::model::LogSink;

/// Lines waiting per destination before new ones are dropped.
pub const QUEUE_LINES: usize = 4096;

/// Every access log destination of the data plane.
#[derive(Debug, Default)]
pub struct Sinks {
    queues: Mutex<HashMap<LogSink, mpsc::Sender<String>>>,
    dropped: AtomicU64,
}

impl Sinks {
    /// No destination opened yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lines dropped because a queue was full (or no runtime could write).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queue `line` for `sink`, starting its writer on first use.
    pub fn write(&self, sink: &LogSink, line: String) {
        let mut queues = self
            .queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let sender = match queues.get(sink) {
            Some(sender) if !sender.is_closed() => sender.clone(),
            _ => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let (sender, receiver) = mpsc::channel(QUEUE_LINES);
                runtime.spawn(run(sink.clone(), receiver));
                queues.insert(sink.clone(), sender.clone());
                sender
            }
        };
        drop(queues);
        if sender.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Write every queued line of one destination, in order.
async fn run(sink: LogSink, mut lines: mpsc::Receiver<String>) {
    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match &sink {
        LogSink::Stdout => Box::new(tokio::io::stdout()),
        LogSink::Stderr => Box::new(tokio::io::stderr()),
        LogSink::File(path) => {
            match tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await
            {
                Ok(file) => Box::new(file),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot open access log");
                    return;
                }
            }
        }
    };
    while let Some(line) = lines.recv().await {
        let mut batch = line.into_bytes();
        // Take what else is queued, so a busy log costs one write per batch.
        while let Ok(more) = lines.try_recv() {
            batch.extend_from_slice(more.as_bytes());
            if batch.len() > 64 * 1024 {
                break;
            }
        }
        if let Err(error) = out.write_all(&batch).await {
            tracing::warn!(?sink, %error, "access log write failed");
            return;
        }
        let _ = out.flush().await;
    }
}
