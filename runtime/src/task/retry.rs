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

/// When a FAILED task is restarted: at most `max_attempts` within `window`, waiting
/// `initial`, then twice as long each time (with jitter), up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RestartPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) window: Duration,
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
}

impl RestartPolicy {
    pub(crate) fn of(definition: &crate::manifest::ConnectorDefinition) -> Self {
        Self {
            max_attempts: definition.restart_max_attempts,
            window: Duration::from_millis(definition.restart_window_ms),
            initial: Duration::from_millis(definition.restart_backoff_initial_ms),
            max: Duration::from_millis(definition.restart_backoff_max_ms),
        }
    }

    /// The status entry with `attempts` made.
    pub(crate) fn status(&self, attempts: u32) -> super::status::RestartStatus {
        super::status::RestartStatus {
            attempts,
            max_attempts: self.max_attempts,
            window_ms: self.window.as_millis() as u64,
            backoff_initial_ms: self.initial.as_millis() as u64,
            backoff_max_ms: self.max.as_millis() as u64,
        }
    }
}

/// The automatic restarts of one task: when each was made, and the growing wait.
#[derive(Debug)]
pub(crate) struct Restarts {
    policy: RestartPolicy,
    made: std::collections::VecDeque<std::time::Instant>,
    backoff: ExponentialBackoff,
}

impl Restarts {
    pub(crate) fn new(policy: RestartPolicy) -> Self {
        Self { policy, made: std::collections::VecDeque::new(), backoff: Self::backoff(policy) }
    }

    fn backoff(policy: RestartPolicy) -> ExponentialBackoff {
        ExponentialBuilder::new()
            .with_min_delay(policy.initial)
            .with_max_delay(policy.max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// Restarts made within the window, as of `now`.
    pub(crate) fn attempts(&mut self, now: std::time::Instant) -> u32 {
        while self.made.front().is_some_and(|made| now.duration_since(*made) >= self.policy.window) {
            self.made.pop_front();
        }
        self.made.len() as u32
    }

    /// The wait before the next restart (counting it as made), or `None` when the policy allows
    /// no more within the window. A task that went a whole window without failing starts again
    /// from the shortest wait.
    pub(crate) fn next_wait(&mut self, now: std::time::Instant) -> Option<Duration> {
        let attempts = self.attempts(now);
        if attempts >= self.policy.max_attempts {
            return None;
        }
        if attempts == 0 {
            self.backoff = Self::backoff(self.policy);
        }
        self.made.push_back(now);
        Some(self.backoff.next().unwrap_or(self.policy.max))
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
    fn restarts_are_bounded_within_the_window_and_allowed_again_after_it() {
        let policy = RestartPolicy {
            max_attempts: 3,
            window: Duration::from_secs(60),
            initial: Duration::from_millis(100),
            max: Duration::from_millis(300),
        };
        let mut restarts = Restarts::new(policy);
        let start = std::time::Instant::now();
        let waits: Vec<Option<Duration>> = (0..4).map(|_| restarts.next_wait(start)).collect();
        assert!(waits[..3].iter().all(Option::is_some), "{waits:?}");
        assert_eq!(waits[3], None, "the fourth restart within the window is refused");
        assert!(waits.iter().flatten().all(|wait| *wait <= Duration::from_millis(600)), "capped: {waits:?}");
        assert_eq!(restarts.attempts(start), 3);
        let later = start + Duration::from_secs(61);
        assert_eq!(restarts.attempts(later), 0, "the window has passed");
        assert!(
            restarts.next_wait(later).is_some_and(|wait| wait <= Duration::from_millis(200)),
            "backoff starts over"
        );
    }

    #[test]
    fn zero_attempts_never_restart() {
        let policy = RestartPolicy {
            max_attempts: 0,
            window: Duration::from_secs(1),
            initial: Duration::ZERO,
            max: Duration::ZERO,
        };
        assert_eq!(Restarts::new(policy).next_wait(std::time::Instant::now()), None);
    }

    #[test]
    fn no_timeout_retries_forever() {
        let mut backoff = Backoff::new(RetryPolicy { timeout: None, max_delay: Duration::from_millis(10) });
        assert!((0..1000).all(|_| backoff.next_wait().is_some()));
    }
}
