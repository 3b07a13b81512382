//! Running connectors compiled natively into the host (benchmarks, tests): the same
//! [`DynConnector`] / [`DynSourceTask`] / [`DynSinkTask`] objects the wasm exports wrap, without
//! the WASM boundary.
//!
//! ```
//! use weir_connector_sdk::batch::{SourceBatchReader, SourceBatchWriter, SourceRecordRef};
//! use weir_connector_sdk::native::{self, MemoryHost};
//! use weir_connector_sdk::{Connector, ConnectorError, Source, TaskContext};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     /// Where the records go.
//!     topic: String,
//! }
//!
//! struct Hello { topic: String }
//!
//! impl Connector for Hello {
//!     type Config = Config;
//!     const NAME: &'static str = "hello";
//!     const VERSION: &'static str = "0.1.0";
//!     const DESCRIPTION: &'static str = "Says hello once per poll.";
//! }
//!
//! impl Source for Hello {
//!     fn open(config: Config, _context: TaskContext) -> Result<Self, ConnectorError> {
//!         Ok(Hello { topic: config.topic })
//!     }
//!     fn poll(&mut self, _max: u32, batch: &mut SourceBatchWriter) -> Result<(), ConnectorError> {
//!         batch.push(&SourceRecordRef {
//!             topic: &self.topic, partition: -1, timestamp: None, key: None,
//!             value: Some(b"hello"), headers: &[], source_partition: b"{}", source_position: b"{}",
//!         });
//!         Ok(())
//!     }
//! }
//!
//! let connector = native::source_connector::<Hello>();
//! assert_eq!(connector.spec().name, "hello");
//! let tasks = connector.task_configs(r#"{"topic":"greetings"}"#, 4).unwrap();
//! let mut task = native::open_source::<Hello>(
//!     r#"{"topic":"greetings"}"#, &tasks[0], 0, Box::new(MemoryHost::new()),
//! ).unwrap();
//! let batch = task.poll(10).unwrap();
//! let record = SourceBatchReader::new(&batch).unwrap().next().unwrap().unwrap();
//! assert_eq!(record.value, Some(&b"hello"[..]));
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::connector::{Sink, Source};
use crate::glue::{ConnectorGlue, DynConnector, DynSinkTask, DynSourceTask, SinkTaskGlue, SourceTaskGlue};
use crate::host::{Host, Level};
use crate::types::{ConnectorError, Kind, SourceOffset};

/// The `connector` object of source connector `S`.
pub fn source_connector<S: Source + 'static>() -> Box<dyn DynConnector> {
    Box::new(ConnectorGlue::<S>::new(Kind::Source))
}

/// The `connector` object of sink connector `S`.
pub fn sink_connector<S: Sink + 'static>() -> Box<dyn DynConnector> {
    Box::new(ConnectorGlue::<S>::new(Kind::Sink))
}

/// Open a task of source connector `S`, as the WIT `source-task.open`.
///
/// # Errors
/// [`ConnectorError::InvalidConfig`] if a config does not parse, or the connector's error.
pub fn open_source<S: Source + Send + 'static>(
    config: &str,
    task_config: &str,
    task_id: u32,
    host: Box<dyn Host>,
) -> Result<Box<dyn DynSourceTask>, ConnectorError> {
    Ok(Box::new(SourceTaskGlue::<S>::open(config, task_config, task_id, host)?))
}

/// Open a task of sink connector `S`, as the WIT `sink-task.open`.
///
/// # Errors
/// [`ConnectorError::InvalidConfig`] if a config does not parse, or the connector's error.
pub fn open_sink<S: Sink + Send + 'static>(
    config: &str,
    task_config: &str,
    task_id: u32,
    host: Box<dyn Host>,
) -> Result<Box<dyn DynSinkTask>, ConnectorError> {
    Ok(Box::new(SinkTaskGlue::<S>::open(config, task_config, task_id, host)?))
}

/// A [`Host`] that keeps everything in memory: committed offsets set by the caller, the state,
/// and the log lines. Clones share one store, so a test keeps a clone to look inside after
/// handing one to a task.
#[derive(Debug, Clone, Default)]
pub struct MemoryHost {
    store: Arc<Mutex<MemoryStore>>,
}

#[derive(Debug, Default)]
struct MemoryStore {
    committed: Vec<SourceOffset>,
    state: BTreeMap<String, Vec<u8>>,
    logs: Vec<(Level, String)>,
}

impl MemoryHost {
    pub fn new() -> Self {
        Self::default()
    }

    /// A host whose `committed_offsets` answers `committed`.
    pub fn with_committed(committed: Vec<SourceOffset>) -> Self {
        let host = Self::new();
        host.set_committed(committed);
        host
    }

    /// Replace the committed offsets (one entry per partition, as the runtime keeps them).
    pub fn set_committed(&self, committed: Vec<SourceOffset>) {
        self.store().committed = committed;
    }

    /// Record positions as committed, as the runtime does after an append: each replaces the
    /// previous position of its partition.
    pub fn commit(&self, positions: &[SourceOffset]) {
        let mut store = self.store();
        for position in positions {
            match store.committed.iter_mut().find(|offset| offset.partition == position.partition) {
                Some(offset) => offset.position.clone_from(&position.position),
                None => store.committed.push(position.clone()),
            }
        }
    }

    /// The log lines so far.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.store().logs.clone()
    }

    /// A state value.
    pub fn state(&self, key: &str) -> Option<Vec<u8>> {
        self.store().state.get(key).cloned()
    }

    fn store(&self) -> MutexGuard<'_, MemoryStore> {
        // A panic while holding the lock leaves plain data behind, still usable.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Host for MemoryHost {
    fn log(&self, level: Level, message: &str) {
        self.store().logs.push((level, message.to_owned()));
    }

    fn committed_offsets(&self) -> Vec<SourceOffset> {
        self.store().committed.clone()
    }

    fn state_get(&self, key: &str) -> Option<Vec<u8>> {
        self.state(key)
    }

    fn state_set(&self, key: &str, value: &[u8]) {
        self.store().state.insert(key.to_owned(), value.to_vec());
    }

    fn state_delete(&self, key: &str) {
        self.store().state.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(partition: &str, position: &str) -> SourceOffset {
        SourceOffset { partition: partition.into(), position: position.into() }
    }

    #[test]
    fn commit_keeps_the_latest_position_per_partition() {
        let host = MemoryHost::with_committed(vec![offset("a", "1")]);
        host.commit(&[offset("b", "5"), offset("a", "2")]);
        host.commit(&[offset("a", "3")]);
        assert_eq!(host.committed_offsets(), vec![offset("a", "3"), offset("b", "5")]);
    }

    #[test]
    fn clones_share_logs_and_state() {
        let host = MemoryHost::new();
        let boxed: Box<dyn Host> = Box::new(host.clone());
        boxed.log(Level::Warn, "careful");
        boxed.state_set("k", b"v");
        assert_eq!(host.logs(), vec![(Level::Warn, "careful".to_owned())]);
        assert_eq!(boxed.state_get("k"), Some(b"v".to_vec()));
        boxed.state_delete("k");
        assert_eq!(host.state("k"), None);
    }

    #[test]
    fn committed_position_matches_partitions_as_json() {
        let host = MemoryHost::with_committed(vec![offset(r#"{"b":2, "a":1}"#, "p1"), offset("not json", "p2")]);
        let context = crate::TaskContext::new(0, serde_json::Value::Null, Box::new(host));
        assert_eq!(context.committed_position(br#"{"a":1,"b":2}"#), Some(b"p1".to_vec()));
        assert_eq!(context.committed_position(b"not json"), Some(b"p2".to_vec()));
        assert_eq!(context.committed_position(br#"{"a":2}"#), None);
    }
}
