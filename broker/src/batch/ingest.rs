//! Batches that arrive already encoded, from a Kafka producer: checked, then stored as sent.
//!
//! A producer's RecordBatch bytes are kept byte for byte, so every codec (gzip, snappy, lz4,
//! zstd) passes through and a consumer gets exactly what the producer wrote. Only two header
//! fields change, both outside the CRC: the base offset (assigned at append, as for encoded
//! batches) and the partition leader epoch (this log's constant, which recovery checks).
//!
//! Everything is checked before anything is stored, because a batch that is stored is trusted by
//! every reader: framing, magic, CRC32C, a record count the bytes can hold (bounded before any
//! decoder reserves memory for it), `lastOffsetDelta == recordCount - 1` (what Kafka requires of
//! producers), and every record's framing (decompressing compressed batches to check them).

use bytes::Bytes;

use super::decode::batch_records;
use super::encode::{BatchSpan, EncodedBatches};
use super::header::{BatchError, BatchHeader, LEADER_EPOCH, PARTITION_LEADER_EPOCH_OFFSET, check_batch};

/// Attribute bit of a transactional batch.
const TRANSACTIONAL_FLAG: i16 = 0x10;
/// Attribute bit of a control batch (transaction markers).
const CONTROL_FLAG: i16 = 0x20;

/// What a producer's batch says about who wrote it, for idempotence checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerBatchInfo {
    /// The producer id, or -1 for a producer that is not idempotent.
    pub producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// The sequence number of the batch's first record.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
}

impl From<&BatchHeader> for ProducerBatchInfo {
    fn from(header: &BatchHeader) -> Self {
        ProducerBatchInfo {
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            record_count: header.record_count,
        }
    }
}

/// Checks one batch from a producer and every record in it; also the index (in the batch) of
/// its first record without a key, which a compacted topic refuses.
fn check_producer_batch(batch: &Bytes) -> Result<(BatchHeader, Option<usize>), BatchError> {
    let header = check_batch(batch)?;
    if header.record_count == 0 {
        return Err(BatchError::InvalidHeader { reason: "empty batch" });
    }
    if i64::from(header.last_offset_delta) != i64::from(header.record_count) - 1 {
        return Err(BatchError::InvalidHeader { reason: "last offset delta does not match the record count" });
    }
    if header.attributes & (TRANSACTIONAL_FLAG | CONTROL_FLAG) != 0 {
        return Err(BatchError::InvalidHeader { reason: "transactional and control batches are not supported" });
    }
    // `batch_records` bounds the count against the bytes (or the compressed-batch limit) first.
    let mut count = 0usize;
    let mut first_keyless = None;
    for (index, record) in batch_records(batch)?.enumerate() {
        let record = record?;
        if record.offset != header.base_offset.wrapping_add(index as i64) {
            return Err(BatchError::MalformedRecord { index, reason: "offset deltas are not consecutive" });
        }
        if record.key.is_none() && first_keyless.is_none() {
            first_keyless = Some(index);
        }
        count += 1;
    }
    if count != header.record_count as usize {
        return Err(BatchError::InvalidHeader { reason: "record count does not match the records" });
    }
    Ok((header, first_keyless))
}

/// A producer's batches for one partition, checked and ready for [`Log::append_checked`]
/// (made by [`Log::check_batches`]).
///
/// [`Log::append_checked`]: crate::Log::append_checked
/// [`Log::check_batches`]: crate::Log::check_batches
#[derive(Debug)]
pub struct CheckedBatches {
    pub(crate) encoded: EncodedBatches,
    producers: Vec<ProducerBatchInfo>,
    /// The index (among all the batches' records) of the first record without a key.
    first_keyless: Option<usize>,
}

impl CheckedBatches {
    /// Checks `bytes`, the concatenated RecordBatches a producer sent for one partition.
    pub(crate) fn check(bytes: &Bytes) -> Result<Self, BatchError> {
        let (encoded, producers, first_keyless) = EncodedBatches::from_producer(bytes)?;
        Ok(CheckedBatches { encoded, producers, first_keyless })
    }

    /// The index (among all the batches' records) of the first record without a key, if any: a
    /// compacted topic refuses it, as Kafka does.
    pub(crate) fn first_keyless(&self) -> Option<usize> {
        self.first_keyless
    }

    /// What each batch says about its producer, in order.
    pub fn producers(&self) -> &[ProducerBatchInfo] {
        &self.producers
    }

    /// Number of records in all the batches.
    pub fn record_count(&self) -> u64 {
        self.encoded.record_count()
    }

    /// Size of all the batches in bytes.
    pub fn len(&self) -> usize {
        self.encoded.bytes().len()
    }

    /// Whether there are no batches at all.
    pub fn is_empty(&self) -> bool {
        self.encoded.batches().is_empty()
    }
}

impl EncodedBatches {
    /// Takes the concatenated RecordBatches of one produce request for one partition, checks
    /// them all (see the module docs), and returns them ready to append, with the partition
    /// leader epoch already rewritten, and what each batch says about its producer.
    ///
    /// # Errors
    ///
    /// The first [`BatchError`] found; nothing is returned then.
    pub(crate) fn from_producer(bytes: &Bytes) -> Result<(Self, Vec<ProducerBatchInfo>, Option<usize>), BatchError> {
        let mut position = 0usize;
        let mut spans = Vec::new();
        let mut producers = Vec::new();
        let mut record_count = 0u64;
        let mut first_keyless = None;
        while position < bytes.len() {
            let header = BatchHeader::parse(&bytes[position..])?;
            let end = position
                .checked_add(header.size())
                .filter(|end| *end <= bytes.len())
                .ok_or(BatchError::Truncated { needed: header.size(), available: bytes.len() - position })?;
            let batch = bytes.slice(position..end);
            let (header, keyless) = check_producer_batch(&batch)?;
            if first_keyless.is_none() {
                first_keyless = keyless.map(|index| record_count as usize + index);
            }
            spans.push(BatchSpan {
                position,
                len: batch.len(),
                first_record: record_count,
                record_count: header.record_count as u32,
                max_timestamp: header.max_timestamp,
            });
            producers.push(ProducerBatchInfo::from(&header));
            record_count += header.record_count as u64;
            position = end;
        }
        let mut buf = bytes.to_vec();
        for span in &spans {
            let at = span.position + PARTITION_LEADER_EPOCH_OFFSET;
            buf[at..at + 4].copy_from_slice(&LEADER_EPOCH.to_be_bytes());
        }
        Ok((EncodedBatches::from_parts(buf, spans, record_count), producers, first_keyless))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    use super::*;
    use crate::batch::decode::decode_batch;

    pub(crate) fn kafka_batch(compression: Compression, count: i32, producer_id: i64) -> Bytes {
        let records: Vec<KafkaRecord> = (0..count)
            .map(|index| KafkaRecord {
                transactional: false,
                delete_horizon: false,
                control: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch: if producer_id < 0 { -1 } else { 0 },
                timestamp_type: TimestampType::Creation,
                offset: i64::from(index),
                // kafka-protocol starts a new batch where `offset - sequence` changes.
                sequence: index,
                timestamp: 1_700_000_000_000 + i64::from(index),
                key: Some(Bytes::from(format!("key-{index}"))),
                value: Some(Bytes::from(format!("value-{index}-{}", "x".repeat(100)))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression })
            .expect("kafka-protocol encodes");
        buf.freeze()
    }

    #[test]
    fn compressed_producer_batches_are_kept_byte_for_byte_but_the_leader_epoch() {
        for compression in
            [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd]
        {
            let sent = kafka_batch(compression, 5, 7);
            let (mut encoded, producers, _) = EncodedBatches::from_producer(&sent).expect("accepted");
            assert_eq!(
                producers,
                vec![ProducerBatchInfo { producer_id: 7, producer_epoch: 0, base_sequence: 0, record_count: 5 }]
            );
            encoded.assign_offsets(100);
            let stored = encoded.bytes();
            assert_eq!(stored.len(), sent.len());
            assert_eq!(&stored[16..], &sent[16..], "{compression:?}: only offset and epoch may change");
            let records = decode_batch(&Bytes::copy_from_slice(stored)).expect("decodes");
            assert_eq!(records.len(), 5);
            assert_eq!(records[4].offset, 104);
            assert_eq!(records[4].key.as_deref(), Some(&b"key-4"[..]));
        }
    }

    #[test]
    fn several_batches_in_one_request_get_consecutive_offsets() {
        let mut sent = BytesMut::new();
        sent.extend_from_slice(&kafka_batch(Compression::None, 3, -1));
        sent.extend_from_slice(&kafka_batch(Compression::Lz4, 2, -1));
        let (encoded, _, _) = EncodedBatches::from_producer(&sent.freeze()).expect("accepted");
        assert_eq!(encoded.record_count(), 5);
        assert_eq!(encoded.batches()[1].first_record, 3);
    }

    #[test]
    fn corrupt_truncated_or_lying_batches_are_refused() {
        let good = kafka_batch(Compression::None, 3, -1);
        let mut flipped = good.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(EncodedBatches::from_producer(&Bytes::from(flipped)), Err(BatchError::CrcMismatch { .. })));
        assert!(EncodedBatches::from_producer(&good.slice(..good.len() - 1)).is_err());
        // A record count of a billion in a small batch, CRC fixed up: refused before allocating.
        let mut lying = good.to_vec();
        lying[57..61].copy_from_slice(&1_000_000_000i32.to_be_bytes());
        let crc = crc32c::crc32c(&lying[21..]);
        lying[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(EncodedBatches::from_producer(&Bytes::from(lying)).is_err());
    }
}
