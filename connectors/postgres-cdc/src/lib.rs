//! `postgres-cdc`: Postgres change data capture. A consistent initial snapshot through the
//! exported snapshot of a new logical replication slot, then the slot's `pgoutput` stream, as
//! events in Debezium's envelope (`before`, `after`, `op`, `source`, `ts_ms`) in topics
//! `<topic.prefix>.<schema>.<table>`.
//!
//! The host opens every connection (the `postgres` import, limited to what the manifest grants);
//! this crate decodes pgoutput ([`pgoutput`]), converts values ([`values`]) and shapes events.
//! See `README.md` for the configuration and the Postgres settings it needs.

mod catalog;
mod config;
mod convert;
mod envelope;
mod filter;
mod incremental;
pub mod pgoutput;
mod position;
mod schema;
mod signal;
mod snapshot;
mod source;
mod stream;
mod temporal;
pub mod values;

pub use config::{CdcConfig, PublicationAutocreate, SlotInvalidatedAction, SnapshotMode};
pub use source::PostgresCdc;

weir_connector_sdk::export_source!(PostgresCdc);
