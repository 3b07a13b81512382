//! Helpers shared by the log tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::{FlushPolicy, Log, LogConfig, LogError, Record, StoredRecord};

pub(super) fn never_flush() -> LogConfig {
    LogConfig { flush: FlushPolicy::Never, ..LogConfig::default() }
}

pub(super) fn small_segments() -> LogConfig {
    LogConfig { flush: FlushPolicy::Never, segment_bytes: 2048, index_interval_bytes: 256, ..LogConfig::default() }
}

pub(super) fn open(dir: &Path, config: LogConfig) -> Arc<Log> {
    Log::open(dir, config).expect("log opens")
}

pub(super) fn records(first: usize, count: usize, value_len: usize) -> Vec<Record> {
    (first..first + count)
        .map(|index| Record {
            key: Some(Bytes::from(format!("key-{index}"))),
            value: Some(Bytes::from(format!("{index:0>value_len$}"))),
            headers: vec![("n".to_owned(), Some(Bytes::from(index.to_string())))],
            timestamp: 1_000 + index as i64,
        })
        .collect()
}

pub(super) fn read_all(log: &Log, topic: &str, partition: u32) -> Vec<StoredRecord> {
    read_all_in_chunks(log, topic, partition, 1000)
}

pub(super) fn read_all_in_chunks(log: &Log, topic: &str, partition: u32, max_bytes: usize) -> Vec<StoredRecord> {
    let end = log.end_offset(topic, partition).expect("end offset");
    let mut next = log.start_offset(topic, partition).expect("start offset");
    let mut all = Vec::new();
    while next < end {
        let chunk = log.read(topic, partition, next, max_bytes).expect("read");
        assert!(!chunk.is_empty(), "read at {next} below end {end} returned nothing");
        next = chunk.last().expect("non-empty").offset + 1;
        all.extend(chunk);
    }
    all
}

pub(super) fn segment_path(dir: &Path, topic: &str, partition: u32, base_offset: i64) -> PathBuf {
    dir.join("topics").join(format!("{topic}-{partition}")).join(format!("{base_offset:020}.log"))
}

pub(super) fn log_files(dir: &Path, topic: &str, partition: u32) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("topics").join(format!("{topic}-{partition}")))
        .expect("partition dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "log"))
        .collect();
    files.sort();
    files
}

pub(super) fn assert_offsets_are_consecutive(records: &[StoredRecord], first: i64) {
    for (index, record) in records.iter().enumerate() {
        assert_eq!(record.offset, first + index as i64);
    }
}

pub(super) fn read_all_result(log: &Log) -> Result<usize, LogError> {
    let mut next = 0;
    let mut count = 0;
    while next < log.end_offset("t", 0)? {
        let chunk = log.read("t", 0, next, 100_000)?;
        count += chunk.len();
        next = chunk.last().map_or(next, |record| record.offset + 1);
    }
    Ok(count)
}
