//! [`TaskError`]: why a task call did not succeed, with its class kept in the type.
//!
//! Two levels, as wasmtime has them: the component's own error (the WIT `result`, the instance
//! lives on) and a trap (the instance is dead). A trap is classified from wasmtime's types and
//! from what the host itself recorded while the call ran (the deadline callback fired, the memory
//! limiter refused a grow), never from an error's text.

use std::sync::Arc;

use wasmtime::Store;
use weir_connector_sdk::ConnectorError;

use super::bindings::types;
use super::state::TaskState;
use crate::log::LogError;

/// Why a trap killed an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// The call overran the task's `call.timeout.ms` and epoch interruption stopped it.
    Deadline,
    /// The instance tried to grow its memory (or a table) past the task's `memory.bytes`.
    MemoryLimit,
    /// A WebAssembly trap: `unreachable` (how a Rust guest panics), an out-of-bounds access, ...
    Wasm(wasmtime::Trap),
    /// A host import failed the call with an error of its own.
    Host,
}

/// Why a task call did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TaskError {
    /// The component returned an error (the instance is still usable).
    #[error("{0}")]
    Connector(ConnectorError),
    /// The instance trapped: it is dead.
    #[error("{reason}\n{trace}")]
    Trap { kind: TrapKind, reason: String, trace: String },
    /// A call to the log failed; retriable exactly when the log says so.
    #[error("{operation} failed: {source}")]
    Log {
        operation: &'static str,
        #[source]
        source: Arc<LogError>,
    },
    /// A directory the connector was granted cannot be created or opened.
    #[error("cannot {action} granted directory {path}: {source}")]
    Grant {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A plugin asked to run as the other kind of connector.
    #[error("plugin {plugin} is not a {expected} connector")]
    WrongKind { plugin: String, expected: &'static str },
    /// The component's `poll` returned bytes that are not a well-formed batch.
    #[error("poll returned a malformed batch: {reason}")]
    MalformedBatch { reason: String },
    /// A task of the runtime's own (the batch being made durable) panicked or was aborted.
    #[error("the {what} task of the runtime did not finish: {source}")]
    Panicked {
        what: &'static str,
        #[source]
        source: Arc<tokio::task::JoinError>,
    },
}

impl TaskError {
    /// Whether the same call may succeed if retried (on the same instance, for a component).
    pub fn is_retriable(&self) -> bool {
        match self {
            TaskError::Connector(error) => matches!(error, ConnectorError::Retriable(_)),
            TaskError::Log { source, .. } => source.is_retriable(),
            TaskError::Trap { .. }
            | TaskError::Grant { .. }
            | TaskError::WrongKind { .. }
            | TaskError::MalformedBatch { .. }
            | TaskError::Panicked { .. } => false,
        }
    }

    /// A log failure during `operation`.
    pub(crate) fn log(operation: &'static str) -> impl FnOnce(LogError) -> TaskError {
        move |source| TaskError::Log { operation, source: Arc::new(source) }
    }

    /// What kind of trap this was, if it was one.
    pub fn trap_kind(&self) -> Option<TrapKind> {
        match self {
            TaskError::Trap { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

/// Turn a wasmtime error (a trap or a host failure during the call) into a readable report.
pub(crate) fn trap_report(store: &Store<TaskState>, call: &str, error: &wasmtime::Error) -> TaskError {
    let state = store.data();
    let kind = if state.deadline_hit {
        TrapKind::Deadline
    } else if state.memory_limit_hit() {
        TrapKind::MemoryLimit
    } else {
        match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::AllocationTooLarge) => TrapKind::MemoryLimit,
            Some(trap) => TrapKind::Wasm(*trap),
            None => TrapKind::Host,
        }
    };
    let reason = match kind {
        TrapKind::Deadline => {
            format!("{call} overran its deadline of {} ms and was stopped", state.call_timeout.as_millis())
        }
        TrapKind::MemoryLimit => format!("{call} exceeded the task's memory limit"),
        TrapKind::Wasm(_) | TrapKind::Host => format!("{call} trapped: {error}"),
    };
    let text = format!("{error:?}");
    let stderr = String::from_utf8_lossy(&state.stderr.contents()).into_owned();
    let trace = if stderr.trim().is_empty() { text } else { format!("{text}\nguest stderr:\n{stderr}") };
    TaskError::Trap { kind, reason, trace }
}

/// Map both error levels of an export call: a trap (the outer error) and the component's own
/// error (the WIT `result`).
pub(crate) fn call_result<T>(
    result: wasmtime::Result<Result<T, types::ConnectorError>>,
    store: &Store<TaskState>,
    call: &str,
) -> Result<T, TaskError> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(TaskError::Connector(from_wit_error(error))),
        Err(error) => Err(trap_report(store, call, &error)),
    }
}

/// Map a failed instantiation (a trap in the component's start-up) to a report.
pub(crate) fn instantiated<T>(result: wasmtime::Result<T>, store: &Store<TaskState>) -> Result<T, TaskError> {
    result.map_err(|error| trap_report(store, "instantiate", &error))
}

pub(crate) fn from_wit_error(error: types::ConnectorError) -> ConnectorError {
    match error {
        types::ConnectorError::Retriable(message) => ConnectorError::Retriable(message),
        types::ConnectorError::Fatal(message) => ConnectorError::Fatal(message),
        types::ConnectorError::InvalidConfig(message) => ConnectorError::InvalidConfig(message),
    }
}
