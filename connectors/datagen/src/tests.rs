//! `datagen` driven through `weir_connector_sdk::native`, the same glue the component runs.

use std::collections::BTreeSet;

use weir_connector_sdk::batch::SourceBatchReader;
use weir_connector_sdk::native::{self, MemoryHost};
use weir_connector_sdk::{ConnectorError, DynSourceTask, SourceOffset};

use crate::Datagen;

struct Polled {
    key: String,
    value: Vec<u8>,
    partition: Vec<u8>,
    position: Vec<u8>,
}

impl Polled {
    fn id(&self) -> u64 {
        self.key.parse().unwrap()
    }

    fn offset(&self) -> SourceOffset {
        SourceOffset { partition: self.partition.clone(), position: self.position.clone() }
    }
}

fn open(config: &str, task_config: &str, host: &MemoryHost) -> Box<dyn DynSourceTask> {
    native::open_source::<Datagen>(config, task_config, 0, Box::new(host.clone())).unwrap()
}

fn poll(task: &mut Box<dyn DynSourceTask>, max: u32) -> Vec<Polled> {
    let batch = task.poll(max).unwrap();
    SourceBatchReader::new(&batch)
        .unwrap()
        .map(|record| {
            let record = record.unwrap();
            assert_eq!(record.topic, "orders");
            assert_eq!(record.partition, -1);
            Polled {
                key: String::from_utf8(record.key.unwrap().to_vec()).unwrap(),
                value: record.value.unwrap().to_vec(),
                partition: record.source_partition.to_vec(),
                position: record.source_position.to_vec(),
            }
        })
        .collect()
}

/// Poll until a poll returns nothing.
fn drain(task: &mut Box<dyn DynSourceTask>) -> Vec<Polled> {
    let mut all = Vec::new();
    loop {
        let records = poll(task, 37);
        if records.is_empty() {
            return all;
        }
        all.extend(records);
    }
}

#[test]
fn same_config_yields_the_same_records() {
    let config = r#"{"topic":"orders","iterations":500}"#;
    let first = drain(&mut open(config, "null", &MemoryHost::new()));
    let second = drain(&mut open(config, "null", &MemoryHost::new()));
    assert_eq!(first.len(), 500);
    for (a, b) in first.iter().zip(&second) {
        assert_eq!((&a.key, &a.value), (&b.key, &b.value));
    }
    assert_eq!(first[17].key, "17");
    let value: serde_json::Value = serde_json::from_slice(&first[17].value).unwrap();
    assert_eq!(value["id"], 17);
}

#[test]
fn ids_are_unique_and_complete_across_tasks() {
    let config = r#"{"topic":"orders","iterations":1000}"#;
    let connector = native::source_connector::<Datagen>();
    let tasks = connector.task_configs(config, 3).unwrap();
    assert_eq!(tasks.len(), 3);
    let mut ids = BTreeSet::new();
    let mut count = 0;
    for (index, task_config) in tasks.iter().enumerate() {
        let host = MemoryHost::new();
        let mut task = native::open_source::<Datagen>(config, task_config, index as u32, Box::new(host)).unwrap();
        for record in drain(&mut task) {
            assert_eq!(record.id() % 3, index as u64);
            assert_eq!(record.partition, format!("{{\"task\":{index}}}").into_bytes());
            ids.insert(record.id());
            count += 1;
        }
    }
    assert_eq!(count, 1000);
    assert_eq!(ids, (0..1000).collect());
}

#[test]
fn fewer_tasks_than_max_when_iterations_are_few() {
    let connector = native::source_connector::<Datagen>();
    let tasks = connector.task_configs(r#"{"topic":"orders","iterations":2}"#, 8).unwrap();
    assert_eq!(tasks.len(), 2);
    let endless = connector.task_configs(r#"{"topic":"orders"}"#, 8).unwrap();
    assert_eq!(endless.len(), 8);
}

#[test]
fn resumes_after_the_committed_position() {
    let config = r#"{"topic":"orders","iterations":100}"#;
    let task_config = r#"{"task":1,"tasks":4}"#;
    let host = MemoryHost::new();
    let mut task = open(config, task_config, &host);
    let first = poll(&mut task, 5);
    assert_eq!(first.iter().map(Polled::id).collect::<Vec<_>>(), vec![1, 5, 9, 13, 17]);
    // Only the third record's position became durable before a crash.
    host.commit(&[first[2].offset()]);
    task.commit(&[first[2].offset()]).unwrap();
    drop(task);

    let mut reopened = open(config, task_config, &host);
    let next = poll(&mut reopened, 2);
    assert_eq!(next.iter().map(Polled::id).collect::<Vec<_>>(), vec![13, 17]);
    assert_eq!(next[0].value, first[3].value);
}

#[test]
fn resumes_on_the_stride_when_the_task_count_changed() {
    // Last committed id 10 came from another split; task 1 of 4 continues at the next of its ids.
    let host = MemoryHost::with_committed(vec![SourceOffset {
        partition: b"{\"task\": 1}".to_vec(),
        position: b"{\"id\":10}".to_vec(),
    }]);
    let mut task = open(r#"{"topic":"orders"}"#, r#"{"task":1,"tasks":4}"#, &host);
    assert_eq!(poll(&mut task, 1)[0].id(), 13);
}

#[test]
fn unreadable_committed_position_is_fatal() {
    let host = MemoryHost::with_committed(vec![SourceOffset {
        partition: b"{\"task\":0}".to_vec(),
        position: b"garbage".to_vec(),
    }]);
    let result = native::open_source::<Datagen>(r#"{"topic":"orders"}"#, "null", 0, Box::new(host));
    assert!(matches!(result, Err(ConnectorError::Fatal(_))));
}

#[test]
fn iterations_bound_the_total() {
    let mut task = open(r#"{"topic":"orders","iterations":10}"#, "null", &MemoryHost::new());
    assert_eq!(poll(&mut task, 4).len(), 4);
    assert_eq!(poll(&mut task, 100).len(), 6);
    assert!(poll(&mut task, 100).is_empty());
    assert!(poll(&mut task, 100).is_empty());
}

#[test]
fn a_poll_returns_at_most_max() {
    let mut task = open(r#"{"topic":"orders"}"#, "null", &MemoryHost::new());
    assert_eq!(poll(&mut task, 1000).len(), 1000);
    assert!(poll(&mut task, 0).is_empty());
}

#[test]
fn value_size_pads_every_value_exactly() {
    for (config, size) in [
        (r#"{"topic":"orders","quickstart":"pageviews","value.size":100}"#, 100),
        (r#"{"topic":"orders","value.size":1024}"#, 1024),
    ] {
        let mut task = open(config, "null", &MemoryHost::new());
        let records = poll(&mut task, 500);
        assert_eq!(records.len(), 500);
        for record in records {
            assert_eq!(record.value.len(), size);
            let value: serde_json::Value = serde_json::from_slice(&record.value).unwrap();
            assert_eq!(value["id"], record.id());
        }
    }
}

#[test]
fn too_small_value_size_is_rejected_naming_the_field() {
    let connector = native::source_connector::<Datagen>();
    let errors = connector.validate(r#"{"topic":"orders","value.size":100}"#).unwrap_err();
    assert_eq!(errors[0].field, "value.size");
    let result = native::open_source::<Datagen>(
        r#"{"topic":"orders","value.size":100}"#,
        "null",
        0,
        Box::new(MemoryHost::new()),
    );
    assert!(matches!(result, Err(ConnectorError::InvalidConfig(_))));
    let errors = connector.validate(r#"{"topic":"orders","quickstart":"clicks"}"#).unwrap_err();
    assert_eq!(errors[0].field, "quickstart");
}

#[test]
fn max_interval_emits_only_what_is_due() {
    let mut task = open(r#"{"topic":"orders","max.interval":3600000}"#, "null", &MemoryHost::new());
    assert_eq!(poll(&mut task, 100).len(), 1);
    assert!(poll(&mut task, 100).is_empty());
}

#[test]
fn spec_schema_documents_the_keys() {
    let spec = native::source_connector::<Datagen>().spec();
    assert_eq!(spec.name, "datagen");
    let schema: serde_json::Value = serde_json::from_str(&spec.config_schema).unwrap();
    for key in ["topic", "iterations", "max.interval", "quickstart", "value.size"] {
        assert!(schema["properties"][key].is_object(), "{key} missing from {schema}");
    }
    assert_eq!(schema["required"], serde_json::json!(["topic"]));
    assert!(schema["properties"]["topic"]["description"].as_str().unwrap().contains("Topic"));
}

/// Not a check (tests never assert on wall time): run with
/// `cargo test --release -p weir-datagen -- --ignored --nocapture` to see the cost of a poll
/// (the best of many, so that other work on the machine does not blur it).
#[test]
#[ignore]
fn report_poll_cost_of_1000_values_of_1_kib() {
    for (name, config) in [
        ("1000 orders padded to 1 KiB", r#"{"topic":"orders","value.size":1024}"#),
        ("1000 unpadded orders", r#"{"topic":"orders"}"#),
    ] {
        let mut task = open(config, "null", &MemoryHost::new());
        task.poll(1000).unwrap();
        let mut best = std::time::Duration::MAX;
        for _ in 0..300 {
            let started = std::time::Instant::now();
            std::hint::black_box(task.poll(1000).unwrap());
            best = best.min(started.elapsed());
        }
        println!("one poll of {name}: {best:?} (best of 300)");
    }
}
