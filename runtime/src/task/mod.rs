//! Task loops: the source loop (poll → append → store positions → commit) and the sink loop
//! (read → put → flush → commit group offsets), over components or native connectors alike.

mod errors;
mod handle;
pub(crate) mod retry;
mod sink;
mod source;
mod status;
#[cfg(test)]
mod tests;

pub(crate) use errors::ErrorHandling;
pub(crate) use handle::{SinkHandle, SourceHandle};
pub(crate) use retry::{RestartPolicy, Restarts, RetryPolicy, sleep_or_cancel};
pub(crate) use sink::{SinkSettings, SinkTask, owner};
pub(crate) use source::{SourceSettings, SourceTask};
pub use status::{RestartStatus, State, TaskMetrics, TaskStatus};
