//! The `file-sink` configuration and task.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use weir_connector_sdk::batch::SinkRecordRef;
use weir_connector_sdk::{Connector, ConnectorError, FieldError, RecordFailure, Sink, TaskContext};

/// Buffer in front of the file: large enough that a batch costs a few writes, not one per line.
const BUFFER_BYTES: usize = 256 * 1024;

/// What a record without a value (a tombstone) is written as: Kafka Connect's `FileStreamSink`
/// prints `null` for it.
const NULL_VALUE: &[u8] = b"null";

/// Configuration of the `file-sink` connector (Kafka Connect `FileStreamSink`'s keys).
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The file the values are appended to, one per line; created if missing. The manifest
    /// must grant its directory `read-write` (`grants.filesystem`), with the same path form
    /// (relative or absolute).
    pub file: String,

    /// Comma-separated topics to consume. Read by the runtime; every record it puts is written.
    pub topics: String,
}

/// The `file-sink` task.
#[derive(Debug)]
pub struct FileSink {
    context: TaskContext,
    path: PathBuf,
    writer: BufWriter<File>,
    /// Lines put since open, for the log on close.
    lines: u64,
}

impl Connector for FileSink {
    type Config = FileSinkConfig;
    const NAME: &'static str = "file-sink";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Appends each record's value to a file as one line.";

    fn validate(config: &FileSinkConfig) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if config.file.is_empty() {
            errors.push(FieldError::new("file", "must not be empty"));
        }
        if config.topics.split(',').all(|topic| topic.trim().is_empty()) {
            errors.push(FieldError::new("topics", "must name at least one topic"));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

impl Sink for FileSink {
    fn open(config: FileSinkConfig, context: TaskContext) -> Result<Self, ConnectorError> {
        if let Err(errors) = Self::validate(&config) {
            let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            return Err(ConnectorError::InvalidConfig(message));
        }
        let path = PathBuf::from(&config.file);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|error| ConnectorError::io(&format!("opening {}", path.display()), &error))?;
        let dropped = drop_torn_line(&path)
            .map_err(|error| ConnectorError::io(&format!("repairing the end of {}", path.display()), &error))?;
        if dropped > 0 {
            context.warn(&format!(
                "file-sink dropped {dropped} bytes of a partial last line in {} (written before a crash; \
                 its records were not committed and are delivered again)",
                path.display()
            ));
        }
        context.info(&format!("file-sink appending to {}", path.display()));
        Ok(Self { context, path, writer: BufWriter::with_capacity(BUFFER_BYTES, file), lines: 0 })
    }

    fn put(&mut self, records: &[SinkRecordRef<'_>]) -> Result<Vec<RecordFailure>, ConnectorError> {
        for record in records {
            let value = record.value.unwrap_or(NULL_VALUE);
            self.writer
                .write_all(value)
                .and_then(|()| self.writer.write_all(b"\n"))
                .map_err(|error| self.io_error("writing", &error))?;
        }
        self.lines += records.len() as u64;
        Ok(Vec::new())
    }

    fn flush(&mut self) -> Result<(), ConnectorError> {
        self.writer.flush().map_err(|error| self.io_error("writing", &error))?;
        self.writer.get_ref().sync_data().map_err(|error| self.io_error("syncing", &error))
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        self.writer.flush().map_err(|error| self.io_error("writing", &error))?;
        self.context.info(&format!("file-sink closing {} after {} lines", self.path.display(), self.lines));
        Ok(())
    }
}

impl FileSink {
    fn io_error(&self, what: &str, error: &io::Error) -> ConnectorError {
        ConnectorError::io(&format!("{what} {}", self.path.display()), error)
    }
}

/// A crash can leave the file ending inside a line: the buffer is written out when full, not at
/// line ends. Those records were not flushed, so their offsets were not committed and they come
/// again; cut the partial line so the file stays one record per line. Returns the bytes cut.
fn drop_torn_line(path: &std::path::Path) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let length = file.metadata()?.len();
    let mut end = length;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let size = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk[..size])?;
        if let Some(index) = chunk[..size].iter().rposition(|byte| *byte == b'\n') {
            let keep = start + index as u64 + 1;
            if keep < length {
                file.set_len(keep)?;
            }
            return Ok(length - keep);
        }
        end = start;
    }
    if length > 0 {
        file.set_len(0)?;
    }
    Ok(length)
}
