//! Crash safety of compaction: the cleaner stopped after each step of its segment swap (as a
//! kill -9 would stop it) leaves, after a reopen, the old segments or the new one, whole.

use std::path::Path;

use bytes::Bytes;

use crate::swap::SwapStep;
use crate::{Log, Record, StoredRecord};

use super::compaction::{compacted, compaction_config, keyed, read_compacted};
use super::support::*;

const NOW: i64 = 10_000;

/// Fills a log whose sealed segments all clean into one group of many segments: overwrites of
/// five keys, the latest of each in the last sealed segment, then one big record that rolls the
/// segment and sits alone in the active one.
fn fill(dir: &Path) -> Vec<StoredRecord> {
    let log = open(dir, compaction_config());
    log.ensure_topic("t", compacted(600, 0)).expect("topic");
    for batch in 0..40i64 {
        let records: Vec<Record> = (0..3)
            .map(|index| {
                let offset = batch * 3 + index;
                keyed((offset % 5) as u32, Some(format!("v{offset}")), offset)
            })
            .collect();
        log.append("t", 0, &records).expect("append");
    }
    let base = log.end_offset("t", 0).expect("end");
    let latest: Vec<Record> = (0..5).map(|key| keyed(key, Some(format!("last{key}")), base + i64::from(key))).collect();
    log.append("t", 0, &latest).expect("append");
    let big = Record { value: Some(Bytes::from(vec![b'b'; 700])), ..keyed(9, None, base + 5) };
    log.append("t", 0, &[big]).expect("append");
    assert!(log_files(dir, "t", 0).len() > 6, "several sealed segments");
    read_compacted(&log, usize::MAX)
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("topics/t-0"))
        .expect("partition dir")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".cleaned") || name.ends_with(".swap"))
        .collect()
}

/// Every offset reads back as the first record at or after it.
fn check_reads_from_every_offset(log: &Log, expected: &[StoredRecord]) {
    let end = log.end_offset("t", 0).expect("end");
    for from in 0..end {
        let first = log.read("t", 0, from, 1).expect("read").first().map(|record| record.offset);
        assert_eq!(first, expected.iter().map(|record| record.offset).find(|offset| *offset >= from), "from {from}");
    }
}

/// What a full compaction of `fill` leaves, from a log of its own.
fn fully_compacted() -> Vec<StoredRecord> {
    let dir = tempfile::tempdir().expect("tempdir");
    fill(dir.path());
    let log = open(dir.path(), compaction_config());
    let stats = log.compact_at(NOW, None, None).expect("compact");
    assert_eq!(stats.segments_after, 1, "one group, so a crash in its swap is all or nothing: {stats:?}");
    assert!(stats.segments_before >= 3, "the swap deletes several segments: {stats:?}");
    read_compacted(&log, usize::MAX)
}

#[test]
fn a_crash_at_any_step_of_the_swap_leaves_the_old_or_the_new_segments() {
    let new = fully_compacted();
    for step in SwapStep::ALL {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = fill(dir.path());
        assert!(new.len() < old.len());
        {
            let log = open(dir.path(), compaction_config());
            let error = log.compact_at(NOW, None, Some(step)).expect_err("the hook stops the clean");
            assert!(error.to_string().contains("I/O error"), "{step:?}: {error}");
            // The process dies here: nothing else runs.
        }
        let log = open(dir.path(), compaction_config());
        let expected = if step.is_committed() { &new } else { &old };
        assert_eq!(&read_compacted(&log, usize::MAX), expected, "after a crash at {step:?}");
        assert_eq!(&read_compacted(&log, 100), expected, "small reads after a crash at {step:?}");
        check_reads_from_every_offset(&log, expected);
        assert_eq!(leftovers(dir.path()), Vec::<String>::new(), "after a crash at {step:?}");
        // Appends go on at the old end, and a full clean now gives what it would have.
        let end = log.end_offset("t", 0).expect("end");
        let appended = log.append("t", 0, &[keyed(0, Some("after".into()), end)]).expect("append");
        assert_eq!(appended.base_offset, end);
        log.compact_at(NOW, None, None).expect("compact");
        let mut with_append = new.clone();
        with_append.extend(read_compacted(&log, usize::MAX).into_iter().filter(|record| record.offset >= end));
        assert_eq!(read_compacted(&log, usize::MAX), with_append, "compacted after a crash at {step:?}");
        drop(log);
        let log = open(dir.path(), compaction_config());
        assert_eq!(read_compacted(&log, usize::MAX), with_append, "reopened after a crash at {step:?}");
    }
}

#[test]
fn a_failed_swap_is_finished_by_the_next_pass_in_the_same_process() {
    let new = fully_compacted();
    for step in [SwapStep::CleanedWritten, SwapStep::Committed, SwapStep::FirstReplacedDeleted] {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = fill(dir.path());
        let log = open(dir.path(), compaction_config());
        log.compact_at(NOW, None, Some(step)).expect_err("the hook stops the clean");
        // The partition still serves a whole log (old or new) from the files it holds open.
        let served = read_compacted(&log, usize::MAX);
        assert!(served == old || served == new, "served a mix after {step:?}");
        log.compact_at(NOW, None, None).expect("the next pass");
        assert_eq!(read_compacted(&log, usize::MAX), new, "after {step:?} and another pass");
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
        drop(log);
        let log = open(dir.path(), compaction_config());
        assert_eq!(read_compacted(&log, usize::MAX), new, "reopened after {step:?}");
        check_reads_from_every_offset(&log, &new);
    }
}
