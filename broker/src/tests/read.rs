//! Appending and reading: offsets, segment rolls, byte budgets, watches, raw batches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::{Log, Record, StoredRecord, TopicConfig};

use super::support::*;

#[test]
fn log_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
    assert_send_sync::<Arc<Log>>();
}

#[test]
fn append_and_read_across_segment_rolls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_segments());
    log.ensure_topic("t", TopicConfig::default()).expect("topic");
    let mut expected = Vec::new();
    for batch in 0..40 {
        let batch_records = records(batch * 5, 5, 40);
        let result = log.append("t", 0, &batch_records).expect("append");
        assert_eq!(result.base_offset, batch as i64 * 5);
        assert_eq!(result.last_offset, batch as i64 * 5 + 4);
        expected.extend(batch_records);
    }
    assert!(log_files(dir.path(), "t", 0).len() > 3, "segments rolled");
    let all = read_all(&log, "t", 0);
    assert_offsets_are_consecutive(&all, 0);
    let read_back: Vec<Record> = all.into_iter().map(StoredRecord::into_record).collect();
    assert_eq!(read_back, expected);
    assert_eq!(log.end_offset("t", 0).expect("end"), 200);
}

#[test]
fn read_from_the_middle_of_a_batch_starts_at_that_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_segments());
    log.ensure_topic("t", TopicConfig::default()).expect("topic");
    for batch in 0..30 {
        log.append("t", 0, &records(batch * 10, 10, 20)).expect("append");
    }
    // Every offset, including ones deep inside batches in sealed and active segments.
    for from in [0, 3, 9, 10, 57, 123, 250, 299] {
        let read = log.read("t", 0, from, 200).expect("read");
        assert_eq!(read[0].offset, from, "read from {from}");
        assert_eq!(read[0].value, records(from as usize, 1, 20)[0].value);
        assert_offsets_are_consecutive(&read, from);
    }
    assert!(log.read("t", 0, 300, 1000).expect("read at end").is_empty());
    assert!(log.read("t", 0, 5000, 1000).expect("read past end").is_empty());
}

#[test]
fn read_stops_near_max_bytes_but_returns_at_least_one_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), never_flush());
    log.ensure_topic("t", TopicConfig::default()).expect("topic");
    log.append("t", 0, &records(0, 100, 1000)).expect("append");
    let one = log.read("t", 0, 0, 1).expect("read");
    assert_eq!(one.len(), 1);
    let some = log.read("t", 0, 10, 10_000).expect("read");
    let bytes: usize = some.iter().map(StoredRecord::size_hint).sum();
    assert!(bytes <= 10_000 && some.len() >= 9, "{} records, {bytes} bytes", some.len());
    assert_eq!(some[0].offset, 10);
}

#[test]
fn read_below_the_start_offset_starts_at_the_start_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_segments());
    log.ensure_topic("t", TopicConfig { retention_bytes: Some(1), ..TopicConfig::default() }).expect("topic");
    for batch in 0..20 {
        log.append("t", 0, &records(batch * 5, 5, 50)).expect("append");
    }
    log.enforce_retention().expect("retention");
    let start = log.start_offset("t", 0).expect("start");
    assert!(start > 0);
    let read = log.read("t", 0, 0, 100).expect("read");
    assert_eq!(read[0].offset, start);
}

#[tokio::test]
async fn end_offset_watch_fires_on_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), never_flush());
    log.ensure_topic("t", TopicConfig::default()).expect("topic");
    let mut watch = log.end_offset_watch("t", 0).expect("watch");
    assert_eq!(*watch.borrow_and_update(), 0);
    let appender = Arc::clone(&log);
    tokio::task::spawn_blocking(move || appender.append("t", 0, &records(0, 3, 10)).expect("append"));
    tokio::time::timeout(Duration::from_secs(10), watch.changed())
        .await
        .expect("watch fired before the deadline")
        .expect("sender alive");
    assert_eq!(*watch.borrow(), 3);
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_segments());
    log.ensure_topic("t", TopicConfig::default()).expect("topic");
    for batch in 0..30 {
        // Timestamps 1000 + offset.
        log.append("t", 0, &records(batch * 5, 5, 50)).expect("append");
    }
    assert_eq!(log.offset_for_timestamp("t", 0, 0).expect("lookup"), Some(0));
    assert_eq!(log.offset_for_timestamp("t", 0, 1_000).expect("lookup"), Some(0));
    assert_eq!(log.offset_for_timestamp("t", 0, 1_077).expect("lookup"), Some(77));
    assert_eq!(log.offset_for_timestamp("t", 0, 1_149).expect("lookup"), Some(149));
    assert_eq!(log.offset_for_timestamp("t", 0, 1_150).expect("lookup"), None);
}

#[test]
fn read_batches_returns_kafka_record_batches_from_the_one_holding_the_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), never_flush());
    log.ensure_topic("t", TopicConfig::default()).expect("topic");
    for batch in 0..3 {
        log.append("t", 0, &records(batch * 4, 4, 10)).expect("append");
    }
    let mut bytes = log.read_batches("t", 0, 6, 1 << 20).expect("read batches");
    let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut bytes).expect("kafka-protocol decodes");
    let offsets: Vec<i64> = sets.iter().flat_map(|set| set.records.iter().map(|record| record.offset)).collect();
    assert_eq!(offsets, (4..12).collect::<Vec<_>>());
    let mut one = log.read_batches("t", 0, 0, 1).expect("read one batch");
    assert_eq!(kafka_protocol::records::RecordBatchDecoder::decode_all(&mut one).expect("decodes").len(), 1);
}

#[test]
fn empty_appends_write_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), never_flush());
    log.ensure_topic("t", TopicConfig::default()).expect("topic");
    log.append("t", 0, &records(0, 2, 1)).expect("append");
    let result = log.append("t", 0, &[]).expect("empty append");
    assert_eq!((result.base_offset, result.last_offset), (2, 1));
    assert_eq!(result.record_count(), 0);
    assert_eq!(log.end_offset("t", 0).expect("end"), 2);
}

/// Run with `cargo test --release -p weir-broker -- --ignored --nocapture append_throughput`.
#[test]
#[ignore = "a measurement, not a check"]
fn append_throughput() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), never_flush());
    log.ensure_topic("t", TopicConfig::default()).expect("topic");
    let batch: Vec<Record> = (0..1000)
        .map(|index| Record {
            key: Some(Bytes::from(format!("key-{index}"))),
            value: Some(Bytes::from(vec![b'x'; 1024])),
            headers: Vec::new(),
            timestamp: index,
        })
        .collect();
    let appends = 300;
    let started = Instant::now();
    for _ in 0..appends {
        log.append("t", 0, &batch).expect("append");
    }
    let elapsed = started.elapsed();
    let megabytes = (appends * 1000 * 1024) as f64 / (1024.0 * 1024.0);
    eprintln!(
        "append: {:.0} MiB/s ({appends} appends of 1000 x 1 KiB in {elapsed:?})",
        megabytes / elapsed.as_secs_f64()
    );
    let started = Instant::now();
    let read = read_all_in_chunks(&log, "t", 0, 1 << 20).len();
    let elapsed = started.elapsed();
    eprintln!("read: {:.0} MiB/s ({read} records in {elapsed:?})", megabytes / elapsed.as_secs_f64());
    let started = Instant::now();
    let reads = 2000;
    for index in 0..reads {
        log.read("t", 0, index * 149, 1).expect("small read");
    }
    eprintln!("one-record reads from 1000-record batches: {:?} each", started.elapsed() / reads as u32);
}
