//! Backoff between retries of a retriable failure (backon's exponential backoff with jitter,
//! bounded by Kafka Connect's `errors.retry.timeout` and `errors.retry.delay.max.ms`), and
//! cancellable sleeps.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

/// First wait after a failure.
const FIRST_DELAY: Duration = Duration::from_millis(100);

/// How a task retries: the total budget (`None`: forever) and the longest single wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { timeout: Some(Duration::from_secs(300)), max_delay: Duration::from_secs(60) }
    }
}

/// The waits of one run of retries.
#[derive(Debug)]
pub(crate) struct Backoff {
    inner: ExponentialBackoff,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(RetryPolicy::default())
    }
}

impl Backoff {
    pub(crate) fn new(policy: RetryPolicy) -> Self {
        let builder = ExponentialBuilder::new()
            .with_min_delay(FIRST_DELAY.min(policy.max_delay))
            .with_max_delay(policy.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        let builder = match policy.timeout {
            // A zero budget means no retries at all.
            Some(timeout) if timeout.is_zero() => builder.with_max_times(0),
            Some(timeout) => builder.with_total_delay(Some(timeout)),
            None => builder,
        };
        Self { inner: builder.build() }
    }

    /// The wait before the next try, or `None` when the retry budget is spent.
    pub(crate) fn next_wait(&mut self) -> Option<Duration> {
        self.inner.next()
    }
}

/// Sleep unless cancelled first; `true` if the full time passed.
pub(crate) async fn sleep_or_cancel(wait: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        () = cancel.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_timeout_means_no_retries() {
        let mut backoff =
            Backoff::new(RetryPolicy { timeout: Some(Duration::ZERO), max_delay: Duration::from_secs(1) });
        assert_eq!(backoff.next_wait(), None);
    }

    #[test]
    fn waits_grow_are_capped_and_stop_at_the_budget() {
        let policy = RetryPolicy { timeout: Some(Duration::from_secs(3)), max_delay: Duration::from_millis(800) };
        let waits: Vec<Duration> = std::iter::from_fn({
            let mut backoff = Backoff::new(policy);
            move || backoff.next_wait()
        })
        .take(100)
        .collect();
        assert!(!waits.is_empty() && waits.len() < 100, "{waits:?}");
        assert!(
            waits.iter().all(|wait| *wait <= Duration::from_millis(1600)),
            "jitter stays within 2x the cap: {waits:?}"
        );
        let total: Duration = waits.iter().sum();
        assert!(total <= Duration::from_secs(3) + Duration::from_millis(1600), "{total:?}");
    }

    #[test]
    fn no_timeout_retries_forever() {
        let mut backoff = Backoff::new(RetryPolicy { timeout: None, max_delay: Duration::from_millis(10) });
        assert!((0..1000).all(|_| backoff.next_wait().is_some()));
    }
}
