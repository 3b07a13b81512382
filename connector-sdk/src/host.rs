//! What the host offers a task: logging, the committed source offsets and a small key-value
//! state (the WIT imports `log`, `offsets` and `state`).

use std::fmt;

use crate::types::SourceOffset;

/// Severity of a log line, as the WIT `log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the host offers a task. In a component every call is a WIT import; natively (connectors
/// compiled into the runtime, tests) the caller passes its own implementation, such as
/// [`crate::native::MemoryHost`].
pub trait Host: Send {
    /// One line into the worker's log, tagged with the connector and task. Log per batch, not
    /// per record, above `Trace`.
    fn log(&self, level: Level, message: &str);
    /// Every committed (partition, position) of this connector, the latest per partition.
    fn committed_offsets(&self) -> Vec<SourceOffset>;
    /// A value of the connector's private key-value state, kept across restarts.
    fn state_get(&self, key: &str) -> Option<Vec<u8>>;
    fn state_set(&self, key: &str, value: &[u8]);
    fn state_delete(&self, key: &str);
    /// Set the task's gauge `name` (e.g. `snapshot_rows`) to `value`, shown in the task's status
    /// and metrics. A host that shows no gauges ignores it.
    fn gauge(&self, name: &str, value: i64) {
        let _ = (name, value);
    }
}

/// Everything a task is opened with besides its config: its id, the task config that
/// [`crate::Connector::task_configs`] made for it, and the host.
pub struct TaskContext {
    /// The task's index, `0..` the number of task configs.
    pub task_id: u32,
    /// This task's entry of [`crate::Connector::task_configs`] (`null` by default).
    pub task_config: serde_json::Value,
    host: Box<dyn Host>,
}

impl fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskContext")
            .field("task_id", &self.task_id)
            .field("task_config", &self.task_config)
            .finish_non_exhaustive()
    }
}

impl TaskContext {
    pub fn new(task_id: u32, task_config: serde_json::Value, host: Box<dyn Host>) -> Self {
        Self { task_id, task_config, host }
    }

    pub fn host(&self) -> &dyn Host {
        self.host.as_ref()
    }

    /// Every committed (partition, position) of this connector. A source calls this in `open`
    /// to resume after the last durable position.
    pub fn committed_offsets(&self) -> Vec<SourceOffset> {
        self.host.committed_offsets()
    }

    /// The committed position of one source partition, if any. `partition` is compared as JSON
    /// when both sides parse as JSON (so key order and spacing do not matter), as bytes otherwise.
    pub fn committed_position(&self, partition: &[u8]) -> Option<Vec<u8>> {
        let wanted = serde_json::from_slice::<serde_json::Value>(partition).ok();
        self.committed_offsets()
            .into_iter()
            .find(|offset| match (&wanted, serde_json::from_slice::<serde_json::Value>(&offset.partition)) {
                (Some(wanted), Ok(found)) => *wanted == found,
                _ => offset.partition == partition,
            })
            .map(|offset| offset.position)
    }

    pub fn log(&self, level: Level, message: &str) {
        self.host.log(level, message);
    }

    pub fn trace(&self, message: &str) {
        self.host.log(Level::Trace, message);
    }

    pub fn debug(&self, message: &str) {
        self.host.log(Level::Debug, message);
    }

    pub fn info(&self, message: &str) {
        self.host.log(Level::Info, message);
    }

    pub fn warn(&self, message: &str) {
        self.host.log(Level::Warn, message);
    }

    pub fn error(&self, message: &str) {
        self.host.log(Level::Error, message);
    }

    /// Set the task's gauge `name` (lowercase words joined by `_`, unit last, e.g.
    /// `slot_retained_wal_bytes`) to `value`: the runtime shows the latest value in the task's
    /// status and as the Prometheus gauge `weir_connector_<name>`. Per batch at most.
    pub fn gauge(&self, name: &str, value: i64) {
        self.host.gauge(name, value);
    }
}
