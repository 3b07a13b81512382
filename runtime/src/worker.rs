//! The worker: one process's parts put together. It opens the log (the embedded broker, behind
//! the [`EventLog`] seam), the internal stores and the plugins, and wires a
//! [`StandaloneHerder`] (what runs) to a [`Supervisor`](crate::supervisor) (running it).
//!
//! Standalone mode is a cluster of one worker with the embedded log; there is one code path.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use weir_broker::{FlushPolicy, LogConfig};

use crate::connector_store::ConnectorStore;
use crate::herder::{Herder, StandaloneHerder};
use crate::host::{EngineError, WasmEngine};
use crate::log::{EmbeddedLog, EventLog, LogError};
use crate::plugin::{PluginError, PluginRegistry};
use crate::state_store::{OffsetStore, StateStore};
use crate::supervisor::{Supervisor, SupervisorConfig};

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

/// Why the worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the log failed while {operation}: {source}")]
    Log {
        operation: &'static str,
        #[source]
        source: LogError,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

fn log_error(operation: &'static str) -> impl FnOnce(LogError) -> WorkerError {
    move |source| WorkerError::Log { operation, source }
}

/// A worker. Cheap to clone; all clones are the same worker.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    config: WorkerConfig,
    log: Arc<dyn EventLog>,
    /// The embedded log behind `log`, when the worker opened it itself.
    embedded: Option<EmbeddedLog>,
    herder: StandaloneHerder,
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
            .map_err(|source| WorkerError::DataDir { path: config.data_dir.clone(), source })?;
        let log_config = LogConfig { flush: config.flush, ..LogConfig::default() };
        let embedded =
            EmbeddedLog::open(config.data_dir.join("log"), log_config).await.map_err(log_error("opening the log"))?;
        let log: Arc<dyn EventLog> = Arc::new(embedded.clone());
        Self::assemble(config, log, Some(embedded), customize).await
    }

    /// As [`Worker::start_with`], on a log the caller opened (another backend, or a wrapper).
    ///
    /// # Errors
    /// As [`Worker::start_with`].
    pub async fn start_on(
        config: WorkerConfig,
        log: Arc<dyn EventLog>,
        customize: impl FnOnce(&mut PluginRegistry, &WasmEngine, Arc<StateStore>) -> Result<(), PluginError>,
    ) -> Result<Self, WorkerError> {
        Self::assemble(config, log, None, customize).await
    }

    async fn assemble(
        config: WorkerConfig,
        log: Arc<dyn EventLog>,
        embedded: Option<EmbeddedLog>,
        customize: impl FnOnce(&mut PluginRegistry, &WasmEngine, Arc<StateStore>) -> Result<(), PluginError>,
    ) -> Result<Self, WorkerError> {
        let offsets = Arc::new(OffsetStore::open(log.clone()).await.map_err(log_error("replaying the offsets"))?);
        let state = Arc::new(StateStore::open(log.clone()).await.map_err(log_error("replaying connector state"))?);
        let store =
            Arc::new(ConnectorStore::open(log.clone()).await.map_err(log_error("replaying the connector configs"))?);
        let engine = WasmEngine::new()?;
        let cache_dir = config.data_dir.join("cache");
        let (mut registry, rejected) =
            PluginRegistry::load(&engine, state.clone(), Some(&cache_dir), config.plugin_dir.as_deref()).await?;
        for error in rejected {
            tracing::error!(%error, "plugin rejected");
        }
        customize(&mut registry, &engine, state.clone())?;
        let supervisor = Supervisor::new(
            SupervisorConfig {
                batch_size: config.batch_size,
                sink_flush_interval: config.sink_flush_interval,
                shutdown_timeout: config.shutdown_timeout,
            },
            log.clone(),
            offsets,
            state,
            store.clone(),
        );
        tracing::info!(worker = %config.worker_id, generation = %supervisor.generation(), "worker started");
        let herder = StandaloneHerder::new(
            config.worker_id.clone(),
            config.default_partitions,
            log.clone(),
            registry,
            store,
            supervisor,
        );
        Ok(Self { inner: Arc::new(Inner { config, log, embedded, herder }) })
    }

    /// The log, through its seam.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.inner.log
    }

    /// The embedded log, when the worker opened it ([`Worker::start`], [`Worker::start_with`]):
    /// what `weir run --kafka-listen` serves over the Kafka protocol.
    pub fn embedded_log(&self) -> Option<&EmbeddedLog> {
        self.inner.embedded.as_ref()
    }

    /// The herder: connector lifecycle, offsets, status.
    pub fn herder(&self) -> &StandaloneHerder {
        &self.inner.herder
    }

    /// The herder as the REST API holds it.
    pub fn herder_handle(&self) -> Arc<dyn Herder> {
        Arc::new(self.inner.herder.clone())
    }

    pub fn plugins(&self) -> &PluginRegistry {
        self.inner.herder.plugins()
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.inner.config
    }

    /// Bring back every connector stored in the internal topics.
    pub async fn restore(&self) {
        self.inner.herder.restore().await;
    }

    /// Stop every connector's tasks (they stay listed, with their final counts, and their
    /// target states stay stored), then flush the log.
    pub async fn shutdown(&self) {
        self.inner.herder.shutdown().await;
        if let Err(error) = self.inner.log.flush().await {
            tracing::error!(%error, "final log flush failed");
        }
    }
}
