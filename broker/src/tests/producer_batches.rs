//! Batches appended as a Kafka producer sent them: stored as sent, read back by both readers.

use kafka_protocol::records::Compression;

use super::support::{never_flush, open};
use crate::batch::ingest::tests::kafka_batch;
use crate::{LogError, TopicConfig};

#[test]
fn compressed_producer_batches_are_served_as_sent_and_read_as_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), never_flush());
    log.ensure_topic("t", TopicConfig::default()).expect("topic");
    let codecs = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
    let mut sent = Vec::new();
    for compression in codecs {
        let batch = kafka_batch(compression, 4, -1);
        let checked = log.check_batches("t", 0, &batch).expect("valid");
        let appended = log.append_checked("t", 0, checked).expect("append");
        assert_eq!(appended.record_count(), 4);
        sent.push((appended.base_offset, batch));
    }
    for (base_offset, batch) in &sent {
        let stored = log.read_batches("t", 0, *base_offset + 2, usize::MAX).expect("read batches");
        assert_eq!(&stored[..8], &base_offset.to_be_bytes());
        assert_eq!(&stored[16..batch.len()], &batch[16..], "stored bytes are the producer's");
    }
    // weir's own readers decode every codec.
    let records = log.read("t", 0, 0, usize::MAX).expect("read");
    assert_eq!(records.len(), 20);
    for (index, record) in records.iter().enumerate() {
        assert_eq!(record.offset, index as i64);
        assert_eq!(record.key.as_deref(), Some(format!("key-{}", index % 4).as_bytes()));
    }
    // And the log reopens (recovery checks every stored batch, leader epoch included).
    drop(log);
    let log = open(dir.path(), never_flush());
    assert_eq!(log.end_offset("t", 0).expect("end"), 20);
    assert_eq!(log.read("t", 0, 17, usize::MAX).expect("read").len(), 3);
}

#[test]
fn a_corrupt_producer_batch_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), never_flush());
    log.ensure_topic("t", TopicConfig::default()).expect("topic");
    let mut batch = kafka_batch(Compression::Lz4, 4, -1).to_vec();
    let last = batch.len() - 1;
    batch[last] ^= 0xff;
    let error = log.check_batches("t", 0, &batch.into()).expect_err("refused");
    assert!(matches!(error, LogError::InvalidBatch { .. }));
    assert_eq!(log.end_offset("t", 0).expect("end"), 0);
}
