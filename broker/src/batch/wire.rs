//! RecordBatch v2 for a Kafka client: the batches a producer sends and the bytes a fetch
//! answers with, for the runtime's log backend over the Kafka protocol.
//!
//! Producing, records are encoded by this crate's own encoder (duplicate header keys kept) and
//! then, when asked, their records section is compressed with the codec Kafka names, the header
//! rewritten around it. Fetching, a broker answers with whole batches back to back and possibly
//! a partial one at the end (Kafka cuts at the byte limit); every whole batch is checked (CRC32C)
//! and decoded, the partial tail ignored, transaction markers skipped.

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use super::decode::batch_records;
use super::encode::encode_producer_batch;
use super::header::{
    ATTRIBUTES_OFFSET, BATCH_HEADER_SIZE, BatchError, BatchHeader, CRC_OFFSET, LOG_OVERHEAD, NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID, NO_SEQUENCE, check_batch,
};
use crate::record::{Record, StoredRecord};

/// A producer's compression codec (Kafka's `compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The codec Kafka's `compression.type` names (`none`, `gzip`, `snappy`, `lz4`, `zstd`).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "none" => Compression::None,
            "gzip" => Compression::Gzip,
            "snappy" => Compression::Snappy,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd,
            _ => return None,
        })
    }

    /// The codec's number in a batch's attributes.
    fn attribute(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

/// The idempotent producer's stamp on a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStamp {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The sequence number of the batch's first record in its partition.
    pub base_sequence: i32,
}

/// Encodes `records` (at least one) as one batch with base offset zero, as a Produce request
/// carries it.
///
/// # Errors
/// A record over the format's limits, or the codec failing.
pub fn encode_batch(
    records: &[Record],
    stamp: Option<ProducerStamp>,
    compression: Compression,
) -> Result<Bytes, BatchError> {
    let (producer_id, producer_epoch, base_sequence) = match stamp {
        Some(stamp) => (stamp.producer_id, stamp.producer_epoch, stamp.base_sequence),
        None => (NO_PRODUCER_ID, NO_PRODUCER_EPOCH, NO_SEQUENCE),
    };
    let plain = encode_producer_batch(records, producer_id, producer_epoch, base_sequence)?;
    if compression == Compression::None {
        return Ok(Bytes::from(plain));
    }
    let mut batch = Vec::with_capacity(plain.len() / 2 + BATCH_HEADER_SIZE);
    batch.extend_from_slice(&plain[..BATCH_HEADER_SIZE]);
    let section = &plain[BATCH_HEADER_SIZE..];
    let fill = |tmp: &mut BytesMut| {
        tmp.extend_from_slice(section);
        Ok(())
    };
    match compression {
        Compression::None => Ok(()),
        Compression::Gzip => Gzip::compress(&mut batch, fill),
        Compression::Snappy => Snappy::compress(&mut batch, fill),
        Compression::Lz4 => Lz4::compress(&mut batch, fill),
        Compression::Zstd => Zstd::compress(&mut batch, fill),
    }
    .map_err(|error| BatchError::Compressed { source: error.into() })?;
    let batch_length = i32::try_from(batch.len() - LOG_OVERHEAD)
        .map_err(|_too_long| BatchError::RecordTooLarge { size: batch.len() })?;
    batch[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let attributes =
        i16::from_be_bytes([batch[ATTRIBUTES_OFFSET], batch[ATTRIBUTES_OFFSET + 1]]) | compression.attribute();
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
    Ok(Bytes::from(batch))
}

/// What [`decode_fetched`] read.
#[derive(Debug, Default)]
pub struct Fetched {
    /// The records at or past the offset asked for, in offset order.
    pub records: Vec<StoredRecord>,
    /// The offset after the last whole batch (data or control), or `None` when no whole batch
    /// was there: where the next fetch starts even if every record was a marker or compacted
    /// away.
    pub next_offset: Option<i64>,
}

/// Decodes a fetch answer's record bytes: whole batches back to back, maybe a partial one at
/// the end (left for the next fetch). Records before `from` (the batch holding a mid-batch
/// offset comes whole) and control batches are skipped. Keys and values are slices of `data`.
///
/// # Errors
/// A whole batch that fails its checks (CRC, framing, a record that does not parse).
pub fn decode_fetched(data: &Bytes, from: i64) -> Result<Fetched, BatchError> {
    let mut fetched = Fetched::default();
    let mut position = 0usize;
    while data.len() - position >= BATCH_HEADER_SIZE {
        let header = BatchHeader::parse(&data[position..])?;
        let size = header.size();
        if data.len() - position < size {
            break;
        }
        let batch = data.slice(position..position + size);
        position += size;
        let header = check_batch(&batch)?;
        fetched.next_offset = Some(header.next_offset());
        if header.is_control() || header.next_offset() <= from {
            continue;
        }
        let mut records = batch_records(&batch)?;
        records.skip_before(from)?;
        for record in records {
            fetched.records.push(record?);
        }
    }
    Ok(fetched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(count: usize) -> Vec<Record> {
        (0..count)
            .map(|index| Record {
                key: Some(Bytes::from(format!("key-{index}"))),
                value: Some(Bytes::from(format!("value-{index}-{}", "x".repeat(index)))),
                // Duplicate header keys are legal in Kafka and must survive compression.
                headers: vec![("h".into(), Some(Bytes::from_static(b"1"))), ("h".into(), None)],
                timestamp: 1_700_000_000_000 + index as i64,
            })
            .collect()
    }

    fn with_offsets(batch: &Bytes, base_offset: i64) -> Vec<u8> {
        let mut bytes = batch.to_vec();
        bytes[..8].copy_from_slice(&base_offset.to_be_bytes());
        bytes
    }

    #[test]
    fn every_codec_round_trips_with_duplicate_headers_and_the_producer_stamp() {
        let input = records(50);
        let stamp = ProducerStamp { producer_id: 7, producer_epoch: 2, base_sequence: 40 };
        for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
            let compression = Compression::from_name(codec).expect("a codec");
            let batch = encode_batch(&input, Some(stamp), compression).expect("encodes");
            let header = check_batch(&batch).expect("a valid batch");
            assert_eq!(header.compression(), compression.attribute(), "{codec}");
            assert_eq!((header.producer_id, header.producer_epoch, header.base_sequence), (7, 2, 40));
            let data = Bytes::from(with_offsets(&batch, 100));
            let fetched = decode_fetched(&data, 0).expect("decodes");
            assert_eq!(fetched.next_offset, Some(150), "{codec}");
            assert_eq!(fetched.records.len(), 50, "{codec}");
            for (index, (record, original)) in fetched.records.iter().zip(&input).enumerate() {
                assert_eq!(record.offset, 100 + index as i64);
                assert_eq!(
                    (&record.key, &record.value, &record.headers),
                    (&original.key, &original.value, &original.headers)
                );
                assert_eq!(record.timestamp, original.timestamp);
            }
        }
        let plain = encode_batch(&input, None, Compression::None).expect("encodes");
        let zstd = encode_batch(&input, None, Compression::Zstd).expect("encodes");
        assert!(zstd.len() < plain.len() / 2, "zstd compresses: {} of {}", zstd.len(), plain.len());
    }

    #[test]
    fn a_fetch_skips_records_before_its_offset_and_ignores_a_partial_last_batch() {
        let first = encode_batch(&records(10), None, Compression::None).expect("encodes");
        let second = encode_batch(&records(5), None, Compression::Lz4).expect("encodes");
        let mut data = with_offsets(&first, 0);
        data.extend_from_slice(&with_offsets(&second, 10));
        let whole = data.len();
        // A broker cuts its answer at the byte limit, mid-batch.
        data.extend_from_slice(&with_offsets(&first, 15)[..40]);
        let data = Bytes::from(data);
        let fetched = decode_fetched(&data, 7).expect("decodes");
        let offsets: Vec<i64> = fetched.records.iter().map(|record| record.offset).collect();
        assert_eq!(offsets, (7..15).collect::<Vec<_>>());
        assert_eq!(fetched.next_offset, Some(15));
        // A flipped byte in a whole batch is an error, not silently skipped data.
        let mut corrupt = data[..whole].to_vec();
        corrupt[BATCH_HEADER_SIZE + 3] ^= 0xff;
        assert!(decode_fetched(&Bytes::from(corrupt), 0).is_err());
        assert!(decode_fetched(&Bytes::new(), 0).expect("empty").next_offset.is_none());
    }
}
