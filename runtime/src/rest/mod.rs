//! The REST API: Kafka Connect's paths, JSON shapes and status codes, so that the curl scripts
//! and tools that manage Kafka Connect manage weir unchanged. Also `/openapi.json` (generated
//! from the handlers), `/metrics` (Prometheus) and `/health`.
//!
//! [`router`] builds the whole API over an [`ApiState`] without binding anything, so handler
//! tests run it with `tower::ServiceExt::oneshot`; [`serve`] binds it.

mod admin;
pub mod bodies;
mod connectors;
mod error;
mod lifecycle;
mod offsets;
mod plugins;
mod router;
mod signals;

pub use error::ApiError;
pub use router::{ApiState, LogLevels, openapi, router, serve};
