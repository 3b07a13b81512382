//! weir's event log: a durable, embedded, append-only log of topics and partitions.
//!
//! The runtime appends the records its source connectors produce and reads them back for its
//! sink connectors, in-process, through [`Log`]. Nothing here knows about WASM or HTTP.
//!
//! - **Format.** Each partition is a directory of segments. A segment stores Kafka RecordBatch v2
//!   exactly as the Kafka wire protocol carries it (see the `batch` module), so a
//!   Kafka-protocol server can serve stored bytes as they are ([`Log::read_batches`]). Each
//!   segment has a sparse offset index and a time index of fixed-width entries.
//! - **Integrity.** Every batch carries a CRC32C, checked on every read. Reopening after a crash
//!   scans the last segment of each partition and truncates a torn or corrupt tail, keeping every
//!   whole, valid batch before it.
//! - **Durability.** Fsync is per append batch, never per record, and group-committed across
//!   concurrent appends; the [`FlushPolicy`] says when (and documents what each policy can lose).
//!   A crash of the process loses nothing under any policy.
//! - **Consumers.** Reads by offset, an end-offset [`watch`](tokio::sync::watch) per partition to
//!   await new data, and durable committed offsets per consumer group.
//! - **Housekeeping.** Retention by size and time deletes whole old segments
//!   ([`Log::enforce_retention`]). Compacted topics keep the latest record per key: a
//!   background cleaner rewrites their sealed segments, crash-safely ([`Log::compact`]; the
//!   `cleaner` and `swap` modules).
//!
//! ```
//! use weir_broker::{Bytes, Log, LogConfig, Record, TopicConfig};
//!
//! # fn main() -> Result<(), weir_broker::LogError> {
//! # let dir = tempfile::tempdir().expect("tempdir");
//! let log = Log::open(dir.path(), LogConfig::default())?;
//! log.ensure_topic("orders", TopicConfig::with_partitions(4))?;
//! let key = b"customer-7";
//! let partition = weir_broker::partition_for_key(key, 4);
//! let record = Record {
//!     key: Some(Bytes::from_static(key)),
//!     value: Some(Bytes::from_static(b"{\"total\":12}")),
//!     headers: vec![],
//!     timestamp: 1_700_000_000_000,
//! };
//! let appended = log.append("orders", partition, &[record])?;
//! let records = log.read("orders", partition, appended.base_offset, 1 << 20)?;
//! assert_eq!(records[0].value.as_deref(), Some(&b"{\"total\":12}"[..]));
//! log.commit_offsets("connect-sink", &[("orders", partition, appended.last_offset + 1)])?;
//! # Ok(())
//! # }
//! ```

mod background;
mod batch;
mod cleaner;
mod config;
pub mod coordinator;
mod error;
mod fs_util;
mod groups;
mod index;
pub mod kafka;
mod log;
mod partition;
mod partitioner;
mod record;
mod retention;
mod segment;
mod swap;
mod topic;
mod transaction;
mod validator;

#[cfg(test)]
mod tests;

pub use bytes::Bytes;

pub use crate::batch::{BatchError, CheckedBatches, ProducerBatchInfo, wire};
pub use crate::cleaner::CompactionStats;
pub use crate::config::{CleanupPolicy, FlushPolicy, LogConfig, TopicConfig};
pub use crate::error::LogError;
pub use crate::log::Log;
pub use crate::partitioner::{murmur2, partition_for_key};
pub use crate::record::{AppendResult, Offset, Record, StoredRecord};
