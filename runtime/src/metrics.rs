//! `GET /metrics`: the worker's counters in Prometheus text format (version 0.0.4).
//!
//! Per connector and task: records polled (sources) or written (sinks), batches, errors, the
//! age of the last offset commit and the task state; per sink partition the consumer lag; and
//! what each component reports of itself through `log.gauge`, as `weir_connector_<name>`.

use std::fmt::Write;

use weir_connector_sdk::Kind;

use crate::herder::{Herder, TaskSnapshot};
use crate::task::State;

/// Render every metric of the worker.
pub async fn render(herder: &dyn Herder) -> String {
    let snapshots = herder.statuses();
    let mut lags = Vec::new();
    for connector in snapshots.iter().filter(|connector| connector.kind == Kind::Sink) {
        lags.push((connector.name.clone(), herder.sink_lag(&connector.name).await));
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0);
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    let task_rows = |select: &dyn Fn(&TaskSnapshot, Kind) -> Option<String>| -> Vec<(String, String)> {
        snapshots
            .iter()
            .flat_map(|connector| {
                connector.tasks.iter().filter_map(move |task| {
                    select(task, connector.kind).map(|value| {
                        (format!("connector=\"{}\",task=\"{}\"", escape(&connector.name), task.status.id), value)
                    })
                })
            })
            .collect()
    };
    family(
        "weir_source_records_polled_total",
        "counter",
        "Records a source task polled and appended to the log.",
        task_rows(&|task, kind| (kind == Kind::Source).then(|| task.records.to_string())),
    );
    family(
        "weir_sink_records_written_total",
        "counter",
        "Records a sink task put to its component.",
        task_rows(&|task, kind| (kind == Kind::Sink).then(|| task.records.to_string())),
    );
    family(
        "weir_task_batches_total",
        "counter",
        "Batches a task handled.",
        task_rows(&|task, _| Some(task.batches.to_string())),
    );
    family(
        "weir_task_errors_total",
        "counter",
        "Errors a task met (retried or not).",
        task_rows(&|task, _| Some(task.errors.to_string())),
    );
    family(
        "weir_task_retries_total",
        "counter",
        "Retries of a failed call (poll, put, flush, append), one per batch retried.",
        task_rows(&|task, _| Some(task.retries.to_string())),
    );
    family(
        "weir_task_restarts",
        "gauge",
        "Automatic restarts of the task within its restart policy's window.",
        task_rows(&|task, _| task.status.restarts.as_ref().map(|restarts| restarts.attempts.to_string())),
    );
    family(
        "weir_task_last_commit_age_seconds",
        "gauge",
        "Seconds since the task last committed offsets (absent before its first commit).",
        task_rows(&|task, _| {
            (task.last_commit_ms > 0).then(|| format!("{:.3}", (now_ms - task.last_commit_ms).max(0) as f64 / 1000.0))
        }),
    );
    family(
        "weir_task_running",
        "gauge",
        "1 when the task is RUNNING, else 0.",
        task_rows(&|task, _| Some(u8::from(task.status.state == State::Running).to_string())),
    );
    // The components' own gauges (`log.gauge`), one family per name.
    let mut gauges: std::collections::BTreeMap<&str, Vec<(String, String)>> = std::collections::BTreeMap::new();
    for connector in &snapshots {
        for task in &connector.tasks {
            for (name, value) in &task.gauges {
                let labels = format!("connector=\"{}\",task=\"{}\"", escape(&connector.name), task.status.id);
                gauges.entry(name).or_default().push((labels, value.to_string()));
            }
        }
    }
    for (name, rows) in gauges {
        family(&format!("weir_connector_{name}"), "gauge", "Reported by the connector (log.gauge).", rows);
    }
    let lag_rows: Vec<(String, String)> = lags
        .into_iter()
        .flat_map(|(name, lag)| {
            lag.into_iter().map(move |(topic, partition, lag)| {
                (
                    format!("connector=\"{}\",topic=\"{}\",partition=\"{partition}\"", escape(&name), escape(&topic)),
                    lag.to_string(),
                )
            })
        })
        .collect();
    family(
        "weir_sink_consumer_lag_records",
        "gauge",
        "Records of a sink's topic partition not yet committed by its consumer group.",
        lag_rows,
    );
    out
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
