//! The `file-source` configuration and task.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

use weir_connector_sdk::batch::{SourceBatchWriter, SourceRecordRef};
use weir_connector_sdk::{Connector, ConnectorError, FieldError, Source, TaskContext};

/// Bytes read from the file at a time.
const READ_CHUNK: u64 = 64 * 1024;

/// Configuration of the `file-source` connector (Kafka Connect `FileStreamSource`'s keys).
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// The file to read. The manifest must grant its directory (`grants.filesystem`, at least
    /// `read-only`), with the same path form (relative or absolute). Until the file exists the
    /// connector waits for it.
    pub file: String,

    /// Topic the lines are written to.
    pub topic: String,

    /// The most lines returned by one poll.
    #[serde(default = "default_batch_size", rename = "batch.size")]
    #[schemars(range(min = 1))]
    pub batch_size: u32,
}

fn default_batch_size() -> u32 {
    2000
}

/// The `file-source` task.
#[derive(Debug)]
pub struct FileSource {
    context: TaskContext,
    path: PathBuf,
    topic: String,
    batch_size: u32,
    /// Open once the file exists.
    file: Option<File>,
    /// Byte offset right after the last emitted line: where a restart resumes.
    position: u64,
    /// Bytes read after `position` that do not end in a newline yet.
    pending: Vec<u8>,
    partition: Vec<u8>,
    /// Reused per record.
    position_json: Vec<u8>,
    /// Whether "waiting for the file" was logged, so it is logged once, not per poll.
    logged_missing: bool,
}

/// A committed position: the byte offset after the last line made durable.
#[derive(serde::Deserialize)]
struct Position {
    position: u64,
}

impl Connector for FileSource {
    type Config = FileSourceConfig;
    const NAME: &'static str = "file-source";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Tails a file line by line, one record per line.";

    fn validate(config: &FileSourceConfig) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if config.file.is_empty() {
            errors.push(FieldError::new("file", "must not be empty"));
        }
        if config.topic.is_empty() {
            errors.push(FieldError::new("topic", "must not be empty"));
        }
        if config.batch_size == 0 {
            errors.push(FieldError::new("batch.size", "must be at least 1"));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

impl Source for FileSource {
    fn open(config: FileSourceConfig, context: TaskContext) -> Result<Self, ConnectorError> {
        if let Err(errors) = Self::validate(&config) {
            let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            return Err(ConnectorError::InvalidConfig(message));
        }
        let partition = serde_json::to_vec(&serde_json::json!({ "filename": config.file }))
            .map_err(|error| ConnectorError::fatal(format!("source partition: {error}")))?;
        let position = match context.committed_position(&partition) {
            None => 0,
            Some(position) => {
                serde_json::from_slice::<Position>(&position)
                    .map_err(|error| {
                        ConnectorError::fatal(format!(
                            "committed position {} of {} is not {{\"position\":<n>}}: {error}",
                            String::from_utf8_lossy(&position),
                            config.file
                        ))
                    })?
                    .position
            }
        };
        context.info(&format!("file-source reading {} from byte {position}", config.file));
        Ok(Self {
            context,
            path: PathBuf::from(&config.file),
            topic: config.topic,
            batch_size: config.batch_size,
            file: None,
            position,
            pending: Vec::new(),
            partition,
            position_json: Vec::with_capacity(32),
            logged_missing: false,
        })
    }

    fn poll(&mut self, max: u32, batch: &mut SourceBatchWriter) -> Result<(), ConnectorError> {
        let limit = max.min(self.batch_size) as usize;
        let Some(mut file) = self.take_file()? else { return Ok(()) };
        let mut pending = std::mem::take(&mut self.pending);
        let result = self.read_lines(&mut file, &mut pending, limit, batch);
        self.pending = pending;
        match result {
            Ok(Reading::Continue) | Err(_) => self.file = Some(file),
            Ok(Reading::StartOver) => {
                self.position = 0;
                self.pending.clear();
            }
        }
        result.map(drop)
    }
}

/// What to do with the open file after a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Continue,
    /// The file shrank below what was read: reopen it and read from its start.
    StartOver,
}

impl FileSource {
    /// The open file, positioned after `pending`; `None` while it does not exist.
    fn take_file(&mut self) -> Result<Option<File>, ConnectorError> {
        if let Some(file) = self.file.take() {
            return Ok(Some(file));
        }
        match File::open(&self.path) {
            Ok(mut file) => {
                file.seek(SeekFrom::Start(self.position)).map_err(|error| self.io_error("seeking in", &error))?;
                self.pending.clear();
                if self.logged_missing {
                    self.context.info(&format!("file-source found {}", self.path.display()));
                    self.logged_missing = false;
                }
                Ok(Some(file))
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                if !self.logged_missing {
                    self.context.info(&format!("file-source waiting for {} to exist", self.path.display()));
                    self.logged_missing = true;
                }
                Ok(None)
            }
            Err(error) => Err(self.io_error("opening", &error)),
        }
    }

    /// Emit up to `limit` complete lines, reading more of the file as needed. `pending` holds
    /// the bytes read after `self.position`, before and after.
    fn read_lines(
        &mut self,
        file: &mut File,
        pending: &mut Vec<u8>,
        limit: usize,
        batch: &mut SourceBatchWriter,
    ) -> Result<Reading, ConnectorError> {
        let mut emitted = 0;
        let mut start = 0;
        let reading = loop {
            while emitted < limit {
                let Some(newline) = pending[start..].iter().position(|byte| *byte == b'\n') else {
                    break;
                };
                let end = start + newline;
                self.position += newline as u64 + 1;
                self.emit(strip_carriage_return(&pending[start..end]), batch);
                start = end + 1;
                emitted += 1;
            }
            if emitted == limit {
                break Reading::Continue;
            }
            pending.drain(..start);
            start = 0;
            let read = file.take(READ_CHUNK).read_to_end(pending).map_err(|error| self.io_error("reading", &error))?;
            if read == 0 {
                break self.at_end(pending.len() as u64)?;
            }
        };
        pending.drain(..start);
        Ok(reading)
    }

    /// At the end of the file: if the file at the path is now shorter than what was read, it
    /// was truncated or replaced, and reading starts over at its beginning.
    fn at_end(&mut self, pending: u64) -> Result<Reading, ConnectorError> {
        let read_to = self.position + pending;
        let length = match std::fs::metadata(&self.path) {
            Ok(metadata) => metadata.len(),
            // Removed: keep reading the open file until one appears at the path again.
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Reading::Continue),
            Err(error) => return Err(self.io_error("checking", &error)),
        };
        if length >= read_to {
            return Ok(Reading::Continue);
        }
        self.context.warn(&format!(
            "file-source: {} shrank to {length} bytes, below the {read_to} already read; \
             reading it again from the start",
            self.path.display()
        ));
        Ok(Reading::StartOver)
    }

    fn emit(&mut self, line: &[u8], batch: &mut SourceBatchWriter) {
        self.position_json.clear();
        self.position_json.extend_from_slice(b"{\"position\":");
        self.position_json.extend_from_slice(self.position.to_string().as_bytes());
        self.position_json.push(b'}');
        // Values are UTF-8 text, as Kafka Connect's string values; invalid bytes are replaced.
        let value = String::from_utf8_lossy(line);
        let value: &[u8] = match &value {
            Cow::Borrowed(text) => text.as_bytes(),
            Cow::Owned(text) => text.as_bytes(),
        };
        batch.push(&SourceRecordRef {
            topic: &self.topic,
            partition: -1,
            timestamp: None,
            key: None,
            value: Some(value),
            headers: &[],
            source_partition: &self.partition,
            source_position: &self.position_json,
        });
    }

    fn io_error(&self, what: &str, error: &io::Error) -> ConnectorError {
        ConnectorError::io(&format!("{what} {}", self.path.display()), error)
    }
}

fn strip_carriage_return(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}
