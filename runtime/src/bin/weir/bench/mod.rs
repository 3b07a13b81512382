//! The benchmark commands (`weir bench`, `weir bench-backpressure`, `weir bench-cdc`,
//! `weir bench-http`). They live
//! in the binary, not the runtime library, because they link connectors natively (datagen,
//! blackhole) to compare them with their components: the library links no connector crate.

pub(crate) mod backpressure;
pub(crate) mod cdc;
pub(crate) mod http;
mod pipeline;

pub(crate) use pipeline::{BenchOptions, run};
