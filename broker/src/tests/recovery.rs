//! Reopening: everything kept, torn and corrupt tails truncated, damaged indexes rebuilt.

use std::fs::OpenOptions;
use std::path::Path;

use proptest::prelude::*;

use crate::batch::tests::arb_record;
use crate::{LogError, Record, StoredRecord, TopicConfig};

use super::support::*;

#[test]
fn reopen_keeps_everything_and_appends_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut expected = Vec::new();
    {
        let log = open(dir.path(), small_segments());
        log.ensure_topic("t", TopicConfig::with_partitions(2)).expect("topic");
        for batch in 0..25 {
            let batch_records = records(batch * 4, 4, 60);
            log.append("t", 1, &batch_records).expect("append");
            expected.extend(batch_records);
        }
    }
    let log = open(dir.path(), small_segments());
    assert_eq!(log.topics(), vec!["t".to_owned()]);
    assert_eq!(log.topic_config("t").expect("config").partitions, 2);
    assert_eq!(log.end_offset("t", 1).expect("end"), 100);
    assert_eq!(log.end_offset("t", 0).expect("end"), 0);
    let read_back: Vec<Record> = read_all(&log, "t", 1).into_iter().map(StoredRecord::into_record).collect();
    assert_eq!(read_back, expected);
    let next = log.append("t", 1, &records(100, 3, 10)).expect("append");
    assert_eq!(next.base_offset, 100);
    assert_eq!(log.read("t", 1, 57, 1).expect("read")[0].offset, 57);
}

#[test]
fn reopen_truncates_torn_tail_in_the_last_of_several_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (active_path, active_len_before_last, end_before_last) = {
        let log = open(dir.path(), small_segments());
        log.ensure_topic("t", TopicConfig::default()).expect("topic");
        for batch in 0..30 {
            log.append("t", 0, &records(batch * 5, 5, 50)).expect("append");
        }
        let active = log.partition_for_test("t", 0).active_log_path();
        let before = std::fs::metadata(&active).expect("metadata").len();
        let end = log.end_offset("t", 0).expect("end");
        log.append("t", 0, &records(150, 5, 50)).expect("append");
        (active, before, end)
    };
    assert!(log_files(dir.path(), "t", 0).len() > 2);
    // Tear the last batch: keep all but its final 7 bytes.
    let file = OpenOptions::new().write(true).open(&active_path).expect("open");
    let len = file.metadata().expect("metadata").len();
    file.set_len(len - 7).expect("truncate");
    drop(file);

    let log = open(dir.path(), small_segments());
    assert_eq!(log.end_offset("t", 0).expect("end"), end_before_last);
    assert_eq!(std::fs::metadata(&active_path).expect("metadata").len(), active_len_before_last);
    let all = read_all(&log, "t", 0);
    assert_offsets_are_consecutive(&all, 0);
    assert_eq!(all.len() as i64, end_before_last);
    let next = log.append("t", 0, &records(0, 1, 1)).expect("append");
    assert_eq!(next.base_offset, end_before_last);
}

/// Appends `batches` to a fresh log, returning the log file's length after each append.
fn append_batches(dir: &Path, batches: &[Vec<Record>]) -> Vec<u64> {
    let log = open(dir, never_flush());
    log.ensure_topic("t", TopicConfig::default()).expect("topic");
    let path = segment_path(dir, "t", 0, 0);
    batches
        .iter()
        .map(|batch| {
            log.append("t", 0, batch).expect("append");
            std::fs::metadata(&path).expect("metadata").len()
        })
        .collect()
}

/// Reopens and checks that exactly the batches ending at or before `damage_at` survived, and
/// that appends continue after them.
fn check_recovered(dir: &Path, batches: &[Vec<Record>], ends: &[u64], damage_at: u64) -> Result<(), TestCaseError> {
    let kept = ends.iter().take_while(|end| **end <= damage_at).count();
    let expected: Vec<Record> = batches[..kept].iter().flatten().cloned().collect();
    let log = open(dir, never_flush());
    prop_assert_eq!(log.end_offset("t", 0).expect("end"), expected.len() as i64);
    let read_back = read_all(&log, "t", 0);
    let read_offsets: Vec<i64> = read_back.iter().map(|record| record.offset).collect();
    prop_assert_eq!(read_offsets, (0..expected.len() as i64).collect::<Vec<_>>());
    let read_back: Vec<Record> = read_back.into_iter().map(StoredRecord::into_record).collect();
    prop_assert_eq!(read_back, expected.clone());
    let next = log.append("t", 0, &records(0, 2, 5)).expect("append after recovery");
    prop_assert_eq!(next.base_offset, expected.len() as i64);
    drop(log);
    // And the repaired log reopens cleanly with the new batch.
    let log = open(dir, never_flush());
    prop_assert_eq!(log.end_offset("t", 0).expect("end"), expected.len() as i64 + 2);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn reopen_after_truncation_at_any_byte_keeps_every_complete_batch(
        batches in proptest::collection::vec(proptest::collection::vec(arb_record(), 1..6), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ends = append_batches(dir.path(), &batches);
        let len = *ends.last().expect("at least one batch");
        let cut = cut.index(len as usize + 1) as u64;
        let file = OpenOptions::new().write(true).open(segment_path(dir.path(), "t", 0, 0)).expect("open");
        file.set_len(cut).expect("truncate");
        drop(file);
        check_recovered(dir.path(), &batches, &ends, cut)?;
    }

    #[test]
    fn reopen_after_a_corrupt_byte_drops_the_damaged_batch_and_all_after_it(
        batches in proptest::collection::vec(proptest::collection::vec(arb_record(), 1..6), 1..8),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ends = append_batches(dir.path(), &batches);
        let path = segment_path(dir.path(), "t", 0, 0);
        let mut bytes = std::fs::read(&path).expect("read segment");
        let at = at.index(bytes.len());
        bytes[at] ^= flip;
        std::fs::write(&path, &bytes).expect("write segment");
        // The damaged batch is the one whose end is past `at`: it and all later ones go.
        check_recovered(dir.path(), &batches, &ends, at as u64)?;
    }
}

#[test]
fn a_corrupt_sealed_segment_fails_reads_with_segment_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_segments());
    log.ensure_topic("t", TopicConfig::default()).expect("topic");
    for batch in 0..20 {
        log.append("t", 0, &records(batch * 5, 5, 50)).expect("append");
    }
    let first = segment_path(dir.path(), "t", 0, 0);
    let mut bytes = std::fs::read(&first).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&first, &bytes).expect("write");
    let error = read_all_result(&log);
    assert!(matches!(error, Err(LogError::SegmentCorrupt { .. })), "{error:?}");
}

#[test]
fn a_damaged_sealed_index_is_rebuilt_on_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = open(dir.path(), small_segments());
        log.ensure_topic("t", TopicConfig::default()).expect("topic");
        for batch in 0..30 {
            log.append("t", 0, &records(batch * 5, 5, 50)).expect("append");
        }
    }
    let index = dir.path().join("topics/t-0/00000000000000000000.index");
    std::fs::write(&index, b"garbage").expect("damage index");
    std::fs::remove_file(dir.path().join("topics/t-0/00000000000000000000.timeindex")).expect("remove");
    let log = open(dir.path(), small_segments());
    for from in [0, 7, 13] {
        assert_eq!(log.read("t", 0, from, 1).expect("read")[0].offset, from);
    }
    let rebuilt = std::fs::metadata(&index).expect("metadata").len();
    assert_eq!(rebuilt % 8, 0);
    assert_eq!(read_all(&log, "t", 0).len(), 150);
}
