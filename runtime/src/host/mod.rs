//! The wasmtime host: the engine, the generated bindings, the per-task store, and the host
//! side of the imports (`log`, `offsets`, `state`, `postgres`).

pub(crate) mod bindings;
mod engine;
mod postgres;
mod state;
mod task;

pub use engine::{EngineError, WasmEngine};
pub(crate) use state::TaskState;
pub use task::{TaskError, TaskSetup, WasmSinkTask, WasmSourceTask};
pub(crate) use task::{from_wit_error, new_store, trap_report};
