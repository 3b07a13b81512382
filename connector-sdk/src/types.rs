//! The values that cross the boundary, mirroring the WIT `types` interface.

use std::fmt;
use std::io;

/// What went wrong in a connector call. The runtime decides from the variant alone what to do,
/// so choose it in code, per error kind, never from a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorError {
    /// Transient (a timeout, a connection reset, a lock conflict): the runtime retries the same
    /// call with backoff, within the connector's retry budget.
    Retriable(String),
    /// Permanent: the task is FAILED with this message.
    Fatal(String),
    /// The configuration cannot work; the message names the field.
    InvalidConfig(String),
}

impl ConnectorError {
    /// Whether the runtime should retry the call that returned this error.
    pub fn is_retriable(&self) -> bool {
        matches!(self, ConnectorError::Retriable(_))
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            ConnectorError::Retriable(message)
            | ConnectorError::Fatal(message)
            | ConnectorError::InvalidConfig(message) => message,
        }
    }

    /// A [`ConnectorError::Retriable`] from anything printable.
    pub fn retriable(message: impl fmt::Display) -> Self {
        ConnectorError::Retriable(message.to_string())
    }

    /// A [`ConnectorError::Fatal`] from anything printable.
    pub fn fatal(message: impl fmt::Display) -> Self {
        ConnectorError::Fatal(message.to_string())
    }

    /// A [`ConnectorError::InvalidConfig`] naming `field`.
    pub fn invalid_config(field: &str, message: impl fmt::Display) -> Self {
        ConnectorError::InvalidConfig(format!("{field}: {message}"))
    }

    /// An I/O error while doing `what` (e.g. "reading /data/in.txt"), retriable or not by its
    /// kind: a missing file, a refused permission or bad data will not heal by retrying; an
    /// interrupted or timed-out operation, a full disk or a reset connection may.
    pub fn io(what: &str, error: &io::Error) -> Self {
        let message = format!("{what}: {error}");
        match error.kind() {
            io::ErrorKind::NotFound
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::InvalidInput
            | io::ErrorKind::InvalidData
            | io::ErrorKind::Unsupported
            | io::ErrorKind::IsADirectory
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::ReadOnlyFilesystem
            | io::ErrorKind::InvalidFilename
            | io::ErrorKind::AlreadyExists => ConnectorError::Fatal(message),
            _ => ConnectorError::Retriable(message),
        }
    }
}

impl fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectorError::Retriable(message) => write!(f, "retriable error: {message}"),
            ConnectorError::Fatal(message) => write!(f, "fatal error: {message}"),
            ConnectorError::InvalidConfig(message) => write!(f, "invalid config: {message}"),
        }
    }
}

impl std::error::Error for ConnectorError {}

/// One problem with a config, naming the field: its dotted key (`max.interval`), with `.` between
/// nested keys and `[i]` for list items. An empty `field` means the config as a whole (e.g. it is
/// not a JSON object).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.field, self.message) }
    }
}

impl std::error::Error for FieldError {}

/// Whether a connector reads from an outside system (source) or writes to one (sink).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Source,
    Sink,
}

/// What a connector plugin is: the WIT `connector-spec`.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The plugin name used in manifests (`connector.class`), e.g. `datagen`.
    pub name: String,
    /// The plugin's version (semver).
    pub version: String,
    pub kind: Kind,
    /// One line on what the connector does.
    pub description: String,
    /// JSON Schema (draft 2020-12) of the config, as JSON text. Fields marked `writeOnly` (or with
    /// `"format": "password"`) are secrets the runtime never shows back.
    pub config_schema: String,
}

/// A source partition (what a task reads from: a table, a file) and a position in it. Both opaque
/// bytes to the runtime, JSON by convention.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceOffset {
    pub partition: Vec<u8>,
    pub position: Vec<u8>,
}

/// A record of a `put` batch that the sink could not write, by its index in the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    pub index: u32,
    pub error: ConnectorError,
    /// Extra headers (name, value) for the record's dead-letter copy, e.g.
    /// `__connect.errors.http.status`.
    pub context: Vec<(String, String)>,
}

impl RecordFailure {
    pub fn new(index: u32, error: ConnectorError) -> Self {
        Self { index, error, context: Vec::new() }
    }

    /// Add a header to the record's dead-letter copy.
    #[must_use]
    pub fn with_context(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.context.push((name.into(), value.into()));
        self
    }
}

/// A record the sink found it could not write after the `put` that handed it over (a batch it
/// buffered across puts and sent later), named by where it is in the log: returned from
/// [`crate::Sink::take_failures`], the runtime reads it back from the log for the dead-letter
/// topic before it commits the offsets that cover it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFailure {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub error: ConnectorError,
    /// Extra headers (name, value) for the record's dead-letter copy.
    pub context: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_retriable_is_retriable() {
        assert!(ConnectorError::retriable("x").is_retriable());
        assert!(!ConnectorError::fatal("x").is_retriable());
        assert!(!ConnectorError::invalid_config("topic", "x").is_retriable());
    }

    #[test]
    fn io_errors_are_classified_by_kind() {
        let missing = io::Error::new(io::ErrorKind::NotFound, "gone");
        assert!(matches!(ConnectorError::io("opening f", &missing), ConnectorError::Fatal(_)));
        let interrupted = io::Error::new(io::ErrorKind::Interrupted, "again");
        let error = ConnectorError::io("reading f", &interrupted);
        assert!(error.is_retriable());
        assert_eq!(error.message(), "reading f: again");
    }
}
