//! Component task instances: one `Store` per task, with a memory limit, a per-call deadline and
//! only the capabilities the connector was granted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceAny;
use wasmtime::{Store, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::filesystem::FsPerms;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use weir_connector_sdk::{OffsetFailure, RecordFailure, SourceOffset};

use super::bindings::sink_world::SinkConnector;
use super::bindings::source_world::SourceConnector;
use super::bindings::types;
use super::bindings::{SinkConnectorPre, SourceConnectorPre};
use super::engine::WasmEngine;
use super::error::{TaskError, call_result, from_wit_error, instantiated};
use super::state::TaskState;
use crate::log::Generation;
use crate::manifest::{Access, Grants, Limits};
use crate::state_store::StateStore;
use crate::task::TaskMetrics;

/// Bytes of guest stderr kept for failure reports.
const STDERR_CAPTURE: usize = 64 << 10;

/// Everything needed to start one task.
#[derive(Debug, Clone)]
pub struct TaskSetup {
    pub connector: Arc<str>,
    pub task_id: u32,
    pub config: String,
    pub task_config: String,
    pub committed: Vec<SourceOffset>,
    pub grants: Grants,
    pub limits: Limits,
    pub state: Arc<StateStore>,
    /// The task's counters; the component's `log.gauge` values land here.
    pub metrics: Arc<TaskMetrics>,
    /// The generation of the task's assignment: its writes carry it.
    pub generation: Generation,
}

fn grant_error<'a>(action: &'static str, path: &'a std::path::Path) -> impl FnOnce(std::io::Error) -> TaskError + 'a {
    move |source| TaskError::Grant { action, path: path.to_path_buf(), source: Arc::new(source) }
}

pub(crate) fn new_store(engine: &WasmEngine, setup: &TaskSetup) -> Result<Store<TaskState>, TaskError> {
    let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
    let mut wasi = WasiCtxBuilder::new();
    wasi.stderr(stderr.clone());
    for grant in &setup.grants.filesystem {
        let perms = match grant.access {
            Access::ReadOnly => FsPerms::ReadOnly,
            Access::ReadWrite => FsPerms::ReadWrite,
        };
        if grant.access == Access::ReadWrite {
            std::fs::create_dir_all(&grant.path).map_err(grant_error("create", &grant.path))?;
        }
        let host_path = grant.path.canonicalize().map_err(grant_error("open", &grant.path))?;
        // The component sees the directory under the path its config uses: both as written in
        // the manifest (often relative) and as the absolute path.
        let written = grant.path.to_string_lossy().into_owned();
        let absolute = host_path.to_string_lossy().into_owned();
        let mut guest_paths = vec![written.clone()];
        if let Some(stripped) = written.strip_prefix("./") {
            guest_paths.push(stripped.to_owned());
        }
        if absolute != written {
            guest_paths.push(absolute);
        }
        for guest_path in guest_paths {
            wasi.preopened_dir(&host_path, &guest_path, perms).map_err(|error| TaskError::Grant {
                action: "preopen",
                path: grant.path.clone(),
                source: Arc::new(std::io::Error::other(error.to_string())),
            })?;
        }
    }
    let limits = StoreLimitsBuilder::new()
        .memory_size(usize::try_from(setup.limits.memory_bytes).unwrap_or(usize::MAX))
        .trap_on_grow_failure(true)
        .build();
    let state = TaskState::new(
        setup.connector.clone(),
        setup.task_id,
        wasi.build(),
        stderr,
        limits,
        setup.state.clone(),
        Duration::from_millis(setup.limits.call_timeout_ms),
    );
    let mut store = Store::new(engine.engine(), state);
    store.limiter(|state| state.limiter());
    store.epoch_deadline_callback(|mut context| {
        let state = context.data_mut();
        if state.call_started.elapsed() > state.call_timeout {
            state.deadline_hit = true;
            return Err(wasmtime::Error::msg("the call overran its deadline"));
        }
        // Yield to the executor once per tick so a busy guest cannot starve other tasks.
        Ok(UpdateDeadline::Yield(1))
    });
    store.set_epoch_deadline(1);
    store.data_mut().postgres = super::postgres::PostgresSessions::new(setup.grants.postgres.clone());
    store.data_mut().http = super::http::HttpClient::new(setup.grants.http.clone());
    store.data_mut().metrics = setup.metrics.clone();
    store.data_mut().generation = setup.generation;
    store.data_mut().committed = setup
        .committed
        .iter()
        .map(|offset| types::SourceOffset { partition: offset.partition.clone(), position: offset.position.clone() })
        .collect();
    Ok(store)
}

/// Mark the start of a call, for the deadline.
fn begin_call(store: &mut Store<TaskState>) {
    let state = store.data_mut();
    state.call_started = Instant::now();
    state.deadline_hit = false;
    store.set_epoch_deadline(1);
}

/// Run one export call with the deadline armed, mapping both error levels.
macro_rules! call {
    ($self:ident, $name:literal, $call:expr) => {{
        begin_call(&mut $self.store);
        let result = $call.await;
        $self.dead |= result.is_err();
        call_result(result, &$self.store, $name)
    }};
}

/// Instantiate a task's component and call its resource's `open`, for either world: `$task`
/// picks the resource's accessor from the bindings.
macro_rules! open_instance {
    ($engine:expr, $pre:expr, $setup:expr, |$bindings:ident| $task:expr) => {{
        let mut store = new_store($engine, $setup)?;
        begin_call(&mut store);
        let $bindings = instantiated($pre.instantiate_async(&mut store).await, &store)?;
        begin_call(&mut store);
        let opened = $task.call_open(&mut store, &$setup.config, &$setup.task_config, $setup.task_id).await;
        let resource = call_result(opened, &store, "open")?;
        Ok(Self { store, bindings: $bindings, resource, dead: false })
    }};
}

/// A running source task instance.
pub struct WasmSourceTask {
    store: Store<TaskState>,
    bindings: SourceConnector,
    resource: ResourceAny,
    dead: bool,
}

impl std::fmt::Debug for WasmSourceTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmSourceTask").field("state", self.store.data()).finish_non_exhaustive()
    }
}

impl WasmSourceTask {
    pub(crate) async fn open(
        engine: &WasmEngine,
        pre: &SourceConnectorPre<TaskState>,
        setup: &TaskSetup,
    ) -> Result<Self, TaskError> {
        open_instance!(engine, pre, setup, |bindings| bindings.weir_connector_source().source_task())
    }

    pub(crate) async fn poll(&mut self, max: u32) -> Result<Vec<u8>, TaskError> {
        let resource = self.resource;
        let task = self.bindings.weir_connector_source().source_task();
        call!(self, "poll", task.call_poll(&mut self.store, resource, max))
    }

    pub(crate) async fn commit(&mut self, positions: &[SourceOffset]) -> Result<(), TaskError> {
        let resource = self.resource;
        let positions: Vec<types::SourceOffset> = positions
            .iter()
            .map(|offset| types::SourceOffset {
                partition: offset.partition.clone(),
                position: offset.position.clone(),
            })
            .collect();
        let task = self.bindings.weir_connector_source().source_task();
        call!(self, "commit", task.call_commit(&mut self.store, resource, &positions))
    }

    pub(crate) async fn close(&mut self) -> Result<(), TaskError> {
        if self.dead {
            return Ok(());
        }
        let resource = self.resource;
        let task = self.bindings.weir_connector_source().source_task();
        let result = call!(self, "close", task.call_close(&mut self.store, resource));
        if !self.dead {
            begin_call(&mut self.store);
            if let Err(error) = self.resource.resource_drop_async(&mut self.store).await {
                tracing::debug!(%error, "dropping the source task resource failed");
            }
        }
        result
    }
}

/// A running sink task instance.
pub struct WasmSinkTask {
    store: Store<TaskState>,
    bindings: SinkConnector,
    resource: ResourceAny,
    dead: bool,
}

impl std::fmt::Debug for WasmSinkTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmSinkTask").field("state", self.store.data()).finish_non_exhaustive()
    }
}

impl WasmSinkTask {
    pub(crate) async fn open(
        engine: &WasmEngine,
        pre: &SinkConnectorPre<TaskState>,
        setup: &TaskSetup,
    ) -> Result<Self, TaskError> {
        open_instance!(engine, pre, setup, |bindings| bindings.weir_connector_sink().sink_task())
    }

    // The generated binding takes `&Vec<u8>` for `list<u8>`.
    #[allow(clippy::ptr_arg)]
    pub(crate) async fn put(&mut self, batch: &Vec<u8>) -> Result<Vec<RecordFailure>, TaskError> {
        let resource = self.resource;
        let task = self.bindings.weir_connector_sink().sink_task();
        let failures = call!(self, "put", task.call_put(&mut self.store, resource, batch))?;
        Ok(failures
            .into_iter()
            .map(|failure| RecordFailure {
                index: failure.index,
                error: from_wit_error(failure.error),
                context: failure.context,
            })
            .collect())
    }

    pub(crate) async fn flush(&mut self) -> Result<Vec<OffsetFailure>, TaskError> {
        let resource = self.resource;
        let task = self.bindings.weir_connector_sink().sink_task();
        let failures = call!(self, "flush", task.call_flush(&mut self.store, resource))?;
        Ok(failures
            .into_iter()
            .map(|failure| OffsetFailure {
                topic: failure.topic,
                partition: failure.partition,
                offset: failure.offset,
                error: from_wit_error(failure.error),
                context: failure.context,
            })
            .collect())
    }

    pub(crate) async fn close(&mut self) -> Result<(), TaskError> {
        if self.dead {
            return Ok(());
        }
        let resource = self.resource;
        let task = self.bindings.weir_connector_sink().sink_task();
        let result = call!(self, "close", task.call_close(&mut self.store, resource));
        if !self.dead {
            begin_call(&mut self.store);
            if let Err(error) = self.resource.resource_drop_async(&mut self.store).await {
                tracing::debug!(%error, "dropping the sink task resource failed");
            }
        }
        result
    }
}
