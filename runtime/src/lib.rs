//! The weir worker runtime.
//!
//! It runs connector tasks — WebAssembly components speaking `wit/connector.wit` — moving their
//! records into and out of the event log ([`weir_broker`]), keeping their offsets, and managing
//! them from YAML manifests.
//!
//! Key types: [`log::EventLog`] (the one seam to the event log; [`log::EmbeddedLog`] is the
//! in-process broker behind it), [`herder::Herder`] (connector lifecycle, offsets, status: what
//! REST talks to), the supervisor (runs assigned tasks under a generation), [`worker::Worker`]
//! (puts one process's parts together), [`manifest::ConnectorDefinition`] (what a manifest
//! describes), [`plugin::PluginRegistry`] (built-in and directory plugins), [`host::WasmEngine`]
//! (the sandbox).

pub mod config_provider;
pub mod connector_store;
pub mod herder;
pub mod host;
pub mod kafka_groups;
mod keyed_store;
pub mod log;
pub mod manifest;
pub mod metrics;
pub mod plugin;
pub mod rest;
pub mod state_store;
mod supervisor;
pub mod task;
pub mod transform;
pub mod worker;

pub use herder::{Herder, HerderError};
pub use manifest::{ConnectorDefinition, ManifestError, ManifestFile};
pub use supervisor::sink_group;
pub use worker::{Worker, WorkerConfig, WorkerError};
