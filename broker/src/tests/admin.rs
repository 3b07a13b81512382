//! Topics, consumer group offsets, and the data directory.

use crate::{Log, LogError, TopicConfig};

use super::support::*;

#[test]
fn group_offsets_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = open(dir.path(), never_flush());
        log.ensure_topic("a", TopicConfig::with_partitions(2)).expect("topic");
        log.ensure_topic("b", TopicConfig::default()).expect("topic");
        log.commit_offsets("connect-sink", &[("a", 0, 10), ("a", 1, 20), ("b", 0, 5)]).expect("commit");
        log.commit_offsets("connect-sink", &[("a", 0, 11)]).expect("commit");
        log.commit_offsets("other", &[("b", 0, 1)]).expect("commit");
    }
    let log = open(dir.path(), never_flush());
    assert_eq!(log.committed_offset("connect-sink", "a", 0), Some(11));
    assert_eq!(log.committed_offset("connect-sink", "a", 1), Some(20));
    assert_eq!(log.committed_offset("connect-sink", "b", 1), None);
    assert_eq!(
        log.group_offsets("connect-sink"),
        vec![("a".to_owned(), 0, 11), ("a".to_owned(), 1, 20), ("b".to_owned(), 0, 5)]
    );
    assert_eq!(log.groups(), vec!["connect-sink".to_owned(), "other".to_owned()]);
    log.delete_group_offsets("other").expect("delete");
    assert!(log.group_offsets("other").is_empty());
}

#[test]
fn commit_offsets_rejects_unknown_partitions_and_negative_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), never_flush());
    log.ensure_topic("a", TopicConfig::default()).expect("topic");
    assert!(matches!(log.commit_offsets("g", &[("a", 1, 0)]), Err(LogError::UnknownPartition { .. })));
    assert!(matches!(log.commit_offsets("g", &[("missing", 0, 0)]), Err(LogError::UnknownTopic { .. })));
    assert!(matches!(log.commit_offsets("g", &[("a", 0, -1)]), Err(LogError::InvalidOffset { .. })));
    assert_eq!(log.committed_offset("g", "a", 0), None);
}

#[test]
fn ensure_topic_is_idempotent_and_rejects_a_partition_count_mismatch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), never_flush());
    log.ensure_topic("t", TopicConfig::with_partitions(3)).expect("create");
    log.append("t", 2, &records(0, 1, 1)).expect("append");
    log.ensure_topic("t", TopicConfig::with_partitions(3)).expect("idempotent");
    assert_eq!(log.end_offset("t", 2).expect("end"), 1, "data kept");
    let error = log.ensure_topic("t", TopicConfig::with_partitions(4)).expect_err("mismatch");
    assert!(matches!(error, LogError::PartitionCountMismatch { existing: 3, requested: 4, .. }));
    assert!(!error.is_retriable());
    assert!(matches!(log.ensure_topic("bad/name", TopicConfig::default()), Err(LogError::InvalidTopicName { .. })));
    assert!(matches!(log.append("t", 3, &records(0, 1, 1)), Err(LogError::UnknownPartition { partition: 3, .. })));
}

#[test]
fn update_topic_config_changes_retention_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = open(dir.path(), never_flush());
        log.ensure_topic("t", TopicConfig::default()).expect("create");
        let updated = TopicConfig { retention_ms: Some(1000), ..TopicConfig::default() };
        log.update_topic_config("t", updated).expect("update");
        assert!(log.update_topic_config("t", TopicConfig::with_partitions(2)).is_err());
    }
    let log = open(dir.path(), never_flush());
    assert_eq!(log.topic_config("t").expect("config").retention_ms, Some(1000));
}

#[test]
fn delete_topic_removes_its_data_and_committed_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), never_flush());
    log.ensure_topic("t", TopicConfig::with_partitions(2)).expect("create");
    log.ensure_topic("keep", TopicConfig::default()).expect("create");
    log.append("t", 0, &records(0, 5, 5)).expect("append");
    log.commit_offsets("g", &[("t", 0, 5), ("keep", 0, 0)]).expect("commit");
    let appender = log.end_offset_watch("t", 0).expect("watch");
    log.delete_topic("t").expect("delete");
    assert_eq!(log.topics(), vec!["keep".to_owned()]);
    assert!(matches!(log.append("t", 0, &records(0, 1, 1)), Err(LogError::UnknownTopic { .. })));
    assert!(matches!(log.delete_topic("t"), Err(LogError::UnknownTopic { .. })));
    assert_eq!(log.committed_offset("g", "t", 0), None);
    assert_eq!(log.committed_offset("g", "keep", 0), Some(0));
    assert!(!dir.path().join("topics/t-0").exists());
    drop(appender);
    log.ensure_topic("t", TopicConfig::default()).expect("recreate");
    assert_eq!(log.end_offset("t", 0).expect("end"), 0);
    drop(log);
    let log = open(dir.path(), never_flush());
    assert_eq!(log.topics(), vec!["keep".to_owned(), "t".to_owned()]);
}

#[test]
fn partition_directories_without_metadata_are_removed_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(dir.path(), never_flush()));
    let orphan = dir.path().join("topics/ghost-0");
    std::fs::create_dir_all(&orphan).expect("mkdir");
    std::fs::write(orphan.join("00000000000000000000.log"), b"x").expect("write");
    let log = open(dir.path(), never_flush());
    assert!(!orphan.exists());
    assert!(log.topics().is_empty());
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), never_flush());
    assert!(matches!(Log::open(dir.path(), never_flush()), Err(LogError::DirectoryLocked { .. })));
    drop(log);
    open(dir.path(), never_flush());
}

#[test]
fn create_partitions_adds_empty_partitions_that_survive_reopen_and_never_shrinks() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = open(dir.path(), never_flush());
        log.ensure_topic("t", TopicConfig { retention_ms: Some(60_000), ..TopicConfig::with_partitions(2) })
            .expect("create");
        log.append("t", 1, &records(0, 3, 8)).expect("append");
        log.create_partitions("t", 4).expect("grow");
        assert_eq!(log.topic_config("t").map(|config| config.partitions), Some(4));
        assert_eq!(log.topic_config("t").and_then(|config| config.retention_ms), Some(60_000), "config kept");
        assert_eq!(log.end_offset("t", 1).expect("end"), 3, "data of an old partition kept");
        assert_eq!(log.end_offset("t", 3).expect("end"), 0, "a new partition starts empty");
        log.append("t", 3, &records(3, 2, 8)).expect("append to a new partition");
        for requested in [4, 3] {
            let error = log.create_partitions("t", requested).expect_err("not a growth");
            assert!(matches!(error, LogError::PartitionsNotIncreased { existing: 4, .. }), "{error:?}");
        }
        assert!(matches!(log.create_partitions("missing", 2), Err(LogError::UnknownTopic { .. })));
        assert!(matches!(log.create_partitions("t", 1_000_000), Err(LogError::InvalidTopicConfig { .. })));
    }
    let log = open(dir.path(), never_flush());
    assert_eq!(log.topic_config("t").map(|config| config.partitions), Some(4));
    assert_eq!(read_all(&log, "t", 3).len(), 2);
    assert_eq!(read_all(&log, "t", 1).len(), 3);
}

#[test]
fn a_growth_interrupted_before_its_metadata_leaves_the_old_partition_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = open(dir.path(), never_flush());
        log.ensure_topic("t", TopicConfig::with_partitions(1)).expect("create");
        log.append("t", 0, &records(0, 1, 8)).expect("append");
    }
    // What a crash after creating a new partition's directory, before the metadata, leaves.
    let orphan = crate::topic::partition_dir(&dir.path().join("topics"), "t", 1);
    assert!(crate::topic::partition_dir(&dir.path().join("topics"), "t", 0).is_dir(), "the layout this test assumes");
    std::fs::create_dir(&orphan).expect("orphan dir");
    let log = open(dir.path(), never_flush());
    assert_eq!(log.topic_config("t").map(|config| config.partitions), Some(1));
    assert!(!orphan.exists(), "the orphan partition directory is removed on open");
    log.create_partitions("t", 2).expect("grow");
    assert_eq!(log.end_offset("t", 1).expect("end"), 0);
}
