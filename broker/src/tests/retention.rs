//! Retention by size and by time.

use crate::{CleanupPolicy, Record, TopicConfig};

use super::support::*;

#[test]
fn retention_by_size_deletes_the_oldest_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_segments());
    log.ensure_topic(
        "t",
        TopicConfig { segment_bytes: Some(1024), retention_bytes: Some(3000), ..TopicConfig::default() },
    )
    .expect("topic");
    for batch in 0..40 {
        log.append("t", 0, &records(batch * 2, 2, 100)).expect("append");
    }
    let before = log_files(dir.path(), "t", 0).len();
    log.enforce_retention().expect("retention");
    let after = log_files(dir.path(), "t", 0);
    assert!(after.len() < before, "{before} -> {}", after.len());
    let kept_bytes: u64 = after.iter().map(|path| std::fs::metadata(path).expect("metadata").len()).sum();
    let oldest_kept = std::fs::metadata(&after[0]).expect("metadata").len();
    assert!(kept_bytes >= 3000, "kept {kept_bytes}");
    assert!(kept_bytes - oldest_kept < 3000, "kept one segment too many");
    let start = log.start_offset("t", 0).expect("start");
    assert!(start > 0);
    assert_eq!(log.end_offset("t", 0).expect("end"), 80);
    assert_offsets_are_consecutive(&read_all(&log, "t", 0), start);
    // Reopening agrees.
    drop(log);
    let log = open(dir.path(), small_segments());
    assert_eq!(log.start_offset("t", 0).expect("start"), start);
}

#[test]
fn retention_by_time_deletes_segments_whose_newest_record_expired() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_segments());
    log.ensure_topic(
        "t",
        TopicConfig { segment_bytes: Some(1024), retention_ms: Some(60_000), ..TopicConfig::default() },
    )
    .expect("topic");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_millis()
        as i64;
    let stamped = |first: usize, timestamp: i64| -> Vec<Record> {
        records(first, 2, 100).into_iter().map(|record| Record { timestamp, ..record }).collect()
    };
    for batch in 0..30 {
        log.append("t", 0, &stamped(batch * 2, now - 3_600_000)).expect("append old");
    }
    let first_new = log.end_offset("t", 0).expect("end");
    for batch in 30..40 {
        log.append("t", 0, &stamped(batch * 2, now)).expect("append new");
    }
    // A clock an hour back sees nothing expired.
    log.enforce_retention_at(now - 3_600_000).expect("retention");
    assert_eq!(log.start_offset("t", 0).expect("start"), 0);

    log.enforce_retention().expect("retention");
    let start = log.start_offset("t", 0).expect("start");
    assert!(start > 0 && start <= first_new, "start {start}, first new {first_new}");
    let remaining = read_all(&log, "t", 0);
    assert_offsets_are_consecutive(&remaining, start);
    assert!(remaining.iter().filter(|record| record.timestamp == now).count() == 20);
    // Only the segment straddling old and new data may still hold old records.
    let old_left = remaining.iter().filter(|record| record.timestamp != now).count();
    assert!(old_left < 10, "{old_left} old records left");
}

#[test]
fn compacted_topics_are_not_deleted_by_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_segments());
    log.ensure_topic(
        "t",
        TopicConfig { retention_bytes: Some(1), cleanup_policy: CleanupPolicy::Compact, ..TopicConfig::default() },
    )
    .expect("topic");
    for batch in 0..20 {
        log.append("t", 0, &records(batch * 5, 5, 50)).expect("append");
    }
    log.enforce_retention().expect("retention");
    assert_eq!(log.start_offset("t", 0).expect("start"), 0);
}
