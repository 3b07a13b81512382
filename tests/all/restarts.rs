//! Restart policy: a FAILED task is restarted with backoff, from the committed offsets, up to
//! `restart.max.attempts` within `restart.window.ms`; then it stays FAILED with its last trace.

use std::time::Duration;

use weir_runtime::Herder as _;
use weir_runtime::Worker;
use weir_runtime::herder::TaskSnapshot;
use weir_runtime::manifest::{ConnectorDefinition, Limits};
use weir_runtime::task::State;

use crate::containment::{definition, worker_with_faulty};

fn task(worker: &Worker, name: &str) -> Option<TaskSnapshot> {
    worker
        .herder()
        .statuses()
        .into_iter()
        .find(|connector| connector.name == name)
        .and_then(|connector| connector.tasks.into_iter().next())
}

async fn wait_for(worker: &Worker, name: &str, what: &str, condition: impl Fn(&TaskSnapshot) -> bool) -> TaskSnapshot {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let snapshot = task(worker, name);
        if let Some(snapshot) = snapshot.as_ref().filter(|snapshot| condition(snapshot)) {
            return snapshot.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}: {snapshot:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn faulty(config: serde_json::Value, attempts: u32) -> ConnectorDefinition {
    ConnectorDefinition {
        restart_max_attempts: attempts,
        restart_backoff_initial_ms: 50,
        restart_backoff_max_ms: 400,
        ..definition("faulty", "faulty", config, Limits::default())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_traps_on_its_first_starts_runs_after_as_many_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = worker_with_faulty(dir.path()).await;
    let config = serde_json::json!({ "topic": "numbers", "mode": "trap-on-start", "starts": 3 });
    worker.herder().create(faulty(config, 5)).await.expect("create");
    let running = wait_for(&worker, "faulty", "the task running with records", |snapshot| {
        snapshot.status.state == State::Running && snapshot.records > 0
    })
    .await;
    let restarts = running.status.restarts.clone().expect("the status shows the restart policy");
    assert_eq!(restarts.attempts, 3, "three trapping starts, three restarts: {restarts:?}");
    assert_eq!(restarts.max_attempts, 5);
    assert_eq!(restarts.backoff_initial_ms, 50);
    // The status as REST shows it carries the policy and the count.
    let json = serde_json::to_value(&running.status).expect("status json");
    assert_eq!(json["restarts"]["attempts"], 3, "{json}");
    assert_eq!(json["restarts"]["window_ms"], 600_000, "{json}");
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_always_traps_ends_failed_after_the_configured_attempts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = worker_with_faulty(dir.path()).await;
    worker
        .herder()
        .create(faulty(serde_json::json!({ "topic": "numbers", "mode": "trap", "after": 2 }), 2))
        .await
        .expect("create");
    let restarting =
        wait_for(&worker, "faulty", "a restart", |snapshot| snapshot.status.state == State::Restarting).await;
    assert!(restarting.status.trace.as_deref().is_some_and(|trace| trace.contains("trap requested")), "{restarting:?}");
    let failed = wait_for(&worker, "faulty", "FAILED", |snapshot| snapshot.status.state == State::Failed).await;
    let trace = failed.status.trace.clone().expect("trace");
    assert!(trace.contains("faulty: trap requested after 2 polls"), "the last trace: {trace}");
    assert_eq!(failed.status.restarts.as_ref().map(|restarts| restarts.attempts), Some(2), "{failed:?}");
    // It stays FAILED: no restart beyond the policy.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = task(&worker, "faulty").expect("task");
    assert_eq!(later.status.state, State::Failed, "{later:?}");
    // Each start resumed from the committed offsets: the numbers topic holds no repeats beyond
    // the uncommitted tail of a trapped poll (the source commits each batch before the next).
    let mut stored = crate::support::read_partition(&**worker.log(), "numbers", 0).await;
    stored.extend(crate::support::read_partition(&**worker.log(), "numbers", 1).await);
    let records: Vec<u64> = stored
        .into_iter()
        .map(|record| String::from_utf8_lossy(record.key.as_deref().expect("key")).parse().expect("number key"))
        .collect();
    let distinct: std::collections::BTreeSet<u64> = records.iter().copied().collect();
    assert_eq!(distinct.len(), records.len(), "restarts resume after the committed offsets: {records:?}");
    assert!(distinct.len() >= 20 * 3, "each of the three starts delivered its two polls: {}", distinct.len());
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_are_off_with_zero_attempts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = worker_with_faulty(dir.path()).await;
    worker.herder().create(faulty(serde_json::json!({ "topic": "numbers", "mode": "trap" }), 0)).await.expect("create");
    let failed = wait_for(&worker, "faulty", "FAILED", |snapshot| snapshot.status.state == State::Failed).await;
    assert_eq!(failed.status.restarts.as_ref().map(|restarts| restarts.attempts), Some(0), "{failed:?}");
    worker.shutdown().await;
}
