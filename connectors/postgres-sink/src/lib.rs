//! `postgres-sink`: writes records into Postgres tables through the host's `postgres`
//! capability, exactly once.
//!
//! Each `put` batch is one transaction holding its rows and, in the sink's own offsets table
//! ([`offsets`]), the last offset it covers per (table, topic, partition). Records at or below a
//! stored offset are already in the table and are skipped, so the redelivery that follows a
//! crash (the runtime resumes from the consumer group's offsets, committed after the sink's)
//! writes nothing twice. A compare-and-set on the stored offsets fences off a second instance of
//! the same task.
//!
//! Records become rows ([`record`]): JSON values, Debezium change events unwrapped, key columns
//! as `pk.mode` says; [`plan`] gathers them into multi-row statements ([`sql`]). See `README.md`
//! for the configuration.

pub mod config;
pub mod offsets;
pub mod plan;
pub mod record;
mod sink;
pub mod sql;

pub use config::{InsertMode, PkMode, SinkConfig, TableName};
pub use sink::{PostgresSink, SqlFailure, classify, sqlstate};

weir_connector_sdk::export_sink!(PostgresSink);

#[cfg(test)]
mod tests;
