//! The background thread behind [`FlushPolicy::Interval`](crate::FlushPolicy::Interval).
//!
//! The thread holds the partitions (through the flush closure), never the `Log` itself, so the
//! log's `Drop` always runs on a caller's thread and can stop and join the flusher before it
//! releases the data directory.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::error::LogError;

#[derive(Debug)]
pub(crate) struct Flusher {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Flusher {
    pub(crate) fn spawn(
        flush: impl Fn() -> Result<(), LogError> + Send + 'static,
        interval: Duration,
        dir: &std::path::Path,
    ) -> Result<Self, LogError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = thread::Builder::new()
            .name("weir-log-flusher".to_owned())
            .spawn(move || {
                // Anything but a timeout (a message or the sender going away) means stop.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    if let Err(error) = flush() {
                        tracing::warn!(%error, "background flush failed; retrying next interval");
                    }
                }
            })
            .map_err(LogError::io(dir))?;
        Ok(Flusher { stop: Some(stop), handle: Some(handle) })
    }

    /// Stops the thread and waits for it to finish its current flush.
    pub(crate) fn stop(mut self) {
        drop(self.stop.take());
        if let Some(handle) = self.handle.take()
            && handle.join().is_err()
        {
            tracing::warn!("the log flusher thread panicked");
        }
    }
}
