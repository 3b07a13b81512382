//! `datagen`: a source of deterministic synthetic events, modelled on Confluent's datagen
//! quickstarts (`orders`, `users`, `pageviews`).
//!
//! Each event has a unique integer `id` and every other field is derived from that id, so a
//! given id always yields the same bytes: runs are reproducible and a consumer can check what it
//! received. The key is the id in decimal. See `README.md` for the configuration.

mod config;
mod events;
mod source;

pub use config::{DatagenConfig, MAX_VALUE_SIZE, Quickstart};
pub use source::Datagen;

weir_connector_sdk::export_source!(Datagen);

#[cfg(test)]
mod tests;
