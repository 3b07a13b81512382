//! `weir bench`: the datagen → log → blackhole pipeline, once with the connectors as WASM
//! components and once compiled natively into the host, in the same process, so the ratio
//! between the two is the cost of the sandbox and nothing else.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use weir_broker::FlushPolicy;
use weir_connector_sdk::native;
use weir_runtime::Herder as _;

use weir_runtime::manifest::ConnectorDefinition;

use weir_runtime::worker::{Worker, WorkerConfig};

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct BenchOptions {
    pub(crate) records: u64,
    pub(crate) value_sizes: Vec<usize>,
    pub(crate) runs: usize,
    pub(crate) batch_size: u32,
    pub(crate) partitions: u32,
    pub(crate) flush: FlushPolicy,
}

/// How the connectors run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Wasm,
    Native,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Wasm => "wasm",
            Mode::Native => "native",
        })
    }
}

/// One configuration's result: the median over its runs.
#[derive(Debug, Clone)]
pub(crate) struct BenchResult {
    pub(crate) mode: Mode,
    pub(crate) value_size: usize,
    pub(crate) records: u64,
    /// Every run's seconds, in run order.
    pub(crate) seconds: Vec<f64>,
}

impl BenchResult {
    pub(crate) fn median_seconds(&self) -> f64 {
        let mut sorted = self.seconds.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }

    pub(crate) fn records_per_second(&self) -> f64 {
        self.records as f64 / self.median_seconds()
    }

    /// Value megabytes (10^6 bytes) per second.
    pub(crate) fn megabytes_per_second(&self) -> f64 {
        self.records_per_second() * self.value_size as f64 / 1e6
    }
}

/// All results, printable as a table with the WASM/native ratios.
#[derive(Debug, Clone)]
pub(crate) struct BenchReport {
    pub(crate) options: BenchOptions,
    pub(crate) results: Vec<BenchResult>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "datagen -> log -> blackhole, {} records per run, batch {}, {} partition(s), flush {:?}, median of {} runs",
            self.options.records,
            self.options.batch_size,
            self.options.partitions,
            self.options.flush,
            self.options.runs
        )?;
        writeln!(f, "{:<7} {:>10} {:>14} {:>10} {:>10}", "mode", "value B", "records/s", "MB/s", "wasm/native")?;
        for result in &self.results {
            let ratio = match result.mode {
                Mode::Wasm => self
                    .results
                    .iter()
                    .find(|other| other.mode == Mode::Native && other.value_size == result.value_size)
                    .map(|native| format!("{:.3}", result.records_per_second() / native.records_per_second()))
                    .unwrap_or_default(),
                Mode::Native => String::new(),
            };
            writeln!(
                f,
                "{:<7} {:>10} {:>14.0} {:>10.1} {:>10}",
                result.mode.to_string(),
                result.value_size,
                result.records_per_second(),
                result.megabytes_per_second(),
                ratio
            )?;
        }
        Ok(())
    }
}

/// Run every configuration, interleaving WASM and native runs so drift on a noisy machine hits
/// both alike.
///
/// # Errors
/// When a worker cannot start or a connector cannot be created.
pub(crate) async fn run(options: &BenchOptions) -> anyhow::Result<BenchReport> {
    let mut results = Vec::new();
    let scratch = std::env::temp_dir().join(format!("weir-bench-{}", std::process::id()));
    for &value_size in &options.value_sizes {
        let mut wasm = BenchResult { mode: Mode::Wasm, value_size, records: options.records, seconds: Vec::new() };
        let mut native = BenchResult { mode: Mode::Native, value_size, records: options.records, seconds: Vec::new() };
        for run in 0..options.runs {
            for mode in [Mode::Wasm, Mode::Native] {
                let dir = scratch.join(format!("{mode}-{value_size}-{run}"));
                let seconds = run_once(options, mode, value_size, dir.clone()).await?;
                let _ = std::fs::remove_dir_all(&dir);
                tracing::info!(%mode, value_size, run, seconds, "bench run");
                match mode {
                    Mode::Wasm => wasm.seconds.push(seconds),
                    Mode::Native => native.seconds.push(seconds),
                }
            }
        }
        results.push(wasm);
        results.push(native);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(BenchReport { options: options.clone(), results })
}

async fn run_once(options: &BenchOptions, mode: Mode, value_size: usize, dir: PathBuf) -> anyhow::Result<f64> {
    let mut config = WorkerConfig::new(dir);
    config.flush = options.flush;
    config.batch_size = options.batch_size;
    config.default_partitions = options.partitions;
    let worker = match mode {
        Mode::Wasm => Worker::start(config).await?,
        Mode::Native => {
            Worker::start_with(config, |registry, engine, state| {
                registry.add_native_source(
                    engine,
                    state.clone(),
                    native::source_connector::<weir_datagen::Datagen>(),
                    native::open_source::<weir_datagen::Datagen>,
                )?;
                registry.add_native_sink(
                    engine,
                    state,
                    native::sink_connector::<weir_blackhole::Blackhole>(),
                    native::open_sink::<weir_blackhole::Blackhole>,
                )
            })
            .await?
        }
    };
    let source = definition(
        "bench-source",
        "datagen",
        serde_json::json!({
            "topic": "bench",
            "iterations": options.records,
            "value.size": value_size,
            // The smallest event kind (100-byte values fit), the same at every size so that sizes
            // differ only in bytes moved.
            "quickstart": "pageviews",
        }),
    );
    let sink = definition("bench-sink", "blackhole", serde_json::json!({ "topics": "bench" }));
    let started = Instant::now();
    worker.herder().create(sink).await?;
    worker.herder().create(source).await?;
    let deadline = started + Duration::from_secs(600);
    loop {
        let delivered: u64 = worker
            .herder()
            .statuses()
            .iter()
            .filter(|connector| connector.name == "bench-sink")
            .flat_map(|connector| connector.tasks.iter().map(|task| task.records))
            .sum();
        if delivered >= options.records || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    worker.shutdown().await;
    Ok(seconds)
}

fn definition(name: &str, class: &str, config: serde_json::Value) -> ConnectorDefinition {
    let config = config.as_object().cloned().unwrap_or_default();
    ConnectorDefinition {
        name: name.into(),
        class: class.into(),
        tasks_max: 1,
        default_partitions: None,
        config,
        ..ConnectorDefinition::default()
    }
}
