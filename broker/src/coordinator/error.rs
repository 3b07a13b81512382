//! Why a group operation was refused.

use crate::LogError;

/// Why the coordinator refused a group operation. Each variant is one of Kafka's group error
/// codes, which is how clients know what to do next (join again, find the coordinator, ...).
#[derive(thiserror::Error, Debug)]
pub enum GroupError {
    /// A first join without a member id: join again with this one (KIP-394).
    #[error("member id required: join again as {member_id}")]
    MemberIdRequired {
        /// The id to join with.
        member_id: String,
    },
    /// The member is not (or no longer) in the group.
    #[error("unknown member {member_id:?} in group {group:?}")]
    UnknownMemberId {
        /// The group.
        group: String,
        /// The member id given.
        member_id: String,
    },
    /// The request is from another generation than the group's.
    #[error("group {group:?} is at generation {current}, not {given}")]
    IllegalGeneration {
        /// The group.
        group: String,
        /// The group's generation.
        current: i32,
        /// The generation given.
        given: i32,
    },
    /// The group is rebalancing: join again.
    #[error("group {group:?} is rebalancing")]
    RebalanceInProgress {
        /// The group.
        group: String,
    },
    /// The member's protocol type or protocols do not match the group's.
    #[error("inconsistent group protocol for group {group:?}")]
    InconsistentGroupProtocol {
        /// The group.
        group: String,
    },
    /// A session timeout outside the coordinator's allowed range.
    #[error("session timeout {given_ms} ms outside {min_ms}..={max_ms} ms")]
    InvalidSessionTimeout {
        /// The timeout given.
        given_ms: u64,
        /// The smallest allowed.
        min_ms: u64,
        /// The largest allowed.
        max_ms: u64,
    },
    /// Another member now holds this static instance id.
    #[error("instance {instance_id:?} of group {group:?} is fenced by a newer member")]
    FencedInstanceId {
        /// The group.
        group: String,
        /// The instance id.
        instance_id: String,
    },
    /// An empty group id.
    #[error("invalid group id")]
    InvalidGroupId,
    /// The group does not exist.
    #[error("group {group:?} does not exist")]
    GroupIdNotFound {
        /// The group.
        group: String,
    },
    /// The group still has members.
    #[error("group {group:?} is not empty")]
    NonEmptyGroup {
        /// The group.
        group: String,
    },
    /// The coordinator is shutting down.
    #[error("coordinator is shutting down")]
    ShuttingDown,
    /// Storing or reading committed offsets failed.
    #[error("committed offsets")]
    Log {
        /// The log's error.
        #[from]
        source: LogError,
    },
}

impl GroupError {
    /// Whether the same call may succeed if made again (after joining again, for the membership
    /// errors).
    pub fn is_retriable(&self) -> bool {
        match self {
            GroupError::MemberIdRequired { .. }
            | GroupError::UnknownMemberId { .. }
            | GroupError::IllegalGeneration { .. }
            | GroupError::RebalanceInProgress { .. }
            | GroupError::ShuttingDown => true,
            GroupError::Log { source } => source.is_retriable(),
            GroupError::InconsistentGroupProtocol { .. }
            | GroupError::InvalidSessionTimeout { .. }
            | GroupError::FencedInstanceId { .. }
            | GroupError::InvalidGroupId
            | GroupError::GroupIdNotFound { .. }
            | GroupError::NonEmptyGroup { .. } => false,
        }
    }
}
