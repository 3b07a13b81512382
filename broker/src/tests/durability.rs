//! Flush policies, group commit across partitions, and concurrent appenders.

use std::time::{Duration, Instant};

use crate::{FlushPolicy, LogConfig, Record, TopicConfig};

use super::support::*;

#[test]
fn append_many_writes_every_partition_and_returns_results_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.ensure_topic("t", TopicConfig::with_partitions(4)).expect("topic");
    let batches: Vec<Vec<Record>> = (0..4).map(|partition| records(0, partition + 1, 10)).collect();
    let mut request: Vec<(&str, u32, &[Record])> =
        batches.iter().enumerate().map(|(partition, batch)| ("t", partition as u32, batch.as_slice())).collect();
    request.push(("t", 0, batches[3].as_slice()));
    let results = log.append_many(&request).expect("append_many");
    let bases: Vec<i64> = results.iter().map(|result| result.base_offset).collect();
    assert_eq!(bases, vec![0, 0, 0, 0, 1]);
    for partition in 0..4 {
        assert!(!log.partition_for_test("t", partition).is_dirty(), "partition {partition} synced");
    }
    assert_eq!(log.end_offset("t", 0).expect("end"), 5);
    // A bad entry anywhere fails the call before anything is written.
    let bad: Vec<(&str, u32, &[Record])> = vec![("t", 1, batches[0].as_slice()), ("t", 9, batches[0].as_slice())];
    assert!(log.append_many(&bad).is_err());
    assert_eq!(log.end_offset("t", 1).expect("end"), 2);
}

#[test]
fn every_batch_policy_syncs_before_append_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.ensure_topic("t", TopicConfig::default()).expect("topic");
    log.append("t", 0, &records(0, 3, 10)).expect("append");
    assert!(!log.partition_for_test("t", 0).is_dirty());
}

#[test]
fn interval_policy_flushes_in_the_background_and_stops_with_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { flush: FlushPolicy::Interval(Duration::from_millis(10)), ..LogConfig::default() };
    let log = open(dir.path(), config.clone());
    log.ensure_topic("t", TopicConfig::default()).expect("topic");
    log.append("t", 0, &records(0, 3, 10)).expect("append");
    let partition = log.partition_for_test("t", 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while partition.is_dirty() {
        assert!(Instant::now() < deadline, "background flusher never synced the partition");
        #[allow(clippy::disallowed_methods, reason = "a synchronous test of the synchronous log: no executor here")]
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(partition);
    // The flusher holds no strong reference: dropping ours closes the log and frees the lock.
    drop(log);
    let log = open(dir.path(), config);
    assert_eq!(log.end_offset("t", 0).expect("end"), 3);
    log.close().expect("close");
}

#[test]
fn concurrent_appends_to_one_partition_get_distinct_consecutive_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_segments());
    log.ensure_topic("t", TopicConfig::with_partitions(2)).expect("topic");
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let log = &log;
            scope.spawn(move || {
                for batch in 0..25 {
                    let first = thread * 1000 + batch * 3;
                    log.append("t", 0, &records(first, 3, 20)).expect("append");
                    log.append("t", 1, &records(first, 1, 20)).expect("append");
                }
            });
        }
    });
    let all = read_all(&log, "t", 0);
    assert_eq!(all.len(), 300);
    assert_offsets_are_consecutive(&all, 0);
    // Each thread's records appear in the order it appended them.
    let numbers: Vec<usize> = all
        .iter()
        .map(|record| {
            let key = std::str::from_utf8(record.key.as_deref().expect("key")).expect("utf-8");
            key.trim_start_matches("key-").parse().expect("number")
        })
        .collect();
    for thread in 0..4 {
        let mine: Vec<usize> = numbers.iter().copied().filter(|number| number / 1000 == thread).collect();
        assert_eq!(mine, (thread * 1000..thread * 1000 + 75).collect::<Vec<_>>());
    }
    assert_eq!(log.end_offset("t", 1).expect("end"), 100);
}
