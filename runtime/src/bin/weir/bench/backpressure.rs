//! `weir bench-backpressure`: does a sink slower than its source grow the worker's memory?
//!
//! Two `weir run` processes, one after the other, each running datagen (without end, as fast as
//! it goes) into blackhole for the same time: once with a sink that keeps up (the baseline) and
//! once with a sink that sleeps in every `put`. The worker's resident memory is sampled from
//! `/proc` all along. The log on disk is the buffer between the two: a slow sink lets the log
//! grow, not the worker's memory, because each task holds at most a bounded batch in flight.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct BackpressureOptions {
    /// The `weir` binary to start (normally this one).
    pub(crate) exe: PathBuf,
    /// Seconds each process runs.
    pub(crate) seconds: u64,
    /// The slow sink's time per `put` in ms.
    pub(crate) delay_ms: u64,
    /// Bytes of each record's value.
    pub(crate) value_size: usize,
}

/// One process's run.
#[derive(Debug, Clone)]
pub(crate) struct Sampled {
    pub(crate) label: String,
    pub(crate) delay_ms: u64,
    /// (seconds since start, resident KiB).
    pub(crate) samples: Vec<(f64, u64)>,
    pub(crate) polled: u64,
    pub(crate) written: u64,
    /// Bytes of the data directory (the log) at the end.
    pub(crate) disk_bytes: u64,
}

impl Sampled {
    pub(crate) fn peak_kib(&self) -> u64 {
        self.samples.iter().map(|(_, kib)| *kib).max().unwrap_or(0)
    }

    /// The highest resident size within a stretch of the run (fractions of its length).
    fn peak_between(&self, from: f64, to: f64) -> u64 {
        let end = self.samples.last().map_or(0.0, |(at, _)| *at);
        self.samples
            .iter()
            .filter(|(at, _)| *at >= from * end && *at <= to * end)
            .map(|(_, kib)| *kib)
            .max()
            .unwrap_or(0)
    }
}

/// Both runs.
#[derive(Debug, Clone)]
pub(crate) struct BackpressureReport {
    pub(crate) options: BackpressureOptions,
    pub(crate) runs: Vec<Sampled>,
}

impl fmt::Display for BackpressureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "datagen (unbounded, {} B values) -> blackhole, {} s per run, resident memory of the worker sampled every 200 ms",
            self.options.value_size, self.options.seconds
        )?;
        writeln!(
            f,
            "{:<10} {:>9} {:>14} {:>14} {:>12} {:>14} {:>14} {:>12}",
            "sink", "put delay", "peak RSS MiB", "RSS 1st qtr", "RSS last qtr", "polled", "written", "log MiB"
        )?;
        for run in &self.runs {
            writeln!(
                f,
                "{:<10} {:>7}ms {:>14.1} {:>14.1} {:>12.1} {:>14} {:>14} {:>12.1}",
                run.label,
                run.delay_ms,
                mib(run.peak_kib()),
                mib(run.peak_between(0.0, 0.25)),
                mib(run.peak_between(0.75, 1.0)),
                run.polled,
                run.written,
                run.disk_bytes as f64 / (1 << 20) as f64
            )?;
        }
        if let [fast, slow] = self.runs.as_slice() {
            let ratio = slow.peak_kib() as f64 / fast.peak_kib().max(1) as f64;
            let growth = slow.peak_between(0.75, 1.0) as f64 / slow.peak_between(0.0, 0.25).max(1) as f64;
            writeln!(f, "peak RSS slow/fast: {ratio:.2}; slow run, last quarter / first quarter: {growth:.2}")?;
            writeln!(
                f,
                "backlog in the log at the end of the slow run: {} records ({:.0}x what the sink took)",
                slow.polled.saturating_sub(slow.written),
                slow.polled as f64 / slow.written.max(1) as f64
            )?;
        }
        Ok(())
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Run the baseline and the slow sink.
///
/// # Errors
/// When a process cannot be started or its data directory cannot be made.
pub(crate) async fn run(options: &BackpressureOptions) -> anyhow::Result<BackpressureReport> {
    let scratch = std::env::temp_dir().join(format!("weir-bench-backpressure-{}", std::process::id()));
    let mut runs = Vec::new();
    for (label, delay_ms) in [("keeps up", 0), ("slow", options.delay_ms)] {
        let dir = scratch.join(label.replace(' ', "-"));
        std::fs::create_dir_all(&dir).with_context(|| format!("while creating {}", dir.display()))?;
        let result = run_once(options, label, delay_ms, &dir).await;
        let _ = std::fs::remove_dir_all(&dir);
        runs.push(result?);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(BackpressureReport { options: options.clone(), runs })
}

/// Kills the worker process when dropped (also when a run fails half-way).
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run_once(options: &BackpressureOptions, label: &str, delay_ms: u64, dir: &Path) -> anyhow::Result<Sampled> {
    let manifest = dir.join("pipeline.yaml");
    std::fs::write(
        &manifest,
        format!(
            "name: source\nconnector.class: datagen\ntopic.creation.default.partitions: 1\nconfig:\n  topic: bp\n  \
             iterations: 0\n  max.interval: 0\n  quickstart: pageviews\n  value.size: {}\n---\nname: sink\n\
             connector.class: blackhole\nconfig:\n  topics: bp\n  put.delay.ms: {delay_ms}\n",
            options.value_size
        ),
    )?;
    let stdout = dir.join("weir.stdout");
    let child = Command::new(&options.exe)
        .current_dir(dir)
        .args(["run", "pipeline.yaml", "--data-dir", "data", "--progress-interval", "0"])
        .env("WEIR_REST_LISTEN", "127.0.0.1:0")
        .env("WEIR_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout)?)
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("while starting {}", options.exe.display()))?;
    let worker = Worker(child);
    let pid = worker.0.id();
    let started = Instant::now();
    let length = Duration::from_secs(options.seconds);
    let mut samples = Vec::new();
    while started.elapsed() < length {
        if let Some(kib) = resident_kib(pid) {
            samples.push((started.elapsed().as_secs_f64(), kib));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = match rest_address(&stdout) {
        Some(address) => reqwest::get(format!("http://{address}/metrics")).await?.text().await?,
        None => String::new(),
    };
    drop(worker);
    Ok(Sampled {
        label: label.to_owned(),
        delay_ms,
        samples,
        polled: metric_sum(&metrics, "weir_source_records_polled_total"),
        written: metric_sum(&metrics, "weir_sink_records_written_total"),
        disk_bytes: directory_bytes(&dir.join("data")),
    })
}

/// `VmRSS` of a process, in KiB.
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The REST address `weir run` printed ("REST API on http://ADDR;").
fn rest_address(stdout: &Path) -> Option<String> {
    let text = std::fs::read_to_string(stdout).ok()?;
    let start = text.find("REST API on http://")? + "REST API on http://".len();
    let rest = &text[start..];
    Some(rest[..rest.find(';')?].to_owned())
}

/// The sum of a Prometheus family's samples.
fn metric_sum(metrics: &str, family: &str) -> u64 {
    metrics
        .lines()
        .filter(|line| line.starts_with(family) && line[family.len()..].starts_with('{'))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn directory_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(metadata) if metadata.is_dir() => directory_bytes(&entry.path()),
            Ok(metadata) => metadata.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sums_read_prometheus_text() {
        let text = "# TYPE weir_source_records_polled_total counter\n\
                    weir_source_records_polled_total{connector=\"a\",task=\"0\"} 10\n\
                    weir_source_records_polled_total{connector=\"b\",task=\"0\"} 5\n\
                    weir_source_records_polled_totalx{connector=\"c\"} 100\n";
        assert_eq!(metric_sum(text, "weir_source_records_polled_total"), 15);
    }

    #[test]
    fn quarters_pick_the_peak_of_their_stretch() {
        let run = Sampled {
            label: "x".into(),
            delay_ms: 0,
            samples: vec![(0.0, 10), (1.0, 40), (2.0, 20), (3.0, 30), (4.0, 25)],
            polled: 0,
            written: 0,
            disk_bytes: 0,
        };
        assert_eq!(run.peak_kib(), 40);
        assert_eq!(run.peak_between(0.0, 0.25), 40);
        assert_eq!(run.peak_between(0.75, 1.0), 30);
    }
}
