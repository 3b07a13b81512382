//! [`HerderError`]: why the herder could not do what it was asked, one variant per cause.

use weir_connector_sdk::{FieldError, Kind};

use crate::config_provider::ProviderError;
use crate::host::{EngineError, TaskError};
use crate::log::LogError;
use crate::plugin::PluginError;

/// Why the herder could not do something.
#[derive(Debug, thiserror::Error)]
pub enum HerderError {
    #[error("connector {name} not found")]
    NotFound { name: String },
    #[error("connector {name} has no task {task}")]
    TaskNotFound { name: String, task: u32 },
    #[error("connector {name} already exists")]
    AlreadyExists { name: String },
    /// The definition is invalid; each error names a field (`config.<key>` for connector config).
    #[error("invalid connector {name}: {}", format_field_errors(errors))]
    InvalidConfig { name: String, errors: Vec<FieldError> },
    /// Offsets change only while the connector is STOPPED (Kafka Connect's rule and message).
    #[error(
        "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"
    )]
    NotStopped { name: String },
    /// Offsets of the other kind of connector were given.
    #[error("{}", offsets_shape(name, *kind))]
    OffsetsKindMismatch { name: String, kind: Kind },
    /// Signals go to source connectors' tasks.
    #[error("connector {name} is a sink: signals are for source connectors")]
    NotASource { name: String },
    /// A config provider reference (`${env:...}`, `${file:...}`) no longer resolves.
    #[error("connector {name}: {source}")]
    Unresolved {
        name: String,
        #[source]
        source: ProviderError,
    },
    /// The connector's plugin is not loaded (any more).
    #[error("connector {name}: unknown plugin `{class}`")]
    UnknownPlugin { name: String, class: String },
    /// The connector's `task-configs` failed; the message is scrubbed of resolved secrets.
    #[error("connector {name}: {message}")]
    TaskPlanning {
        name: String,
        message: String,
        #[source]
        source: TaskError,
    },
    /// The log failed while `operation`.
    #[error("the log failed while {operation}: {source}")]
    Log {
        operation: &'static str,
        #[source]
        source: LogError,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

impl HerderError {
    pub(crate) fn log(operation: &'static str) -> impl FnOnce(LogError) -> HerderError {
        move |source| HerderError::Log { operation, source }
    }

    /// Whether this is the worker's own failure (a REST 500) rather than the request's.
    pub fn is_internal(&self) -> bool {
        matches!(self, HerderError::Log { .. } | HerderError::Engine(_) | HerderError::Plugin(_))
    }
}

fn offsets_shape(name: &str, kind: Kind) -> String {
    match kind {
        Kind::Source => format!(
            "connector {name} is a source: its offsets are {{\"partition\": {{...}}, \"offset\": {{...}}}} objects"
        ),
        Kind::Sink => format!(
            "connector {name} is a sink: its partitions are {{\"kafka_topic\": ..., \"kafka_partition\": ...}} and its offsets {{\"kafka_offset\": ...}}"
        ),
    }
}

pub(crate) fn format_field_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(
            |error| {
                if error.field.is_empty() {
                    error.message.clone()
                } else {
                    format!("{}: {}", error.field, error.message)
                }
            },
        )
        .collect::<Vec<_>>()
        .join("; ")
}
