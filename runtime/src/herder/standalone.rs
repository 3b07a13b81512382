//! [`StandaloneHerder`]: the herder of a worker that is a group of one. It decides what runs
//! from the connector configs in `weir-configs`, and hands every task of every connector to its
//! own [`Supervisor`], under the generation of this start of the worker.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use weir_connector_sdk::{FieldError, Kind};

use super::{Herder, HerderError};
use crate::config_provider;
use crate::connector_store::{ConnectorStore, TargetState};
use crate::host::TaskSetup;
use crate::log::EventLog;
use crate::manifest::ConnectorDefinition;
use crate::plugin::{Plugin, PluginRegistry};
use crate::supervisor::{Assignment, OnNewTopic, Supervisor, TaskPolicy, TaskSlot};
use crate::task::{ErrorHandling, RestartPolicy, RetryPolicy, State};
use crate::transform::Chain;

/// One connector as the herder keeps it.
pub(super) struct Connector {
    pub(super) definition: ConnectorDefinition,
    pub(super) kind: Kind,
    pub(super) target: TargetState,
    pub(super) state: State,
    pub(super) trace: Option<String>,
    /// Empty when STOPPED (as in Kafka Connect, a stopped connector has no tasks).
    pub(super) tasks: Vec<TaskSlot>,
    /// The task configs the tasks were started with, by task id.
    pub(super) task_configs: Vec<String>,
}

/// The herder of a standalone worker. Cheap to clone; all clones are the same herder.
#[derive(Clone)]
pub struct StandaloneHerder {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) worker_id: String,
    /// Partitions of topics created implicitly.
    pub(super) default_partitions: u32,
    pub(super) log: Arc<dyn EventLog>,
    pub(super) registry: PluginRegistry,
    pub(super) store: Arc<ConnectorStore>,
    pub(super) supervisor: Supervisor,
    pub(super) connectors: Mutex<BTreeMap<String, Connector>>,
    /// Serializes changes (create, update, pause, delete, ...) so that each sees the last one
    /// finished; reads never wait for it.
    pub(super) changes: tokio::sync::Mutex<()>,
    /// Serializes updates of the active topics (tasks add the topics they write to).
    pub(super) topics_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for StandaloneHerder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandaloneHerder").field("worker_id", &self.inner.worker_id).finish_non_exhaustive()
    }
}

impl StandaloneHerder {
    pub(crate) fn new(
        worker_id: String,
        default_partitions: u32,
        log: Arc<dyn EventLog>,
        registry: PluginRegistry,
        store: Arc<ConnectorStore>,
        supervisor: Supervisor,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                worker_id,
                default_partitions,
                log,
                registry,
                store,
                supervisor,
                connectors: Mutex::new(BTreeMap::new()),
                changes: tokio::sync::Mutex::new(()),
                topics_lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    pub(super) fn connectors_map(&self) -> MutexGuard<'_, BTreeMap<String, Connector>> {
        self.inner.connectors.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn not_found(name: &str) -> HerderError {
        HerderError::NotFound { name: name.to_owned() }
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

    /// Stop every connector's tasks (they stay listed, with their final counts, and their
    /// target states stay stored).
    pub async fn shutdown(&self) {
        let _changes = self.inner.changes.lock().await;
        let stops: Vec<(String, Vec<TaskSlot>)> = self
            .connectors_map()
            .iter_mut()
            .map(|(name, connector)| (name.clone(), connector.tasks.iter_mut().map(TaskSlot::take_run).collect()))
            .collect();
        for (_, slots) in &stops {
            for slot in slots {
                slot.cancel.cancel();
            }
        }
        let timeout = self.inner.supervisor.config().shutdown_timeout;
        let stops = stops.into_iter().map(|(name, slots)| async move {
            for slot in slots {
                if let Some(handle) = slot.handle
                    && tokio::time::timeout(timeout, handle).await.is_err()
                {
                    tracing::warn!(connector = %name, timeout_ms = timeout.as_millis() as u64, "tasks did not stop in time");
                }
            }
        });
        futures::future::join_all(stops).await;
    }

    /// Take the runs of a connector's tasks out, leaving the connector (and its tasks' statuses)
    /// readable while they stop.
    fn take_runs(&self, name: &str) -> Result<Vec<TaskSlot>, HerderError> {
        let mut connectors = self.connectors_map();
        let connector = connectors.get_mut(name).ok_or_else(|| Self::not_found(name))?;
        Ok(connector.tasks.iter_mut().map(TaskSlot::take_run).collect())
    }

    /// Start (or park) a connector in `target`, replacing any connector of that name in the map
    /// only once the new one is planned. The caller holds `changes` and has stopped the old
    /// connector's tasks.
    async fn install(&self, definition: ConnectorDefinition, target: TargetState) -> Result<(), HerderError> {
        let name = definition.name.clone();
        let Some(plugin) = self.inner.registry.get(&definition.class) else {
            let class = definition.class.clone();
            let error = HerderError::UnknownPlugin { name: name.clone(), class };
            self.connectors_map().insert(
                name.clone(),
                Connector {
                    definition,
                    kind: Kind::Source,
                    target,
                    state: State::Failed,
                    trace: Some(error.to_string()),
                    tasks: Vec::new(),
                    task_configs: Vec::new(),
                },
            );
            self.record_connector_status(&name).await;
            return Err(error);
        };
        let mut connector = Connector {
            definition,
            kind: plugin.spec().kind,
            target,
            state: State::Stopped,
            trace: None,
            tasks: Vec::new(),
            task_configs: Vec::new(),
        };
        let planned = if target == TargetState::Stopped { Ok(None) } else { self.plan(&plugin, &mut connector).await };
        let (config, failure) = match planned {
            Ok(config) => (config, None),
            Err(error) => {
                connector.state = State::Failed;
                connector.trace = Some(error.to_string());
                (None, Some(error))
            }
        };
        tracing::info!(connector = %name, plugin = %connector.definition.class, tasks = connector.tasks.len(), state = %connector.state, "connector installed");
        {
            let mut connectors = self.connectors_map();
            connectors.insert(name.clone(), connector);
            if let (Some(config), Some(connector)) = (&config, connectors.get_mut(&name)) {
                for index in 0..connector.tasks.len() {
                    self.start_task(&plugin, &name, connector, index, config);
                }
            }
        }
        self.record_connector_status(&name).await;
        self.record_configured_topics(&name).await;
        failure.map_or(Ok(()), Err)
    }

    /// Resolve the config and plan the tasks: RUNNING (their resolved config returned, for the
    /// caller to start them) or PAUSED (`None`).
    async fn plan(&self, plugin: &Arc<Plugin>, connector: &mut Connector) -> Result<Option<String>, HerderError> {
        let name = connector.definition.name.clone();
        let (resolved, secrets) = config_provider::resolve(&connector.definition.config)
            .map_err(|source| HerderError::Unresolved { name: name.clone(), source })?;
        config_provider::remember(&secrets);
        let config = serde_json::Value::Object(resolved).to_string();
        let task_configs = plugin.task_configs(&config, connector.definition.tasks_max).await.map_err(|source| {
            HerderError::TaskPlanning {
                name: name.clone(),
                message: config_provider::scrub(&source.to_string(), &secrets),
                source,
            }
        })?;
        connector.task_configs = task_configs.into_iter().take(connector.definition.tasks_max as usize).collect();
        let worker_id = &self.inner.worker_id;
        connector.tasks = (0..connector.task_configs.len() as u32).map(|id| TaskSlot::new(id, worker_id)).collect();
        if connector.target == TargetState::Paused {
            connector.state = State::Paused;
            for slot in &connector.tasks {
                slot.set_state(State::Paused, None);
            }
            Ok(None)
        } else {
            connector.state = State::Running;
            Ok(Some(config))
        }
    }

    /// Hand task `index` of `connector` to the supervisor.
    fn start_task(&self, plugin: &Arc<Plugin>, name: &str, connector: &mut Connector, index: usize, config: &str) {
        let supervisor = &self.inner.supervisor;
        let definition = &connector.definition;
        let setup = TaskSetup {
            connector: Arc::from(name),
            task_id: index as u32,
            config: config.to_owned(),
            task_config: connector.task_configs[index].clone(),
            committed: supervisor.offsets().committed(name),
            grants: definition.grants.clone(),
            limits: definition.limits,
            state: supervisor.state_store().clone(),
            metrics: connector.tasks[index].metrics.clone(),
            generation: supervisor.generation(),
        };
        let assignment = Assignment {
            plugin: plugin.clone(),
            setup,
            sink_topics: (connector.kind == Kind::Sink).then(|| definition.topics()),
            task_count: connector.tasks.len() as u32,
            policy: self.policy(definition),
        };
        let on_new_topic: OnNewTopic = {
            let herder = self.clone();
            let name = name.to_owned();
            Arc::new(move |topic: String| {
                let herder = herder.clone();
                let name = name.clone();
                tokio::spawn(async move { herder.add_active_topics(&name, [topic]).await });
            })
        };
        supervisor.start(assignment, &mut connector.tasks[index], on_new_topic);
    }

    fn policy(&self, definition: &ConnectorDefinition) -> TaskPolicy {
        TaskPolicy {
            default_partitions: definition.default_partitions.unwrap_or(self.inner.default_partitions),
            retry: RetryPolicy {
                timeout: definition.retry_timeout(),
                max_delay: Duration::from_millis(definition.retry_delay_max_ms),
            },
            errors: ErrorHandling::of(definition),
            restart: RestartPolicy::of(definition),
            transforms: Arc::new(Chain::new(&definition.transforms, &definition.predicates).unwrap_or_else(|errors| {
                // Validated when the connector was deployed; a chain that no longer builds is
                // reported and left out rather than failing the task.
                tracing::error!(connector = %definition.name, ?errors, "invalid transforms ignored");
                Chain::default()
            })),
        }
    }

    async fn restart_task_locked(&self, name: &str, task: u32) -> Result<(), HerderError> {
        let (plugin, run, definition) = {
            let mut connectors = self.connectors_map();
            let connector = connectors.get_mut(name).ok_or_else(|| Self::not_found(name))?;
            let index = task as usize;
            if index >= connector.tasks.len() {
                return Err(HerderError::TaskNotFound { name: name.to_owned(), task });
            }
            if connector.target != TargetState::Running {
                return Ok(());
            }
            let plugin = self.inner.registry.get(&connector.definition.class);
            (plugin, connector.tasks[index].take_run(), connector.definition.clone())
        };
        self.inner.supervisor.stop(name, vec![run], State::Restarting).await;
        let Some(plugin) = plugin else { return Ok(()) };
        let (resolved, secrets) = config_provider::resolve(&definition.config)
            .map_err(|source| HerderError::Unresolved { name: name.to_owned(), source })?;
        config_provider::remember(&secrets);
        let config = serde_json::Value::Object(resolved).to_string();
        let mut connectors = self.connectors_map();
        if let Some(connector) = connectors.get_mut(name) {
            self.start_task(&plugin, name, connector, task as usize, &config);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Herder for StandaloneHerder {
    fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    fn plugins(&self) -> &PluginRegistry {
        &self.inner.registry
    }

    fn connectors(&self) -> Vec<String> {
        self.connectors_map().keys().cloned().collect()
    }

    fn info(&self, name: &str) -> Option<super::ConnectorInfo> {
        self.info_of(name)
    }

    fn status(&self, name: &str) -> Option<super::ConnectorSnapshot> {
        self.connectors_map().get(name).map(|connector| self.snapshot_of(name, connector))
    }

    fn statuses(&self) -> Vec<super::ConnectorSnapshot> {
        self.connectors_map().iter().map(|(name, connector)| self.snapshot_of(name, connector)).collect()
    }

    fn active_topics(&self, name: &str) -> Result<std::collections::BTreeSet<String>, HerderError> {
        self.topics_of(name)
    }

    async fn validate(&self, definition: &ConnectorDefinition) -> Result<Arc<Plugin>, Vec<FieldError>> {
        super::validate::validate(&self.inner.registry, definition).await
    }

    async fn create(&self, definition: ConnectorDefinition) -> Result<(), HerderError> {
        let _changes = self.inner.changes.lock().await;
        let name = definition.name.clone();
        if self.connectors_map().contains_key(&name) {
            return Err(HerderError::AlreadyExists { name });
        }
        self.validate(&definition).await.map_err(|errors| HerderError::InvalidConfig { name: name.clone(), errors })?;
        self.inner
            .store
            .put(&definition, TargetState::Running)
            .await
            .map_err(HerderError::log("storing the config"))?;
        self.install(definition, TargetState::Running).await
    }

    async fn put(&self, definition: ConnectorDefinition, initial: Option<TargetState>) -> Result<bool, HerderError> {
        let _changes = self.inner.changes.lock().await;
        let name = definition.name.clone();
        self.validate(&definition).await.map_err(|errors| HerderError::InvalidConfig { name: name.clone(), errors })?;
        let existing =
            self.connectors_map().get(&name).map(|connector| (connector.definition == definition, connector.target));
        let (created, target) = match existing {
            Some((true, _)) => return Ok(false),
            Some((false, target)) => {
                let runs = self.take_runs(&name)?;
                self.inner.supervisor.stop(&name, runs, State::Unassigned).await;
                (false, target)
            }
            None => (true, initial.unwrap_or(TargetState::Running)),
        };
        self.inner.store.put(&definition, target).await.map_err(HerderError::log("storing the config"))?;
        // As in Kafka Connect, a valid connector whose tasks cannot be planned exists and is
        // FAILED with the reason in its status; the request itself succeeded.
        if let Err(error) = self.install(definition, target).await {
            tracing::warn!(connector = %name, %error, "connector failed to start");
        }
        Ok(created)
    }

    async fn delete(&self, name: &str) -> Result<(), HerderError> {
        let _changes = self.inner.changes.lock().await;
        let connector = self.connectors_map().remove(name).ok_or_else(|| Self::not_found(name))?;
        self.inner.supervisor.stop(name, connector.tasks, State::Unassigned).await;
        self.inner.store.remove(name).await.map_err(HerderError::log("deleting the config"))?;
        on_delete(self.inner.registry.get(&connector.definition.class), &connector.definition).await;
        tracing::info!(connector = name, "connector deleted");
        Ok(())
    }

    async fn set_target(&self, name: &str, target: TargetState) -> Result<(), HerderError> {
        let _changes = self.inner.changes.lock().await;
        let definition = self
            .connectors_map()
            .get(name)
            .map(|connector| connector.definition.clone())
            .ok_or_else(|| Self::not_found(name))?;
        self.inner.store.put_target(name, target).await.map_err(HerderError::log("storing the target state"))?;
        let parked = match target {
            TargetState::Running => State::Unassigned,
            TargetState::Paused => State::Paused,
            TargetState::Stopped => State::Stopped,
        };
        let runs = self.take_runs(name)?;
        self.inner.supervisor.stop(name, runs, parked).await;
        tracing::info!(connector = name, target = target.as_str(), "connector target state changed");
        self.install(definition, target).await
    }

    async fn restart(&self, name: &str, include_tasks: bool, only_failed: bool) -> Result<(), HerderError> {
        let _changes = self.inner.changes.lock().await;
        let (state, target, definition) = {
            let connectors = self.connectors_map();
            let connector = connectors.get(name).ok_or_else(|| Self::not_found(name))?;
            (connector.state, connector.target, connector.definition.clone())
        };
        if target == TargetState::Stopped {
            return Ok(());
        }
        // The connector itself has no instance of its own here: restarting it means planning
        // its tasks again, which only changes something when it FAILED.
        if state == State::Failed {
            let runs = self.take_runs(name)?;
            self.inner.supervisor.stop(name, runs, State::Restarting).await;
            return self.install(definition, target).await;
        }
        if include_tasks {
            let chosen: Vec<u32> = {
                let connectors = self.connectors_map();
                let connector = connectors.get(name).ok_or_else(|| Self::not_found(name))?;
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

    async fn restart_task(&self, name: &str, task: u32) -> Result<(), HerderError> {
        let _changes = self.inner.changes.lock().await;
        self.restart_task_locked(name, task).await
    }

    async fn offsets(&self, name: &str) -> Result<super::ConnectorOffsets, HerderError> {
        self.offsets_of(name).await
    }

    async fn alter_offsets(&self, name: &str, offsets: super::ConnectorOffsets) -> Result<(), HerderError> {
        let _changes = self.inner.changes.lock().await;
        self.alter_offsets_locked(name, offsets).await
    }

    async fn reset_offsets(&self, name: &str) -> Result<(), HerderError> {
        let _changes = self.inner.changes.lock().await;
        self.reset_offsets_locked(name).await
    }

    async fn reset_active_topics(&self, name: &str) -> Result<(), HerderError> {
        self.topics_of(name)?;
        self.inner
            .store
            .put_status(name, "topics", &serde_json::json!([]))
            .await
            .map_err(HerderError::log("storing the active topics"))
    }

    async fn sink_lag(&self, name: &str) -> Vec<(String, u32, i64)> {
        self.lag_of(name).await
    }

    async fn signal(&self, name: &str, signal: &serde_json::Value) -> Result<u64, HerderError> {
        let _changes = self.inner.changes.lock().await;
        self.signal_locked(name, signal).await
    }
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
