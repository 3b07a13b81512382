//! A misbehaving component fails only its own task: trap, runaway loop and unbounded
//! allocation, each next to a healthy pipeline that keeps running to the end.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use weir_runtime::Herder as _;
use weir_runtime::manifest::{ConnectorDefinition, Limits};
use weir_runtime::task::State;
use weir_runtime::{Worker, WorkerConfig};

use crate::support::component;

pub(crate) fn definition(name: &str, class: &str, config: serde_json::Value, limits: Limits) -> ConnectorDefinition {
    ConnectorDefinition {
        name: name.into(),
        class: class.into(),
        tasks_max: 1,
        default_partitions: Some(2),
        config: config.as_object().cloned().unwrap_or_default(),
        limits,
        ..ConnectorDefinition::default()
    }
}

pub(crate) async fn worker_with_faulty(dir: &Path) -> Worker {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin dir");
    for file in ["weir_faulty.wasm", "weir_faulty_sink.wasm"] {
        std::fs::copy(component(file), plugins.join(file)).expect("copy test component");
    }
    let mut config = WorkerConfig::new(dir.join("data"));
    config.plugin_dir = Some(plugins);
    Worker::start(config).await.expect("worker starts")
}

/// Start a healthy datagen → blackhole pipeline and a faulty source; wait for the faulty task to
/// fail and the healthy pipeline to deliver everything. Returns the failed task's trace.
async fn contain(mode: &str, limits: Limits) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = worker_with_faulty(dir.path()).await;
    let total = 20_000u64;
    worker
        .herder()
        .create(definition("healthy-sink", "blackhole", serde_json::json!({ "topics": "healthy" }), Limits::default()))
        .await
        .expect("create sink");
    worker
        .herder()
        .create(definition(
            "healthy-gen",
            "datagen",
            serde_json::json!({ "topic": "healthy", "iterations": total, "max.interval": 0 }),
            Limits::default(),
        ))
        .await
        .expect("create source");
    worker
        .herder()
        .create(definition("faulty", "faulty", serde_json::json!({ "topic": "bad", "mode": mode, "after": 3 }), limits))
        .await
        .expect("create faulty");
    let worker = Arc::new(worker);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let trace = loop {
        let snapshot = worker.herder().statuses();
        let faulty = snapshot.iter().find(|connector| connector.name == "faulty").expect("faulty listed");
        let delivered: u64 = snapshot
            .iter()
            .filter(|connector| connector.name == "healthy-sink")
            .flat_map(|connector| connector.tasks.iter().map(|task| task.records))
            .sum();
        let healthy_failed = snapshot
            .iter()
            .filter(|connector| connector.name.starts_with("healthy"))
            .any(|connector| connector.tasks.iter().any(|task| task.status.state == State::Failed));
        assert!(!healthy_failed, "the healthy pipeline must keep running: {snapshot:?}");
        let faulty_task = &faulty.tasks[0].status;
        let healthy_running = snapshot
            .iter()
            .filter(|connector| connector.name.starts_with("healthy"))
            .all(|connector| connector.tasks.iter().all(|task| task.status.state == State::Running));
        if faulty_task.state == State::Failed && delivered >= total && healthy_running {
            break faulty_task.trace.clone().expect("a FAILED task has a trace");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out: faulty {faulty_task:?}, healthy delivered {delivered} of {total}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    worker.shutdown().await;
    trace
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_component_fails_only_its_own_task() {
    let trace = contain("trap", Limits::default()).await;
    assert!(trace.contains("poll trapped"), "trace should say the call trapped:\n{trace}");
    assert!(trace.contains("panicked"), "trace should carry the guest's panic message:\n{trace}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_loop_is_stopped_by_the_deadline() {
    let limits = Limits { call_timeout_ms: 500, ..Limits::default() };
    let trace = contain("loop", limits).await;
    assert!(trace.contains("overran its deadline of 500 ms"), "{trace}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_allocation_is_stopped_by_the_memory_limit() {
    let limits = Limits { memory_bytes: 32 << 20, ..Limits::default() };
    let trace = contain("oom", limits).await;
    assert!(trace.contains("memory limit"), "{trace}");
}

/// A granted capability is scoped: a connection outside the grant is refused before anything
/// reaches the network (no server listens on the port), the task fails saying so, and the
/// worker logs the denial.
#[test]
fn a_call_outside_the_grant_gets_an_error_and_the_worker_logs_a_denial() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("cdc.yaml");
    std::fs::write(
        &manifest,
        "name: cdc\nconnector.class: postgres-cdc\nconfig:\n  database.hostname: 127.0.0.1\n  database.port: 1\n  \
         database.user: u\n  database.dbname: secret_db\n  topic.prefix: pg\ngrants:\n  postgres:\n    \
         - host: 127.0.0.1\n      port: 1\n      database: public_db\n",
    )
    .expect("write manifest");
    let weir = crate::support::WeirProcess::start(dir.path(), &[manifest], &[]);
    crate::support::wait_until("the denial in the log", Duration::from_secs(120), || {
        let stderr = weir.stderr_text();
        (stderr.contains("capability denied") && stderr.contains("task failed"), stderr.len())
    });
    let (_, _, stderr) = weir.terminate(Duration::from_secs(30));
    let denial = stderr.lines().find(|line| line.contains("capability denied")).expect("a denial line");
    assert!(denial.contains("127.0.0.1:1/secret_db") && denial.contains("cdc"), "{denial}");
    assert!(stderr.contains("not granted"), "the task's trace says why: {stderr}");
}

/// A component sees neither the worker's environment nor its files: no variables, and with a
/// filesystem grant for one directory, a file outside it cannot be read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_cannot_read_the_workers_environment_or_files() {
    assert!(std::env::vars_os().count() > 0 && Path::new("/etc/hostname").exists(), "the worker has both");
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = worker_with_faulty(dir.path()).await;
    let snoop =
        definition("snoop", "faulty", serde_json::json!({ "topic": "seen", "mode": "snoop" }), Limits::default());
    worker.herder().create(snoop).await.expect("create");
    std::fs::create_dir_all(dir.path().join("granted")).expect("granted dir");
    let mut reader = definition(
        "reader",
        "file-source",
        serde_json::json!({ "topic": "hostname", "file": "/etc/hostname" }),
        Limits::default(),
    );
    reader.grants.filesystem.push(weir_runtime::manifest::FilesystemGrant {
        path: dir.path().join("granted"),
        access: weir_runtime::manifest::Access::ReadOnly,
    });
    worker.herder().create(reader).await.expect("create reader");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let record = loop {
        let mut records = crate::support::read_partition(&**worker.log(), "seen", 0).await;
        records.extend(crate::support::read_partition(&**worker.log(), "seen", 1).await);
        if let Some(record) = records.into_iter().next() {
            break record;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no record from the snooping component: {:?}",
            worker.herder().statuses()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let seen: serde_json::Value = serde_json::from_slice(record.value.as_deref().expect("value")).expect("json");
    assert_eq!(seen["env"], 0, "no environment variable reaches the component: {seen}");
    // The file exists on the worker's side, but outside the grant the component finds nothing
    // there (file-source waits for a missing file to appear): nothing is ever read.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reader = worker.herder().status("reader").expect("reader");
    assert_eq!(reader.tasks[0].records, 0, "{reader:?}");
    assert_eq!(
        crate::support::end_offset(&**worker.log(), "hostname", 0).await,
        0,
        "nothing was read from /etc/hostname"
    );
    worker.shutdown().await;
}
