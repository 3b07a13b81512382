//! The herder: connector lifecycle (create, replace, pause, resume, stop, delete, restart),
//! validation, offsets admin and status, behind the [`Herder`] trait.
//!
//! The REST API holds an `Arc<dyn Herder>` and nothing else, so a distributed herder (one that
//! forwards writes to a group leader and reads the group's internal topics) replaces the
//! [`StandaloneHerder`] without REST changing. The herder decides *what* runs; the
//! [`Supervisor`](crate::supervisor) runs the tasks it is assigned.

mod api;
mod error;
mod groups;
mod offsets;
mod standalone;
mod status;
mod types;
mod validate;

pub use api::Herder;
pub use error::HerderError;
pub use groups::SinkGroupView;
pub use standalone::StandaloneHerder;
pub use types::{ConnectorInfo, ConnectorOffsets, ConnectorSnapshot, TaskSnapshot};
