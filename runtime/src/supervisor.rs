//! The supervisor: runs the tasks it is assigned, each in its own tokio task, and restarts a
//! failed one as its connector's restart policy allows.
//!
//! It knows nothing of connector lifecycle (that is the herder's): it is handed an
//! [`Assignment`] (the task's resolved config, its plugin, its policies and the generation it
//! runs under) and a [`TaskSlot`] to report into, and is told to stop slots. Every write a task
//! makes (appends, offset commits, state) carries the assignment's [`Generation`], so a worker
//! group can fence a stale assignment inside the log without the task loops changing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::connector_store::ConnectorStore;
use crate::host::TaskSetup;
use crate::log::{EventLog, Generation};
use crate::plugin::Plugin;
use crate::state_store::{OffsetStore, StateStore};
use crate::task::{
    ErrorHandling, RestartPolicy, Restarts, RetryPolicy, SinkHandle, SinkSettings, SinkTask, SourceHandle,
    SourceSettings, SourceTask, State, TaskMetrics, TaskStatus, sleep_or_cancel,
};
use crate::transform::Chain;

/// The supervisor's settings (from the worker's).
#[derive(Debug, Clone)]
pub(crate) struct SupervisorConfig {
    /// Records per poll / put.
    pub(crate) batch_size: u32,
    /// How often sinks flush and commit while records flow.
    pub(crate) sink_flush_interval: Duration,
    /// How long a stopping task may take to finish its batch, flush and close.
    pub(crate) shutdown_timeout: Duration,
}

/// What a task loop takes from its connector's definition.
#[derive(Debug, Clone)]
pub(crate) struct TaskPolicy {
    pub(crate) default_partitions: u32,
    pub(crate) retry: RetryPolicy,
    pub(crate) errors: ErrorHandling,
    pub(crate) restart: RestartPolicy,
    pub(crate) transforms: Arc<Chain>,
}

/// One task to run.
#[derive(Debug)]
pub(crate) struct Assignment {
    pub(crate) plugin: Arc<Plugin>,
    pub(crate) setup: TaskSetup,
    /// The topics a sink reads; `None` for a source.
    pub(crate) sink_topics: Option<Vec<String>>,
    /// How many tasks the connector has (a sink's partitions are spread over them).
    pub(crate) task_count: u32,
    pub(crate) policy: TaskPolicy,
}

/// A task's place: its status and counters outlive the runs (restarts keep the counters).
#[derive(Debug)]
pub(crate) struct TaskSlot {
    pub(crate) status: Arc<Mutex<TaskStatus>>,
    pub(crate) metrics: Arc<TaskMetrics>,
    pub(crate) cancel: CancellationToken,
    pub(crate) handle: Option<JoinHandle<()>>,
}

impl TaskSlot {
    pub(crate) fn new(id: u32, worker_id: &str) -> Self {
        Self {
            status: Arc::new(Mutex::new(TaskStatus {
                id,
                state: State::Unassigned,
                worker_id: worker_id.to_owned(),
                trace: None,
                restarts: None,
            })),
            metrics: Arc::new(TaskMetrics::default()),
            cancel: CancellationToken::new(),
            handle: None,
        }
    }

    pub(crate) fn status(&self) -> TaskStatus {
        self.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub(crate) fn state(&self) -> State {
        self.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).state
    }

    pub(crate) fn set_state(&self, state: State, trace: Option<String>) {
        let mut status = self.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        status.state = state;
        status.trace = trace;
    }

    /// The slot's run handle taken out, sharing its status and counters: the herder keeps the
    /// slot in its connector while the supervisor waits for the run to stop.
    pub(crate) fn take_run(&mut self) -> TaskSlot {
        TaskSlot {
            status: self.status.clone(),
            metrics: self.metrics.clone(),
            cancel: self.cancel.clone(),
            handle: self.handle.take(),
        }
    }
}

/// Told of each topic a source task writes to for the first time in a run.
pub(crate) type OnNewTopic = Arc<dyn Fn(String) + Send + Sync>;

/// Runs tasks. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    config: SupervisorConfig,
    log: Arc<dyn EventLog>,
    offsets: Arc<OffsetStore>,
    state: Arc<StateStore>,
    statuses: Arc<ConnectorStore>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Supervisor {
    pub(crate) fn new(
        config: SupervisorConfig,
        log: Arc<dyn EventLog>,
        offsets: Arc<OffsetStore>,
        state: Arc<StateStore>,
        statuses: Arc<ConnectorStore>,
    ) -> Self {
        Self { inner: Arc::new(Inner { config, log, offsets, state, statuses }) }
    }

    pub(crate) fn config(&self) -> &SupervisorConfig {
        &self.inner.config
    }

    /// The generation this supervisor's assignments run under (standalone: one per start).
    pub(crate) fn generation(&self) -> Generation {
        self.inner.statuses.generation()
    }

    pub(crate) fn state_store(&self) -> &Arc<StateStore> {
        &self.inner.state
    }

    pub(crate) fn offsets(&self) -> &Arc<OffsetStore> {
        &self.inner.offsets
    }

    /// Start the assigned task in its slot (a fresh cancel token, the same counters).
    pub(crate) fn start(&self, assignment: Assignment, slot: &mut TaskSlot, on_new_topic: OnNewTopic) {
        slot.cancel = CancellationToken::new();
        slot.set_state(State::Unassigned, None);
        let run =
            self.clone().run(assignment, slot.status.clone(), slot.metrics.clone(), slot.cancel.clone(), on_new_topic);
        slot.handle = Some(tokio::spawn(run));
    }

    /// Cancel the slots' runs and wait (bounded) for each to finish its batch, flush and close;
    /// then mark them `state` (a FAILED task stays FAILED when merely unassigned).
    pub(crate) async fn stop(&self, connector: &str, mut slots: Vec<TaskSlot>, state: State) -> Vec<TaskSlot> {
        for slot in &slots {
            slot.cancel.cancel();
        }
        let timeout = self.inner.config.shutdown_timeout;
        for slot in &mut slots {
            if let Some(handle) = slot.handle.take()
                && tokio::time::timeout(timeout, handle).await.is_err()
            {
                tracing::warn!(connector, timeout_ms = timeout.as_millis() as u64, "task did not stop in time");
            }
            if slot.state() != State::Failed || state != State::Unassigned {
                slot.set_state(state, None);
            }
            self.record_status(connector, &slot.status()).await;
        }
        slots
    }

    pub(crate) async fn record_status(&self, connector: &str, status: &TaskStatus) {
        let json = serde_json::to_value(status).unwrap_or_default();
        if let Err(error) = self.inner.statuses.put_status(connector, &format!("task-{}", status.id), &json).await {
            tracing::warn!(connector, task = status.id, %error, "cannot record the task status");
        }
    }

    /// The task's life: open and run it; when it fails, restart it as its restart policy
    /// allows (each time from the committed offsets), else leave it FAILED with its trace.
    async fn run(
        self,
        assignment: Assignment,
        status: Arc<Mutex<TaskStatus>>,
        metrics: Arc<TaskMetrics>,
        cancel: CancellationToken,
        on_new_topic: OnNewTopic,
    ) {
        let Assignment { plugin, mut setup, sink_topics, task_count, policy } = assignment;
        let connector = setup.connector.clone();
        let task_id = setup.task_id;
        let restart = policy.restart;
        let mut restarts = Restarts::new(restart);
        let set_state = async |state: State, trace: Option<String>, attempts: u32| {
            let snapshot = {
                let mut status = status.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                status.state = state;
                status.trace = trace;
                status.restarts = Some(restart.status(attempts));
                status.clone()
            };
            self.record_status(&connector, &snapshot).await;
        };
        loop {
            let attempts = restarts.attempts(Instant::now());
            let result = match &sink_topics {
                None => match SourceHandle::open(&plugin, &setup).await {
                    Ok(handle) => {
                        set_state(State::Running, None, attempts).await;
                        self.source_task(&setup, handle, &policy, &metrics, &on_new_topic).run(cancel.clone()).await
                    }
                    Err(error) => Err(error),
                },
                Some(topics) => match SinkHandle::open(&plugin, &setup).await {
                    Ok(handle) => {
                        set_state(State::Running, None, attempts).await;
                        self.sink_task(&setup, handle, &policy, &metrics, topics, task_count).run(cancel.clone()).await
                    }
                    Err(error) => Err(error),
                },
            };
            let error = match result {
                Ok(()) => {
                    set_state(State::Unassigned, None, attempts).await;
                    return;
                }
                Err(error) => error,
            };
            let trace = error.to_string();
            let now = Instant::now();
            let wait = if cancel.is_cancelled() { None } else { restarts.next_wait(now) };
            let Some(wait) = wait else {
                tracing::error!(
                    connector = %connector,
                    task = task_id,
                    error = %error,
                    restarts = attempts,
                    "task failed; the restart policy allows no more restarts (restart.max.attempts {} within restart.window.ms {})",
                    restart.max_attempts,
                    restart.window.as_millis()
                );
                set_state(State::Failed, Some(trace), restarts.attempts(now)).await;
                return;
            };
            let attempt = restarts.attempts(now);
            tracing::warn!(
                connector = %connector,
                task = task_id,
                error = %error,
                wait_ms = wait.as_millis() as u64,
                "task failed; restarting it from the committed offsets (restart {attempt} of {} within restart.window.ms)",
                restart.max_attempts
            );
            set_state(State::Restarting, Some(trace.clone()), attempt).await;
            if !sleep_or_cancel(wait, &cancel).await {
                set_state(State::Failed, Some(trace), attempt).await;
                return;
            }
            setup.committed = self.inner.offsets.committed(&connector);
        }
    }

    fn source_task(
        &self,
        setup: &TaskSetup,
        handle: SourceHandle,
        policy: &TaskPolicy,
        metrics: &Arc<TaskMetrics>,
        on_new_topic: &OnNewTopic,
    ) -> SourceTask {
        SourceTask {
            connector: setup.connector.clone(),
            task_id: setup.task_id,
            handle,
            log: self.inner.log.clone(),
            offsets: self.inner.offsets.clone(),
            generation: setup.generation,
            metrics: metrics.clone(),
            on_new_topic: on_new_topic.clone(),
            settings: SourceSettings {
                batch_size: self.inner.config.batch_size,
                default_partitions: policy.default_partitions,
                retry: policy.retry,
                errors: policy.errors.clone(),
                transforms: policy.transforms.clone(),
            },
        }
    }

    fn sink_task(
        &self,
        setup: &TaskSetup,
        handle: SinkHandle,
        policy: &TaskPolicy,
        metrics: &Arc<TaskMetrics>,
        topics: &[String],
        task_count: u32,
    ) -> SinkTask {
        SinkTask {
            connector: setup.connector.clone(),
            task_id: setup.task_id,
            handle,
            log: self.inner.log.clone(),
            generation: setup.generation,
            metrics: metrics.clone(),
            group: sink_group(&setup.connector),
            topics: topics.to_vec(),
            task_count,
            settings: SinkSettings {
                batch_size: self.inner.config.batch_size,
                max_read_bytes: 1 << 20,
                flush_interval: self.inner.config.sink_flush_interval,
                retry: policy.retry,
                errors: policy.errors.clone(),
                transforms: policy.transforms.clone(),
            },
        }
    }
}

/// The consumer group of a sink connector (Kafka Connect's naming).
pub fn sink_group(connector: &str) -> String {
    format!("connect-{connector}")
}
