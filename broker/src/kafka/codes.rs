//! Kafka error codes for the log's and the coordinator's errors.

use kafka_protocol::error::ResponseError;

use crate::LogError;
use crate::coordinator::GroupError;

pub(super) const NONE: i16 = 0;

pub(super) fn code(error: ResponseError) -> i16 {
    error.code()
}

/// The code a client understands for a log error.
pub(super) fn log_error(error: &LogError) -> i16 {
    code(match error {
        LogError::UnknownTopic { .. } | LogError::UnknownPartition { .. } => ResponseError::UnknownTopicOrPartition,
        LogError::InvalidTopicName { .. } => ResponseError::InvalidTopicException,
        LogError::InvalidTopicConfig { .. } => ResponseError::InvalidConfig,
        LogError::PartitionCountMismatch { .. } => ResponseError::TopicAlreadyExists,
        LogError::PartitionsNotIncreased { .. } => ResponseError::InvalidPartitions,
        LogError::InvalidGroupName { .. } => ResponseError::InvalidGroupId,
        LogError::InvalidOffset { .. } => ResponseError::InvalidCommitOffsetSize,
        LogError::InvalidBatch { source, .. } => match source {
            crate::BatchError::CrcMismatch { .. } | crate::BatchError::Truncated { .. } => {
                ResponseError::CorruptMessage
            }
            _ => ResponseError::InvalidRecord,
        },
        LogError::Encode { .. } => ResponseError::MessageTooLarge,
        // Kafka's answer to a keyless record on a compacted topic.
        LogError::KeyRequired { .. } => ResponseError::InvalidRecord,
        LogError::Io { .. }
        | LogError::SegmentCorrupt { .. }
        | LogError::MetadataCorrupt { .. }
        | LogError::PartitionFailed { .. }
        | LogError::Rollback { .. } => ResponseError::KafkaStorageError,
        LogError::InvalidLogConfig { .. } | LogError::DirectoryLocked { .. } => ResponseError::UnknownServerError,
    })
}

/// The code a client understands for a group error.
pub(super) fn group_error(error: &GroupError) -> i16 {
    code(match error {
        GroupError::MemberIdRequired { .. } => ResponseError::MemberIdRequired,
        GroupError::UnknownMemberId { .. } => ResponseError::UnknownMemberId,
        GroupError::IllegalGeneration { .. } => ResponseError::IllegalGeneration,
        GroupError::RebalanceInProgress { .. } => ResponseError::RebalanceInProgress,
        GroupError::InconsistentGroupProtocol { .. } => ResponseError::InconsistentGroupProtocol,
        GroupError::InvalidSessionTimeout { .. } => ResponseError::InvalidSessionTimeout,
        GroupError::FencedInstanceId { .. } => ResponseError::FencedInstanceId,
        GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
        GroupError::GroupIdNotFound { .. } => ResponseError::GroupIdNotFound,
        GroupError::NonEmptyGroup { .. } => ResponseError::NonEmptyGroup,
        GroupError::ShuttingDown => ResponseError::CoordinatorNotAvailable,
        GroupError::Log { source } => return log_error(source),
    })
}
