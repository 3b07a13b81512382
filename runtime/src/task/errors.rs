//! What happens to a record that fails (Kafka Connect's `errors.*`): with tolerance `none` the
//! task fails naming the record; with `all` the record is logged (if asked), written to the
//! dead-letter topic (if one is set) with `__connect.errors.*` context headers, and skipped.
//!
//! Unlike Kafka Connect, sources get a dead-letter topic too: a record a source produced that
//! cannot be written (e.g. it names a partition its topic does not have) goes there.

use std::sync::Arc;

use weir_connector_sdk::ConnectorError;

use crate::host::TaskError;
use crate::keyed_store::now_ms;
use crate::log::{Bytes, EventLog, Generation, PartitionBatch, Record, TopicConfig};
use crate::manifest::{ConnectorDefinition, Tolerance};

/// Bytes of a key or value shown in an error log line.
const LOGGED_BYTES: usize = 200;

/// A connector's error settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct ErrorHandling {
    pub(crate) tolerance: Tolerance,
    pub(crate) dead_letter_topic: Option<String>,
    pub(crate) context_headers: bool,
    pub(crate) log_errors: bool,
    pub(crate) log_messages: bool,
}

impl ErrorHandling {
    pub(crate) fn of(definition: &ConnectorDefinition) -> Self {
        Self {
            tolerance: definition.tolerance,
            dead_letter_topic: definition.dead_letter_topic.clone(),
            context_headers: definition.dead_letter_context_headers,
            log_errors: definition.log_errors,
            log_messages: definition.log_include_messages,
        }
    }
}

/// Where in the pipeline a record failed (Kafka Connect's stage names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The sink's `put` reported the record as failed.
    TaskPut,
    /// A source record could not be written to the log.
    KafkaProduce,
    /// A transform (`transforms`) could not handle the record.
    Transformation,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::TaskPut => "TASK_PUT",
            Stage::KafkaProduce => "KAFKA_PRODUCE",
            Stage::Transformation => "TRANSFORMATION",
        }
    }
}

/// One failed record.
#[derive(Debug, Clone)]
pub(crate) struct FailedRecord {
    pub(crate) topic: String,
    pub(crate) partition: Option<i32>,
    pub(crate) offset: Option<i64>,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<(String, Option<Bytes>)>,
    pub(crate) error: ConnectorError,
    /// Where in the pipeline it failed.
    pub(crate) stage: Stage,
    /// Extra context headers (e.g. a source record's source partition and position, or what a
    /// sink reported with the failure, such as an HTTP status).
    pub(crate) context: Vec<(String, Vec<u8>)>,
}

impl FailedRecord {
    fn place(&self) -> String {
        let mut place = format!("topic {}", self.topic);
        if let Some(partition) = self.partition {
            place.push_str(&format!(" partition {partition}"));
        }
        if let Some(offset) = self.offset {
            place.push_str(&format!(" offset {offset}"));
        }
        place
    }
}

fn error_class(error: &ConnectorError) -> &'static str {
    match error {
        ConnectorError::Retriable(_) => "weir.ConnectorError.Retriable",
        ConnectorError::Fatal(_) => "weir.ConnectorError.Fatal",
        ConnectorError::InvalidConfig(_) => "weir.ConnectorError.InvalidConfig",
    }
}

fn shown(bytes: Option<&Bytes>) -> String {
    match bytes {
        None => "null".into(),
        Some(bytes) => {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(LOGGED_BYTES)]);
            if bytes.len() > LOGGED_BYTES { format!("{text}…") } else { text.into_owned() }
        }
    }
}

/// Apply the error settings to the failures of one batch.
///
/// # Errors
/// With tolerance `none`, a fatal error naming the first failed record; with `all`, only a
/// failure to write the dead-letter topic.
pub(crate) async fn handle_failures(
    handling: &ErrorHandling,
    log: &dyn EventLog,
    connector: &str,
    task: u32,
    failures: Vec<FailedRecord>,
    generation: Generation,
) -> Result<(), TaskError> {
    let Some(first) = failures.first() else { return Ok(()) };
    let stage = first.stage;
    if handling.tolerance == Tolerance::None {
        return Err(TaskError::Connector(ConnectorError::Fatal(format!(
            "{} record(s) failed in stage {}; first: {}: {} (set errors.tolerance: all to skip failed records)",
            failures.len(),
            stage.as_str(),
            first.place(),
            first.error
        ))));
    }
    if handling.log_errors {
        let record = if handling.log_messages {
            format!(" key={} value={}", shown(first.key.as_ref()), shown(first.value.as_ref()))
        } else {
            String::new()
        };
        tracing::warn!(
            connector,
            task,
            stage = stage.as_str(),
            failed = failures.len(),
            "records failed and were skipped; first: {}: {}{record}",
            first.place(),
            first.error
        );
    }
    let Some(topic) = &handling.dead_letter_topic else { return Ok(()) };
    log.ensure_topic(topic, TopicConfig { partitions: 1, ..TopicConfig::default() })
        .await
        .map_err(TaskError::log("creating the dead-letter topic"))?;
    let now = now_ms();
    let records: Vec<Record> = failures
        .into_iter()
        .map(|failure| {
            let mut headers = failure.headers.clone();
            if handling.context_headers {
                let mut context = |name: &str, value: String| {
                    headers.push((name.to_owned(), Some(Bytes::from(value))));
                };
                context("__connect.errors.topic", failure.topic.clone());
                if let Some(partition) = failure.partition {
                    context("__connect.errors.partition", partition.to_string());
                }
                if let Some(offset) = failure.offset {
                    context("__connect.errors.offset", offset.to_string());
                }
                context("__connect.errors.connector.name", connector.to_owned());
                context("__connect.errors.task.id", task.to_string());
                context("__connect.errors.stage", failure.stage.as_str().to_owned());
                context("__connect.errors.class.name", error_class(&failure.error).to_owned());
                context("__connect.errors.exception.message", failure.error.to_string());
                for (name, value) in failure.context {
                    headers.push((name, Some(Bytes::from(value))));
                }
            }
            Record { key: failure.key, value: failure.value, headers, timestamp: now }
        })
        .collect();
    let batch = PartitionBatch { topic: topic.clone(), partition: 0, records };
    log.append(Arc::from([batch]), generation).await.map_err(TaskError::log("dead-letter append"))?;
    Ok(())
}
