//! `file-source` driven through `weir_connector_sdk::native`, the same glue the component runs.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use weir_connector_sdk::batch::SourceBatchReader;
use weir_connector_sdk::native::{self, MemoryHost};
use weir_connector_sdk::{ConnectorError, DynSourceTask, SourceOffset};

use crate::FileSource;

fn config(path: &Path, batch_size: Option<u32>) -> String {
    let mut config = serde_json::json!({ "file": path.to_str().unwrap(), "topic": "lines" });
    if let Some(batch_size) = batch_size {
        config["batch.size"] = batch_size.into();
    }
    config.to_string()
}

fn open(path: &Path, batch_size: Option<u32>, host: &MemoryHost) -> Box<dyn DynSourceTask> {
    native::open_source::<FileSource>(&config(path, batch_size), "null", 0, Box::new(host.clone())).unwrap()
}

fn append(path: &Path, text: &str) {
    let mut file = OpenOptions::new().create(true).append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// (value, position) of each record of one poll.
fn poll(task: &mut Box<dyn DynSourceTask>, max: u32) -> Vec<(String, String)> {
    let batch = task.poll(max).unwrap();
    SourceBatchReader::new(&batch)
        .unwrap()
        .map(|record| {
            let record = record.unwrap();
            assert_eq!(record.topic, "lines");
            assert_eq!(record.key, None);
            (
                String::from_utf8(record.value.unwrap().to_vec()).unwrap(),
                String::from_utf8(record.source_position.to_vec()).unwrap(),
            )
        })
        .collect()
}

fn values(records: &[(String, String)]) -> Vec<&str> {
    records.iter().map(|(value, _)| value.as_str()).collect()
}

#[test]
fn complete_lines_are_emitted_and_a_partial_line_waits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.txt");
    append(&path, "alpha\nbeta\npar");
    let mut task = open(&path, None, &MemoryHost::new());
    let records = poll(&mut task, 100);
    assert_eq!(values(&records), ["alpha", "beta"]);
    assert_eq!(records[0].1, r#"{"position":6}"#);
    assert_eq!(records[1].1, r#"{"position":11}"#);
    assert!(poll(&mut task, 100).is_empty());

    append(&path, "tial\n\ngamma\r\n");
    let records = poll(&mut task, 100);
    assert_eq!(values(&records), ["partial", "", "gamma"]);
    assert_eq!(records[2].1, r#"{"position":27}"#);
}

#[test]
fn partition_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.txt");
    append(&path, "x\n");
    let mut task = open(&path, None, &MemoryHost::new());
    let batch = task.poll(10).unwrap();
    let record = SourceBatchReader::new(&batch).unwrap().next().unwrap().unwrap();
    let partition: serde_json::Value = serde_json::from_slice(record.source_partition).unwrap();
    assert_eq!(partition, serde_json::json!({ "filename": path.to_str().unwrap() }));
}

#[test]
fn resumes_from_the_committed_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.txt");
    append(&path, "one\ntwo\nthree\n");
    let partition = serde_json::to_vec(&serde_json::json!({ "filename": path.to_str().unwrap() })).unwrap();
    let host = MemoryHost::with_committed(vec![SourceOffset { partition, position: br#"{"position":4}"#.to_vec() }]);
    let mut task = open(&path, None, &host);
    assert_eq!(values(&poll(&mut task, 100)), ["two", "three"]);
}

#[test]
fn a_missing_file_yields_nothing_until_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.txt");
    let host = MemoryHost::new();
    let mut task = open(&path, None, &host);
    assert!(poll(&mut task, 100).is_empty());
    assert!(poll(&mut task, 100).is_empty());
    assert_eq!(host.logs().len(), 2, "open and one 'waiting' line, not one per poll");
    append(&path, "hello\n");
    assert_eq!(values(&poll(&mut task, 100)), ["hello"]);
}

#[test]
fn batch_size_and_max_bound_a_poll() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.txt");
    append(&path, "1\n2\n3\n4\n5\n");
    let mut task = open(&path, Some(2), &MemoryHost::new());
    assert_eq!(values(&poll(&mut task, 100)), ["1", "2"]);
    assert_eq!(values(&poll(&mut task, 1)), ["3"]);
    assert_eq!(values(&poll(&mut task, 100)), ["4", "5"]);
    assert!(poll(&mut task, 100).is_empty());
}

#[test]
fn long_files_are_read_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.txt");
    let line = "y".repeat(1000);
    let text: String = (0..300).map(|index| format!("{index}:{line}\n")).collect();
    append(&path, &text);
    let mut task = open(&path, None, &MemoryHost::new());
    let records = poll(&mut task, 10_000);
    assert_eq!(records.len(), 300);
    assert_eq!(records[299].0, format!("299:{line}"));
    assert_eq!(records[299].1, format!("{{\"position\":{}}}", text.len()));
}

#[test]
fn a_truncated_file_is_read_again_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.txt");
    append(&path, "old line one\nold line two\n");
    let host = MemoryHost::new();
    let mut task = open(&path, None, &host);
    assert_eq!(poll(&mut task, 100).len(), 2);
    std::fs::write(&path, "new\n").unwrap();
    assert!(poll(&mut task, 100).is_empty());
    let records = poll(&mut task, 100);
    assert_eq!(values(&records), ["new"]);
    assert_eq!(records[0].1, r#"{"position":4}"#);
}

#[test]
fn invalid_utf8_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.txt");
    std::fs::write(&path, b"a\xffb\n").unwrap();
    let mut task = open(&path, None, &MemoryHost::new());
    assert_eq!(values(&poll(&mut task, 10)), ["a\u{fffd}b"]);
}

#[test]
fn config_errors_name_the_field() {
    let connector = native::source_connector::<FileSource>();
    let errors = connector.validate(r#"{"topic":"t"}"#).unwrap_err();
    assert_eq!(errors[0].field, "file");
    let errors = connector.validate(r#"{"file":"f","topic":"t","batch.size":0}"#).unwrap_err();
    assert_eq!(errors[0].field, "batch.size");
    let result = native::open_source::<FileSource>(
        r#"{"file":"f","topic":"t","batchsize":5}"#,
        "null",
        0,
        Box::new(MemoryHost::new()),
    );
    match result {
        Err(ConnectorError::InvalidConfig(message)) => assert!(message.starts_with("batchsize:")),
        other => panic!("{:?}", other.err()),
    }
    let schema: serde_json::Value = serde_json::from_str(&connector.spec().config_schema).unwrap();
    assert_eq!(schema["properties"]["batch.size"]["default"], 2000);
}
