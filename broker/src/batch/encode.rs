//! Encoding records into RecordBatch v2, split at a size limit, with offsets assigned later.

use bytes::Bytes;

use super::header::{
    ATTRIBUTES_OFFSET, BASE_SEQUENCE_OFFSET, BASE_TIMESTAMP_OFFSET, BATCH_HEADER_SIZE, BatchError, BatchHeader,
    CRC_OFFSET, LAST_OFFSET_DELTA_OFFSET, LEADER_EPOCH, LOG_OVERHEAD, MAGIC_OFFSET, MAGIC_V2, MAX_TIMESTAMP_OFFSET,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, PARTITION_LEADER_EPOCH_OFFSET, PRODUCER_EPOCH_OFFSET,
    PRODUCER_ID_OFFSET, RECORD_COUNT_OFFSET, TRANSACTIONAL_FLAG,
};
use super::varint::{put_varint, put_varlong, varint_size, varlong_size};
use crate::record::{Record, StoredRecord};

/// The length of a field as the format's i32, or the error for a field over 2 GiB.
fn field_len(len: usize) -> Result<i32, BatchError> {
    if len > i32::MAX as usize {
        return Err(BatchError::RecordTooLarge { size: len });
    }
    Ok(len as i32)
}

fn nullable_bytes_size(field: &Option<Bytes>) -> usize {
    match field {
        None => varint_size(-1),
        Some(bytes) => varint_size(bytes.len() as i32) + bytes.len(),
    }
}

fn put_nullable_bytes(buf: &mut Vec<u8>, field: &Option<Bytes>) {
    match field {
        None => put_varint(buf, -1),
        Some(bytes) => {
            put_varint(buf, bytes.len() as i32);
            buf.extend_from_slice(bytes);
        }
    }
}

/// An upper bound on a record's encoded size, whatever its deltas; also rejects fields that do
/// not fit the format, so the exact encoder can cast lengths freely.
fn record_size_bound(record: &Record) -> Result<usize, BatchError> {
    // length (5) + attributes (1) + timestamp delta (10) + offset delta (5) + header count (5)
    let mut size = 26usize;
    for field in [&record.key, &record.value] {
        size += 5 + field_len(field.as_ref().map_or(0, Bytes::len))? as usize;
    }
    field_len(record.headers.len())?;
    for (key, value) in &record.headers {
        size += 10 + field_len(key.len())? as usize;
        size += field_len(value.as_ref().map_or(0, Bytes::len))? as usize;
    }
    Ok(size)
}

fn record_body_size(record: &Record, timestamp_delta: i64, offset_delta: i32) -> usize {
    1 + varlong_size(timestamp_delta)
        + varint_size(offset_delta)
        + nullable_bytes_size(&record.key)
        + nullable_bytes_size(&record.value)
        + varint_size(record.headers.len() as i32)
        + record
            .headers
            .iter()
            .map(|(key, value)| varint_size(key.len() as i32) + key.len() + nullable_bytes_size(value))
            .sum::<usize>()
}

/// One batch inside [`EncodedBatches`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchSpan {
    /// Byte position of the batch in the encoded buffer.
    pub(crate) position: usize,
    /// Size of the batch in bytes.
    pub(crate) len: usize,
    /// Index of the batch's first record among the appended records.
    pub(crate) first_record: u64,
    /// Number of records in the batch.
    pub(crate) record_count: u32,
    /// Largest record timestamp in the batch.
    pub(crate) max_timestamp: i64,
}

/// The records of one append, encoded as one or more consecutive RecordBatches whose base
/// offsets are still to be assigned.
#[derive(Debug)]
pub(crate) struct EncodedBatches {
    buf: Vec<u8>,
    batches: Vec<BatchSpan>,
    record_count: u64,
}

impl EncodedBatches {
    /// Encodes `records`, starting a new batch whenever the current one would pass
    /// `max_batch_bytes` (a record larger than that gets a batch of its own).
    pub(crate) fn encode(records: &[Record], max_batch_bytes: usize) -> Result<Self, BatchError> {
        let mut bounds = Vec::with_capacity(records.len());
        let mut capacity = 0usize;
        for record in records {
            let bound = record_size_bound(record)?;
            capacity = capacity.saturating_add(bound);
            bounds.push(bound);
        }
        let mut encoded = EncodedBatches {
            buf: Vec::with_capacity(capacity.saturating_add(BATCH_HEADER_SIZE)),
            batches: Vec::new(),
            record_count: records.len() as u64,
        };
        let mut start = 0;
        while start < records.len() {
            let mut end = start;
            let mut size = BATCH_HEADER_SIZE;
            while end < records.len()
                && (end == start
                    || (size.saturating_add(bounds[end]) <= max_batch_bytes && end - start < i32::MAX as usize))
            {
                size = size.saturating_add(bounds[end]);
                end += 1;
            }
            encoded.encode_batch(&records[start..end], start as u64)?;
            start = end;
        }
        Ok(encoded)
    }

    fn encode_batch(&mut self, records: &[Record], first_record: u64) -> Result<(), BatchError> {
        let position = self.buf.len();
        let layout = BatchLayout {
            offset_deltas: None,
            last_offset_delta: records.len() as i32 - 1,
            attributes: 0,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
        };
        let max_timestamp = put_batch(&mut self.buf, records, &layout)?;
        let len = self.buf.len() - position;
        self.batches.push(BatchSpan { position, len, first_record, record_count: records.len() as u32, max_timestamp });
        Ok(())
    }

    /// Batches already laid out in `buf` (see `ingest`).
    pub(super) fn from_parts(buf: Vec<u8>, batches: Vec<BatchSpan>, record_count: u64) -> Self {
        EncodedBatches { buf, batches, record_count }
    }

    /// Gives the first record offset `base_offset`, and each following batch the offset after
    /// its predecessor. The CRC does not cover base offsets, so no checksum changes.
    pub(crate) fn assign_offsets(&mut self, base_offset: i64) {
        for span in &self.batches {
            let offset = base_offset + span.first_record as i64;
            self.buf[span.position..span.position + 8].copy_from_slice(&offset.to_be_bytes());
        }
    }

    /// The encoded batches, back to back.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Where each batch sits in [`Self::bytes`].
    pub(crate) fn batches(&self) -> &[BatchSpan] {
        &self.batches
    }

    /// Number of records encoded.
    pub(crate) fn record_count(&self) -> u64 {
        self.record_count
    }
}

/// How a batch lays out its offsets and which producer it names.
struct BatchLayout<'a> {
    /// Each record's offset delta; `None` numbers them 0, 1, 2, ...
    offset_deltas: Option<&'a [i32]>,
    last_offset_delta: i32,
    attributes: i16,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
}

/// Appends one uncompressed batch of `records` to `buf` (base offset zero, to be patched), and
/// returns its largest timestamp.
fn put_batch(buf: &mut Vec<u8>, records: &[Record], layout: &BatchLayout<'_>) -> Result<i64, BatchError> {
    let position = buf.len();
    let (min_timestamp, max_timestamp) = records
        .iter()
        .fold((i64::MAX, i64::MIN), |(min, max), record| (min.min(record.timestamp), max.max(record.timestamp)));
    buf.resize(position + BATCH_HEADER_SIZE, 0);
    for (index, record) in records.iter().enumerate() {
        // As kafka-protocol (and unlike the Java producer), the base timestamp is the
        // minimum, so deltas are never negative. Wrapping keeps any i64 round-trippable.
        let timestamp_delta = record.timestamp.wrapping_sub(min_timestamp);
        let offset_delta = layout.offset_deltas.map_or(index as i32, |deltas| deltas[index]);
        let body = record_body_size(record, timestamp_delta, offset_delta);
        put_varint(buf, field_len(body)?);
        buf.push(0);
        put_varlong(buf, timestamp_delta);
        put_varint(buf, offset_delta);
        put_nullable_bytes(buf, &record.key);
        put_nullable_bytes(buf, &record.value);
        put_varint(buf, record.headers.len() as i32);
        for (key, value) in &record.headers {
            put_varint(buf, key.len() as i32);
            buf.extend_from_slice(key.as_bytes());
            put_nullable_bytes(buf, value);
        }
    }
    let len = buf.len() - position;
    let batch_length = field_len(len - LOG_OVERHEAD)?;
    let header = &mut buf[position..position + BATCH_HEADER_SIZE];
    // The base offset (bytes 0..8) stays zero until the caller patches it in.
    header[8..12].copy_from_slice(&batch_length.to_be_bytes());
    header[PARTITION_LEADER_EPOCH_OFFSET..MAGIC_OFFSET].copy_from_slice(&LEADER_EPOCH.to_be_bytes());
    header[MAGIC_OFFSET] = MAGIC_V2 as u8;
    header[ATTRIBUTES_OFFSET..LAST_OFFSET_DELTA_OFFSET].copy_from_slice(&layout.attributes.to_be_bytes());
    header[LAST_OFFSET_DELTA_OFFSET..BASE_TIMESTAMP_OFFSET].copy_from_slice(&layout.last_offset_delta.to_be_bytes());
    header[BASE_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET].copy_from_slice(&min_timestamp.to_be_bytes());
    header[MAX_TIMESTAMP_OFFSET..PRODUCER_ID_OFFSET].copy_from_slice(&max_timestamp.to_be_bytes());
    header[PRODUCER_ID_OFFSET..PRODUCER_EPOCH_OFFSET].copy_from_slice(&layout.producer_id.to_be_bytes());
    header[PRODUCER_EPOCH_OFFSET..BASE_SEQUENCE_OFFSET].copy_from_slice(&layout.producer_epoch.to_be_bytes());
    header[BASE_SEQUENCE_OFFSET..RECORD_COUNT_OFFSET].copy_from_slice(&layout.base_sequence.to_be_bytes());
    header[RECORD_COUNT_OFFSET..BATCH_HEADER_SIZE].copy_from_slice(&(records.len() as i32).to_be_bytes());
    let crc = crc32c::crc32c(&buf[position + ATTRIBUTES_OFFSET..]);
    buf[position + CRC_OFFSET..position + ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
    Ok(max_timestamp)
}

/// Re-encodes the batch `original` with only `retained` of its records (non-empty, in offset
/// order, all within the batch), the way Kafka's cleaner does: the base offset and the last
/// offset delta stay the original's, so the batch still spans the same offsets and the records
/// keep theirs (with gaps where records went); the producer id, epoch and base sequence stay
/// too. The result is uncompressed whatever the original was, and stamped `CreateTime` with
/// the records' own timestamps.
pub(crate) fn encode_retained(original: &BatchHeader, retained: &[StoredRecord]) -> Result<Vec<u8>, BatchError> {
    let mut offset_deltas = Vec::with_capacity(retained.len());
    for record in retained {
        let delta = record.offset - original.base_offset;
        if !(0..=i64::from(original.last_offset_delta)).contains(&delta) {
            return Err(BatchError::InvalidHeader { reason: "retained record outside its batch" });
        }
        offset_deltas.push(delta as i32);
    }
    let records: Vec<Record> = retained.iter().cloned().map(StoredRecord::into_record).collect();
    let layout = BatchLayout {
        offset_deltas: Some(&offset_deltas),
        last_offset_delta: original.last_offset_delta,
        attributes: original.attributes & TRANSACTIONAL_FLAG,
        producer_id: original.producer_id,
        producer_epoch: original.producer_epoch,
        base_sequence: original.base_sequence,
    };
    let mut buf = Vec::new();
    put_batch(&mut buf, &records, &layout)?;
    buf[..8].copy_from_slice(&original.base_offset.to_be_bytes());
    Ok(buf)
}

/// Encodes `records` as one uncompressed batch stamped with a producer's id, epoch and base
/// sequence (an idempotent producer's batch; `NO_PRODUCER_ID` and friends for a plain one), base
/// offset zero: what a Kafka client sends in a Produce request.
pub(crate) fn encode_producer_batch(
    records: &[Record],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Result<Vec<u8>, BatchError> {
    let mut capacity = BATCH_HEADER_SIZE;
    for record in records {
        capacity = capacity.saturating_add(record_size_bound(record)?);
    }
    let mut buf = Vec::with_capacity(capacity);
    let layout = BatchLayout {
        offset_deltas: None,
        last_offset_delta: records.len() as i32 - 1,
        attributes: 0,
        producer_id,
        producer_epoch,
        base_sequence,
    };
    put_batch(&mut buf, records, &layout)?;
    Ok(buf)
}
