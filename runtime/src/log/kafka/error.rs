//! [`KafkaError`]: why a call to a Kafka cluster failed, and whether trying again can help.

use kafka_protocol::messages::ApiKey;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a request to the cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// No broker of the bootstrap list (or the cluster) could be reached or spoke sensibly.
    #[error("broker {broker}: {reason}")]
    Connection { broker: String, reason: String },
    #[error("broker {broker}: {source}")]
    Io {
        broker: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{api:?} to {broker} had no answer within the request timeout")]
    Timeout { api: ApiKey, broker: String },
    /// The broker does not speak a version of the API that weir can use.
    #[error("broker {broker} does not support {api:?} in the versions weir speaks (broker: {range:?})")]
    Unsupported { api: ApiKey, broker: String, range: Option<(i16, i16)> },
    #[error("cannot encode {api:?} v{version}")]
    Encode {
        api: ApiKey,
        version: i16,
        #[source]
        source: BoxError,
    },
    #[error("cannot decode the {api:?} v{version} answer")]
    Decode {
        api: ApiKey,
        version: i16,
        #[source]
        source: BoxError,
    },
    #[error("{api:?} request over 2 GiB")]
    RequestTooLarge { api: ApiKey },
    /// The broker answered with an error code.
    #[error("{api:?} failed: {} (error {code}){}", error_name(*code), .message.as_deref().map(|message| format!(": {message}")).unwrap_or_default())]
    Broker { api: ApiKey, code: i16, message: Option<String> },
    /// A topic or partition the cluster does not have.
    #[error("unknown topic or partition {topic}/{partition}")]
    UnknownPartition { topic: String, partition: u32 },
    /// A fetched batch that does not decode.
    #[error("fetched batch of {topic}/{partition} is corrupt: {source}")]
    Corrupt {
        topic: String,
        partition: u32,
        #[source]
        source: weir_broker::BatchError,
    },
    /// A config value weir cannot use (a bad `compression.type`, ...).
    #[error("{key}: {message}")]
    Config { key: String, message: String },
}

impl KafkaError {
    pub(super) fn connection(broker: &str, reason: &str) -> Self {
        KafkaError::Connection { broker: broker.to_owned(), reason: reason.to_owned() }
    }

    pub(super) fn io(broker: &str, source: std::io::Error) -> Self {
        KafkaError::Io { broker: broker.to_owned(), source }
    }

    pub(super) fn broker(api: ApiKey, code: i16, message: Option<String>) -> Self {
        KafkaError::Broker { api, code, message }
    }

    /// Whether the same call may succeed if made again: the network, a moved leader, a
    /// coordinator still loading, a broker timing out. A refused config or a corrupt batch is
    /// not.
    pub fn is_retriable(&self) -> bool {
        match self {
            KafkaError::Connection { .. } | KafkaError::Io { .. } | KafkaError::Timeout { .. } => true,
            KafkaError::Broker { code, .. } => is_retriable_code(*code),
            KafkaError::Unsupported { .. }
            | KafkaError::Encode { .. }
            | KafkaError::Decode { .. }
            | KafkaError::RequestTooLarge { .. }
            | KafkaError::UnknownPartition { .. }
            | KafkaError::Corrupt { .. }
            | KafkaError::Config { .. } => false,
        }
    }

    /// Whether the cluster's metadata (leaders, coordinators) should be read again first.
    pub(super) fn wants_metadata(&self) -> bool {
        match self {
            KafkaError::Connection { .. } | KafkaError::Io { .. } | KafkaError::Timeout { .. } => true,
            KafkaError::Broker { code, .. } => matches!(*code, 3 | 5 | 6 | 14 | 15 | 16),
            _ => false,
        }
    }
}

/// Kafka's retriable error codes (those its `RetriableException` subclasses carry).
pub(super) fn is_retriable_code(code: i16) -> bool {
    matches!(
        code,
        // CORRUPT_MESSAGE (a network flip), UNKNOWN_TOPIC_OR_PARTITION (metadata lagging a create),
        // LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NETWORK_EXCEPTION,
        // COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR,
        // NOT_ENOUGH_REPLICAS(_AFTER_APPEND), KAFKA_STORAGE_ERROR, FETCH_SESSION_ID_NOT_FOUND,
        // OFFSET_NOT_AVAILABLE, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, REBALANCE_IN_PROGRESS,
        // THROTTLING_QUOTA_EXCEEDED, UNKNOWN_TOPIC_ID
        2 | 3 | 5 | 6 | 7 | 13 | 14 | 15 | 16 | 19 | 20 | 27 | 56 | 70 | 74 | 76 | 78 | 89 | 100
    )
}

/// Kafka's name for an error code, for messages.
pub(super) fn error_name(code: i16) -> &'static str {
    match code {
        -1 => "UNKNOWN_SERVER_ERROR",
        1 => "OFFSET_OUT_OF_RANGE",
        2 => "CORRUPT_MESSAGE",
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        5 => "LEADER_NOT_AVAILABLE",
        6 => "NOT_LEADER_OR_FOLLOWER",
        7 => "REQUEST_TIMED_OUT",
        10 => "MESSAGE_TOO_LARGE",
        13 => "NETWORK_EXCEPTION",
        14 => "COORDINATOR_LOAD_IN_PROGRESS",
        15 => "COORDINATOR_NOT_AVAILABLE",
        16 => "NOT_COORDINATOR",
        17 => "INVALID_TOPIC_EXCEPTION",
        18 => "RECORD_LIST_TOO_LARGE",
        19 => "NOT_ENOUGH_REPLICAS",
        20 => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        29 => "TOPIC_AUTHORIZATION_FAILED",
        30 => "GROUP_AUTHORIZATION_FAILED",
        31 => "CLUSTER_AUTHORIZATION_FAILED",
        35 => "UNSUPPORTED_VERSION",
        36 => "TOPIC_ALREADY_EXISTS",
        37 => "INVALID_PARTITIONS",
        38 => "INVALID_REPLICATION_FACTOR",
        40 => "INVALID_CONFIG",
        42 => "INVALID_REQUEST",
        45 => "OUT_OF_ORDER_SEQUENCE_NUMBER",
        46 => "DUPLICATE_SEQUENCE_NUMBER",
        47 => "INVALID_PRODUCER_EPOCH",
        56 => "KAFKA_STORAGE_ERROR",
        59 => "UNKNOWN_PRODUCER_ID",
        68 => "NON_EMPTY_GROUP",
        69 => "GROUP_ID_NOT_FOUND",
        87 => "INVALID_RECORD",
        _ => "see Kafka's protocol error codes",
    }
}
