//! Atomic appends: records for several partitions and a commit batch land together or not at
//! all, whether the append succeeds, fails, or the process dies at any step of it.

use std::path::Path;
use std::sync::Arc;

use crate::transaction::{Stop, TxnStep};
use crate::{FlushPolicy, Log, LogConfig, LogError, Record, StoredRecord, TopicConfig};

use super::support::*;

fn every_batch() -> LogConfig {
    LogConfig { flush: FlushPolicy::EveryBatch, ..small_segments() }
}

/// Topic `a` (two partitions) and the compacted commit topic `o`, each with some records already.
fn prepared(dir: &Path, config: LogConfig) -> Arc<Log> {
    let log = open(dir, config);
    log.ensure_topic("a", TopicConfig::with_partitions(2)).expect("topic a");
    log.ensure_topic("o", TopicConfig { cleanup_policy: crate::CleanupPolicy::Compact, ..TopicConfig::default() })
        .expect("topic o");
    log.append("a", 0, &records(0, 5, 40)).expect("append");
    log.append("a", 1, &records(0, 2, 40)).expect("append");
    log.append("o", 0, &records(0, 1, 10)).expect("append");
    log
}

fn ends(log: &Log) -> [i64; 3] {
    [("a", 0), ("a", 1), ("o", 0)].map(|(topic, partition)| log.end_offset(topic, partition).expect("end"))
}

fn values(records: &[StoredRecord]) -> Vec<Vec<u8>> {
    records.iter().map(|record| record.value.as_deref().unwrap_or_default().to_vec()).collect()
}

fn written_values(records: &[Record]) -> Vec<Vec<u8>> {
    records.iter().map(|record| record.value.as_deref().unwrap_or_default().to_vec()).collect()
}

/// Data bigger than a 2 KiB segment, so that the append rolls first and then overshoots one.
fn big() -> (Vec<Record>, Vec<Record>, Vec<Record>) {
    (records(100, 30, 100), records(200, 3, 20), records(300, 1, 10))
}

fn append_until(
    log: &Log,
    (a0, a1, commit): &(Vec<Record>, Vec<Record>, Vec<Record>),
    stop: Option<Stop>,
) -> Result<Vec<crate::AppendResult>, LogError> {
    log.append_atomic_until(&[("a", 0, a0), ("a", 1, a1)], ("o", 0, commit), stop)
}

#[test]
fn an_atomic_append_lands_in_every_partition_with_its_commit() {
    for config in [small_segments(), every_batch()] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = prepared(dir.path(), config);
        let batch = big();
        let results = append_until(&log, &batch, None).expect("atomic append");
        assert_eq!((results[0].base_offset, results[0].last_offset), (5, 34));
        assert_eq!((results[1].base_offset, results[1].last_offset), (2, 4));
        assert_eq!(ends(&log), [35, 5, 2]);
        let a0 = read_all(&log, "a", 0);
        assert_eq!(values(&a0[5..]), written_values(&batch.0));
        assert_eq!(read_all(&log, "o", 0)[1].key.as_deref(), Some(&b"key-300"[..]));
        drop(log);

        // Reopened: all of it stays, and the journal holds nothing that would undo it.
        let log = open(dir.path(), small_segments());
        assert_eq!(ends(&log), [35, 5, 2]);
        log.append("a", 0, &records(500, 1, 10)).expect("append");
        drop(log);
        assert_eq!(ends(&open(dir.path(), small_segments())), [36, 5, 2]);
    }
}

#[test]
fn a_crash_at_any_step_leaves_all_or_nothing_after_a_reopen() {
    for config in [small_segments(), every_batch()] {
        for step in [TxnStep::Intent, TxnStep::Records, TxnStep::Commit] {
            let dir = tempfile::tempdir().expect("tempdir");
            let log = prepared(dir.path(), config.clone());
            let before = ends(&log);
            let error = append_until(&log, &big(), Some(Stop { after: step, crash: true })).expect_err("stopped");
            assert!(error.to_string().contains("I/O error"), "{step:?}: {error}");
            // Until the process is gone, readers see nothing of it, whatever reached the files.
            assert_eq!(ends(&log), before, "{step:?}");
            assert!(log.read("a", 0, before[0], 1 << 20).expect("read").is_empty(), "{step:?}");
            assert!(log.read_batches("o", 0, before[2], 1 << 20).expect("read").is_empty(), "{step:?}");
            if step != TxnStep::Intent {
                let refused = log.append("a", 0, &records(900, 1, 10)).expect_err("the abandoned partition");
                assert!(matches!(refused, LogError::PartitionFailed { .. }), "{step:?}: {refused}");
            }
            // The process dies here.
            drop(log);

            let log = open(dir.path(), config.clone());
            let committed = step == TxnStep::Commit;
            let expected = if committed { [35, 5, 2] } else { before };
            assert_eq!(ends(&log), expected, "{step:?}");
            assert_eq!(read_all(&log, "a", 0).len() as i64, expected[0], "{step:?}");
            let next = log.append("a", 0, &records(600, 2, 10)).expect("appends go on");
            assert_eq!(next.base_offset, expected[0], "{step:?}");
            let again = append_until(&log, &big(), None).expect("an atomic append after recovery");
            assert_eq!(again[0].base_offset, expected[0] + 2, "{step:?}");
            drop(log);
            let log = open(dir.path(), config.clone());
            assert_eq!(ends(&log), [expected[0] + 32, expected[1] + 3, expected[2] + 1], "{step:?}");
        }
    }
}

#[test]
fn a_power_loss_that_keeps_the_commit_but_not_all_records_undoes_every_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = prepared(dir.path(), every_batch());
    let before = ends(&log);
    append_until(&log, &big(), Some(Stop { after: TxnStep::Commit, crash: true })).expect_err("stopped");
    drop(log);
    // As if the disk had kept the commit batch and lost the tail of one partition's records.
    let last = log_files(dir.path(), "a", 0).pop().expect("a segment");
    let file = std::fs::OpenOptions::new().write(true).open(&last).expect("open");
    file.set_len(file.metadata().expect("metadata").len() - 9).expect("tear");
    drop(file);
    let log = open(dir.path(), every_batch());
    assert_eq!(ends(&log), before);
    assert_eq!(read_all(&log, "o", 0).len() as i64, before[2]);
}

#[test]
fn a_failed_atomic_append_is_undone_and_what_follows_it_survives_a_reopen() {
    for step in [TxnStep::Intent, TxnStep::Records, TxnStep::Commit] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = prepared(dir.path(), every_batch());
        let before = ends(&log);
        append_until(&log, &big(), Some(Stop { after: step, crash: false })).expect_err("failed");
        assert_eq!(ends(&log), before, "{step:?}");
        // The partitions take appends again, at the offsets the failed append had used.
        let plain = records(700, 4, 30);
        assert_eq!(log.append("a", 0, &plain).expect("append").base_offset, before[0], "{step:?}");
        let read = log.read("a", 0, before[0], 1 << 20).expect("read");
        assert_eq!(values(&read), written_values(&plain), "{step:?}");
        drop(log);
        // The journal's note that it settled keeps the reopen from undoing the failed append a
        // second time, over the records written since (the partitions, short of its parts, would
        // say it never landed).
        let log = open(dir.path(), every_batch());
        assert_eq!(ends(&log), [before[0] + 4, before[1], before[2]], "{step:?}");
        let reread = log.read("a", 0, before[0], 1 << 20).expect("read");
        assert_eq!(values(&reread), values(&read), "{step:?}");
    }
}

#[test]
fn an_atomic_append_checks_every_record_before_writing_anything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = prepared(dir.path(), small_segments());
    let before = ends(&log);
    let keyless = vec![Record { key: None, ..records(0, 1, 5).remove(0) }];
    let error = log.append_atomic(&[("a", 0, &records(0, 3, 5))], ("o", 0, &keyless)).expect_err("keyless commit");
    assert!(matches!(error, LogError::KeyRequired { .. }), "{error}");
    let error = log.append_atomic(&[("nope", 0, &records(0, 3, 5))], ("o", 0, &records(0, 1, 5))).expect_err("unknown");
    assert!(matches!(error, LogError::UnknownTopic { .. }), "{error}");
    assert_eq!(ends(&log), before);
    assert_eq!(log.append("a", 0, &records(0, 1, 5)).expect("append").base_offset, before[0]);
}
