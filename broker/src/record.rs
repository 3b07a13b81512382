//! The records that go into the log and come back out, and the `Offset` newtype.

use std::fmt;

use bytes::Bytes;

/// A position in a partition: the offset of a record.
///
/// The log's methods take and return plain `i64` (Kafka's own type for offsets); this newtype is
/// for callers that keep offsets next to other numbers and want the compiler to tell them apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Offset(pub i64);

impl From<i64> for Offset {
    fn from(offset: i64) -> Self {
        Offset(offset)
    }
}

impl From<Offset> for i64 {
    fn from(offset: Offset) -> Self {
        offset.0
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A record to append. The log assigns its offset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    /// The key; `None` is Kafka's null key.
    pub key: Option<Bytes>,
    /// The value; `None` is Kafka's null value (a tombstone on a compacted topic).
    pub value: Option<Bytes>,
    /// Headers in order. Duplicate keys are kept, as Kafka keeps them.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Creation time in milliseconds since the Unix epoch (Kafka's `CreateTime`).
    pub timestamp: i64,
}

/// A record read back from the log, with its offset.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRecord {
    /// The record's offset in its partition.
    pub offset: i64,
    /// The key; `None` is Kafka's null key.
    pub key: Option<Bytes>,
    /// The value; `None` is Kafka's null value.
    pub value: Option<Bytes>,
    /// Headers in order, duplicates kept.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Creation time in milliseconds since the Unix epoch.
    pub timestamp: i64,
}

impl StoredRecord {
    /// The record without its offset, as it was appended.
    pub fn into_record(self) -> Record {
        Record { key: self.key, value: self.value, headers: self.headers, timestamp: self.timestamp }
    }

    /// The size this record counts for against a read's `max_bytes`: its payload bytes (key,
    /// value, header keys and values) plus a fixed 16 bytes for the offset and timestamp.
    pub fn size_hint(&self) -> usize {
        let field = |bytes: &Option<Bytes>| bytes.as_ref().map_or(0, Bytes::len);
        16 + field(&self.key)
            + field(&self.value)
            + self.headers.iter().map(|(key, value)| key.len() + field(value)).sum::<usize>()
    }
}

/// Where an append landed: offsets `base_offset..=last_offset`.
///
/// For an append of zero records nothing is written and `last_offset == base_offset - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// Offset of the first record appended.
    pub base_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
}

impl AppendResult {
    /// How many records the append wrote.
    pub fn record_count(&self) -> u64 {
        (self.last_offset - self.base_offset + 1).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_converts_to_and_from_i64_and_displays_as_a_number() {
        let offset: Offset = 42.into();
        assert_eq!(i64::from(offset), 42);
        assert_eq!(offset.to_string(), "42");
    }
}
