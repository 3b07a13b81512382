//! The per-task store data and the host side of the `log`, `offsets` and `state` imports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{log, offsets, state, types};
use super::http::HttpClient;
use super::postgres::PostgresSessions;
use crate::log::Generation;
use crate::state_store::StateStore;
use crate::task::TaskMetrics;

/// Everything one task's `Store` holds: WASI, limits, the call deadline, and what the imports
/// need. One per task, so a trap or a leak costs one task.
pub(crate) struct TaskState {
    pub(crate) connector: Arc<str>,
    pub(crate) task: u32,
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: Limiter,
    /// What the guest wrote to stderr (a panic message lands here before the trap).
    pub(crate) stderr: MemoryOutputPipe,
    pub(crate) committed: Vec<types::SourceOffset>,
    state: Arc<StateStore>,
    /// When the current export call started and how long it may run.
    pub(crate) call_started: Instant,
    pub(crate) call_timeout: Duration,
    /// Set by the epoch callback when it stopped a call for overrunning its deadline.
    pub(crate) deadline_hit: bool,
    /// The `postgres` import's sessions, limited to the granted servers.
    pub(crate) postgres: PostgresSessions,
    /// The `http` import's client, limited to the granted origins.
    pub(crate) http: HttpClient,
    /// The task's counters, where `log.gauge` lands.
    pub(crate) metrics: Arc<TaskMetrics>,
    /// The generation of the task's assignment, carried by its `state` writes.
    pub(crate) generation: Generation,
}

impl std::fmt::Debug for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskState")
            .field("connector", &self.connector)
            .field("task", &self.task)
            .finish_non_exhaustive()
    }
}

impl TaskState {
    pub(crate) fn new(
        connector: Arc<str>,
        task: u32,
        wasi: WasiCtx,
        stderr: MemoryOutputPipe,
        limits: StoreLimits,
        state: Arc<StateStore>,
        call_timeout: Duration,
    ) -> Self {
        Self {
            connector,
            task,
            wasi,
            table: ResourceTable::new(),
            limits: Limiter { limits, refused: false },
            stderr,
            committed: Vec::new(),
            state,
            call_started: Instant::now(),
            call_timeout,
            deadline_hit: false,
            postgres: PostgresSessions::default(),
            http: HttpClient::default(),
            metrics: Arc::default(),
            generation: Generation::default(),
        }
    }

    pub(crate) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limits
    }

    /// Whether the memory limit refused a grow since the store was made (the instance traps on
    /// a refused grow, so this classifies the trap).
    pub(crate) fn memory_limit_hit(&self) -> bool {
        self.limits.refused
    }
}

/// The store's limits, remembering whether they refused a grow: with `trap_on_grow_failure` the
/// resulting error is not a `wasmtime::Trap`, so the trap is classified from this flag.
#[derive(Debug)]
pub(crate) struct Limiter {
    limits: StoreLimits,
    refused: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum);
        self.refused |= !matches!(allowed, Ok(true));
        allowed
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.limits.table_growing(current, desired, maximum);
        self.refused |= !matches!(allowed, Ok(true));
        allowed
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl WasiView for TaskState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl log::Host for TaskState {
    fn log(&mut self, level: log::Level, message: String) {
        let connector = &*self.connector;
        let task = self.task;
        match level {
            log::Level::Trace => tracing::trace!(connector, task, "{message}"),
            log::Level::Debug => tracing::debug!(connector, task, "{message}"),
            log::Level::Info => tracing::info!(connector, task, "{message}"),
            log::Level::Warn => tracing::warn!(connector, task, "{message}"),
            log::Level::Error => tracing::error!(connector, task, "{message}"),
        }
    }

    fn gauge(&mut self, name: String, value: i64) {
        self.metrics.set_gauge(&name, value);
    }
}

impl offsets::Host for TaskState {
    fn committed(&mut self) -> Vec<types::SourceOffset> {
        self.committed.clone()
    }
}

impl state::Host for TaskState {
    async fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.state.get(&self.connector, &key)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) {
        if let Err(error) = self.state.set(&self.connector, &key, Some(&value), self.generation).await {
            tracing::warn!(connector = &*self.connector, %error, "state write failed");
        }
    }

    async fn delete(&mut self, key: String) {
        if let Err(error) = self.state.set(&self.connector, &key, None, self.generation).await {
            tracing::warn!(connector = &*self.connector, %error, "state delete failed");
        }
    }
}

impl types::Host for TaskState {}
