//! `file-sink` driven through `weir_connector_sdk::native`, the same glue the component runs.

use std::path::Path;

use weir_connector_sdk::batch::SinkBatchWriter;
use weir_connector_sdk::native::{self, MemoryHost};
use weir_connector_sdk::{ConnectorError, DynSinkTask};

use crate::FileSink;

fn open(path: &Path) -> Box<dyn DynSinkTask> {
    let config = serde_json::json!({ "file": path.to_str().unwrap(), "topics": "orders" });
    native::open_sink::<FileSink>(&config.to_string(), "null", 0, Box::new(MemoryHost::new())).unwrap()
}

fn batch(values: &[Option<&str>]) -> Vec<u8> {
    let mut writer = SinkBatchWriter::new();
    for (offset, value) in values.iter().enumerate() {
        writer.push("orders", 0, offset as i64, 0, None, value.map(str::as_bytes), std::iter::empty());
    }
    writer.finish()
}

#[test]
fn values_become_lines_and_flush_makes_them_visible() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    let mut task = open(&path);
    let failures = task.put(&batch(&[Some("first"), Some("{\"id\":2}")])).unwrap();
    assert!(failures.is_empty());
    task.flush().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "first\n{\"id\":2}\n");
    task.put(&batch(&[Some("third")])).unwrap();
    task.flush().unwrap();
    task.close().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "first\n{\"id\":2}\nthird\n");
}

#[test]
fn a_null_value_is_written_as_null_like_kafka_connect() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    let mut task = open(&path);
    task.put(&batch(&[None, Some("")])).unwrap();
    task.flush().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "null\n\n");
}

#[test]
fn an_existing_file_is_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    std::fs::write(&path, "before\n").unwrap();
    let mut task = open(&path);
    task.put(&batch(&[Some("after")])).unwrap();
    task.flush().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "before\nafter\n");
}

#[test]
fn a_missing_directory_is_a_fatal_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "file": dir.path().join("absent/out.txt").to_str().unwrap(),
        "topics": "orders",
    });
    let result = native::open_sink::<FileSink>(&config.to_string(), "null", 0, Box::new(MemoryHost::new()));
    assert!(matches!(result, Err(ConnectorError::Fatal(_))));
}

#[test]
fn a_malformed_batch_is_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut task = open(&dir.path().join("out.txt"));
    assert!(matches!(task.put(b"nope"), Err(ConnectorError::Fatal(_))));
}

#[test]
fn config_requires_file_and_topics() {
    let connector = native::sink_connector::<FileSink>();
    assert_eq!(connector.validate(r#"{"topics":"a"}"#).unwrap_err()[0].field, "file");
    assert_eq!(connector.validate(r#"{"file":"f"}"#).unwrap_err()[0].field, "topics");
    assert_eq!(connector.validate(r#"{"file":"f","topics":" , "}"#).unwrap_err()[0].field, "topics");
    assert!(connector.validate(r#"{"file":"f","topics":"a,b"}"#).is_ok());
}

#[test]
fn a_partial_last_line_left_by_a_crash_is_cut_before_appending() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    std::fs::write(&path, "one\ntwo\nthr").unwrap();
    let mut task = open(&path);
    task.put(&batch(&[Some("three")])).unwrap();
    task.flush().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\nthree\n");
}
