//! kafkajs (npm), run by node: produce with none, gzip (built in) and snappy (the pure-JavaScript
//! kafkajs-snappy plugin); consume from earliest, latest and a timestamp; a two-member group;
//! a group that resumes after a restart. LZ4 and ZSTD need kafkajs plugins that build native
//! addons (kafkajs-lz4, @kafkajs/zstd), so kafkajs does not produce them here: kcat,
//! confluent-kafka and the Java client cover those codecs.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::{Broker, require, run, scripts};

/// Where tests/run.sh installs kafkajs and kafkajs-snappy.
fn node_modules() -> PathBuf {
    scripts().join("js/cache/node_modules")
}

fn kafkajs(args: &[&str], timeout: Duration) -> String {
    require("node", &["--version"], "apt-get install nodejs npm");
    let modules = node_modules();
    assert!(
        modules.join("kafkajs").is_dir() && modules.join("kafkajs-snappy").is_dir(),
        "kafkajs is needed for this test: run tests/run.sh, or `npm install --prefix tests/kafka/js/cache \
         --no-save --no-package-lock kafkajs@2.2.4 kafkajs-snappy@1.1.0`"
    );
    let mut command = Command::new("node");
    command
        .arg(scripts().join("js/kafkajs_clients.js"))
        .args(args)
        .env("NODE_PATH", &modules)
        .env("KAFKAJS_NO_PARTITIONER_WARNING", "1");
    String::from_utf8(run(command, timeout, None).stdout).expect("utf-8 output")
}

#[test]
fn kafkajs_produces_none_gzip_snappy_and_consumes_from_earliest_latest_and_a_timestamp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let output = kafkajs(&["codecs", &broker.bootstrap()], Duration::from_secs(240));
    assert_eq!(output.trim(), "ok");
}

#[test]
fn kafkajs_group_of_two_rebalances_on_join_and_leave_and_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let output = kafkajs(&["group", &broker.bootstrap(), "js-grouped", "js-g1"], Duration::from_secs(180));
    assert_eq!(output.trim(), "ok");
}

#[test]
fn kafkajs_group_resumes_from_its_committed_offsets_after_a_broker_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let addr = broker.bootstrap();
    let timeout = Duration::from_secs(120);
    kafkajs(&["produce", &addr, "js-resumed", "0", "10"], timeout);
    let first = kafkajs(&["consume", &addr, "js-resumed", "js-g", "10"], timeout);
    assert_eq!(first.lines().collect::<Vec<_>>(), (0..10).map(|value| value.to_string()).collect::<Vec<_>>());
    broker.stop();

    // Same address, same data directory: the committed offsets come back from the log.
    let broker = Broker::start(dir.path(), &addr);
    kafkajs(&["produce", &broker.bootstrap(), "js-resumed", "10", "5"], timeout);
    let second = kafkajs(&["consume", &broker.bootstrap(), "js-resumed", "js-g", "5"], timeout);
    assert_eq!(second.lines().collect::<Vec<_>>(), (10..15).map(|value| value.to_string()).collect::<Vec<_>>());
}
