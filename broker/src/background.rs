//! The log's background threads: the flusher behind
//! [`FlushPolicy::Interval`](crate::FlushPolicy::Interval) and the cleaner (see
//! [`LogConfig::cleaner_interval`](crate::LogConfig::cleaner_interval)).
//!
//! A thread holds the partitions (through its closure), never the `Log` itself, so the log's
//! `Drop` always runs on a caller's thread and can stop and join the threads before it releases
//! the data directory.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::error::LogError;

#[derive(Debug)]
pub(crate) struct Background {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Background {
    /// Starts thread `name`, running `work` once per `interval` until stopped.
    pub(crate) fn spawn(
        name: &'static str,
        work: impl Fn() -> Result<(), LogError> + Send + 'static,
        interval: Duration,
        dir: &std::path::Path,
    ) -> Result<Self, LogError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                // Anything but a timeout (a message or the sender going away) means stop.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    if let Err(error) = work() {
                        tracing::warn!(thread = name, %error, "background work failed; retrying next interval");
                    }
                }
            })
            .map_err(LogError::io(dir))?;
        Ok(Background { stop: Some(stop), handle: Some(handle) })
    }

    /// Stops the thread and waits for it to finish its current round of work.
    pub(crate) fn stop(mut self) {
        drop(self.stop.take());
        if let Some(handle) = self.handle.take()
            && handle.join().is_err()
        {
            tracing::warn!("a log background thread panicked");
        }
    }
}
