//! Helpers shared by the end-to-end tests: spawning `weir`, waiting for conditions with a
//! deadline, reading what the file sink wrote.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub(crate) const WEIR: &str = env!("CARGO_BIN_EXE_weir");

/// Where the built components are (set by runtime/build.rs).
pub(crate) fn component(name: &str) -> PathBuf {
    Path::new(env!("WEIR_COMPONENTS_DIR")).join(name)
}

/// Poll `condition` until it holds; panic with `what` (and the last observation) at the deadline.
pub(crate) fn wait_until<T: std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> (bool, T),
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let (done, observed) = condition();
        if done {
            return observed;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last observed: {observed:?}");
        }
        #[allow(clippy::disallowed_methods, reason = "a synchronous wait helper for process tests: no executor here")]
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `weir run` process whose output goes to files in its directory.
pub(crate) struct WeirProcess {
    pub(crate) child: Child,
    pub(crate) stdout: PathBuf,
    pub(crate) stderr: PathBuf,
}

impl WeirProcess {
    pub(crate) fn start(dir: &Path, manifests: &[PathBuf], extra: &[&str]) -> Self {
        let count = fs::read_dir(dir).map(|entries| entries.count()).unwrap_or(0);
        let stdout = dir.join(format!("weir-{count}.stdout"));
        let stderr = dir.join(format!("weir-{count}.stderr"));
        let child = Command::new(WEIR)
            .current_dir(dir)
            .arg("run")
            .args(manifests)
            .args(["--data-dir", "data", "--progress-interval", "1"])
            .args(extra)
            .env("WEIR_LOG", "info")
            // Tests run side by side: no fixed REST port unless a test passes `--rest-listen`.
            .env("WEIR_REST_LISTEN", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).expect("create stdout file"))
            .stderr(fs::File::create(&stderr).expect("create stderr file"))
            .spawn()
            .expect("spawn weir");
        Self { child, stdout, stderr }
    }

    pub(crate) fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid fits i32");
        // SAFETY: kill(2) on our own child's pid has no memory-safety implications.
        #[allow(unsafe_code)]
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(result, 0, "kill({pid}, {signal}) failed");
    }

    pub(crate) fn kill9(mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub(crate) fn terminate(mut self, timeout: Duration) -> (ExitStatus, String, String) {
        self.signal(libc::SIGTERM);
        let status = wait_until("weir to exit after SIGTERM", timeout, || match self.child.try_wait() {
            Ok(Some(status)) => (true, Some(status)),
            _ => (false, None),
        })
        .expect("exit status");
        (status, self.stdout_text(), self.stderr_text())
    }

    pub(crate) fn wait_exit(mut self, timeout: Duration) -> (ExitStatus, String, String) {
        let status = wait_until("weir to exit", timeout, || match self.child.try_wait() {
            Ok(Some(status)) => (true, Some(status)),
            _ => (false, None),
        })
        .expect("exit status");
        (status, self.stdout_text(), self.stderr_text())
    }

    pub(crate) fn stdout_text(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub(crate) fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for WeirProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `id`s of the datagen records the file sink wrote, in file order (complete lines only).
pub(crate) fn sink_ids(file: &Path) -> Vec<u64> {
    let Ok(text) = fs::read_to_string(file) else { return Vec::new() };
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|error| panic!("sink line is not JSON ({error}): {line}"));
            value["id"].as_u64().unwrap_or_else(|| panic!("sink line has no integer id: {line}"))
        })
        .collect()
}

/// Distinct ids and duplicate count.
pub(crate) fn distinct(ids: &[u64]) -> (usize, usize) {
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for id in ids {
        *counts.entry(*id).or_default() += 1;
    }
    let duplicates = counts.values().map(|count| count - 1).sum();
    (counts.len(), duplicates)
}

/// The `orders-file` sink: topic `orders` into `./out/orders.txt`.
pub(crate) const FILE_SINK_MANIFEST: &str = "name: orders-file
connector.class: file-sink
config:
  topics: orders
  file: ./out/orders.txt
grants:
  filesystem:
    - path: ./out
      access: read-write
";

/// A datagen → file-sink pipeline manifest in `dir`.
pub(crate) fn pipeline_manifest(dir: &Path, iterations: u64, partitions: u32, max_interval: u64) -> PathBuf {
    let path = dir.join("pipeline.yaml");
    fs::write(
        &path,
        format!(
            "name: orders-gen
connector.class: datagen
tasks.max: 1
topic.creation.default.partitions: {partitions}
config:
  topic: orders
  iterations: {iterations}
  max.interval: {max_interval}
---
{FILE_SINK_MANIFEST}"
        ),
    )
    .expect("write manifest");
    path
}

/// Every record of a partition, read through the log seam (nothing when the topic is missing).
pub(crate) async fn read_partition(
    log: &dyn weir_runtime::log::EventLog,
    topic: &str,
    partition: u32,
) -> Vec<weir_runtime::log::StoredRecord> {
    let Ok(Some(_)) = log.topic_config(topic).await else { return Vec::new() };
    let mut records = Vec::new();
    loop {
        let from = records.last().map_or(0, |record: &weir_runtime::log::StoredRecord| record.offset + 1);
        let request = weir_runtime::log::FetchRequest { topic: topic.to_owned(), partition, from };
        let fetched = log.fetch(vec![request], 1 << 20, usize::MAX).await.expect("read the topic");
        let Some(batch) = fetched.into_iter().next() else { return records };
        records.extend(batch.records);
    }
}

/// A partition's end offset, 0 when the topic does not exist yet.
pub(crate) async fn end_offset(log: &dyn weir_runtime::log::EventLog, topic: &str, partition: u32) -> i64 {
    log.offset_range(topic, partition).await.map_or(0, |range| range.end)
}

/// The first failed task of any connector of `worker`, if one has failed.
pub(crate) fn failed_task(worker: &weir_runtime::Worker) -> Option<weir_runtime::herder::TaskSnapshot> {
    use weir_runtime::Herder as _;
    worker
        .herder()
        .statuses()
        .into_iter()
        .flat_map(|connector| connector.tasks)
        .find(|task| task.status.state == weir_runtime::task::State::Failed)
}
