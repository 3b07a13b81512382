//! Decoding the records of a checked batch, lazily, as zero-copy slices of the batch.

use bytes::Bytes;

use super::header::{
    BATCH_HEADER_SIZE, BatchError, BatchHeader, MAX_COMPRESSED_RECORD_COUNT, MIN_HEADER_SIZE, MIN_RECORD_SIZE,
    check_batch,
};
use super::varint::Cursor;
use crate::record::StoredRecord;

/// Checks and decodes one whole batch into its records. Keys, values and header values are
/// slices of `batch` (no copies). Never panics, whatever the bytes.
#[cfg(test)]
pub(crate) fn decode_batch(batch: &Bytes) -> Result<Vec<StoredRecord>, BatchError> {
    batch_records(batch)?.collect()
}

/// Checks one whole batch (framing, CRC32C, a record count its bytes can hold) and returns its
/// records to decode one at a time, so a reader can skip those before its offset without
/// building them and stop at its byte budget without decoding the rest. Keys, values and header
/// values are slices of `batch` (no copies). Never panics, whatever the bytes.
pub(crate) fn batch_records(batch: &Bytes) -> Result<BatchRecords<'_>, BatchError> {
    let header = check_batch(batch)?;
    let inner = match header.compression() {
        0 => {
            let limit = (batch.len() - BATCH_HEADER_SIZE) / MIN_RECORD_SIZE;
            let count = header.record_count as usize;
            if count > limit {
                return Err(BatchError::RecordCountTooLarge { count: header.record_count, limit });
            }
            RecordsInner::Plain { batch, header, position: BATCH_HEADER_SIZE, index: 0, count }
        }
        1..=4 => RecordsInner::Decoded(decode_compressed_records(batch, &header)?.into_iter()),
        codec => return Err(BatchError::UnknownCompression { codec }),
    };
    Ok(BatchRecords { inner })
}

/// The records of one checked batch; see [`batch_records`].
#[derive(Debug)]
pub(crate) struct BatchRecords<'a> {
    inner: RecordsInner<'a>,
}

#[derive(Debug)]
enum RecordsInner<'a> {
    Plain { batch: &'a Bytes, header: BatchHeader, position: usize, index: usize, count: usize },
    Decoded(std::vec::IntoIter<StoredRecord>),
}

impl BatchRecords<'_> {
    /// Moves past the records with offsets below `offset`, reading only their lengths and
    /// offset deltas.
    pub(crate) fn skip_before(&mut self, offset: i64) -> Result<(), BatchError> {
        match &mut self.inner {
            RecordsInner::Plain { batch, header, position, index, count } => {
                while *index < *count {
                    let mut cursor = Cursor { data: batch, position: *position };
                    let (end, offset_delta) = peek_record_offset(&mut cursor)
                        .map_err(|reason| BatchError::MalformedRecord { index: *index, reason })?;
                    if header.base_offset.wrapping_add(i64::from(offset_delta)) >= offset {
                        break;
                    }
                    *position = end;
                    *index += 1;
                }
            }
            RecordsInner::Decoded(records) => {
                while records.as_slice().first().is_some_and(|record| record.offset < offset) {
                    records.next();
                }
            }
        }
        Ok(())
    }
}

impl Iterator for BatchRecords<'_> {
    type Item = Result<StoredRecord, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            RecordsInner::Plain { batch, header, position, index, count } => {
                if *index == *count {
                    if *position != batch.len() {
                        *position = batch.len();
                        return Some(Err(BatchError::MalformedRecord {
                            index: *count,
                            reason: "bytes left after the last record",
                        }));
                    }
                    return None;
                }
                let mut cursor = Cursor { data: batch, position: *position };
                match decode_record(&mut cursor, batch, header) {
                    Ok(record) => {
                        *position = cursor.position;
                        *index += 1;
                        Some(Ok(record))
                    }
                    Err(reason) => {
                        let failed = *index;
                        // Nothing after a malformed record can be located: end the iteration.
                        *index = *count;
                        *position = batch.len();
                        Some(Err(BatchError::MalformedRecord { index: failed, reason }))
                    }
                }
            }
            RecordsInner::Decoded(records) => records.next().map(Ok),
        }
    }
}

/// Reads a record's length and offset delta; returns where the record ends and the delta.
fn peek_record_offset(cursor: &mut Cursor<'_>) -> Result<(usize, i32), &'static str> {
    let end = record_end(cursor)?;
    let mut fields = Cursor { data: &cursor.data[..end], position: cursor.position };
    let _attributes = fields.u8()?;
    let _timestamp_delta = fields.varlong()?;
    Ok((end, fields.varint()?))
}

/// Reads a record's length prefix; returns where the record ends.
fn record_end(cursor: &mut Cursor<'_>) -> Result<usize, &'static str> {
    let length = cursor.varint()?;
    if length < 0 {
        return Err("negative record length");
    }
    cursor
        .position
        .checked_add(length as usize)
        .filter(|end| *end <= cursor.data.len())
        .ok_or("record length past the end of the batch")
}

fn decode_record(cursor: &mut Cursor<'_>, batch: &Bytes, header: &BatchHeader) -> Result<StoredRecord, &'static str> {
    let end = record_end(cursor)?;
    let mut fields = Cursor { data: &cursor.data[..end], position: cursor.position };
    let _attributes = fields.u8()?;
    let timestamp_delta = fields.varlong()?;
    let offset_delta = fields.varint()?;
    let key = fields.nullable_bytes(batch)?;
    let value = fields.nullable_bytes(batch)?;
    let header_count = fields.varint()?;
    if header_count < 0 {
        return Err("negative header count");
    }
    if header_count as usize > (end - fields.position) / MIN_HEADER_SIZE {
        return Err("more headers than bytes to hold them");
    }
    let mut headers = Vec::with_capacity(header_count as usize);
    for _ in 0..header_count {
        let key_len = fields.varint()?;
        if key_len < 0 {
            return Err("negative header key length");
        }
        let key_range = fields.take(key_len as usize)?;
        let key =
            std::str::from_utf8(&fields.data[key_range]).map_err(|_utf8_error| "header key is not UTF-8")?.to_owned();
        let value = fields.nullable_bytes(batch)?;
        headers.push((key, value));
    }
    if fields.position != end {
        return Err("record length does not match its fields");
    }
    cursor.position = end;
    Ok(StoredRecord {
        offset: header.base_offset.wrapping_add(offset_delta as i64),
        key,
        value,
        headers,
        timestamp: header.base_timestamp.wrapping_add(timestamp_delta),
    })
}

fn decode_compressed_records(batch: &Bytes, header: &BatchHeader) -> Result<Vec<StoredRecord>, BatchError> {
    use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};

    if header.record_count as usize > MAX_COMPRESSED_RECORD_COUNT {
        return Err(BatchError::RecordCountTooLarge { count: header.record_count, limit: MAX_COMPRESSED_RECORD_COUNT });
    }
    // The records section is decompressed behind a copy of the header, and the records are then
    // read by the same decoder as an uncompressed batch's (kafka-protocol's own record decoder
    // keeps headers in a map, which would collapse duplicate header keys).
    let mut section = batch.slice(BATCH_HEADER_SIZE..);
    let unpack = |plain: &mut Bytes| -> anyhow::Result<Bytes> {
        let mut owned = Vec::with_capacity(BATCH_HEADER_SIZE + plain.len());
        owned.extend_from_slice(&batch[..BATCH_HEADER_SIZE]);
        owned.extend_from_slice(plain);
        Ok(Bytes::from(owned))
    };
    let plain = match header.compression() {
        1 => Gzip::decompress(&mut section, unpack),
        2 => Snappy::decompress(&mut section, unpack),
        3 => Lz4::decompress(&mut section, unpack),
        4 => Zstd::decompress(&mut section, unpack),
        codec => return Err(BatchError::UnknownCompression { codec }),
    }
    .map_err(|error| BatchError::Compressed { source: error.into() })?;
    let count = header.record_count as usize;
    let limit = (plain.len() - BATCH_HEADER_SIZE) / MIN_RECORD_SIZE;
    if count > limit {
        return Err(BatchError::RecordCountTooLarge { count: header.record_count, limit });
    }
    let mut records = Vec::with_capacity(count);
    let mut cursor = Cursor { data: &plain, position: BATCH_HEADER_SIZE };
    for index in 0..count {
        let record = decode_record(&mut cursor, &plain, header)
            .map_err(|reason| BatchError::MalformedRecord { index, reason })?;
        records.push(record);
    }
    if cursor.position != plain.len() {
        return Err(BatchError::MalformedRecord { index: count, reason: "bytes left after the last record" });
    }
    Ok(records)
}
