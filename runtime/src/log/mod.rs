//! The seam between the runtime and the event log.
//!
//! [`EventLog`] is the runtime's only way to the log: the task loops, the internal stores (offsets,
//! configs, statuses, connector state), the herder and the REST API all hold an
//! `Arc<dyn EventLog>` and nothing else. It has four parts, as a Kafka client has:
//!
//! - **produce**: ensure a topic, read its config, append batches to several partitions at once;
//! - **fetch**: read from an offset (several partitions in one call), wait for data past an offset;
//! - **group offsets**: commit, read, list and delete a consumer group's committed offsets;
//! - **an atomic append of records together with their offset record**, the write a source task
//!   makes: both land or neither does, so exactly-once sources need no change to the task loop.
//!
//! Every write carries the [`Generation`] of the assignment it comes from, so fencing a zombie
//! worker's writes is a check inside an implementation, not a reshaping of the callers.
//!
//! [`EmbeddedLog`] is the implementation over the in-process broker (`weir_broker::Log`), the
//! default; it is the only code in the runtime that names that type. Its calls block on file I/O
//! and fsync, so each one runs on tokio's blocking pool, never on an executor thread.
//! [`KafkaLog`] is the implementation over a Kafka cluster (`weir run --bootstrap-servers`).

mod embedded;
mod error;
mod event_log;
#[cfg(test)]
pub(crate) mod faulty;
mod kafka;

pub use embedded::EmbeddedLog;
pub use error::LogError;
pub use event_log::{
    Batches, EventLog, FetchRequest, FetchedPartition, Generation, GroupOffset, OffsetRange, PartitionBatch,
};
pub use kafka::{KafkaClientConfig, KafkaError, KafkaLog};
pub use weir_broker::{AppendResult, Bytes, CleanupPolicy, Record, StoredRecord, TopicConfig};
