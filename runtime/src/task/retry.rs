//! Retries of retriable failures: [`retry`], the one helper every retried call of a task loop
//! goes through (poll, put, flush, append, offset commit), with backon's exponential backoff
//! with jitter bounded by Kafka Connect's `errors.retry.timeout` and `errors.retry.delay.max.ms`;
//! the restart policy of failed tasks; and cancellable sleeps.

use std::sync::atomic::Ordering;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

use super::status::TaskMetrics;
use crate::host::TaskError;

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

/// How a retried call ended, when it did not fail.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Retried<T> {
    /// It succeeded (maybe after retries).
    Done(T),
    /// The task was cancelled while waiting to retry: the call did not succeed.
    Cancelled,
}

/// The decisions of one run of retries: whether an error is worth another try, how long to
/// wait, counting and logging each retry. [`retry!`] drives it; nothing else retries.
#[derive(Debug)]
pub(crate) struct Retries {
    what: &'static str,
    backoff: Backoff,
}

impl Retries {
    pub(crate) fn new(what: &'static str, policy: RetryPolicy) -> Self {
        Self { what, backoff: Backoff::new(policy) }
    }

    /// After a failed try: `Ok(true)` to try again (after the backoff wait, counted in
    /// `metrics.retries`), `Ok(false)` when `cancel` fired during the wait, or the error itself
    /// when it is not retriable or the budget is spent.
    ///
    /// # Errors
    /// `error`, when it is not to be retried.
    pub(crate) async fn after(
        &mut self,
        error: TaskError,
        cancel: &CancellationToken,
        metrics: &TaskMetrics,
    ) -> Result<bool, TaskError> {
        if !error.is_retriable() {
            return Err(error);
        }
        let Some(wait) = self.backoff.next_wait() else { return Err(error) };
        metrics.retries.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%error, what = self.what, wait_ms = wait.as_millis() as u64, "retriable failure, retrying");
        Ok(sleep_or_cancel(wait, cancel).await)
    }
}

/// Make a call until it succeeds (`Ok(Retried::Done(value))`), fails with an error that is not
/// retriable or the policy's budget is spent (`Err`, the last error), or the task is cancelled
/// while waiting to retry (`Ok(Retried::Cancelled)`). Every retry counts in the task's metrics.
/// The call is an expression, evaluated again for each try (a macro, not a closure, so a call
/// may borrow the task mutably and the task's future stays `Send`).
///
/// `retry!(what, policy, cancel, metrics, call_expression)`
macro_rules! retry {
    ($what:expr, $policy:expr, $cancel:expr, $metrics:expr, $call:expr) => {{
        let mut retries = $crate::task::retry::Retries::new($what, $policy);
        loop {
            match $call {
                Ok(value) => break Ok($crate::task::retry::Retried::Done(value)),
                Err(error) => match retries.after(error, $cancel, $metrics).await {
                    Ok(true) => continue,
                    Ok(false) => break Ok($crate::task::retry::Retried::Cancelled),
                    Err(error) => break Err(error),
                },
            }
        }
    }};
}
pub(crate) use retry;

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

    fn retriable() -> TaskError {
        TaskError::Connector(weir_connector_sdk::ConnectorError::Retriable("busy".into()))
    }

    #[tokio::test]
    async fn retry_counts_each_retry_and_returns_the_success() {
        let metrics = TaskMetrics::default();
        let policy = RetryPolicy { timeout: None, max_delay: Duration::from_millis(1) };
        let mut calls = 0;
        let mut call = || {
            calls += 1;
            if calls < 4 { Err(retriable()) } else { Ok(calls) }
        };
        let result: Result<Retried<i32>, TaskError> =
            retry!("test", policy, &CancellationToken::new(), &metrics, call());
        let result = result.expect("succeeds on the fourth call");
        assert_eq!(result, Retried::Done(4));
        assert_eq!(metrics.retries.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn retry_stops_at_a_fatal_error_and_when_cancelled() {
        let metrics = TaskMetrics::default();
        let policy = RetryPolicy { timeout: None, max_delay: Duration::from_secs(60) };
        let fatal: Result<Retried<()>, TaskError> = retry!(
            "test",
            policy,
            &CancellationToken::new(),
            &metrics,
            Err(TaskError::Connector(weir_connector_sdk::ConnectorError::Fatal("no".into())))
        );
        assert!(matches!(fatal, Err(TaskError::Connector(weir_connector_sdk::ConnectorError::Fatal(_)))));
        assert_eq!(metrics.retries.load(Ordering::Relaxed), 0, "a fatal error is not retried");

        let cancel = CancellationToken::new();
        cancel.cancel();
        let cancelled: Result<Retried<()>, TaskError> = retry!("test", policy, &cancel, &metrics, Err(retriable()));
        assert_eq!(cancelled.expect("cancelled is not an error"), Retried::Cancelled);
    }

    #[tokio::test]
    async fn retry_gives_up_with_the_last_error_when_the_budget_is_spent() {
        let metrics = TaskMetrics::default();
        let policy = RetryPolicy { timeout: Some(Duration::ZERO), max_delay: Duration::from_millis(1) };
        let result: Result<Retried<()>, TaskError> =
            retry!("test", policy, &CancellationToken::new(), &metrics, Err(retriable()));
        assert!(result.is_err_and(|error| error.is_retriable()));
    }

    #[test]
    fn no_timeout_retries_forever() {
        let mut backoff = Backoff::new(RetryPolicy { timeout: None, max_delay: Duration::from_millis(10) });
        assert!((0..1000).all(|_| backoff.next_wait().is_some()));
    }
}
