//! `file-sink`: appends each record's value to a file as one line, as Kafka Connect's
//! `FileStreamSink`.
//!
//! Writes are buffered in `put` and made durable in `flush` (write out, then `fdatasync`), so
//! the runtime commits consumer offsets only for lines that are on disk. See `README.md`.

mod sink;

pub use sink::{FileSink, FileSinkConfig};

weir_connector_sdk::export_sink!(FileSink);

#[cfg(test)]
mod tests;
