//! What the herder answers: connector snapshots, infos and offsets.

use std::collections::BTreeMap;

use weir_connector_sdk::Kind;

use crate::connector_store::TargetState;
use crate::manifest::ConnectorDefinition;
use crate::task::{State, TaskStatus};

/// A snapshot of one connector, for status reports and progress lines.
#[derive(Debug, Clone)]
pub struct ConnectorSnapshot {
    pub name: String,
    pub class: String,
    pub kind: Kind,
    /// The connector's own state: RUNNING, PAUSED, STOPPED or FAILED.
    pub state: State,
    pub target: TargetState,
    /// Why the connector FAILED (its tasks could not be planned or a reference not resolved).
    pub trace: Option<String>,
    pub worker_id: String,
    pub tasks: Vec<TaskSnapshot>,
}

#[derive(Debug, Clone)]
pub struct TaskSnapshot {
    pub status: TaskStatus,
    pub records: u64,
    pub bytes: u64,
    pub batches: u64,
    /// Records that failed (tolerated or not).
    pub errors: u64,
    /// Retries of retriable failures so far.
    pub retries: u64,
    /// Wall-clock ms of the last offset commit (0: none yet).
    pub last_commit_ms: i64,
    /// The component's own gauges (`log.gauge`), e.g. a CDC source's snapshot progress.
    pub gauges: BTreeMap<String, i64>,
}

/// A connector's definition and what the REST API shows of it.
#[derive(Debug, Clone)]
pub struct ConnectorInfo {
    /// As stored: config provider references unresolved.
    pub definition: ConnectorDefinition,
    pub kind: Kind,
    pub target: TargetState,
    /// Task ids (none when STOPPED).
    pub tasks: Vec<u32>,
}

/// One connector's offsets, in Kafka Connect's vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectorOffsets {
    /// Source partitions and positions (JSON by convention; bytes that are not JSON are shown
    /// as a string).
    Source(Vec<(serde_json::Value, serde_json::Value)>),
    /// The sink's consumer group offsets: (topic, partition, next offset).
    Sink(Vec<(String, u32, i64)>),
}
