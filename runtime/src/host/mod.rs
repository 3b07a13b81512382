//! The wasmtime host: the engine, the generated bindings, the per-task store, and the host
//! side of the imports (`log`, `offsets`, `state`, `postgres`, `http`).

pub(crate) mod bindings;
mod engine;
mod error;
mod http;
mod postgres;
mod state;
mod task;

pub use engine::{EngineError, WasmEngine};
pub use error::{TaskError, TrapKind};
pub(crate) use error::{call_result, instantiated, trap_report};
pub(crate) use state::TaskState;
pub(crate) use task::new_store;
pub use task::{TaskSetup, WasmSinkTask, WasmSourceTask};
