//! `weir bench-http`: the `http-sink` connector against a plain client POSTing the same batches,
//! to one receiver on loopback, in one process.
//!
//! The records are in the log before anything is timed. The plain client (reqwest, one
//! keep-alive connection, one request at a time, as the sink sends) POSTs bodies built from them
//! beforehand, so its figure is the endpoint's and the loopback's cost alone; the sink's run
//! times a new connector from its creation until the receiver has counted every record, so it
//! includes reading the log, the sandbox, encoding the bodies and committing offsets. Runs are
//! interleaved; medians are reported.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use weir_runtime::Herder as _;
use weir_runtime::log::{Bytes, Generation, PartitionBatch, Record, TopicConfig};
use weir_runtime::manifest::{ConnectorDefinition, HttpGrant};
use weir_runtime::worker::{Worker, WorkerConfig};

const TOPIC: &str = "bench-http";

/// What to run (the `weir bench-http` flags).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct HttpBenchOptions {
    /// Records per run.
    #[arg(long, default_value_t = 200_000)]
    pub(crate) records: u64,
    /// Bytes of each record's value (a JSON object).
    #[arg(long, default_value_t = 1024)]
    pub(crate) value_size: usize,
    /// Records per request (`batch.max.size`).
    #[arg(long, default_value_t = 500)]
    pub(crate) batch: usize,
    /// Runs of each; medians are reported.
    #[arg(long, default_value_t = 5)]
    pub(crate) runs: usize,
}

/// What the receiver has counted.
#[derive(Debug, Default)]
struct Received {
    records: AtomicU64,
    requests: AtomicU64,
}

/// Medians of the runs.
#[derive(Debug)]
pub(crate) struct HttpBenchReport {
    options: HttpBenchOptions,
    plain: Vec<f64>,
    sink: Vec<f64>,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

impl fmt::Display for HttpBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let records = self.options.records as f64;
        let bytes = records * self.options.value_size as f64;
        writeln!(
            f,
            "log -> http, {} records of {} B, {} per request, median of {} runs",
            self.options.records, self.options.value_size, self.options.batch, self.options.runs
        )?;
        writeln!(f, "{:<13} {:>12} {:>9}   runs (s)", "writer", "records/s", "MB/s")?;
        for (name, runs) in [("plain client", &self.plain), ("http-sink", &self.sink)] {
            let seconds = median(runs);
            let shown: Vec<String> = runs.iter().map(|run| format!("{run:.2}")).collect();
            writeln!(f, "{name:<13} {:>12.0} {:>9.1}   {}", records / seconds, bytes / seconds / 1e6, shown.join(" "))?;
        }
        writeln!(f, "http-sink / plain client: {:.3}", median(&self.plain) / median(&self.sink))
    }
}

/// A value of about `size` bytes: `{"n":<n>,"pad":"xxx..."}`.
fn value(n: u64, size: usize) -> Vec<u8> {
    let head = format!("{{\"n\":{n},\"pad\":\"");
    let pad = size.saturating_sub(head.len() + 2);
    let mut value = Vec::with_capacity(size);
    value.extend_from_slice(head.as_bytes());
    value.resize(value.len() + pad, b'x');
    value.extend_from_slice(b"\"}");
    value
}

async fn receive(
    axum::extract::State(received): axum::extract::State<Arc<Received>>,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    // The same work for both writers: parse the array, count its elements.
    match serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(&body) {
        Ok(values) => {
            received.records.fetch_add(values.len() as u64, Ordering::Relaxed);
            received.requests.fetch_add(1, Ordering::Relaxed);
            axum::http::StatusCode::OK
        }
        Err(_) => axum::http::StatusCode::BAD_REQUEST,
    }
}

/// Run the benchmark.
///
/// # Errors
/// When the receiver, the worker or the connector cannot start, or a run stalls.
pub(crate) async fn run(options: &HttpBenchOptions) -> anyhow::Result<HttpBenchReport> {
    anyhow::ensure!(
        options.runs > 0 && options.batch > 0 && options.records > 0,
        "runs, batch and records must be positive"
    );
    let received = Arc::new(Received::default());
    let app = axum::Router::new().route("/ingest", axum::routing::post(receive)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "bench receiver stopped");
        }
    });
    let url = format!("http://{address}/ingest");

    let scratch = std::env::temp_dir().join(format!("weir-bench-http-{}", std::process::id()));
    let mut config = WorkerConfig::new(scratch.clone());
    // A component of the same name there replaces the built-in one (to measure a changed sink).
    config.plugin_dir = std::env::var_os("WEIR_PLUGIN_DIR").map(std::path::PathBuf::from);
    let worker = Worker::start(config).await?;
    let log = worker.log().clone();
    log.ensure_topic(TOPIC, TopicConfig { partitions: 1, ..TopicConfig::default() }).await?;
    let mut bodies: Vec<Bytes> = Vec::new();
    let mut body = Vec::new();
    let mut in_body = 0usize;
    let mut chunk = Vec::new();
    for n in 0..options.records {
        let value = value(n, options.value_size);
        body.push(if in_body == 0 { b'[' } else { b',' });
        body.extend_from_slice(&value);
        in_body += 1;
        if in_body == options.batch {
            body.push(b']');
            bodies.push(Bytes::from(std::mem::take(&mut body)));
            in_body = 0;
        }
        chunk.push(Record { key: None, value: Some(Bytes::from(value)), headers: Vec::new(), timestamp: 0 });
        if chunk.len() == 10_000 || n + 1 == options.records {
            let batch = PartitionBatch { topic: TOPIC.into(), partition: 0, records: std::mem::take(&mut chunk) };
            log.append(Arc::from([batch]), Generation::default()).await?;
        }
    }
    if in_body > 0 {
        body.push(b']');
        bodies.push(Bytes::from(body));
    }

    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
    let mut report = HttpBenchReport { options: options.clone(), plain: Vec::new(), sink: Vec::new() };
    for run in 0..options.runs {
        received.records.store(0, Ordering::Relaxed);
        let started = Instant::now();
        for body in &bodies {
            let response =
                client.post(&url).header("content-type", "application/json").body(body.clone()).send().await?;
            anyhow::ensure!(response.status().is_success(), "the receiver answered {}", response.status());
        }
        report.plain.push(started.elapsed().as_secs_f64());

        received.records.store(0, Ordering::Relaxed);
        let name = format!("bench-http-{run}");
        let mut definition = ConnectorDefinition {
            name: name.clone(),
            class: "http-sink".into(),
            config: serde_json::json!({
                "topics": TOPIC,
                "http.api.url": url,
                "batch.max.size": options.batch,
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
            ..ConnectorDefinition::default()
        };
        definition.grants.http.push(HttpGrant::try_from(format!("http://{address}")).map_err(anyhow::Error::msg)?);
        let started = Instant::now();
        worker.herder().create(definition).await?;
        let deadline = started + Duration::from_secs(600);
        while received.records.load(Ordering::Relaxed) < options.records {
            anyhow::ensure!(Instant::now() < deadline, "the sink stalled: {:?}", worker.herder().status(&name));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        report.sink.push(started.elapsed().as_secs_f64());
        worker.herder().delete(&name).await?;
        tracing::info!(run, plain = report.plain[run], sink = report.sink[run], "bench-http run");
    }
    worker.shutdown().await;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(report)
}
