//! The log's error type.
//!
//! One enum for the whole log (the domain is small), with named fields saying what failed, and the
//! underlying error kept as `source`. [`LogError::is_retriable`] is the only thing a task loop
//! needs to decide whether to try again; it never has to read a message string.

use std::io;
use std::path::PathBuf;

use crate::batch::BatchError;

/// Everything that can go wrong in the log.
#[derive(thiserror::Error, Debug)]
pub enum LogError {
    /// No topic of that name exists.
    #[error("unknown topic {topic:?}")]
    UnknownTopic {
        /// The topic asked for.
        topic: String,
    },

    /// The topic exists but has no such partition.
    #[error("topic {topic:?} has no partition {partition}")]
    UnknownPartition {
        /// The topic asked for.
        topic: String,
        /// The partition asked for.
        partition: u32,
    },

    /// `ensure_topic` found the topic with another partition count.
    #[error("topic {topic:?} exists with {existing} partitions, not {requested}")]
    PartitionCountMismatch {
        /// The topic.
        topic: String,
        /// Its partition count on disk.
        existing: u32,
        /// The partition count asked for.
        requested: u32,
    },

    /// A topic name that Kafka would refuse (or that cannot be a directory name).
    #[error("invalid topic name {topic:?}: {reason}")]
    InvalidTopicName {
        /// The name given.
        topic: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A consumer group name that cannot be stored.
    #[error("invalid group name {group:?}: {reason}")]
    InvalidGroupName {
        /// The name given.
        group: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// `create_partitions` asked for no more partitions than the topic has: partitions can only
    /// be added.
    #[error("topic {topic:?} has {existing} partitions: it can only grow, not to {requested}")]
    PartitionsNotIncreased {
        /// The topic.
        topic: String,
        /// Its partition count.
        existing: u32,
        /// The partition count asked for.
        requested: u32,
    },

    /// A topic config that cannot work (zero partitions, negative retention, ...).
    #[error("invalid config for topic {topic:?}: {reason}")]
    InvalidTopicConfig {
        /// The topic.
        topic: String,
        /// What is wrong with the config.
        reason: String,
    },

    /// A [`LogConfig`](crate::LogConfig) that cannot work.
    #[error("invalid log config: {reason}")]
    InvalidLogConfig {
        /// What is wrong with the config.
        reason: String,
    },

    /// An offset that cannot be committed (negative).
    #[error("invalid offset {offset} for {topic}-{partition}")]
    InvalidOffset {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The offset given.
        offset: i64,
    },

    /// A record without a key appended to a `Compact` topic, which keeps records by key (Kafka
    /// refuses these too). Nothing of the append was written.
    #[error(
        "topic {topic:?} is compacted, so every record needs a key; record {index} of the append to partition {partition} has none"
    )]
    KeyRequired {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// Position of the keyless record in the append.
        index: usize,
    },

    /// The records could not be encoded as a RecordBatch (a field larger than 2 GiB).
    #[error("cannot encode records for {topic}-{partition}")]
    Encode {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// What the encoder refused.
        source: BatchError,
    },

    /// A producer's batch failed its checks (CRC32C, bounds, framing) before it was stored.
    #[error("invalid record batch for {topic}-{partition}")]
    InvalidBatch {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The check that failed.
        source: BatchError,
    },

    /// A stored batch failed its checks (CRC32C, bounds, framing) when read back.
    #[error("corrupt segment {} at byte {position}", path.display())]
    SegmentCorrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the batch that failed.
        position: u64,
        /// The check that failed.
        source: BatchError,
    },

    /// A topic-metadata or group-offsets file that does not parse.
    #[error("corrupt metadata file {}", path.display())]
    MetadataCorrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },

    /// Another process (or another `Log` in this one) holds the data directory.
    #[error("data directory {} is locked by another log", path.display())]
    DirectoryLocked {
        /// The lock file.
        path: PathBuf,
    },

    /// An atomic append could not undo its writes after failing: the partition takes no more
    /// appends until the log is reopened, which rolls them back from the transaction journal.
    #[error("partition {partition} of topic {topic} holds an atomic append that could not be undone; reopen the log")]
    PartitionFailed {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
    },

    /// An unfinished atomic append found at open could not be rolled back as its journal entry
    /// says (see `<data_dir>/transactions.journal`).
    #[error("cannot roll back the unfinished atomic append on {topic}-{partition}: {reason}")]
    Rollback {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// What does not match.
        reason: String,
    },

    /// A file-system call failed.
    #[error("I/O error on {}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl LogError {
    /// Whether trying the same call again later may succeed.
    ///
    /// I/O errors are retriable (a full disk or an interrupted call can clear) except those that
    /// no retry can fix (permissions, a read-only file system). Unknown topics are not retriable:
    /// in an embedded log a topic does not appear by itself. Corruption and bad arguments never
    /// fix themselves.
    pub fn is_retriable(&self) -> bool {
        match self {
            LogError::Io { source, .. } => !matches!(
                source.kind(),
                io::ErrorKind::PermissionDenied
                    | io::ErrorKind::ReadOnlyFilesystem
                    | io::ErrorKind::InvalidInput
                    | io::ErrorKind::Unsupported
            ),
            LogError::DirectoryLocked { .. } => true,
            LogError::UnknownTopic { .. }
            | LogError::UnknownPartition { .. }
            | LogError::PartitionCountMismatch { .. }
            | LogError::PartitionsNotIncreased { .. }
            | LogError::InvalidTopicName { .. }
            | LogError::InvalidGroupName { .. }
            | LogError::InvalidTopicConfig { .. }
            | LogError::InvalidLogConfig { .. }
            | LogError::InvalidOffset { .. }
            | LogError::KeyRequired { .. }
            | LogError::Encode { .. }
            | LogError::InvalidBatch { .. }
            | LogError::SegmentCorrupt { .. }
            | LogError::PartitionFailed { .. }
            | LogError::Rollback { .. }
            | LogError::MetadataCorrupt { .. } => false,
        }
    }

    /// Builds the closure for `map_err` that wraps an `io::Error` with the path involved.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> LogError {
        let path = path.into();
        move |source| LogError::Io { path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_retriable_but_permission_errors_are_not() {
        let transient = LogError::Io { path: "x".into(), source: io::Error::from(io::ErrorKind::Interrupted) };
        let permanent = LogError::Io { path: "x".into(), source: io::Error::from(io::ErrorKind::PermissionDenied) };
        assert!(transient.is_retriable());
        assert!(!permanent.is_retriable());
        assert!(!LogError::UnknownTopic { topic: "t".into() }.is_retriable());
    }
}
