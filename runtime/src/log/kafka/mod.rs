//! [`KafkaLog`]: the log seam over a Kafka cluster (Kafka, Redpanda, MSK, Confluent Cloud,
//! Tansu, `weir broker`), spoken in the Kafka protocol with our own client.
//!
//! - **Connections**: one per broker, many requests in flight, versions negotiated with
//!   ApiVersions ([`connection`]).
//! - **Metadata**: brokers, partition leaders and group coordinators are cached and read again
//!   when a broker says they moved (NOT_LEADER_OR_FOLLOWER, NOT_COORDINATOR, a dropped
//!   connection); every call retries retriable errors with backoff until `delivery.timeout.ms`
//!   ([`cluster`]).
//! - **Produce**: batches cut to `batch.size`, compressed with `compression.type`, stamped by
//!   an idempotent producer so that a retried batch is stored once ([`producer`]).
//! - **Fetch**: one request per leader; markers, compacted gaps and offsets deleted by retention
//!   are stepped over; waiting for data long-polls ([`backend`]).
//! - **Group offsets**: OffsetCommit / OffsetFetch / DeleteGroups at the group's coordinator.
//!
//! What the embedded log gives and Kafka without transactions does not: the append of a source
//! task's records with their offset record is not atomic here (records first, offsets last:
//! a crash in between repeats records, never skips them).

mod backend;
mod cluster;
mod config;
mod connection;
mod error;
mod producer;
#[cfg(test)]
mod tests;

pub use backend::KafkaLog;
pub use config::KafkaClientConfig;
pub use error::KafkaError;
