//! `file-source`: tails a file line by line, one record per line, as Kafka Connect's
//! `FileStreamSource`.
//!
//! A line is the bytes up to a `\n` (a `\r` before it is dropped too); only complete lines are
//! emitted, so a last line still being written waits for its newline. Source partition
//! `{"filename":"<file>"}`, position `{"position":<byte offset after the line>}` (Kafka Connect's
//! shapes); a reopened task resumes at its committed position. See `README.md`.

mod source;

pub use source::{FileSource, FileSourceConfig};

weir_connector_sdk::export_source!(FileSource);

#[cfg(test)]
mod tests;
