//! The weir worker runtime.
//!
//! It runs connector tasks — WebAssembly components speaking `wit/connector.wit` — moving their
//! records into and out of the event log ([`weir_broker`]), keeping their offsets, and managing
//! them from YAML manifests.
//!
//! Key types: [`worker::Worker`] (owns the log, the plugins, the tasks),
//! [`manifest::ConnectorDefinition`] (what a manifest describes), [`plugin::PluginRegistry`]
//! (built-in and directory plugins), [`host::WasmEngine`] (the sandbox).

pub mod bench;
pub mod config_provider;
pub mod connector_store;
pub mod host;
mod keyed_store;
pub mod manifest;
pub mod metrics;
pub mod plugin;
pub mod rest;
pub mod state_store;
pub mod task;
pub mod transform;
pub mod worker;

pub use manifest::{ConnectorDefinition, ManifestError, ManifestFile};
pub use worker::{Worker, WorkerConfig, WorkerError};
