//! The shared wasmtime `Engine`: async, component model, epoch interruption, and the ticker
//! thread that drives the epochs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine};

use super::bindings::source_world::SourceConnector;
use super::state::TaskState;

/// How often the epoch advances. A call overrunning its deadline is stopped within one tick;
/// a running guest also yields to the executor once per tick, so it cannot starve other tasks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The engine plus its ticker. Dropping the last clone stops the ticker thread.
#[derive(Clone, Debug)]
pub struct WasmEngine {
    engine: Engine,
    _ticker: Arc<Ticker>,
}

#[derive(Debug)]
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The engine could not be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the WebAssembly engine: {source}")]
pub struct EngineError {
    #[source]
    source: wasmtime::Error,
}

impl WasmEngine {
    /// # Errors
    /// When wasmtime rejects the configuration (not expected on supported platforms).
    pub fn new() -> Result<Self, EngineError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        // `WEIR_PROFILE=perfmap` writes /tmp/perf-<pid>.map so `perf` names JIT-compiled guest
        // functions.
        if std::env::var("WEIR_PROFILE").is_ok_and(|value| value == "perfmap") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|source| EngineError { source })?;
        let stop = Arc::new(AtomicBool::new(false));
        // The ticker must be an OS thread: as a tokio task it can be starved by the very guest
        // it is meant to interrupt (FACTS.md).
        let weak = engine.weak();
        let thread_stop = stop.clone();
        std::thread::Builder::new()
            .name("weir-epoch".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Relaxed) {
                    #[allow(clippy::disallowed_methods, reason = "the epoch ticker is an OS thread of its own (FACTS: a tokio task never ticked), not an executor thread")]
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|error| EngineError { source: error.into() })?;
        Ok(Self { engine, _ticker: Arc::new(Ticker { stop }) })
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A linker with WASI p2 (no preopens, env or sockets unless the task grants them) and the
    /// weir imports. Both worlds import the same interfaces, so one linker serves both.
    pub(crate) fn linker(&self) -> Result<Linker<TaskState>, wasmtime::Error> {
        let mut linker = Linker::new(&self.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        SourceConnector::add_to_linker::<TaskState, HasSelf<TaskState>>(&mut linker, |state| state)?;
        Ok(linker)
    }
}
