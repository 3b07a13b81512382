//! The traits a connector author implements: [`Connector`] and one of [`Source`] or [`Sink`].

use crate::batch::{SinkRecordRef, SourceBatchWriter};
use crate::host::TaskContext;
use crate::types::{ConnectorError, FieldError, OffsetFailure, RecordFailure, SourceOffset};

/// What a connector plugin is and how its work splits into tasks.
///
/// The config is a struct deriving `serde::Deserialize` and `schemars::JsonSchema`, with
/// `#[serde(deny_unknown_fields)]` and Kafka-Connect-style dotted keys
/// (`#[serde(rename = "max.interval")]`). Its doc comments are the user documentation: they land
/// in the JSON Schema of [`crate::Spec::config_schema`]. Mark a secret (a password, a token) with
/// `#[schemars(extend("writeOnly" = true))]`: the runtime then never shows its value back.
pub trait Connector {
    type Config: serde::de::DeserializeOwned + schemars::JsonSchema;

    /// The plugin name used in manifests (`connector.class`).
    const NAME: &'static str;
    /// The plugin's version (semver); usually `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    /// One line on what the connector does.
    const DESCRIPTION: &'static str;

    /// Checks beyond the schema (which the config has already passed).
    ///
    /// # Errors
    /// One [`FieldError`] per problem, naming the field.
    fn validate(config: &Self::Config) -> Result<(), Vec<FieldError>> {
        let _ = config;
        Ok(())
    }

    /// One JSON value per task, at most `max_tasks` of them (Kafka Connect's `taskConfigs`);
    /// each is handed to one task's `open` as [`TaskContext::task_config`]. Default: one task,
    /// `null`.
    ///
    /// # Errors
    /// When the work cannot be split; usually [`ConnectorError::InvalidConfig`].
    fn task_configs(config: &Self::Config, max_tasks: u32) -> Result<Vec<serde_json::Value>, ConnectorError> {
        let _ = (config, max_tasks);
        Ok(vec![serde_json::Value::Null])
    }

    /// The connector was deleted (its tasks have closed): release what it holds outside weir
    /// (a replication slot, a temporary table), if its config asks for that. Called once per
    /// deletion, never on stop, pause or restart; the host imports are those of a task. The
    /// runtime logs an error and deletes the connector regardless. Default: nothing.
    ///
    /// # Errors
    /// What could not be released.
    fn on_delete(config: &Self::Config) -> Result<(), ConnectorError> {
        let _ = config;
        Ok(())
    }
}

/// A source task: polled by the runtime for records.
///
/// At-least-once: the runtime appends a polled batch to the log and, once that is durable,
/// stores each source partition's last position and calls [`Source::commit`]. After a crash the
/// task is opened again and finds those positions in [`TaskContext::committed_offsets`]; it must
/// resume right after them.
pub trait Source: Connector + Sized {
    /// Open a task. Resume from `context.committed_offsets()`.
    ///
    /// # Errors
    /// [`ConnectorError::Retriable`] if the outside system is unreachable for now.
    fn open(config: Self::Config, context: TaskContext) -> Result<Self, ConnectorError>;

    /// Push up to `max` records into `batch`; push none when nothing is ready. Never block for
    /// long (never sleep): each call has a deadline and the runtime polls again shortly.
    ///
    /// # Errors
    /// A retriable error makes the runtime retry with backoff; a fatal one fails the task.
    fn poll(&mut self, max: u32, batch: &mut SourceBatchWriter) -> Result<(), ConnectorError>;

    /// These positions (the last per source partition) are durable. Release what they cover
    /// upstream (e.g. confirm a replication LSN). Called in order, never ahead of `poll`.
    ///
    /// # Errors
    /// As [`Source::poll`].
    fn commit(&mut self, positions: &[SourceOffset]) -> Result<(), ConnectorError> {
        let _ = positions;
        Ok(())
    }

    /// The task is stopping (shutdown, pause, rebalance). Release resources.
    ///
    /// # Errors
    /// Reported; the task stops regardless.
    fn close(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}

/// A sink task: handed records by the runtime.
///
/// At-least-once: the runtime calls [`Sink::put`], then [`Sink::flush`], and only after `flush`
/// returns `Ok` commits the consumer offsets. Records put since the last successful flush are put
/// again after a crash.
pub trait Sink: Connector + Sized {
    /// Open a task.
    ///
    /// # Errors
    /// [`ConnectorError::Retriable`] if the outside system is unreachable for now.
    fn open(config: Self::Config, context: TaskContext) -> Result<Self, ConnectorError>;

    /// Write or buffer `records`. Return the records that failed, by index (empty: all went
    /// well); the runtime may route those to a dead-letter topic.
    ///
    /// # Errors
    /// Fails the whole batch: retried if retriable, the task fails if fatal.
    fn put(&mut self, records: &[SinkRecordRef<'_>]) -> Result<Vec<RecordFailure>, ConnectorError>;

    /// Make everything put so far durable in the target system.
    ///
    /// # Errors
    /// The runtime does not commit offsets; retriable errors are retried.
    fn flush(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// The records found failed since the last call that [`Sink::put`] did not report (a sink
    /// that buffers across puts learns of a failure only when it sends). Called after each
    /// successful [`Sink::flush`]; the runtime handles them as `put`'s failures (dead-letter
    /// topic, `errors.tolerance`) before it commits the offsets that cover them.
    fn take_failures(&mut self) -> Vec<OffsetFailure> {
        Vec::new()
    }

    /// The task is stopping; the runtime has flushed first. Release resources.
    ///
    /// # Errors
    /// Reported; the task stops regardless.
    fn close(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}
