//! The worker: owns the log, the plugins and the stores, validates connector definitions, and
//! runs each connector's tasks.
//!
//! Standalone mode is a cluster of one worker with the embedded log; there is one code path.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weir_broker::{FlushPolicy, Log, LogConfig, LogError};
use weir_connector_sdk::{FieldError, Kind};

use crate::host::{EngineError, TaskError, TaskSetup, WasmEngine};
use crate::manifest::ConnectorDefinition;
use crate::plugin::{Plugin, PluginError, PluginRegistry};
use crate::state_store::{OffsetStore, StateStore};
use crate::task::{
    ErrorHandling, RetryPolicy, SinkHandle, SinkSettings, SinkTask, SourceHandle, SourceSettings, SourceTask, State, TaskMetrics, TaskStatus,
};

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Where the log, the internal topics and the compiled-component cache live.
    pub data_dir: PathBuf,
    /// Extra connector components (`*.wasm`).
    pub plugin_dir: Option<PathBuf>,
    pub worker_id: String,
    pub flush: FlushPolicy,
    /// Partitions of topics created implicitly.
    pub default_partitions: u32,
    /// Records per poll / put.
    pub batch_size: u32,
    /// How often sinks flush and commit while records flow.
    pub sink_flush_interval: Duration,
    /// How long a stopping task may take to finish its batch, flush and close.
    pub shutdown_timeout: Duration,
}

impl WorkerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            plugin_dir: None,
            worker_id: "weir-0".into(),
            flush: FlushPolicy::EveryBatch,
            default_partitions: 1,
            batch_size: 1000,
            sink_flush_interval: Duration::from_millis(500),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the worker could not do something.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the log failed: {0}")]
    Log(#[from] LogError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("connector {name} already exists")]
    AlreadyExists { name: String },
    #[error("connector {name} not found")]
    NotFound { name: String },
    /// The definition is invalid; each error names a field (`config.<key>` for connector config).
    #[error("invalid connector {name}: {}", format_field_errors(errors))]
    InvalidConfig { name: String, errors: Vec<FieldError> },
    #[error("connector {name}: {source}")]
    Task { name: String, source: TaskError },
}

fn format_field_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|error| if error.field.is_empty() { error.message.clone() } else { format!("{}: {}", error.field, error.message) })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A snapshot of one connector, for status reports and progress lines.
#[derive(Debug, Clone)]
pub struct ConnectorSnapshot {
    pub name: String,
    pub class: String,
    pub kind: Kind,
    pub tasks: Vec<TaskSnapshot>,
}

#[derive(Debug, Clone)]
pub struct TaskSnapshot {
    pub status: TaskStatus,
    pub records: u64,
    pub bytes: u64,
    /// Retries of retriable failures so far.
    pub retries: u64,
    /// Records that failed (tolerated or not).
    pub errors: u64,
}

struct TaskSlot {
    status: Arc<Mutex<TaskStatus>>,
    metrics: Arc<TaskMetrics>,
    cancel: CancellationToken,
}

struct RunningConnector {
    definition: ConnectorDefinition,
    kind: Kind,
    tasks: Vec<TaskSlot>,
    tracker: TaskTracker,
}

/// A worker. Cheap to clone; all clones are the same worker.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    config: WorkerConfig,
    log: Arc<Log>,
    registry: PluginRegistry,
    offsets: Arc<OffsetStore>,
    state: Arc<StateStore>,
    connectors: Mutex<BTreeMap<String, RunningConnector>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Worker {
    /// Open the log in the data directory and load the plugins.
    ///
    /// # Errors
    /// When the log cannot be opened or a built-in plugin fails to load.
    pub async fn start(config: WorkerConfig) -> Result<Self, WorkerError> {
        Self::start_with(config, |_, _, _| Ok(())).await
    }

    /// As [`Worker::start`], letting the caller add plugins (natively compiled connectors).
    ///
    /// # Errors
    /// As [`Worker::start`], or what `customize` returns.
    pub async fn start_with(
        config: WorkerConfig,
        customize: impl FnOnce(&mut PluginRegistry, &WasmEngine, Arc<StateStore>) -> Result<(), PluginError>,
    ) -> Result<Self, WorkerError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|source| LogError::Io { path: config.data_dir.clone(), source })?;
        let log = Log::open(config.data_dir.join("log"), LogConfig { flush: config.flush.clone(), ..LogConfig::default() })?;
        let offsets = Arc::new(OffsetStore::open(log.clone())?);
        let state = Arc::new(StateStore::open(log.clone())?);
        let engine = WasmEngine::new()?;
        let cache_dir = config.data_dir.join("cache");
        let (mut registry, rejected) =
            PluginRegistry::load(&engine, state.clone(), Some(&cache_dir), config.plugin_dir.as_deref()).await?;
        for error in rejected {
            tracing::error!(%error, "plugin rejected");
        }
        customize(&mut registry, &engine, state.clone())?;
        Ok(Self {
            inner: Arc::new(Inner { config, log, registry, offsets, state, connectors: Mutex::new(BTreeMap::new()) }),
        })
    }

    pub fn log(&self) -> &Arc<Log> {
        &self.inner.log
    }

    pub fn plugins(&self) -> &PluginRegistry {
        &self.inner.registry
    }

    pub fn offsets(&self) -> &Arc<OffsetStore> {
        &self.inner.offsets
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.inner.config
    }

    fn connectors(&self) -> MutexGuard<'_, BTreeMap<String, RunningConnector>> {
        self.inner.connectors.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Check a definition: the plugin exists, the config satisfies its JSON Schema and the
    /// connector's own `validate`. Errors name the field (`connector.class`, `config.<key>`).
    ///
    /// # Errors
    /// Every problem found, each naming its field.
    pub async fn validate(&self, definition: &ConnectorDefinition) -> Result<Arc<Plugin>, Vec<FieldError>> {
        let Some(plugin) = self.inner.registry.get(&definition.class) else {
            let known: Vec<&str> = self.inner.registry.plugins().map(|plugin| plugin.spec().name.as_str()).collect();
            return Err(vec![FieldError {
                field: "connector.class".into(),
                message: format!("unknown plugin `{}` (known: {})", definition.class, known.join(", ")),
            }]);
        };
        let config = serde_json::Value::Object(definition.config.clone());
        let mut errors: Vec<FieldError> = plugin
            .schema_errors(&config)
            .into_iter()
            .map(|error| FieldError { field: config_field(&error.field), message: error.message })
            .collect();
        if plugin.spec().kind == Kind::Sink && definition.topics().is_empty() {
            errors.push(FieldError { field: "config.topics".into(), message: "a sink needs at least one topic".into() });
        }
        if errors.is_empty() {
            if let Err(found) = plugin.validate(&config.to_string()).await {
                errors.extend(found.into_iter().map(|error| FieldError { field: config_field(&error.field), message: error.message }));
            }
        }
        if errors.is_empty() { Ok(plugin) } else { Err(errors) }
    }

    /// Validate and start a connector.
    ///
    /// # Errors
    /// When it exists already, is invalid, or its tasks cannot be planned.
    pub async fn create(&self, definition: ConnectorDefinition) -> Result<(), WorkerError> {
        let name = definition.name.clone();
        if self.connectors().contains_key(&name) {
            return Err(WorkerError::AlreadyExists { name });
        }
        let plugin = self
            .validate(&definition)
            .await
            .map_err(|errors| WorkerError::InvalidConfig { name: name.clone(), errors })?;
        let config = serde_json::Value::Object(definition.config.clone()).to_string();
        let task_configs = plugin
            .task_configs(&config, definition.tasks_max)
            .await
            .map_err(|source| WorkerError::Task { name: name.clone(), source })?;
        let task_configs: Vec<String> = task_configs.into_iter().take(definition.tasks_max as usize).collect();
        let kind = plugin.spec().kind;
        let task_count = task_configs.len() as u32;
        let tracker = TaskTracker::new();
        let mut tasks = Vec::new();
        for (index, task_config) in task_configs.into_iter().enumerate() {
            let task_id = index as u32;
            let slot = TaskSlot {
                status: Arc::new(Mutex::new(TaskStatus {
                    id: task_id,
                    state: State::Unassigned,
                    worker_id: self.inner.config.worker_id.clone(),
                    trace: None,
                })),
                metrics: Arc::new(TaskMetrics::default()),
                cancel: CancellationToken::new(),
            };
            let setup = TaskSetup {
                connector: Arc::from(name.as_str()),
                task_id,
                config: config.clone(),
                task_config,
                committed: self.inner.offsets.committed(&name),
                grants: definition.grants.clone(),
                limits: definition.limits,
                state: self.inner.state.clone(),
            };
            let topics = (kind == Kind::Sink).then(|| definition.topics());
            tracker.spawn(self.clone().run_task(plugin.clone(), setup, topics, task_count, &definition, &slot));
            tasks.push(slot);
        }
        tracker.close();
        tracing::info!(connector = %name, plugin = %definition.class, tasks = tasks.len(), "connector started");
        self.connectors().insert(name, RunningConnector { definition, kind, tasks, tracker });
        Ok(())
    }

    fn run_task(
        self,
        plugin: Arc<Plugin>,
        setup: TaskSetup,
        sink_topics: Option<Vec<String>>,
        task_count: u32,
        definition: &ConnectorDefinition,
        slot: &TaskSlot,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let status = slot.status.clone();
        let metrics = slot.metrics.clone();
        let cancel = slot.cancel.clone();
        let default_partitions = definition.default_partitions.unwrap_or(self.inner.config.default_partitions);
        let retry = RetryPolicy {
            timeout: definition.retry_timeout(),
            max_delay: Duration::from_millis(definition.retry_delay_max_ms),
        };
        let errors = ErrorHandling::of(definition);
        async move {
            let connector = setup.connector.clone();
            let task_id = setup.task_id;
            let set_state = |state: State, trace: Option<String>| {
                let mut status = status.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                status.state = state;
                status.trace = trace;
            };
            let result = match sink_topics {
                None => match SourceHandle::open(&plugin, &setup).await {
                    Ok(handle) => {
                        set_state(State::Running, None);
                        SourceTask {
                            connector: connector.clone(),
                            task_id,
                            handle,
                            log: self.inner.log.clone(),
                            offsets: self.inner.offsets.clone(),
                            metrics,
                            settings: SourceSettings {
                                batch_size: self.inner.config.batch_size,
                                default_partitions,
                                retry,
                                errors,
                            },
                        }
                        .run(cancel)
                        .await
                    }
                    Err(error) => Err(error),
                },
                Some(topics) => match SinkHandle::open(&plugin, &setup).await {
                    Ok(handle) => {
                        set_state(State::Running, None);
                        SinkTask {
                            connector: connector.clone(),
                            task_id,
                            handle,
                            log: self.inner.log.clone(),
                            metrics,
                            group: format!("connect-{connector}"),
                            topics,
                            task_count,
                            settings: SinkSettings {
                                batch_size: self.inner.config.batch_size,
                                max_read_bytes: 1 << 20,
                                flush_interval: self.inner.config.sink_flush_interval,
                                retry,
                                errors,
                            },
                        }
                        .run(cancel)
                        .await
                    }
                    Err(error) => Err(error),
                },
            };
            match result {
                Ok(()) => set_state(State::Unassigned, None),
                Err(error) => {
                    tracing::error!(connector = %connector, task = task_id, error = %error, "task failed");
                    set_state(State::Failed, Some(error.to_string()));
                }
            }
        }
    }

    /// The status of every connector.
    pub fn snapshot(&self) -> Vec<ConnectorSnapshot> {
        self.connectors()
            .iter()
            .map(|(name, connector)| ConnectorSnapshot {
                name: name.clone(),
                class: connector.definition.class.clone(),
                kind: connector.kind,
                tasks: connector
                    .tasks
                    .iter()
                    .map(|slot| TaskSnapshot {
                        status: slot.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone(),
                        records: slot.metrics.records(),
                        bytes: slot.metrics.bytes(),
                        retries: slot.metrics.retries.load(std::sync::atomic::Ordering::Relaxed),
                        errors: slot.metrics.errors.load(std::sync::atomic::Ordering::Relaxed),
                    })
                    .collect(),
            })
            .collect()
    }

    /// Stop a connector's tasks (each finishes its batch, flushes, commits and closes) and
    /// forget it.
    ///
    /// # Errors
    /// When no such connector runs.
    pub async fn stop(&self, name: &str) -> Result<(), WorkerError> {
        let connector =
            self.connectors().remove(name).ok_or_else(|| WorkerError::NotFound { name: name.to_owned() })?;
        Self::stop_connector(name, connector, self.inner.config.shutdown_timeout).await;
        Ok(())
    }

    async fn stop_connector(name: &str, connector: RunningConnector, timeout: Duration) {
        for slot in &connector.tasks {
            slot.cancel.cancel();
        }
        if tokio::time::timeout(timeout, connector.tracker.wait()).await.is_err() {
            tracing::warn!(connector = name, timeout_ms = timeout.as_millis() as u64, "tasks did not stop in time");
        }
    }

    /// Stop every connector's tasks (they stay listed, with their final counts), then flush
    /// the log.
    pub async fn shutdown(&self) {
        let trackers: Vec<(String, TaskTracker)> = {
            let connectors = self.connectors();
            for connector in connectors.values() {
                for slot in &connector.tasks {
                    slot.cancel.cancel();
                }
            }
            connectors.iter().map(|(name, connector)| (name.clone(), connector.tracker.clone())).collect()
        };
        let timeout = self.inner.config.shutdown_timeout;
        let stops = trackers.into_iter().map(|(name, tracker)| async move {
            if tokio::time::timeout(timeout, tracker.wait()).await.is_err() {
                tracing::warn!(connector = %name, timeout_ms = timeout.as_millis() as u64, "tasks did not stop in time");
            }
        });
        futures::future::join_all(stops).await;
        if let Err(error) = self.inner.log.flush() {
            tracing::error!(%error, "final log flush failed");
        }
    }
}

/// Field names of connector config are reported as `config.<key>`.
fn config_field(field: &str) -> String {
    if field.is_empty() { "config".into() } else { format!("config.{field}") }
}
