//! Request bodies, built as records are put: each record's value is copied once, into the body of
//! the batch it will be sent in, and the batch remembers where each record came from (for the
//! failed-record reports).

use weir_connector_sdk::batch::SinkRecordRef;

use crate::config::BodyFormat;

/// Where a record in a batch came from: an index into [`Batches::topics`], partition, offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub topic: u32,
    pub partition: i32,
    pub offset: i64,
}

/// One request's worth of records.
#[derive(Debug, Default)]
pub struct Batch {
    pub body: Vec<u8>,
    pub records: Vec<Origin>,
    /// The body is complete (a JSON array has its closing bracket): nothing more goes in.
    pub closed: bool,
    /// When its first record came (for `batch.linger.ms`).
    pub started: Option<std::time::Instant>,
}

/// How a value is written into a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// JSON text, copied as it is.
    Json,
    /// UTF-8 text that is not JSON, written as a JSON string.
    Text,
}

/// How `value` goes into a body, or why it cannot.
///
/// # Errors
/// A value that is not UTF-8.
pub fn encoding_of(value: &[u8]) -> Result<Encoding, &'static str> {
    if crate::json::is_json(value) {
        return Ok(Encoding::Json);
    }
    std::str::from_utf8(value).map(|_| Encoding::Text).map_err(|_| "the value is neither JSON nor UTF-8 text")
}

/// The batches waiting to be sent, oldest first; the last one is still filling.
#[derive(Debug)]
pub struct Batches {
    format: BodyFormat,
    /// With `json` and one record per request, the body is the value alone, not an array.
    single: bool,
    max_records: usize,
    max_bytes: usize,
    /// Topic names, interned: records name theirs by index.
    pub topics: Vec<String>,
    queue: std::collections::VecDeque<Batch>,
}

impl Batches {
    pub fn new(format: BodyFormat, max_records: u32, max_bytes: u64) -> Self {
        Self {
            format,
            single: format == BodyFormat::Json && max_records == 1,
            max_records: max_records.max(1) as usize,
            max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX).max(1),
            topics: Vec::new(),
            queue: std::collections::VecDeque::new(),
        }
    }

    fn topic_index(&mut self, topic: &str) -> u32 {
        match self.topics.iter().position(|known| known == topic) {
            Some(index) => index as u32,
            None => {
                self.topics.push(topic.to_owned());
                (self.topics.len() - 1) as u32
            }
        }
    }

    /// Append `record` (whose value has `encoding`) to the batch filling now, starting a new one
    /// when this one would pass `batch.max.size` or `batch.max.bytes`.
    pub fn push(&mut self, record: &SinkRecordRef<'_>, value: &[u8], encoding: Encoding) {
        let topic = self.topic_index(record.topic);
        let origin = Origin { topic, partition: record.partition, offset: record.offset };
        let needed = value.len() + 2;
        let full = match self.queue.back() {
            None => true,
            Some(batch) => {
                batch.closed
                    || batch.records.len() >= self.max_records
                    || (!batch.records.is_empty() && batch.body.len() + needed > self.max_bytes)
            }
        };
        if full {
            let capacity = needed.max(self.max_bytes.min(1 << 20));
            self.queue.push_back(Batch {
                body: Vec::with_capacity(capacity),
                records: Vec::new(),
                closed: false,
                started: Some(std::time::Instant::now()),
            });
        }
        let format = self.format;
        let single = self.single;
        let batch = self.queue.back_mut().expect("a batch was just ensured");
        let first = batch.records.is_empty();
        match format {
            BodyFormat::Json if single => {}
            BodyFormat::Json => batch.body.push(if first { b'[' } else { b',' }),
            BodyFormat::Ndjson => {}
        }
        match encoding {
            Encoding::Json => batch.body.extend_from_slice(value),
            Encoding::Text => {
                let text = std::str::from_utf8(value).unwrap_or_default();
                // Writing into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut batch.body, text);
            }
        }
        if format == BodyFormat::Ndjson {
            batch.body.push(b'\n');
        }
        batch.records.push(origin);
    }

    /// The oldest batch, completed for sending (a JSON array gets its closing bracket): records
    /// put from now on go into a new batch.
    pub fn close_front(&mut self) -> Option<&mut Batch> {
        let array = self.format == BodyFormat::Json && !self.single;
        let batch = self.queue.front_mut()?;
        if !batch.closed {
            if array {
                batch.body.push(b']');
            }
            batch.closed = true;
        }
        Some(batch)
    }

    pub fn front(&self) -> Option<&Batch> {
        self.queue.front()
    }

    /// Whether the oldest batch can take no more records.
    pub fn front_full(&self) -> bool {
        self.queue.len() > 1
            || self.queue.front().is_some_and(|batch| {
                batch.closed || batch.records.len() >= self.max_records || batch.body.len() >= self.max_bytes
            })
    }

    /// Whether a batch behind the oldest is due: complete (full or closed), or any with
    /// `everything`.
    pub fn behind_front_due(&self, everything: bool) -> bool {
        match self.queue.get(1) {
            None => false,
            Some(_) if everything || self.queue.len() > 2 => true,
            Some(batch) => {
                batch.closed || batch.records.len() >= self.max_records || batch.body.len() >= self.max_bytes
            }
        }
    }

    pub fn pop_front(&mut self) -> Option<Batch> {
        self.queue.pop_front()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn records(&self) -> usize {
        self.queue.iter().map(|batch| batch.records.len()).sum()
    }

    pub fn bytes(&self) -> usize {
        self.queue.iter().map(|batch| batch.body.len()).sum()
    }
}
