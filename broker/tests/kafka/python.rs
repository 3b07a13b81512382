//! confluent-kafka (librdkafka) and kafka-python.

use std::time::Duration;

use crate::support::{Broker, python, require};

fn require_python(module: &str, package: &str) {
    require("python3", &["-c", &format!("import {module}")], &format!("pip install {package}"));
}

#[test]
fn confluent_kafka_produces_every_codec_and_consumes_from_earliest_latest_and_a_timestamp() {
    require_python("confluent_kafka", "confluent-kafka");
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let output = python("confluent_clients.py", &["codecs", &broker.bootstrap()], Duration::from_secs(240));
    assert_eq!(output.trim(), "ok");
}

#[test]
fn confluent_kafka_alters_topic_configs_incrementally_and_whole() {
    require_python("confluent_kafka", "confluent-kafka");
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let output = python("confluent_clients.py", &["configs", &broker.bootstrap()], Duration::from_secs(120));
    assert_eq!(output.trim(), "ok");
}

#[test]
fn kafka_python_admin_produce_group_commit_describe_and_delete() {
    require_python("kafka", "kafka-python");
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let output = python("kafka_python_clients.py", &[&broker.bootstrap()], Duration::from_secs(180));
    assert_eq!(output.trim(), "ok");
}
