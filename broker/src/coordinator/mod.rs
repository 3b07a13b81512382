//! A generic group coordinator: Kafka's group membership protocol, with no wire format.
//!
//! Members join a named group, one of them (the leader) computes an assignment, every member
//! gets its share, and heartbeats keep the membership alive; when a member joins, leaves or goes
//! silent the group rebalances. The protocol type (`consumer` for Kafka consumers, `connect`
//! for worker groups) and the protocol metadata and assignment bytes are opaque here: the
//! coordinator never looks inside them, so Kafka consumer groups and weir's own worker group run
//! on the same code, in-process through [`GroupCoordinator`] or over the Kafka protocol (the
//! `kafka` module is a thin translation onto it).
//!
//! What it follows of Kafka's coordinator:
//! - **Member ids (KIP-394).** A member joining without an id is given one and told to join
//!   again with it ([`GroupError::MemberIdRequired`]), so ids of clients that never come back
//!   cost nothing.
//! - **Static members (KIP-345).** A member with a `group.instance.id` keeps its place across
//!   restarts: joining again under the same instance id replaces the old member id (the old one
//!   is fenced) without waiting for its session to expire.
//! - **Generations.** Every completed join phase is a new generation; sync, heartbeat and offset
//!   commits from another generation are refused ([`GroupError::IllegalGeneration`]).
//! - **Timeouts.** A member that neither heartbeats nor commits within its session timeout is
//!   removed; a join phase ends at the latest after the longest rebalance timeout of the
//!   members, without those that did not rejoin.
//! - **Offsets.** Committed offsets (with their metadata) are stored durably by the [`Log`]
//!   and so survive a restart; membership itself is soft state, as in Kafka, and members of a
//!   restarted coordinator simply join again.
//!
//! [`Log`]: crate::Log

mod error;
mod group;
mod service;
#[cfg(test)]
mod tests;

pub use self::error::GroupError;
pub use self::group::GroupState;
pub use self::service::{
    CoordinatorConfig, GroupCoordinator, GroupDescription, GroupListing, JoinOutcome, JoinRequest, JoinedMember,
    MemberDescription, MemberIdentity, OffsetCommit, Protocol, SyncOutcome, SyncRequest,
};
