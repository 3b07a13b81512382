//! [`LogError`]: why a call through the log seam failed, and whether trying again can help.

/// Why a call to the log failed.
///
/// Each implementation of [`EventLog`](super::EventLog) keeps its own errors as the `source` of
/// a variant, so [`LogError::is_retriable`] answers from the error's type, never from its text.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The embedded broker refused or failed the call.
    #[error(transparent)]
    Embedded(#[from] weir_broker::LogError),
    /// The Kafka cluster refused or failed the call.
    #[error(transparent)]
    Kafka(#[from] super::KafkaError),
    /// The blocking-pool thread running the call panicked or was shut down.
    #[error("the log call on the blocking pool did not finish")]
    Blocking {
        #[source]
        source: tokio::task::JoinError,
    },
    /// A write carried a generation older than the current one: a newer assignment owns it.
    #[error("write fenced: generation {generation} is older than the current {current}")]
    Fenced { generation: u64, current: u64 },
}

impl LogError {
    /// Whether the same call may succeed if made again (a full disk, a lock still held, an I/O
    /// hiccup). Unknown topics, bad configs and fenced writes are not.
    pub fn is_retriable(&self) -> bool {
        match self {
            LogError::Embedded(error) => error.is_retriable(),
            LogError::Kafka(error) => error.is_retriable(),
            LogError::Blocking { .. } | LogError::Fenced { .. } => false,
        }
    }
}
