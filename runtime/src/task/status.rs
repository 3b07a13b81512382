//! Task and connector states (Kafka Connect's names) and per-task counters.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// The state of a connector or task, as Kafka Connect reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Unassigned,
    Running,
    Paused,
    Stopped,
    Failed,
    Restarting,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            State::Unassigned => "UNASSIGNED",
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Stopped => "STOPPED",
            State::Failed => "FAILED",
            State::Restarting => "RESTARTING",
        };
        f.write_str(text)
    }
}

/// A task's state and, when FAILED, why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TaskStatus {
    pub id: u32,
    pub state: State,
    pub worker_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// The automatic restart policy and the restarts it made within its window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<RestartStatus>,
}

/// What `GET .../status` shows of a task's automatic restarts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RestartStatus {
    /// Restarts made within the policy's window.
    pub attempts: u32,
    pub max_attempts: u32,
    pub window_ms: u64,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
}

/// Counters of one task, updated per batch.
#[derive(Debug, Default)]
pub struct TaskMetrics {
    /// Records polled from a source / written by a sink.
    pub records: AtomicU64,
    /// Key + value bytes of those records.
    pub bytes: AtomicU64,
    pub batches: AtomicU64,
    pub errors: AtomicU64,
    pub retries: AtomicU64,
    /// Wall-clock ms of the last offset commit (0: none yet).
    pub last_commit_ms: AtomicI64,
    /// What the component reported through `log.gauge`, the latest value per name.
    gauges: Mutex<BTreeMap<String, i64>>,
}

impl TaskMetrics {
    pub(crate) fn add_batch(&self, records: u64, bytes: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn committed_now(&self) {
        self.last_commit_ms.store(crate::keyed_store::now_ms(), Ordering::Relaxed);
    }

    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The component's gauges; a name reported for the first time is kept (at most
    /// [`MAX_GAUGES`] names, so a component cannot grow the worker's memory without bound).
    pub(crate) fn set_gauge(&self, name: &str, value: i64) {
        let mut gauges = self.gauges.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(slot) = gauges.get_mut(name) {
            *slot = value;
        } else if gauges.len() < MAX_GAUGES && is_gauge_name(name) {
            gauges.insert(name.to_owned(), value);
        }
    }

    pub fn gauges(&self) -> BTreeMap<String, i64> {
        self.gauges.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

/// Most gauge names one task may report.
pub(crate) const MAX_GAUGES: usize = 64;

/// `[a-z][a-z0-9_]*`, at most 64 bytes: usable as a Prometheus metric name suffix as it is.
fn is_gauge_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|first: char| first.is_ascii_lowercase())
        && name.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_keep_the_latest_value_of_valid_names_only() {
        let metrics = TaskMetrics::default();
        metrics.set_gauge("snapshot_rows", 1);
        metrics.set_gauge("snapshot_rows", 5);
        metrics.set_gauge("Bad-Name", 1);
        metrics.set_gauge("", 1);
        assert_eq!(metrics.gauges(), BTreeMap::from([("snapshot_rows".to_owned(), 5)]));
        for index in 0..2 * MAX_GAUGES {
            metrics.set_gauge(&format!("g{index}"), 1);
        }
        assert_eq!(metrics.gauges().len(), MAX_GAUGES);
    }
}
