//! Key compaction: what the cleaner keeps, how reads see the gaps, and that the log of a map
//! stays about the size of the map.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;

use crate::batch::{batch_records, check_batch};
use crate::segment::parse_segment_file_name;
use crate::{CleanupPolicy, Log, LogConfig, LogError, Record, StoredRecord, TopicConfig};

use super::support::*;

/// Small segments, no background cleaner: each test compacts when it means to.
pub(super) fn compaction_config() -> LogConfig {
    LogConfig { cleaner_interval: None, ..small_segments() }
}

pub(super) fn compacted(segment_bytes: u64, delete_retention_ms: i64) -> TopicConfig {
    TopicConfig {
        segment_bytes: Some(segment_bytes),
        cleanup_policy: CleanupPolicy::Compact,
        delete_retention_ms,
        ..TopicConfig::default()
    }
}

/// A put (`Some` value) or a delete (`None`) of `key`, stamped `1_000 + offset`.
pub(super) fn keyed(key: u32, value: Option<String>, offset: i64) -> Record {
    Record {
        key: Some(Bytes::from(format!("key-{key}"))),
        value: value.map(Bytes::from),
        headers: vec![("h".to_owned(), Some(Bytes::from_static(b"x")))],
        timestamp: 1_000 + offset,
    }
}

/// Everything readable, following gaps: unlike `read_all`, a read that finds nothing below
/// the end offset (compaction can empty the tail of the sealed segments) ends the scan.
pub(super) fn read_compacted(log: &Log, max_bytes: usize) -> Vec<StoredRecord> {
    let end = log.end_offset("t", 0).expect("end offset");
    let mut next = log.start_offset("t", 0).expect("start offset");
    let mut all = Vec::new();
    while next < end {
        let chunk = log.read("t", 0, next, max_bytes).expect("read");
        let Some(last) = chunk.last() else { break };
        assert!(chunk[0].offset >= next, "read from {next} went back to {}", chunk[0].offset);
        next = last.offset + 1;
        all.extend(chunk);
    }
    all
}

/// Every record through `read_batches`, each batch CRC-checked and decoded.
fn read_through_batches(log: &Log, max_bytes: usize) -> Vec<StoredRecord> {
    let end = log.end_offset("t", 0).expect("end offset");
    let mut next = log.start_offset("t", 0).expect("start offset");
    let mut all: Vec<StoredRecord> = Vec::new();
    while next < end {
        let bytes = log.read_batches("t", 0, next, max_bytes).expect("read batches");
        if bytes.is_empty() {
            break;
        }
        let mut at = 0;
        while at < bytes.len() {
            let header = crate::batch::BatchHeader::parse(&bytes[at..]).expect("header parses");
            let batch = bytes.slice(at..at + header.size());
            check_batch(&batch).expect("batch passes its CRC check");
            for record in batch_records(&batch).expect("decodes") {
                let record = record.expect("record decodes");
                if record.offset >= next {
                    all.push(record);
                }
            }
            next = next.max(header.next_offset());
            at += header.size();
        }
    }
    all
}

fn active_base(log: &Log) -> i64 {
    let path = log.partition_for_test("t", 0).active_log_path();
    let name = path.file_name().and_then(|name| name.to_str()).expect("utf-8 file name");
    parse_segment_file_name(name, ".log").expect("a segment file name")
}

/// What compaction must leave of `appended`: every record of the active segment, and of the
/// sealed ones the latest per key unless it is a tombstone older than the retention.
pub(super) fn expected_after_compaction(
    appended: &[StoredRecord],
    active_base: i64,
    now_ms: i64,
    delete_retention_ms: i64,
) -> Vec<StoredRecord> {
    let mut latest: HashMap<&[u8], i64> = HashMap::new();
    for record in appended.iter().filter(|record| record.offset < active_base) {
        latest.insert(record.key.as_deref().expect("keyed"), record.offset);
    }
    appended
        .iter()
        .filter(|record| {
            record.offset >= active_base
                || (latest[record.key.as_deref().expect("keyed")] == record.offset
                    && (record.value.is_some() || now_ms - record.timestamp <= delete_retention_ms))
        })
        .cloned()
        .collect()
}

fn offsets(records: &[StoredRecord]) -> Vec<i64> {
    records.iter().map(|record| record.offset).collect()
}

fn partition_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("topics/t-0"))
        .expect("partition dir")
        .map(|entry| entry.expect("entry").metadata().expect("metadata").len())
        .sum()
}

/// Puts (`Some`) and deletes (`None`) of keys 0..8, appended in batches.
fn arb_operations() -> impl Strategy<Value = (Vec<(u32, Option<u16>)>, Vec<usize>)> {
    (
        proptest::collection::vec((0u32..8, proptest::option::weighted(0.8, 0u16..60)), 1..160),
        proptest::collection::vec(1usize..8, 1..40),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn compaction_keeps_exactly_the_latest_value_per_key(
        (operations, batch_sizes) in arb_operations(),
        delete_retention_ms in 0i64..200,
        max_bytes in 1usize..400,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path(), compaction_config());
        log.ensure_topic("t", compacted(400, delete_retention_ms)).expect("topic");
        let mut appended = Vec::new();
        let mut sizes = batch_sizes.iter().cycle();
        let mut rest = &operations[..];
        while !rest.is_empty() {
            let (batch, later) = rest.split_at((*sizes.next().expect("cycle")).min(rest.len()));
            rest = later;
            let base = log.end_offset("t", 0).expect("end");
            let records: Vec<Record> = batch
                .iter()
                .enumerate()
                .map(|(index, (key, value))| {
                    let offset = base + index as i64;
                    keyed(*key, value.map(|len| format!("{offset}:{}", "v".repeat(usize::from(len)))), offset)
                })
                .collect();
            log.append("t", 0, &records).expect("append");
            appended.extend(records.into_iter().enumerate().map(|(index, record)| StoredRecord {
                offset: base + index as i64,
                key: record.key,
                value: record.value,
                headers: record.headers,
                timestamp: record.timestamp,
            }));
        }
        prop_assert_eq!(appended.len(), operations.len());
        let end = log.end_offset("t", 0).expect("end");
        let active = active_base(&log);
        let now = 1_000 + operations.len() as i64;
        let expected = expected_after_compaction(&appended, active, now, delete_retention_ms);

        log.compact_at(now, None, None).expect("compact");
        // Survivors keep their offsets and contents; the log's bounds do not move.
        prop_assert_eq!(read_compacted(&log, max_bytes), expected.clone());
        prop_assert_eq!(log.start_offset("t", 0).expect("start"), 0);
        prop_assert_eq!(log.end_offset("t", 0).expect("end"), end);
        // A read from any offset, kept or compacted away, starts at the next record kept.
        for from in 0..end {
            let first = log.read("t", 0, from, 1).expect("read").first().map(|record| record.offset);
            let want = expected.iter().map(|record| record.offset).find(|offset| *offset >= from);
            prop_assert_eq!(first, want, "read from {}", from);
        }
        // Kafka clients fetch whole batches: they still pass their checks and hold the same.
        prop_assert_eq!(read_through_batches(&log, max_bytes), expected.clone());
        // Timestamps grow with offsets here, so the first record at or after a time is the first
        // survivor stamped at or after it.
        for timestamp in [0, 1_000 + end / 3, 1_000 + end / 2, 1_000 + end - 1, 1_000 + end] {
            let want = expected.iter().find(|record| record.timestamp >= timestamp).map(|record| record.offset);
            prop_assert_eq!(log.offset_for_timestamp("t", 0, timestamp).expect("lookup"), want);
        }
        // A second pass at the same time finds nothing more to drop.
        prop_assert_eq!(log.compact_at(now, None, None).expect("compact again").records_removed, 0);
        drop(log);
        let log = open(dir.path(), compaction_config());
        prop_assert_eq!(read_compacted(&log, max_bytes), expected);
        prop_assert_eq!(log.end_offset("t", 0).expect("end"), end);
    }
}

#[test]
fn tombstones_stay_until_their_retention_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), compaction_config());
    log.ensure_topic("t", compacted(300, 1_000)).expect("topic");
    // Key 0 is put then deleted at offset 1 (timestamp 1_001); filler rolls it into a sealed
    // segment.
    log.append("t", 0, &[keyed(0, Some("a".into()), 0), keyed(0, None, 1)]).expect("append");
    for offset in 2..40 {
        log.append("t", 0, &[keyed(1 + offset as u32 % 3, Some("filler".into()), offset)]).expect("append");
    }
    log.compact_at(1_001 + 1_000, None, None).expect("compact within the retention");
    let kept = read_compacted(&log, usize::MAX);
    assert_eq!(kept[0].offset, 1, "the put went, the tombstone stayed: {:?}", offsets(&kept));
    assert_eq!(kept[0].value, None);

    log.compact_at(1_001 + 1_001, None, None).expect("compact after the retention");
    let kept = read_compacted(&log, usize::MAX);
    assert!(kept.iter().all(|record| record.key.as_deref() != Some(b"key-0")), "{:?}", offsets(&kept));
    assert_eq!(log.read("t", 0, 0, 1).expect("read")[0].offset, kept[0].offset);
}

#[test]
fn compaction_never_touches_the_active_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), compaction_config());
    log.ensure_topic("t", compacted(512, 0)).expect("topic");
    for offset in 0..60 {
        log.append("t", 0, &[keyed(offset as u32 % 4, Some(format!("v{offset}")), offset)]).expect("append");
    }
    let active_path = log.partition_for_test("t", 0).active_log_path();
    let active_before = std::fs::read(&active_path).expect("read active");
    let active = active_base(&log);
    assert!(active > 8, "segments were sealed");
    let all = read_compacted(&log, usize::MAX);
    let stats = log.compact().expect("compact");
    assert!(stats.records_removed > 0);
    assert_eq!(std::fs::read(&active_path).expect("read active"), active_before);
    let kept = read_compacted(&log, usize::MAX);
    // Every record of the active segment stays, even those that overwrite sealed keys.
    let active_records: Vec<&StoredRecord> = all.iter().filter(|record| record.offset >= active).collect();
    assert!(active_records.iter().all(|record| kept.contains(record)));
    // And the latest sealed record of each key stays too, though the active segment has newer.
    for key in 0..4 {
        let key = format!("key-{key}");
        let latest_sealed =
            all.iter().rfind(|record| record.offset < active && record.key.as_deref() == Some(key.as_bytes()));
        assert!(kept.contains(latest_sealed.expect("every key was sealed")));
    }
    assert_eq!(kept.iter().filter(|record| record.offset < active).count(), 4);
}

#[test]
fn keyless_records_are_refused_by_compacted_topics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), compaction_config());
    log.ensure_topic("t", compacted(1024, 0)).expect("topic");
    log.ensure_topic("plain", TopicConfig::default()).expect("topic");
    let keyless = Record { key: None, ..keyed(0, Some("v".into()), 0) };
    let batch = [keyed(1, Some("v".into()), 0), keyless.clone()];
    let error = log.append("t", 0, &batch).expect_err("refused");
    assert!(matches!(&error, LogError::KeyRequired { topic, partition: 0, index: 1 } if topic == "t"), "{error:?}");
    assert!(!error.is_retriable());
    let many: Vec<(&str, u32, &[Record])> = vec![("plain", 0, &batch), ("t", 0, &batch)];
    assert!(matches!(log.append_many(&many), Err(LogError::KeyRequired { .. })));
    assert_eq!(log.end_offset("t", 0).expect("end"), 0, "nothing written");
    assert_eq!(log.end_offset("plain", 0).expect("end"), 0, "nothing written anywhere");
    log.append("plain", 0, &batch).expect("delete-policy topics take keyless records");
}

#[test]
fn a_topic_switched_to_compact_loses_its_keyless_records_at_the_first_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), compaction_config());
    let delete = TopicConfig { cleanup_policy: CleanupPolicy::Delete, ..compacted(300, 0) };
    log.ensure_topic("t", delete.clone()).expect("topic");
    for offset in 0..30 {
        let key = (offset % 2 == 0).then(|| Bytes::from(format!("key-{offset}")));
        log.append("t", 0, &[Record { key, ..keyed(0, Some("v".into()), offset) }]).expect("append");
    }
    log.update_topic_config("t", compacted(300, 0)).expect("switch to compact");
    log.compact().expect("compact");
    let active = active_base(&log);
    let kept = read_compacted(&log, usize::MAX);
    assert!(kept.iter().all(|record| record.key.is_some() || record.offset >= active), "{:?}", offsets(&kept));
    assert_eq!(kept.iter().filter(|record| record.offset < active).count(), (active as usize).div_ceil(2));
}

#[test]
fn a_million_overwrites_of_a_hundred_keys_stay_bounded() {
    const KEYS: u32 = 100;
    const BATCH: usize = 1_000;
    const WRITES: usize = 1_000_000;
    let segment_bytes = 64 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { cleaner_interval: None, compact_segment_bytes: segment_bytes, ..never_flush() };
    let log = open(dir.path(), config.clone());
    // The segment size comes from `compact_segment_bytes`, as for the runtime's topics.
    log.ensure_topic("t", TopicConfig { cleanup_policy: CleanupPolicy::Compact, ..TopicConfig::default() })
        .expect("topic");
    let value = "x".repeat(20);
    let mut largest = 0;
    for batch in 0..WRITES / BATCH {
        let base = (batch * BATCH) as i64;
        let records: Vec<Record> = (0..BATCH)
            .map(|index| keyed((batch * BATCH + index) as u32 % KEYS, Some(value.clone()), base + index as i64))
            .collect();
        log.append("t", 0, &records).expect("append");
        // About what the background cleaner would do: a pass whenever a few segments sealed.
        if batch % 20 == 19 {
            log.compact().expect("compact");
            largest = largest.max(partition_bytes(dir.path()));
        }
    }
    let written = log.end_offset("t", 0).expect("end");
    assert_eq!(written, WRITES as i64);
    // The active segment plus the sealed ones cleaned to about one record per key, plus what
    // sealed since the last pass: 20 batches of ~40 KB, one segment each.
    let bound = segment_bytes * 24;
    assert!(largest < bound, "largest {largest} bytes on disk, bound {bound}");
    log.compact().expect("compact");
    let sealed = log_files(dir.path(), "t", 0).len() - 1;
    assert!(sealed <= 2, "{sealed} sealed segments after the last pass");
    let on_disk = partition_bytes(dir.path());
    assert!(on_disk < 3 * segment_bytes, "{on_disk} bytes on disk");
    drop(log);

    // A restart replays a bounded number of records: one per key from the sealed segments, and
    // what the active segment holds.
    let log = open(dir.path(), config);
    let replayed = read_compacted(&log, 1 << 20);
    let active_records = replayed.iter().filter(|record| record.offset >= active_base(&log)).count();
    let record_bytes = 30;
    assert!(active_records as u64 <= segment_bytes / record_bytes, "{active_records} in the active segment");
    assert!(replayed.len() - active_records <= KEYS as usize, "{} sealed records", replayed.len() - active_records);
    let mut latest = BTreeMap::new();
    for record in &replayed {
        latest.insert(record.key.clone(), record.offset);
    }
    assert_eq!(latest.len(), KEYS as usize);
    // The last write of every key survived.
    assert!(latest.values().all(|offset| *offset >= written - i64::from(KEYS)));
}

#[test]
fn the_background_cleaner_compacts_by_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { cleaner_interval: Some(Duration::from_millis(20)), ..small_segments() };
    let log: Arc<Log> = open(dir.path(), config);
    log.ensure_topic("t", compacted(1024, 0)).expect("topic");
    for offset in 0..400 {
        log.append("t", 0, &[keyed(offset as u32 % 3, Some(format!("{offset:040}")), offset)]).expect("append");
    }
    let sealed_before = log_files(dir.path(), "t", 0).len() - 1;
    assert!(sealed_before > 10);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sealed = log_files(dir.path(), "t", 0).len() - 1;
        let sealed_records =
            read_compacted(&log, usize::MAX).iter().filter(|record| record.offset < active_base(&log)).count();
        if sealed <= 2 && sealed_records == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "{sealed} sealed segments with {sealed_records} records after 30 s");
        #[allow(clippy::disallowed_methods, reason = "synchronous test code: no executor thread here")]
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_cleaner_skips_partitions_below_the_dirty_threshold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), compaction_config());
    log.ensure_topic("t", compacted(1024, 0)).expect("topic");
    let append = |from: i64, to: i64| {
        for offset in from..to {
            log.append("t", 0, &[keyed(offset as u32, Some(format!("{offset:040}")), offset)]).expect("append");
        }
    };
    // Distinct keys: cleaning drops nothing, so every segment stays clean-sized.
    append(0, 200);
    let percent = Some(50);
    assert_eq!(log.compact_at(0, percent, None).expect("compact").partitions, 1, "never cleaned: everything is dirty");
    append(200, 230);
    assert_eq!(
        log.compact_at(0, percent, None).expect("compact").partitions,
        0,
        "a little new dirt is not worth a pass"
    );
    append(230, 600);
    assert_eq!(log.compact_at(0, percent, None).expect("compact").partitions, 1, "now over half is dirty");
}

/// A producer's batch as a Kafka client encodes it: `keyless` names the record without a key.
fn producer_batch(compression: kafka_protocol::records::Compression, keyless: Option<i64>) -> Bytes {
    use kafka_protocol::records::{Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let records: Vec<KafkaRecord> = (0..3i64)
        .map(|index| KafkaRecord {
            transactional: false,
            delete_horizon: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: index,
            sequence: -1,
            timestamp: 1_700_000_000_000 + index,
            key: (Some(index) != keyless).then(|| Bytes::from(format!("key-{index}"))),
            value: Some(Bytes::from(format!("value-{index}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression })
        .expect("kafka-protocol encodes");
    buf.freeze()
}

#[test]
fn producer_batches_with_keyless_records_are_refused_by_compacted_topics() {
    use kafka_protocol::records::Compression;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), compaction_config());
    log.ensure_topic("t", compacted(1024, 0)).expect("topic");
    log.ensure_topic("plain", TopicConfig::default()).expect("topic");
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let keyless = producer_batch(compression, Some(2));
        let error = log.check_batches("t", 0, &keyless).expect_err("refused");
        assert!(
            matches!(&error, LogError::KeyRequired { topic, partition: 0, index: 2 } if topic == "t"),
            "{compression:?}: {error:?}"
        );
        log.check_batches("plain", 0, &keyless).expect("delete-policy topics take keyless records");
        let keyed = log.check_batches("t", 0, &producer_batch(compression, None)).expect("every record keyed");
        log.append_checked("t", 0, keyed).expect("appends");
    }
    assert_eq!(log.end_offset("t", 0).expect("end"), 9, "only the keyed batches were written");
}
