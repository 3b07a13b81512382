//! Backoff between retries of a retriable failure, and cancellable sleeps.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Exponential backoff with jitter, bounded in total time (Kafka Connect's
/// `errors.retry.timeout` and `errors.retry.delay.max.ms`).
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    max_delay: Duration,
    deadline: Instant,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_secs(300), Duration::from_secs(60))
    }
}

impl Backoff {
    pub(crate) fn new(timeout: Duration, max_delay: Duration) -> Self {
        Self { next: Duration::from_millis(100), max_delay, deadline: Instant::now() + timeout }
    }

    /// The wait before the next try, or `None` when the retry budget is spent.
    pub(crate) fn next_wait(&mut self) -> Option<Duration> {
        let now = Instant::now();
        if now >= self.deadline {
            return None;
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        // Up to 20 % of the step, so tasks failing together do not retry in lockstep.
        let spread = u64::try_from(self.next.as_nanos() / 5).unwrap_or(u64::MAX).max(1);
        let jitter = Duration::from_nanos(u64::from(seed ^ std::process::id()) % spread);
        let wait = (self.next + jitter).min(self.max_delay).min(self.deadline - now);
        self.next = (self.next * 2).min(self.max_delay);
        Some(wait)
    }
}

/// Sleep unless cancelled first; `true` if the full time passed.
pub(crate) async fn sleep_or_cancel(wait: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        () = cancel.cancelled() => false,
    }
}
