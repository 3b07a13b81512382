//! One type per task kind over the two ways a connector runs: as a component (the normal case)
//! or compiled natively into the host (benchmarks).

use std::sync::Arc;

use weir_connector_sdk::{DynSinkTask, DynSourceTask, Host, Level, OffsetFailure, RecordFailure, SourceOffset};

use crate::host::{TaskError, TaskSetup, WasmSinkTask, WasmSourceTask};
use crate::log::Generation;
use crate::plugin::{Plugin, PluginCode};
use crate::state_store::StateStore;

/// A source task instance.
#[derive(Debug)]
pub(crate) enum SourceHandle {
    Wasm(Box<WasmSourceTask>),
    Native(NativeSource),
}

pub(crate) struct NativeSource(Box<dyn DynSourceTask>);

impl std::fmt::Debug for NativeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NativeSource")
    }
}

pub(crate) struct NativeSink(Box<dyn DynSinkTask>);

impl std::fmt::Debug for NativeSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NativeSink")
    }
}

/// A sink task instance.
#[derive(Debug)]
pub(crate) enum SinkHandle {
    Wasm(Box<WasmSinkTask>),
    Native(NativeSink),
}

impl SourceHandle {
    /// A natively compiled task, for the task loops' own tests.
    #[cfg(test)]
    pub(crate) fn native(task: Box<dyn DynSourceTask>) -> Self {
        Self::Native(NativeSource(task))
    }

    pub(crate) async fn open(plugin: &Plugin, setup: &TaskSetup) -> Result<Self, TaskError> {
        match &plugin.code {
            PluginCode::Source(pre) => {
                Ok(Self::Wasm(Box::new(WasmSourceTask::open(plugin.engine(), pre, setup).await?)))
            }
            PluginCode::NativeSource(_, open) => {
                let host = Box::new(NativeHost::new(setup));
                let task =
                    open(&setup.config, &setup.task_config, setup.task_id, host).map_err(TaskError::Connector)?;
                Ok(Self::Native(NativeSource(task)))
            }
            _ => Err(TaskError::WrongKind { plugin: plugin.spec().name.clone(), expected: "source" }),
        }
    }

    pub(crate) async fn poll(&mut self, max: u32) -> Result<Vec<u8>, TaskError> {
        match self {
            Self::Wasm(task) => task.poll(max).await,
            Self::Native(task) => task.0.poll(max).map_err(TaskError::Connector),
        }
    }

    pub(crate) async fn commit(&mut self, positions: &[SourceOffset]) -> Result<(), TaskError> {
        match self {
            Self::Wasm(task) => task.commit(positions).await,
            Self::Native(task) => task.0.commit(positions).map_err(TaskError::Connector),
        }
    }

    pub(crate) async fn close(&mut self) -> Result<(), TaskError> {
        match self {
            Self::Wasm(task) => task.close().await,
            Self::Native(task) => task.0.close().map_err(TaskError::Connector),
        }
    }
}

impl SinkHandle {
    /// A natively compiled task, for the task loops' own tests.
    #[cfg(test)]
    pub(crate) fn native(task: Box<dyn DynSinkTask>) -> Self {
        Self::Native(NativeSink(task))
    }

    pub(crate) async fn open(plugin: &Plugin, setup: &TaskSetup) -> Result<Self, TaskError> {
        match &plugin.code {
            PluginCode::Sink(pre) => Ok(Self::Wasm(Box::new(WasmSinkTask::open(plugin.engine(), pre, setup).await?))),
            PluginCode::NativeSink(_, open) => {
                let host = Box::new(NativeHost::new(setup));
                let task =
                    open(&setup.config, &setup.task_config, setup.task_id, host).map_err(TaskError::Connector)?;
                Ok(Self::Native(NativeSink(task)))
            }
            _ => Err(TaskError::WrongKind { plugin: plugin.spec().name.clone(), expected: "sink" }),
        }
    }

    #[allow(clippy::ptr_arg)]
    pub(crate) async fn put(&mut self, batch: &Vec<u8>) -> Result<Vec<RecordFailure>, TaskError> {
        match self {
            Self::Wasm(task) => task.put(batch).await,
            Self::Native(task) => task.0.put(batch).map_err(TaskError::Connector),
        }
    }

    pub(crate) async fn flush(&mut self) -> Result<Vec<OffsetFailure>, TaskError> {
        match self {
            Self::Wasm(task) => task.flush().await,
            Self::Native(task) => task.0.flush().map_err(TaskError::Connector),
        }
    }

    pub(crate) async fn close(&mut self) -> Result<(), TaskError> {
        match self {
            Self::Wasm(task) => task.close().await,
            Self::Native(task) => task.0.close().map_err(TaskError::Connector),
        }
    }
}

/// The host services for a natively compiled task: the same stores the imports use.
struct NativeHost {
    connector: Arc<str>,
    task: u32,
    committed: Vec<SourceOffset>,
    state: Arc<StateStore>,
    generation: Generation,
}

impl NativeHost {
    fn new(setup: &TaskSetup) -> Self {
        Self {
            connector: setup.connector.clone(),
            task: setup.task_id,
            committed: setup.committed.clone(),
            state: setup.state.clone(),
            generation: setup.generation,
        }
    }
}

impl Host for NativeHost {
    fn log(&self, level: Level, message: &str) {
        let connector = &*self.connector;
        let task = self.task;
        match level {
            Level::Trace => tracing::trace!(connector, task, "{message}"),
            Level::Debug => tracing::debug!(connector, task, "{message}"),
            Level::Info => tracing::info!(connector, task, "{message}"),
            Level::Warn => tracing::warn!(connector, task, "{message}"),
            Level::Error => tracing::error!(connector, task, "{message}"),
        }
    }

    fn committed_offsets(&self) -> Vec<SourceOffset> {
        self.committed.clone()
    }

    fn state_get(&self, key: &str) -> Option<Vec<u8>> {
        self.state.get(&self.connector, key)
    }

    fn state_set(&self, key: &str, value: &[u8]) {
        let write = self.state.set(&self.connector, key, Some(value), self.generation);
        if let Err(error) = wait_in_place(write) {
            tracing::warn!(connector = &*self.connector, %error, "state write failed");
        }
    }

    fn state_delete(&self, key: &str) {
        let write = self.state.set(&self.connector, key, None, self.generation);
        if let Err(error) = wait_in_place(write) {
            tracing::warn!(connector = &*self.connector, %error, "state delete failed");
        }
    }
}

/// The SDK's native `Host` is synchronous (a native connector is called from the task loop like
/// a component, one call at a time), so a state write waits here for the log's append, as a
/// component's `state.set` waits for it. On a multi-threaded runtime `block_in_place` first hands
/// this worker thread's other tasks to another thread, so the wait blocks no one else.
fn wait_in_place<T>(write: impl std::future::Future<Output = T>) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(write))
        }
        _ => futures::executor::block_on(write),
    }
}
