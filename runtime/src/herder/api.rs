//! The [`Herder`] trait: everything the REST API (and the CLI's progress lines and `/metrics`)
//! asks of the worker.

use std::collections::BTreeSet;
use std::sync::Arc;

use weir_connector_sdk::FieldError;

use super::{ConnectorInfo, ConnectorOffsets, ConnectorSnapshot, HerderError};
use crate::connector_store::TargetState;
use crate::manifest::ConnectorDefinition;
use crate::plugin::{Plugin, PluginRegistry};

/// Connector lifecycle, validation, offsets admin and status.
///
/// Reads answer from memory and never wait for a change in progress: a connector being
/// replaced, paused or restarted stays readable throughout. Changes are serialized: each sees
/// the one before it finished.
#[async_trait::async_trait]
pub trait Herder: Send + Sync + std::fmt::Debug {
    /// This worker's id (as shown in statuses).
    fn worker_id(&self) -> &str;

    /// The connector plugins this worker can run.
    fn plugins(&self) -> &PluginRegistry;

    /// Connector names, sorted.
    fn connectors(&self) -> Vec<String>;

    /// A connector's definition (references unresolved), kind, target state and task ids.
    fn info(&self, name: &str) -> Option<ConnectorInfo>;

    /// The status of one connector.
    fn status(&self, name: &str) -> Option<ConnectorSnapshot>;

    /// The status of every connector.
    fn statuses(&self) -> Vec<ConnectorSnapshot>;

    /// The topics a connector has used (Kafka Connect's active topics).
    ///
    /// # Errors
    /// When no such connector exists.
    fn active_topics(&self, name: &str) -> Result<BTreeSet<String>, HerderError>;

    /// Check a definition: the plugin exists, the config (references resolved) satisfies its
    /// JSON Schema and the connector's own `validate`. Errors name the field
    /// (`connector.class`, `config.<key>`) and never quote a resolved secret.
    ///
    /// # Errors
    /// Every problem found, each naming its field.
    async fn validate(&self, definition: &ConnectorDefinition) -> Result<Arc<Plugin>, Vec<FieldError>>;

    /// Validate and start a connector (RUNNING).
    ///
    /// # Errors
    /// When it exists already or is invalid.
    async fn create(&self, definition: ConnectorDefinition) -> Result<(), HerderError>;

    /// Create a connector or replace its definition (Kafka Connect's `PUT .../config`). A new
    /// connector starts in `initial` (RUNNING when `None`); an existing one keeps its target
    /// state, and its tasks restart with the new config (nothing happens if it is unchanged).
    /// Returns whether the connector was created.
    ///
    /// # Errors
    /// When the definition is invalid or cannot be stored.
    async fn put(&self, definition: ConnectorDefinition, initial: Option<TargetState>) -> Result<bool, HerderError>;

    /// Stop a connector's tasks (each finishes its batch, flushes, commits and closes) and
    /// forget it: its config, target state and statuses are deleted; its offsets are kept.
    ///
    /// # Errors
    /// When no such connector exists, or the deletion cannot be stored.
    async fn delete(&self, name: &str) -> Result<(), HerderError>;

    /// Change a connector's target state: RUNNING (resume), PAUSED (its tasks stop and wait)
    /// or STOPPED (its tasks are shut down; offsets may then be changed).
    ///
    /// # Errors
    /// When no such connector exists, or the change cannot be stored.
    async fn set_target(&self, name: &str, target: TargetState) -> Result<(), HerderError>;

    /// Restart a connector (Kafka Connect's `POST .../restart`): with `include_tasks`, its
    /// tasks (only the FAILED ones with `only_failed`) are stopped and started again.
    ///
    /// # Errors
    /// When no such connector exists.
    async fn restart(&self, name: &str, include_tasks: bool, only_failed: bool) -> Result<(), HerderError>;

    /// Restart one task (Kafka Connect's `POST .../tasks/{id}/restart`).
    ///
    /// # Errors
    /// When the connector or the task does not exist.
    async fn restart_task(&self, name: &str, task: u32) -> Result<(), HerderError>;

    /// A connector's committed offsets.
    ///
    /// # Errors
    /// When no such connector exists or the log cannot be read.
    async fn offsets(&self, name: &str) -> Result<ConnectorOffsets, HerderError>;

    /// Alter a STOPPED connector's offsets. For a source, `(partition, position)` sets a
    /// position and a null position removes it; for a sink, an offset of -1 removes.
    ///
    /// # Errors
    /// When the connector does not exist, is not STOPPED, or the offsets do not fit its kind.
    async fn alter_offsets(&self, name: &str, offsets: ConnectorOffsets) -> Result<(), HerderError>;

    /// Remove every offset of a STOPPED connector.
    ///
    /// # Errors
    /// When the connector does not exist or is not STOPPED.
    async fn reset_offsets(&self, name: &str) -> Result<(), HerderError>;

    /// Forget a connector's active topics.
    ///
    /// # Errors
    /// When no such connector exists or the change cannot be stored.
    async fn reset_active_topics(&self, name: &str) -> Result<(), HerderError>;

    /// The consumer lag of a sink connector per (topic, partition): end offset − committed.
    async fn sink_lag(&self, name: &str) -> Vec<(String, u32, i64)>;

    /// Queue a signal (Debezium's `{"id", "type", "data"}`, as JSON) for a source connector's
    /// tasks, which read the queue in order from the connector's `state` (`signals.<n>`);
    /// returns the signal's sequence number. Connectors that take signals (postgres-cdc) act on
    /// it; others never read it.
    ///
    /// # Errors
    /// When no such connector exists, it is a sink, or the state cannot be written.
    async fn signal(&self, name: &str, signal: &serde_json::Value) -> Result<u64, HerderError>;
}
