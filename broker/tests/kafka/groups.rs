//! Consumer groups through confluent-kafka: a rebalance when a member joins and leaves, and a
//! group that resumes from its committed offsets after the broker restarts.

use std::time::Duration;

use crate::support::{Broker, python, require};

#[test]
fn a_two_member_group_rebalances_when_a_member_joins_and_leaves() {
    require("python3", &["-c", "import confluent_kafka"], "pip install confluent-kafka");
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let output =
        python("confluent_clients.py", &["group", &broker.bootstrap(), "grouped", "g1"], Duration::from_secs(180));
    assert_eq!(output.trim(), "ok");
}

#[test]
fn a_group_resumes_from_its_committed_offsets_after_a_broker_restart() {
    require("python3", &["-c", "import confluent_kafka"], "pip install confluent-kafka");
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let addr = broker.bootstrap();
    let timeout = Duration::from_secs(120);
    python("confluent_clients.py", &["produce", &addr, "resumed", "0", "10"], timeout);
    let first = python("confluent_clients.py", &["consume", &addr, "resumed", "g", "10"], timeout);
    assert_eq!(first.lines().collect::<Vec<_>>(), (0..10).map(|value| value.to_string()).collect::<Vec<_>>());
    broker.stop();

    // Same address, same data directory: the committed offsets come back from the log.
    let broker = Broker::start(dir.path(), &addr);
    python("confluent_clients.py", &["produce", &broker.bootstrap(), "resumed", "10", "5"], timeout);
    let second = python("confluent_clients.py", &["consume", &broker.bootstrap(), "resumed", "g", "5"], timeout);
    assert_eq!(second.lines().collect::<Vec<_>>(), (10..15).map(|value| value.to_string()).collect::<Vec<_>>());
}
