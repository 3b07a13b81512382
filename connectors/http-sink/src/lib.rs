//! `http-sink`: sends the records it is handed to an HTTP endpoint through the host's `http`
//! capability, in batches (a JSON array or NDJSON) or one request per record.
//!
//! Records are encoded into the body of the batch they will go in as they are put ([`body`]);
//! a batch is sent when it is full (`batch.max.size` records or `batch.max.bytes`), when it has
//! waited `batch.linger.ms`, and at every flush. A send is retried on connection errors,
//! timeouts and the statuses of `retry.on.status.codes`, waiting what `Retry-After` says or
//! backing off exponentially ([`retry`]), within the call's deadline and across calls; a batch
//! refused for good follows `behavior.on.error`, its records reported to the runtime (dead-letter
//! topic, `errors.tolerance`) with the HTTP status in their context headers. See `README.md`.

pub mod auth;
pub mod body;
pub mod config;
pub mod json;
pub mod retry;
mod sink;

pub use config::HttpSinkConfig;
pub use sink::{HttpSink, RESPONSE_HEADER, STATUS_HEADER, URL_HEADER};

weir_connector_sdk::export_sink!(HttpSink);

#[cfg(test)]
mod tests;
