//! The worker: owns the log, the plugins and the stores, validates connector definitions, and
//! runs each connector's tasks.
//!
//! Standalone mode is a cluster of one worker with the embedded log; there is one code path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weir_broker::{FlushPolicy, Log, LogConfig, LogError};
use weir_connector_sdk::{FieldError, Kind, SourceOffset};

use crate::config_provider;
use crate::connector_store::ConnectorStore;
pub use crate::connector_store::TargetState;
use crate::host::{EngineError, TaskError, TaskSetup, WasmEngine};
use crate::manifest::ConnectorDefinition;
use crate::plugin::{Plugin, PluginError, PluginRegistry};
use crate::state_store::{OffsetStore, StateStore};
use crate::task::{
    ErrorHandling, RestartPolicy, Restarts, RetryPolicy, SinkHandle, SinkSettings, SinkTask, SourceHandle,
    SourceSettings, SourceTask, State, TaskMetrics, TaskStatus, sleep_or_cancel,
};
use crate::transform::Chain;

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
    /// The operation needs the connector in another state (e.g. offsets change only when
    /// STOPPED).
    #[error("{message}")]
    WrongState { name: String, message: String },
    #[error("connector {name} has no task {task}")]
    TaskNotFound { name: String, task: u32 },
    /// A request the worker cannot act on (bad offsets, ...).
    #[error("{message}")]
    BadRequest { message: String },
}

fn format_field_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(
            |error| {
                if error.field.is_empty() {
                    error.message.clone()
                } else {
                    format!("{}: {}", error.field, error.message)
                }
            },
        )
        .collect::<Vec<_>>()
        .join("; ")
}

/// A snapshot of one connector, for status reports and progress lines.
#[derive(Debug, Clone)]
pub struct ConnectorSnapshot {
    pub name: String,
    pub class: String,
    pub kind: Kind,
    /// The connector's own state: RUNNING, PAUSED, STOPPED or FAILED.
    pub state: State,
    pub target: TargetState,
    /// Why the connector FAILED (its tasks could not be planned or a reference not resolved).
    pub trace: Option<String>,
    pub worker_id: String,
    pub tasks: Vec<TaskSnapshot>,
}

#[derive(Debug, Clone)]
pub struct TaskSnapshot {
    pub status: TaskStatus,
    pub records: u64,
    pub bytes: u64,
    pub batches: u64,
    /// Records that failed (tolerated or not).
    pub errors: u64,
    /// Retries of retriable failures so far.
    pub retries: u64,
    /// Wall-clock ms of the last offset commit (0: none yet).
    pub last_commit_ms: i64,
    /// The component's own gauges (`log.gauge`), e.g. a CDC source's snapshot progress.
    pub gauges: std::collections::BTreeMap<String, i64>,
}

/// A connector's definition and what the REST API shows of it.
#[derive(Debug, Clone)]
pub struct ConnectorInfo {
    /// As stored: config provider references unresolved.
    pub definition: ConnectorDefinition,
    pub kind: Kind,
    pub target: TargetState,
    /// Task ids (none when STOPPED).
    pub tasks: Vec<u32>,
}

/// One connector's offsets, in Kafka Connect's vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectorOffsets {
    /// Source partitions and positions (JSON by convention; bytes that are not JSON are shown
    /// as a string).
    Source(Vec<(serde_json::Value, serde_json::Value)>),
    /// The sink's consumer group offsets: (topic, partition, next offset).
    Sink(Vec<(String, u32, i64)>),
}

/// What a task loop takes from its connector's definition.
struct TaskPolicy {
    default_partitions: u32,
    retry: RetryPolicy,
    errors: ErrorHandling,
    restart: RestartPolicy,
    transforms: Arc<Chain>,
}

struct TaskSlot {
    status: Arc<Mutex<TaskStatus>>,
    metrics: Arc<TaskMetrics>,
    cancel: CancellationToken,
    handle: Option<JoinHandle<()>>,
}

impl TaskSlot {
    fn state(&self) -> State {
        self.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).state
    }

    fn set_state(&self, state: State, trace: Option<String>) {
        let mut status = self.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        status.state = state;
        status.trace = trace;
    }
}

struct RunningConnector {
    definition: ConnectorDefinition,
    kind: Kind,
    target: TargetState,
    state: State,
    trace: Option<String>,
    /// Empty when STOPPED (as in Kafka Connect, a stopped connector has no tasks).
    tasks: Vec<TaskSlot>,
    /// The task configs the tasks were started with (resolved), by task id.
    task_configs: Vec<String>,
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
    store: Arc<ConnectorStore>,
    connectors: Mutex<BTreeMap<String, RunningConnector>>,
    /// Serializes changes (create, update, pause, delete, ...) so that each sees the last one
    /// finished; reads never wait for it.
    changes: tokio::sync::Mutex<()>,
    /// Serializes updates of the active topics (tasks add the topics they write to).
    topics_lock: Mutex<()>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Worker {
    /// Open the log in the data directory and load the plugins. Stored connectors are not
    /// started until [`Worker::restore`].
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
        let log =
            Log::open(config.data_dir.join("log"), LogConfig { flush: config.flush.clone(), ..LogConfig::default() })?;
        let offsets = Arc::new(OffsetStore::open(log.clone())?);
        let state = Arc::new(StateStore::open(log.clone())?);
        let store = Arc::new(ConnectorStore::open(log.clone())?);
        let engine = WasmEngine::new()?;
        let cache_dir = config.data_dir.join("cache");
        let (mut registry, rejected) =
            PluginRegistry::load(&engine, state.clone(), Some(&cache_dir), config.plugin_dir.as_deref()).await?;
        for error in rejected {
            tracing::error!(%error, "plugin rejected");
        }
        customize(&mut registry, &engine, state.clone())?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                log,
                registry,
                offsets,
                state,
                store,
                connectors: Mutex::new(BTreeMap::new()),
                changes: tokio::sync::Mutex::new(()),
                topics_lock: Mutex::new(()),
            }),
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

    /// Bring back every connector stored in `weir-configs`, each in its target state. A stored
    /// connector that no longer validates (e.g. its plugin is gone) is listed as FAILED.
    pub async fn restore(&self) {
        let _changes = self.inner.changes.lock().await;
        for (definition, target) in self.inner.store.connectors() {
            let name = definition.name.clone();
            if let Err(error) = self.install(definition, target).await {
                tracing::error!(connector = %name, %error, "stored connector cannot start");
            }
        }
    }

    /// Check a definition: the plugin exists, the config (references resolved) satisfies its
    /// JSON Schema and the connector's own `validate`. Errors name the field
    /// (`connector.class`, `config.<key>`) and never quote a resolved secret.
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
        let mut errors = plugin.ungranted_imports(&definition.grants);
        if let Err(found) = Chain::new(&definition.transforms, &definition.predicates) {
            errors.extend(found);
        }
        let mut resolved = serde_json::Map::new();
        let mut secrets = Vec::new();
        for (key, value) in &definition.config {
            let single: serde_json::Map<String, serde_json::Value> =
                [(key.clone(), value.clone())].into_iter().collect();
            match config_provider::resolve(&single) {
                Ok((mut one, found)) => {
                    config_provider::remember(&found);
                    secrets.extend(found);
                    resolved.extend(std::mem::take(&mut one));
                }
                Err(error) => errors.push(FieldError { field: config_field(key), message: error.to_string() }),
            }
        }
        if errors.iter().any(|error| error.field.starts_with("config.")) {
            // An unresolvable reference: the schema check would only repeat it.
            return Err(errors);
        }
        let config = serde_json::Value::Object(resolved);
        errors.extend(plugin.schema_errors(&config).into_iter().map(|error| FieldError {
            field: config_field(&error.field),
            message: config_provider::scrub(&error.message, &secrets),
        }));
        if plugin.spec().kind == Kind::Sink && definition.topics().is_empty() {
            errors
                .push(FieldError { field: "config.topics".into(), message: "a sink needs at least one topic".into() });
        }
        if errors.is_empty() {
            if let Err(found) = plugin.validate(&config.to_string()).await {
                errors.extend(found.into_iter().map(|error| FieldError {
                    field: config_field(&error.field),
                    message: config_provider::scrub(&error.message, &secrets),
                }));
            }
        }
        if errors.is_empty() { Ok(plugin) } else { Err(errors) }
    }

    /// Validate and start a connector (RUNNING).
    ///
    /// # Errors
    /// When it exists already, is invalid, or its tasks cannot be planned.
    pub async fn create(&self, definition: ConnectorDefinition) -> Result<(), WorkerError> {
        let _changes = self.inner.changes.lock().await;
        let name = definition.name.clone();
        if self.connectors().contains_key(&name) {
            return Err(WorkerError::AlreadyExists { name });
        }
        self.validate(&definition).await.map_err(|errors| WorkerError::InvalidConfig { name: name.clone(), errors })?;
        self.inner.store.put(&definition, TargetState::Running)?;
        self.install(definition, TargetState::Running).await
    }

    /// Create a connector or replace its definition (Kafka Connect's `PUT .../config`). A new
    /// connector starts in `initial` (RUNNING when `None`); an existing one keeps its target
    /// state, and its tasks restart with the new config (nothing happens if it is unchanged).
    /// Returns whether the connector was created.
    ///
    /// # Errors
    /// When the definition is invalid or cannot be stored.
    pub async fn put(
        &self,
        definition: ConnectorDefinition,
        initial: Option<TargetState>,
    ) -> Result<bool, WorkerError> {
        let _changes = self.inner.changes.lock().await;
        let name = definition.name.clone();
        self.validate(&definition).await.map_err(|errors| WorkerError::InvalidConfig { name: name.clone(), errors })?;
        let existing = self.connectors().remove(&name);
        let (created, target) = match existing {
            Some(connector) if connector.definition == definition => {
                self.connectors().insert(name, connector);
                return Ok(false);
            }
            Some(connector) => {
                let target = connector.target;
                self.stop_slots(&name, connector.tasks, State::Unassigned).await;
                (false, target)
            }
            None => (true, initial.unwrap_or(TargetState::Running)),
        };
        self.inner.store.put(&definition, target)?;
        // As in Kafka Connect, a valid connector whose tasks cannot be planned exists and is
        // FAILED with the reason in its status; the request itself succeeded.
        if let Err(error) = self.install(definition, target).await {
            tracing::warn!(connector = %name, %error, "connector failed to start");
        }
        Ok(created)
    }

    /// Start (or park) a connector in `target`. The caller holds `changes`.
    async fn install(&self, definition: ConnectorDefinition, target: TargetState) -> Result<(), WorkerError> {
        let name = definition.name.clone();
        let Some(plugin) = self.inner.registry.get(&definition.class) else {
            let trace = format!("unknown plugin `{}`", definition.class);
            self.connectors().insert(
                name.clone(),
                RunningConnector {
                    definition,
                    kind: Kind::Source,
                    target,
                    state: State::Failed,
                    trace: Some(trace.clone()),
                    tasks: Vec::new(),
                    task_configs: Vec::new(),
                },
            );
            self.record_connector_status(&name);
            return Err(WorkerError::BadRequest { message: trace });
        };
        let kind = plugin.spec().kind;
        let mut connector = RunningConnector {
            definition,
            kind,
            target,
            state: State::Stopped,
            trace: None,
            tasks: Vec::new(),
            task_configs: Vec::new(),
        };
        let result =
            if target == TargetState::Stopped { Ok(()) } else { self.plan_and_start(&plugin, &mut connector).await };
        if let Err(error) = &result {
            connector.state = State::Failed;
            connector.trace = Some(error.to_string());
        }
        tracing::info!(connector = %name, plugin = %connector.definition.class, tasks = connector.tasks.len(), state = %connector.state, "connector installed");
        self.connectors().insert(name.clone(), connector);
        self.record_connector_status(&name);
        self.record_topics(&name);
        result
    }

    /// Resolve the config, plan the tasks and start them (RUNNING) or park them (PAUSED).
    async fn plan_and_start(&self, plugin: &Arc<Plugin>, connector: &mut RunningConnector) -> Result<(), WorkerError> {
        let name = connector.definition.name.clone();
        let (resolved, secrets) = config_provider::resolve(&connector.definition.config)
            .map_err(|error| WorkerError::BadRequest { message: error.to_string() })?;
        config_provider::remember(&secrets);
        let config = serde_json::Value::Object(resolved).to_string();
        let task_configs = plugin.task_configs(&config, connector.definition.tasks_max).await.map_err(|source| {
            WorkerError::BadRequest {
                message: config_provider::scrub(&format!("connector {name}: {source}"), &secrets),
            }
        })?;
        connector.task_configs = task_configs.into_iter().take(connector.definition.tasks_max as usize).collect();
        connector.tasks = (0..connector.task_configs.len() as u32)
            .map(|task_id| TaskSlot {
                status: Arc::new(Mutex::new(TaskStatus {
                    id: task_id,
                    state: State::Unassigned,
                    worker_id: self.inner.config.worker_id.clone(),
                    trace: None,
                    restarts: None,
                })),
                metrics: Arc::new(TaskMetrics::default()),
                cancel: CancellationToken::new(),
                handle: None,
            })
            .collect();
        if connector.target == TargetState::Paused {
            connector.state = State::Paused;
            for slot in &connector.tasks {
                slot.set_state(State::Paused, None);
            }
        } else {
            connector.state = State::Running;
            for task_id in 0..connector.tasks.len() {
                self.spawn_task(plugin, connector, task_id, &config);
            }
        }
        Ok(())
    }

    /// Start task `index` of `connector` in its slot (fresh cancel token, same counters).
    fn spawn_task(&self, plugin: &Arc<Plugin>, connector: &mut RunningConnector, index: usize, config: &str) {
        let name = connector.definition.name.clone();
        let task_count = connector.tasks.len() as u32;
        let setup = TaskSetup {
            connector: Arc::from(name.as_str()),
            task_id: index as u32,
            config: config.to_owned(),
            task_config: connector.task_configs[index].clone(),
            committed: self.inner.offsets.committed(&name),
            grants: connector.definition.grants.clone(),
            limits: connector.definition.limits,
            state: self.inner.state.clone(),
            metrics: connector.tasks[index].metrics.clone(),
        };
        let topics = (connector.kind == Kind::Sink).then(|| connector.definition.topics());
        let policy = TaskPolicy {
            default_partitions: connector.definition.default_partitions.unwrap_or(self.inner.config.default_partitions),
            retry: RetryPolicy {
                timeout: connector.definition.retry_timeout(),
                max_delay: Duration::from_millis(connector.definition.retry_delay_max_ms),
            },
            errors: ErrorHandling::of(&connector.definition),
            restart: RestartPolicy::of(&connector.definition),
            transforms: Arc::new(
                Chain::new(&connector.definition.transforms, &connector.definition.predicates).unwrap_or_else(
                    |errors| {
                        // Validated when the connector was deployed; a chain that no longer builds
                        // is reported and left out rather than failing the task.
                        tracing::error!(connector = %name, ?errors, "invalid transforms ignored");
                        Chain::default()
                    },
                ),
            ),
        };
        let slot = &mut connector.tasks[index];
        slot.cancel = CancellationToken::new();
        slot.set_state(State::Unassigned, None);
        let future = self.clone().run_task(plugin.clone(), setup, topics, task_count, policy, slot);
        slot.handle = Some(tokio::spawn(future));
    }

    /// The task's life: open and run it; when it fails, restart it as its restart policy
    /// allows (each time from the committed offsets), else leave it FAILED with its trace.
    fn run_task(
        self,
        plugin: Arc<Plugin>,
        mut setup: TaskSetup,
        sink_topics: Option<Vec<String>>,
        task_count: u32,
        policy: TaskPolicy,
        slot: &TaskSlot,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let status = slot.status.clone();
        let metrics = slot.metrics.clone();
        let cancel = slot.cancel.clone();
        let TaskPolicy { default_partitions, retry, errors, restart, transforms } = policy;
        async move {
            let connector = setup.connector.clone();
            let task_id = setup.task_id;
            let mut restarts = Restarts::new(restart);
            let set_state = |state: State, trace: Option<String>, attempts: u32| {
                let snapshot = {
                    let mut status = status.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    status.state = state;
                    status.trace = trace;
                    status.restarts = Some(restart.status(attempts));
                    status.clone()
                };
                self.record_task_status(&connector, &snapshot);
            };
            loop {
                let attempts = restarts.attempts(std::time::Instant::now());
                let result = match &sink_topics {
                    None => match SourceHandle::open(&plugin, &setup).await {
                        Ok(handle) => {
                            set_state(State::Running, None, attempts);
                            SourceTask {
                                connector: connector.clone(),
                                task_id,
                                handle,
                                log: self.inner.log.clone(),
                                offsets: self.inner.offsets.clone(),
                                metrics: metrics.clone(),
                                on_new_topic: {
                                    let worker = self.clone();
                                    let name = connector.to_string();
                                    Arc::new(move |topic: &str| worker.add_active_topics(&name, [topic.to_owned()]))
                                },
                                settings: SourceSettings {
                                    batch_size: self.inner.config.batch_size,
                                    default_partitions,
                                    retry,
                                    errors: errors.clone(),
                                    transforms: transforms.clone(),
                                },
                            }
                            .run(cancel.clone())
                            .await
                        }
                        Err(error) => Err(error),
                    },
                    Some(topics) => match SinkHandle::open(&plugin, &setup).await {
                        Ok(handle) => {
                            set_state(State::Running, None, attempts);
                            SinkTask {
                                connector: connector.clone(),
                                task_id,
                                handle,
                                log: self.inner.log.clone(),
                                metrics: metrics.clone(),
                                group: sink_group(&connector),
                                topics: topics.clone(),
                                task_count,
                                settings: SinkSettings {
                                    batch_size: self.inner.config.batch_size,
                                    max_read_bytes: 1 << 20,
                                    flush_interval: self.inner.config.sink_flush_interval,
                                    retry,
                                    errors: errors.clone(),
                                    transforms: transforms.clone(),
                                },
                            }
                            .run(cancel.clone())
                            .await
                        }
                        Err(error) => Err(error),
                    },
                };
                let error = match result {
                    Ok(()) => {
                        set_state(State::Unassigned, None, attempts);
                        return;
                    }
                    Err(error) => error,
                };
                let trace = error.to_string();
                let now = std::time::Instant::now();
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
                    set_state(State::Failed, Some(trace), restarts.attempts(now));
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
                set_state(State::Restarting, Some(trace.clone()), attempt);
                if !sleep_or_cancel(wait, &cancel).await {
                    set_state(State::Failed, Some(trace), attempt);
                    return;
                }
                setup.committed = self.inner.offsets.committed(&connector);
            }
        }
    }

    fn record_task_status(&self, connector: &str, status: &TaskStatus) {
        let json = serde_json::to_value(status).unwrap_or_default();
        if let Err(error) = self.inner.store.put_status(connector, &format!("task-{}", status.id), &json) {
            tracing::warn!(connector, task = status.id, %error, "cannot record the task status");
        }
    }

    fn record_connector_status(&self, name: &str) {
        let json = {
            let connectors = self.connectors();
            let Some(connector) = connectors.get(name) else { return };
            serde_json::json!({
                "state": connector.state,
                "worker_id": self.inner.config.worker_id,
                "trace": connector.trace,
            })
        };
        if let Err(error) = self.inner.store.put_status(name, "connector", &json) {
            tracing::warn!(connector = name, %error, "cannot record the connector status");
        }
    }

    /// Add the connector's configured topics to its active topics (Kafka Connect tracks the
    /// topics a connector used; weir knows them from the config).
    fn record_topics(&self, name: &str) {
        let configured = {
            let connectors = self.connectors();
            let Some(connector) = connectors.get(name) else { return };
            configured_topics(&connector.definition)
        };
        self.add_active_topics(name, configured);
    }

    /// Add topics to a connector's active topics (stored in `weir-status`).
    fn add_active_topics(&self, name: &str, topics: impl IntoIterator<Item = String>) {
        let _serialized = self.inner.topics_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut active = self.topics(name).unwrap_or_default();
        let before = active.len();
        active.extend(topics);
        if active.len() != before {
            let json = serde_json::json!(active);
            if let Err(error) = self.inner.store.put_status(name, "topics", &json) {
                tracing::warn!(connector = name, %error, "cannot record the active topics");
            }
        }
    }

    /// Cancel tasks and wait (bounded) for them to finish their batch, flush and close; then
    /// mark them `state`.
    async fn stop_slots(&self, name: &str, mut slots: Vec<TaskSlot>, state: State) -> Vec<TaskSlot> {
        for slot in &slots {
            slot.cancel.cancel();
        }
        let timeout = self.inner.config.shutdown_timeout;
        for slot in &mut slots {
            if let Some(handle) = slot.handle.take() {
                if tokio::time::timeout(timeout, handle).await.is_err() {
                    tracing::warn!(
                        connector = name,
                        timeout_ms = timeout.as_millis() as u64,
                        "task did not stop in time"
                    );
                }
            }
            if slot.state() != State::Failed || state != State::Unassigned {
                slot.set_state(state, None);
            }
            let status = slot.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
            self.record_task_status(name, &status);
        }
        slots
    }

    /// The status of every connector.
    pub fn snapshot(&self) -> Vec<ConnectorSnapshot> {
        self.connectors().iter().map(|(name, connector)| self.snapshot_of(name, connector)).collect()
    }

    /// The status of one connector.
    pub fn connector_snapshot(&self, name: &str) -> Option<ConnectorSnapshot> {
        self.connectors().get(name).map(|connector| self.snapshot_of(name, connector))
    }

    fn snapshot_of(&self, name: &str, connector: &RunningConnector) -> ConnectorSnapshot {
        ConnectorSnapshot {
            name: name.to_owned(),
            class: connector.definition.class.clone(),
            kind: connector.kind,
            state: connector.state,
            target: connector.target,
            trace: connector.trace.clone(),
            worker_id: self.inner.config.worker_id.clone(),
            tasks: connector
                .tasks
                .iter()
                .map(|slot| TaskSnapshot {
                    status: slot.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone(),
                    records: slot.metrics.records(),
                    bytes: slot.metrics.bytes(),
                    batches: slot.metrics.batches.load(std::sync::atomic::Ordering::Relaxed),
                    errors: slot.metrics.errors.load(std::sync::atomic::Ordering::Relaxed),
                    last_commit_ms: slot.metrics.last_commit_ms.load(std::sync::atomic::Ordering::Relaxed),
                    retries: slot.metrics.retries.load(std::sync::atomic::Ordering::Relaxed),
                    gauges: slot.metrics.gauges(),
                })
                .collect(),
        }
    }

    /// Connector names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.connectors().keys().cloned().collect()
    }

    /// A connector's definition (references unresolved), kind, target state and task ids.
    pub fn info(&self, name: &str) -> Option<ConnectorInfo> {
        self.connectors().get(name).map(|connector| ConnectorInfo {
            definition: connector.definition.clone(),
            kind: connector.kind,
            target: connector.target,
            tasks: (0..connector.tasks.len() as u32).collect(),
        })
    }

    /// How many tasks a connector has (none when STOPPED).
    pub fn task_count(&self, name: &str) -> Option<usize> {
        self.connectors().get(name).map(|connector| connector.tasks.len())
    }

    /// Stop a connector's tasks (each finishes its batch, flushes, commits and closes) and
    /// forget it: its config, target state and statuses are deleted; its offsets are kept.
    ///
    /// # Errors
    /// When no such connector exists.
    pub async fn stop(&self, name: &str) -> Result<(), WorkerError> {
        self.delete(name).await
    }

    /// As [`Worker::stop`] (Kafka Connect's `DELETE /connectors/{name}`).
    ///
    /// # Errors
    /// When no such connector exists, or the deletion cannot be stored.
    pub async fn delete(&self, name: &str) -> Result<(), WorkerError> {
        let _changes = self.inner.changes.lock().await;
        let connector =
            self.connectors().remove(name).ok_or_else(|| WorkerError::NotFound { name: name.to_owned() })?;
        self.stop_slots(name, connector.tasks, State::Unassigned).await;
        self.inner.store.remove(name)?;
        on_delete(self.inner.registry.get(&connector.definition.class), &connector.definition).await;
        tracing::info!(connector = name, "connector deleted");
        Ok(())
    }

    /// Change a connector's target state: RUNNING (resume), PAUSED (its tasks stop and wait)
    /// or STOPPED (its tasks are shut down; offsets may then be changed). A resumed connector's
    /// tasks start from the committed offsets.
    ///
    /// # Errors
    /// When no such connector exists, or the change cannot be stored.
    pub async fn set_target(&self, name: &str, target: TargetState) -> Result<(), WorkerError> {
        let _changes = self.inner.changes.lock().await;
        let mut connector =
            self.connectors().remove(name).ok_or_else(|| WorkerError::NotFound { name: name.to_owned() })?;
        if let Err(error) = self.inner.store.put_target(name, target) {
            self.connectors().insert(name.to_owned(), connector);
            return Err(error.into());
        }
        let slots = std::mem::take(&mut connector.tasks);
        let parked = match target {
            TargetState::Running => State::Unassigned,
            TargetState::Paused => State::Paused,
            TargetState::Stopped => State::Stopped,
        };
        self.stop_slots(name, slots, parked).await;
        tracing::info!(connector = name, target = target.as_str(), "connector target state changed");
        let definition = connector.definition.clone();
        self.install(definition, target).await
    }

    /// Restart a connector (Kafka Connect's `POST .../restart`): with `include_tasks`, its
    /// tasks (only the FAILED ones with `only_failed`) are stopped and started again.
    ///
    /// # Errors
    /// When no such connector exists.
    pub async fn restart(&self, name: &str, include_tasks: bool, only_failed: bool) -> Result<(), WorkerError> {
        let _changes = self.inner.changes.lock().await;
        let (state, target) = {
            let connectors = self.connectors();
            let connector = connectors.get(name).ok_or_else(|| WorkerError::NotFound { name: name.to_owned() })?;
            (connector.state, connector.target)
        };
        if target == TargetState::Stopped {
            return Ok(());
        }
        // The connector itself has no instance of its own here: restarting it means planning
        // its tasks again, which only changes something when it FAILED.
        if state == State::Failed {
            let mut connector =
                self.connectors().remove(name).ok_or_else(|| WorkerError::NotFound { name: name.to_owned() })?;
            let slots = std::mem::take(&mut connector.tasks);
            self.stop_slots(name, slots, State::Restarting).await;
            return self.install(connector.definition, target).await;
        }
        if include_tasks {
            let chosen: Vec<u32> = {
                let connectors = self.connectors();
                let connector = connectors.get(name).ok_or_else(|| WorkerError::NotFound { name: name.to_owned() })?;
                connector
                    .tasks
                    .iter()
                    .enumerate()
                    .filter(|(_, slot)| !only_failed || slot.state() == State::Failed)
                    .map(|(index, _)| index as u32)
                    .collect()
            };
            for task in chosen {
                self.restart_task_locked(name, task).await?;
            }
        }
        Ok(())
    }

    /// Restart one task (Kafka Connect's `POST .../tasks/{id}/restart`).
    ///
    /// # Errors
    /// When the connector or the task does not exist.
    pub async fn restart_task(&self, name: &str, task: u32) -> Result<(), WorkerError> {
        let _changes = self.inner.changes.lock().await;
        self.restart_task_locked(name, task).await
    }

    async fn restart_task_locked(&self, name: &str, task: u32) -> Result<(), WorkerError> {
        let (plugin, slot) = {
            let mut connectors = self.connectors();
            let connector = connectors.get_mut(name).ok_or_else(|| WorkerError::NotFound { name: name.to_owned() })?;
            let index = task as usize;
            if index >= connector.tasks.len() {
                return Err(WorkerError::TaskNotFound { name: name.to_owned(), task });
            }
            if connector.target != TargetState::Running {
                return Ok(());
            }
            let plugin = self.inner.registry.get(&connector.definition.class);
            let slot = TaskSlot {
                status: connector.tasks[index].status.clone(),
                metrics: connector.tasks[index].metrics.clone(),
                cancel: connector.tasks[index].cancel.clone(),
                handle: connector.tasks[index].handle.take(),
            };
            (plugin, slot)
        };
        self.stop_slots(name, vec![slot], State::Restarting).await;
        let Some(plugin) = plugin else { return Ok(()) };
        let (resolved, _) = match connector_config(self, name).map(|config| config_provider::resolve(&config)) {
            Some(Ok((resolved, secrets))) => {
                config_provider::remember(&secrets);
                (resolved, ())
            }
            Some(Err(error)) => return Err(WorkerError::BadRequest { message: error.to_string() }),
            None => return Err(WorkerError::NotFound { name: name.to_owned() }),
        };
        let config = serde_json::Value::Object(resolved).to_string();
        let mut connectors = self.connectors();
        if let Some(connector) = connectors.get_mut(name) {
            self.spawn_task(&plugin, connector, task as usize, &config);
        }
        Ok(())
    }

    /// A connector's committed offsets.
    ///
    /// # Errors
    /// When no such connector exists.
    pub fn connector_offsets(&self, name: &str) -> Result<ConnectorOffsets, WorkerError> {
        let kind = self
            .connectors()
            .get(name)
            .map(|connector| connector.kind)
            .ok_or_else(|| WorkerError::NotFound { name: name.to_owned() })?;
        Ok(match kind {
            Kind::Source => ConnectorOffsets::Source(
                self.inner
                    .offsets
                    .committed(name)
                    .into_iter()
                    .map(|offset| (json_or_text(&offset.partition), json_or_text(&offset.position)))
                    .collect(),
            ),
            Kind::Sink => ConnectorOffsets::Sink(self.inner.log.group_offsets(&sink_group(name))),
        })
    }

    fn require_stopped(&self, name: &str) -> Result<Kind, WorkerError> {
        let connectors = self.connectors();
        let connector = connectors.get(name).ok_or_else(|| WorkerError::NotFound { name: name.to_owned() })?;
        if connector.target != TargetState::Stopped {
            return Err(WorkerError::WrongState {
                name: name.to_owned(),
                message: format!(
                    "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"
                ),
            });
        }
        Ok(connector.kind)
    }

    /// Alter a STOPPED connector's offsets. For a source, `(partition, Some(position))` sets a
    /// position and `(partition, None)` removes it; for a sink the kind must match (see
    /// [`ConnectorOffsets::Sink`], an offset of -1 removes).
    ///
    /// # Errors
    /// When the connector does not exist, is not STOPPED, or the offsets do not fit its kind.
    pub async fn alter_offsets(&self, name: &str, offsets: ConnectorOffsets) -> Result<(), WorkerError> {
        let _changes = self.inner.changes.lock().await;
        let kind = self.require_stopped(name)?;
        match (kind, offsets) {
            (Kind::Source, ConnectorOffsets::Source(changes)) => {
                let current = self.inner.offsets.committed(name);
                let mut kept: Vec<SourceOffset> = current.clone();
                for (partition, position) in changes {
                    // Keep the connector's own bytes for a partition it already wrote, so that
                    // its next commit replaces this entry instead of adding one.
                    let key = current
                        .iter()
                        .find(|offset| json_or_text(&offset.partition) == partition)
                        .map(|offset| offset.partition.clone())
                        .unwrap_or_else(|| json_bytes(&partition));
                    kept.retain(|offset| offset.partition != key);
                    if !position.is_null() {
                        kept.push(SourceOffset { partition: key, position: json_bytes(&position) });
                    }
                }
                self.inner.offsets.reset(name)?;
                self.inner.offsets.commit(name, &kept)?;
            }
            (Kind::Sink, ConnectorOffsets::Sink(changes)) => {
                let group = sink_group(name);
                let remove: Vec<&(String, u32, i64)> = changes.iter().filter(|(_, _, offset)| *offset < 0).collect();
                if !remove.is_empty() {
                    let kept: Vec<(String, u32, i64)> = self
                        .inner
                        .log
                        .group_offsets(&group)
                        .into_iter()
                        .filter(|(topic, partition, _)| !remove.iter().any(|(t, p, _)| t == topic && p == partition))
                        .collect();
                    self.inner.log.delete_group_offsets(&group)?;
                    let kept: Vec<(&str, u32, i64)> =
                        kept.iter().map(|(topic, partition, offset)| (topic.as_str(), *partition, *offset)).collect();
                    if !kept.is_empty() {
                        self.inner.log.commit_offsets(&group, &kept)?;
                    }
                }
                let set: Vec<(&str, u32, i64)> = changes
                    .iter()
                    .filter(|(_, _, offset)| *offset >= 0)
                    .map(|(topic, partition, offset)| (topic.as_str(), *partition, *offset))
                    .collect();
                if !set.is_empty() {
                    self.inner.log.commit_offsets(&group, &set)?;
                }
            }
            (Kind::Source, ConnectorOffsets::Sink(_)) => {
                return Err(WorkerError::BadRequest {
                    message: format!(
                        "connector {name} is a source: its offsets are {{\"partition\": {{...}}, \"offset\": {{...}}}} objects"
                    ),
                });
            }
            (Kind::Sink, ConnectorOffsets::Source(_)) => {
                return Err(WorkerError::BadRequest {
                    message: format!(
                        "connector {name} is a sink: its partitions are {{\"kafka_topic\": ..., \"kafka_partition\": ...}} and its offsets {{\"kafka_offset\": ...}}"
                    ),
                });
            }
        }
        tracing::info!(connector = name, "offsets altered");
        Ok(())
    }

    /// Remove every offset of a STOPPED connector.
    ///
    /// # Errors
    /// When the connector does not exist or is not STOPPED.
    pub async fn reset_offsets(&self, name: &str) -> Result<(), WorkerError> {
        let _changes = self.inner.changes.lock().await;
        match self.require_stopped(name)? {
            Kind::Source => self.inner.offsets.reset(name)?,
            Kind::Sink => self.inner.log.delete_group_offsets(&sink_group(name))?,
        }
        tracing::info!(connector = name, "offsets reset");
        Ok(())
    }

    /// The topics a connector has used (Kafka Connect's active topics).
    ///
    /// # Errors
    /// When no such connector exists.
    pub fn topics(&self, name: &str) -> Result<BTreeSet<String>, WorkerError> {
        if !self.connectors().contains_key(name) {
            return Err(WorkerError::NotFound { name: name.to_owned() });
        }
        Ok(self
            .inner
            .store
            .status(name, "topics")
            .and_then(|value| serde_json::from_value(value).ok())
            .unwrap_or_default())
    }

    /// Forget a connector's active topics.
    ///
    /// # Errors
    /// When no such connector exists or the change cannot be stored.
    pub fn reset_topics(&self, name: &str) -> Result<(), WorkerError> {
        self.topics(name)?;
        self.inner.store.put_status(name, "topics", &serde_json::json!([]))?;
        Ok(())
    }

    /// The consumer lag of a sink connector per (topic, partition): end offset − committed.
    pub fn sink_lag(&self, name: &str) -> Vec<(String, u32, i64)> {
        let Some(definition) = self
            .connectors()
            .get(name)
            .filter(|connector| connector.kind == Kind::Sink)
            .map(|connector| connector.definition.clone())
        else {
            return Vec::new();
        };
        let group = sink_group(name);
        let mut lag = Vec::new();
        for topic in definition.topics() {
            for partition in 0u32.. {
                let Ok(end) = self.inner.log.end_offset(&topic, partition) else { break };
                let committed = self.inner.log.committed_offset(&group, &topic, partition).unwrap_or(0);
                lag.push((topic.clone(), partition, (end - committed).max(0)));
            }
        }
        lag
    }

    /// Stop every connector's tasks (they stay listed, with their final counts, and their
    /// target states stay stored), then flush the log.
    pub async fn shutdown(&self) {
        let _changes = self.inner.changes.lock().await;
        let stops: Vec<(String, Vec<TaskSlot>)> = {
            let mut connectors = self.connectors();
            for connector in connectors.values() {
                for slot in &connector.tasks {
                    slot.cancel.cancel();
                }
            }
            connectors
                .iter_mut()
                .map(|(name, connector)| {
                    let handles = connector
                        .tasks
                        .iter_mut()
                        .map(|slot| TaskSlot {
                            status: slot.status.clone(),
                            metrics: slot.metrics.clone(),
                            cancel: slot.cancel.clone(),
                            handle: slot.handle.take(),
                        })
                        .collect();
                    (name.clone(), handles)
                })
                .collect()
        };
        let timeout = self.inner.config.shutdown_timeout;
        let stops = stops.into_iter().map(|(name, slots)| async move {
            for slot in slots {
                if let Some(handle) = slot.handle {
                    if tokio::time::timeout(timeout, handle).await.is_err() {
                        tracing::warn!(connector = %name, timeout_ms = timeout.as_millis() as u64, "tasks did not stop in time");
                    }
                }
            }
        });
        futures::future::join_all(stops).await;
        if let Err(error) = self.inner.log.flush() {
            tracing::error!(%error, "final log flush failed");
        }
    }
}

fn connector_config(worker: &Worker, name: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    worker.connectors().get(name).map(|connector| connector.definition.config.clone())
}

/// The component's `on-delete` (e.g. the CDC source drops its slot when configured to). The
/// deletion stands whatever happens here: a failure is logged, scrubbed of resolved secrets.
async fn on_delete(plugin: Option<Arc<Plugin>>, definition: &ConnectorDefinition) {
    let Some(plugin) = plugin else { return };
    let name = &definition.name;
    let (resolved, secrets) = match config_provider::resolve(&definition.config) {
        Ok(resolved) => resolved,
        Err(error) => {
            tracing::warn!(connector = %name, %error, "on-delete skipped: the config does not resolve");
            return;
        }
    };
    let config = serde_json::Value::Object(resolved).to_string();
    if let Err(error) = plugin.on_delete(name, &config, &definition.grants, definition.limits).await {
        let error = config_provider::scrub(&error.to_string(), &secrets);
        tracing::warn!(connector = %name, %error, "the connector's on-delete failed");
    }
}

/// The consumer group of a sink connector (Kafka Connect's naming).
pub fn sink_group(connector: &str) -> String {
    format!("connect-{connector}")
}

/// The topics a definition names: a sink's `topics`, a source's `topic` / `topics`.
fn configured_topics(definition: &ConnectorDefinition) -> Vec<String> {
    let mut topics = definition.topics();
    if let Some(serde_json::Value::String(topic)) = definition.config.get("topic") {
        if !topic.contains("${") {
            topics.push(topic.clone());
        }
    }
    topics.retain(|topic| !topic.contains("${"));
    topics
}

fn json_or_text(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn json_bytes(value: &serde_json::Value) -> Vec<u8> {
    match value {
        serde_json::Value::String(text) if serde_json::from_str::<serde_json::Value>(text).is_err() => {
            text.clone().into_bytes()
        }
        other => serde_json::to_vec(other).unwrap_or_default(),
    }
}

/// Field names of connector config are reported as `config.<key>`.
fn config_field(field: &str) -> String {
    if field.is_empty() { "config".into() } else { format!("config.{field}") }
}
