//! The group membership operations: translations onto the
//! [`GroupCoordinator`](crate::coordinator::GroupCoordinator).

pub(super) mod delete;
pub(super) mod describe;
pub(super) mod heartbeat;
pub(super) mod join;
pub(super) mod leave;
pub(super) mod list;
pub(super) mod sync;
