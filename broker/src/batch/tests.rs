//! Round trips, compatibility with kafka-protocol, and hostile input.

use bytes::Bytes;
use proptest::prelude::*;

use super::batch_records;
use super::decode::decode_batch;
use super::encode::EncodedBatches;
use super::header::{
    ATTRIBUTES_OFFSET, BATCH_HEADER_SIZE, BatchError, CRC_OFFSET, LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
    RECORD_COUNT_OFFSET, check_batch,
};
use super::varint::{Cursor, put_varint, put_varlong, varint_size, varlong_size};
use crate::record::{Record, StoredRecord};

pub(crate) fn arb_bytes(max: usize) -> impl Strategy<Value = Option<Bytes>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from))
}

pub(crate) fn arb_record() -> impl Strategy<Value = Record> {
    (arb_bytes(64), arb_bytes(300), proptest::collection::vec(("[a-z]{0,6}", arb_bytes(16)), 0..4), any::<i64>())
        .prop_map(|(key, value, headers, timestamp)| Record { key, value, headers, timestamp })
}

fn decode_all(encoded: &EncodedBatches) -> Vec<StoredRecord> {
    let bytes = Bytes::copy_from_slice(encoded.bytes());
    let mut records = Vec::new();
    for span in encoded.batches() {
        let batch = bytes.slice(span.position..span.position + span.len);
        let header = check_batch(&batch).expect("checks");
        assert_eq!(header.record_count as u32, span.record_count);
        assert_eq!(header.max_timestamp, span.max_timestamp);
        records.extend(decode_batch(&batch).expect("decodes"));
    }
    records
}

fn record(value: &str, timestamp: i64) -> Record {
    Record {
        key: Some(Bytes::from_static(b"key")),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: vec![("h".to_owned(), Some(Bytes::from_static(b"v")))],
        timestamp,
    }
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips_any_records(
        records in proptest::collection::vec(arb_record(), 1..40),
        base_offset in 0i64..(1 << 50),
        max_batch_bytes in 1usize..4000,
    ) {
        let mut encoded = EncodedBatches::encode(&records, max_batch_bytes).expect("encodes");
        encoded.assign_offsets(base_offset);
        let decoded = decode_all(&encoded);
        prop_assert_eq!(decoded.len(), records.len());
        for (index, (stored, original)) in decoded.into_iter().zip(&records).enumerate() {
            prop_assert_eq!(stored.offset, base_offset + index as i64);
            prop_assert_eq!(&stored.into_record(), original);
        }
    }

    #[test]
    fn skipping_before_an_offset_matches_filtering_decoded_records(
        records in proptest::collection::vec(arb_record(), 1..30),
        skip in 0i64..40,
    ) {
        let mut encoded = EncodedBatches::encode(&records, usize::MAX).expect("encodes");
        encoded.assign_offsets(100);
        let batch = Bytes::copy_from_slice(encoded.bytes());
        let mut skipped = batch_records(&batch).expect("checks");
        skipped.skip_before(100 + skip).expect("skips");
        let skipped: Vec<StoredRecord> = skipped.collect::<Result<_, _>>().expect("decodes");
        let filtered: Vec<StoredRecord> = decode_batch(&batch)
            .expect("decodes")
            .into_iter()
            .filter(|record| record.offset >= 100 + skip)
            .collect();
        prop_assert_eq!(skipped, filtered);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_batch(&Bytes::from(bytes));
    }

    /// Damage inside the records with the CRC recomputed, so the record parser itself (not
    /// just the checksum) sees hostile input.
    #[test]
    fn decoding_damaged_records_with_a_valid_crc_never_panics(
        records in proptest::collection::vec(arb_record(), 1..5),
        damage in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let encoded = EncodedBatches::encode(&records, usize::MAX).expect("encodes");
        let mut bytes = encoded.bytes().to_vec();
        for (index, byte) in damage {
            let at = BATCH_HEADER_SIZE + index.index(bytes.len() - BATCH_HEADER_SIZE);
            bytes[at] = byte;
        }
        let crc = crc32c::crc32c(&bytes[ATTRIBUTES_OFFSET..]);
        bytes[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
        let _ = decode_batch(&Bytes::from(bytes));
    }

    /// Our bytes are exactly what kafka-protocol's encoder writes, and its decoder reads them
    /// back (headers without duplicate keys, since its model is a map).
    #[test]
    fn encoding_is_byte_identical_to_kafka_protocol(
        records in proptest::collection::vec(arb_record(), 1..20),
        base_offset in 0i64..(1 << 40),
    ) {
        let records: Vec<Record> = records
            .into_iter()
            .map(|mut record| {
                let mut seen = std::collections::HashSet::new();
                record.headers.retain(|(key, _)| seen.insert(key.clone()));
                record.timestamp >>= 2; // keep max - min inside i64
                record
            })
            .collect();
        let mut ours = EncodedBatches::encode(&records, usize::MAX).expect("encodes");
        ours.assign_offsets(base_offset);
        let theirs = encode_with_kafka_protocol(&records, base_offset, kafka_protocol::records::Compression::None);
        prop_assert_eq!(ours.bytes(), &theirs[..]);
        let mut input = Bytes::copy_from_slice(ours.bytes());
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut input).expect("kafka-protocol decodes");
        prop_assert_eq!(set.records.len(), records.len());
        for (decoded, original) in set.records.iter().zip(&records) {
            prop_assert_eq!(&decoded.key, &original.key);
            prop_assert_eq!(&decoded.value, &original.value);
            prop_assert_eq!(decoded.timestamp, original.timestamp);
            prop_assert_eq!(decoded.headers.len(), original.headers.len());
        }
    }
}

fn encode_with_kafka_protocol(
    records: &[Record],
    base_offset: i64,
    compression: kafka_protocol::records::Compression,
) -> Vec<u8> {
    use kafka_protocol::records as kp;
    let records: Vec<kp::Record> = records
        .iter()
        .enumerate()
        .map(|(index, record)| kp::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: kp::TimestampType::Creation,
            offset: base_offset + index as i64,
            // offset - sequence must be constant within a batch; base sequence comes out -1.
            sequence: index as i32 - 1,
            timestamp: record.timestamp,
            key: record.key.clone(),
            value: record.value.clone(),
            headers: record.headers.iter().map(|(key, value)| (key.clone().into(), value.clone())).collect(),
        })
        .collect();
    let mut buf = Vec::new();
    kp::RecordBatchEncoder::encode(&mut buf, &records, &kp::RecordEncodeOptions { version: 2, compression })
        .expect("kafka-protocol encodes");
    buf
}

#[test]
fn duplicate_header_keys_survive_a_round_trip() {
    let original = Record {
        key: None,
        value: None,
        headers: vec![
            ("k".to_owned(), Some(Bytes::from_static(b"1"))),
            ("k".to_owned(), None),
            ("k".to_owned(), Some(Bytes::from_static(b"3"))),
        ],
        timestamp: 5,
    };
    let encoded = EncodedBatches::encode(std::slice::from_ref(&original), usize::MAX).expect("encodes");
    let decoded = decode_all(&encoded);
    assert_eq!(decoded[0].clone().into_record(), original);
}

#[test]
fn compressed_batches_from_kafka_producers_decode() {
    let records = vec![record("one", 10), record("two", 11)];
    let bytes = encode_with_kafka_protocol(&records, 7, kafka_protocol::records::Compression::Gzip);
    let decoded = decode_batch(&Bytes::from(bytes)).expect("decodes");
    assert_eq!(decoded.len(), 2);
    assert_eq!(decoded[1].offset, 8);
    assert_eq!(decoded[1].clone().into_record(), records[1]);
}

#[test]
fn a_large_append_splits_into_several_batches_with_consecutive_offsets() {
    let records: Vec<Record> = (0..100).map(|index| record(&"x".repeat(100), index)).collect();
    let mut encoded = EncodedBatches::encode(&records, 1000).expect("encodes");
    assert!(encoded.batches().len() > 10);
    for span in encoded.batches() {
        assert!(span.len <= 1000);
    }
    encoded.assign_offsets(1000);
    let decoded = decode_all(&encoded);
    let offsets: Vec<i64> = decoded.iter().map(|record| record.offset).collect();
    assert_eq!(offsets, (1000..1100).collect::<Vec<_>>());
}

#[test]
fn a_single_record_larger_than_the_batch_limit_gets_its_own_batch() {
    let records = vec![record("small", 1), record(&"y".repeat(5000), 2), record("small", 3)];
    let encoded = EncodedBatches::encode(&records, 1000).expect("encodes");
    let counts: Vec<u32> = encoded.batches().iter().map(|span| span.record_count).collect();
    assert_eq!(counts, vec![1, 1, 1]);
}

#[test]
fn crc_mismatch_is_detected() {
    let encoded = EncodedBatches::encode(&[record("v", 1)], usize::MAX).expect("encodes");
    let mut bytes = encoded.bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    assert!(matches!(decode_batch(&Bytes::from(bytes)), Err(BatchError::CrcMismatch { .. })));
}

#[test]
fn a_huge_record_count_is_refused_before_allocating() {
    let encoded = EncodedBatches::encode(&[record("v", 1)], usize::MAX).expect("encodes");
    let mut bytes = encoded.bytes().to_vec();
    bytes[RECORD_COUNT_OFFSET..BATCH_HEADER_SIZE].copy_from_slice(&i32::MAX.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[ATTRIBUTES_OFFSET..]);
    bytes[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(decode_batch(&Bytes::from(bytes.clone())), Err(BatchError::RecordCountTooLarge { .. })));
    // Same with the gzip bit set: the kafka-protocol path is bounded too.
    bytes[ATTRIBUTES_OFFSET + 1] = 1;
    let crc = crc32c::crc32c(&bytes[ATTRIBUTES_OFFSET..]);
    bytes[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(decode_batch(&Bytes::from(bytes)), Err(BatchError::RecordCountTooLarge { .. })));
}

#[test]
fn varint_sizes_match_the_encoder() {
    for value in [0, 1, -1, 63, -64, 64, -65, 8191, -8192, 8192, i32::MAX, i32::MIN] {
        let mut buf = Vec::new();
        put_varint(&mut buf, value);
        assert_eq!(buf.len(), varint_size(value), "{value}");
        let mut cursor = Cursor { data: &buf, position: 0 };
        assert_eq!(cursor.varint(), Ok(value));
    }
    for value in [0, -1, i64::MAX, i64::MIN, 1 << 40] {
        let mut buf = Vec::new();
        put_varlong(&mut buf, value);
        assert_eq!(buf.len(), varlong_size(value), "{value}");
        let mut cursor = Cursor { data: &buf, position: 0 };
        assert_eq!(cursor.varlong(), Ok(value));
    }
}
