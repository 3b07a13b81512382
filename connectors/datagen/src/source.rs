//! The `datagen` source task.

use std::num::NonZeroU64;
use std::time::Instant;

use weir_connector_sdk::batch::{SourceBatchWriter, SourceRecordRef};
use weir_connector_sdk::{Connector, ConnectorError, FieldError, Source, TaskContext};

use crate::config::{DatagenConfig, Quickstart, TaskAssignment};
use crate::events::{self, push_u64};

/// The `datagen` source: task `i` of `n` emits the events with ids `i, i + n, i + 2n, ...`
/// (below `iterations` when that is set). Source partition `{"task":i}`, position
/// `{"id":<id>}`; a reopened task resumes after its committed id.
#[derive(Debug)]
pub struct Datagen {
    context: TaskContext,
    topic: String,
    quickstart: Quickstart,
    value_size: Option<usize>,
    assignment: TaskAssignment,
    /// Ids stay below this; 0: no bound.
    iterations: u64,
    /// The next id to emit; `None` once the ids are exhausted.
    next_id: Option<u64>,
    /// Milliseconds between records; `None`: full speed.
    interval: Option<NonZeroU64>,
    opened: Instant,
    /// Records emitted since open (paces `max.interval`).
    emitted: u64,
    partition: Vec<u8>,
    /// Reused per record, so generation does not allocate; values are written straight into
    /// the batch.
    key: Vec<u8>,
    position: Vec<u8>,
}

impl Connector for Datagen {
    type Config = DatagenConfig;
    const NAME: &'static str = "datagen";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Generates deterministic synthetic events (orders, users, pageviews), as Confluent's datagen.";

    fn validate(config: &DatagenConfig) -> Result<(), Vec<FieldError>> {
        config.check()
    }

    /// Ids are dealt round-robin over `min(max_tasks, iterations)` tasks (`max_tasks` when
    /// endless).
    fn task_configs(config: &DatagenConfig, max_tasks: u32) -> Result<Vec<serde_json::Value>, ConnectorError> {
        let mut tasks = u64::from(max_tasks.max(1));
        if config.iterations > 0 {
            tasks = tasks.min(config.iterations);
        }
        (0..tasks)
            .map(|task| {
                serde_json::to_value(TaskAssignment { task, tasks })
                    .map_err(|error| ConnectorError::fatal(format!("task config: {error}")))
            })
            .collect()
    }
}

/// The committed position of a task: the last id it emitted.
#[derive(serde::Deserialize)]
struct Position {
    id: u64,
}

/// The smallest id after `last` that belongs to `assignment`, if any fits in a u64.
fn next_after(last: u64, assignment: TaskAssignment) -> Option<u64> {
    let candidate = (last / assignment.tasks).checked_mul(assignment.tasks)?.checked_add(assignment.task)?;
    if candidate > last { Some(candidate) } else { candidate.checked_add(assignment.tasks) }
}

impl Source for Datagen {
    fn open(config: DatagenConfig, context: TaskContext) -> Result<Self, ConnectorError> {
        if let Err(errors) = config.check() {
            let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            return Err(ConnectorError::InvalidConfig(message));
        }
        let assignment = if context.task_config.is_null() {
            TaskAssignment { task: 0, tasks: 1 }
        } else {
            serde_json::from_value::<TaskAssignment>(context.task_config.clone())
                .map_err(|error| ConnectorError::InvalidConfig(format!("task config: {error}")))?
        };
        if assignment.tasks == 0 || assignment.task >= assignment.tasks {
            return Err(ConnectorError::InvalidConfig(format!(
                "task config: task {} of {} tasks",
                assignment.task, assignment.tasks
            )));
        }

        let mut partition = b"{\"task\":".to_vec();
        push_u64(&mut partition, assignment.task);
        partition.push(b'}');

        let iterations = config.iterations;
        let in_range = |id: &u64| iterations == 0 || *id < iterations;
        let next_id = match context.committed_position(&partition) {
            None => Some(assignment.task),
            Some(position) => {
                let last = serde_json::from_slice::<Position>(&position).map_err(|error| {
                    ConnectorError::fatal(format!(
                        "committed position {} of partition {} is not {{\"id\":<n>}}: {error}",
                        String::from_utf8_lossy(&position),
                        String::from_utf8_lossy(&partition),
                    ))
                })?;
                next_after(last.id, assignment)
            }
        }
        .filter(in_range);
        context.info(&format!(
            "datagen task {} of {} generating {} from id {}",
            assignment.task,
            assignment.tasks,
            config.quickstart.as_str(),
            next_id.map_or_else(|| "(none left)".to_owned(), |id| id.to_string()),
        ));

        Ok(Self {
            context,
            topic: config.topic,
            quickstart: config.quickstart,
            value_size: config.value_size.map(|size| size as usize),
            assignment,
            iterations,
            next_id,
            interval: NonZeroU64::new(config.max_interval),
            opened: Instant::now(),
            emitted: 0,
            partition,
            key: Vec::with_capacity(20),
            position: Vec::with_capacity(32),
        })
    }

    fn poll(&mut self, max: u32, batch: &mut SourceBatchWriter) -> Result<(), ConnectorError> {
        let mut budget = u64::from(max);
        if let Some(interval) = self.interval {
            // Record k (from 0) of this task is due k intervals after open. Emit only what is
            // due: the runtime polls again shortly, so there is never a reason to sleep.
            let elapsed = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
            let due = elapsed / interval + 1;
            budget = budget.min(due.saturating_sub(self.emitted));
        }
        for _ in 0..budget {
            let Some(id) = self.next_id else { break };
            self.key.clear();
            push_u64(&mut self.key, id);
            self.position.clear();
            self.position.extend_from_slice(b"{\"id\":");
            push_u64(&mut self.position, id);
            self.position.push(b'}');
            let record = SourceRecordRef {
                topic: &self.topic,
                partition: -1,
                timestamp: None,
                key: Some(&self.key),
                value: None,
                headers: &[],
                source_partition: &self.partition,
                source_position: &self.position,
            };
            let (quickstart, value_size) = (self.quickstart, self.value_size);
            batch.push_with_value(&record, |buffer| {
                events::write_event(quickstart, id, value_size, buffer);
            });
            self.emitted += 1;
            self.next_id = id.checked_add(self.assignment.tasks).filter(|next| self.in_range(*next));
            if self.next_id.is_none() {
                self.context.info(&format!(
                    "datagen task {} of {} generated its last id {id}",
                    self.assignment.task, self.assignment.tasks
                ));
            }
        }
        Ok(())
    }
}

impl Datagen {
    fn in_range(&self, id: u64) -> bool {
        self.iterations == 0 || id < self.iterations
    }
}
