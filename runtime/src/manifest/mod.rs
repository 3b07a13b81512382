//! YAML manifests: one or more connector definitions per file (`---` separated), in Kafka
//! Connect's vocabulary (`connector.class`, `tasks.max`, `topics`).
//!
//! ```yaml
//! name: datagen-orders
//! connector.class: datagen
//! tasks.max: 1
//! topic.creation.default.partitions: 4
//! config:
//!   topic: orders
//!   iterations: 1000
//! grants:
//!   filesystem:
//!     - path: ./weir-out
//!       access: read-write
//! limits:
//!   memory.bytes: 67108864
//!   call.timeout.ms: 5000
//! ```
//!
//! Parsing only checks the manifest's own shape; the connector's `config` is checked against the
//! plugin's schema by [`crate::worker::Worker::validate`], and errors there name the line too.
//!
//! Three ideas, one file each: `definition` is the model (a connector's definition, its grants,
//! limits and defaults, and the checks every definition passes however it arrived); `flat` is
//! Kafka Connect's flat string map (the REST API's form) to and from that model; `file` loads
//! YAML manifests and points errors at the line they come from.

mod definition;
mod file;
mod flat;

pub use definition::{
    Access, ConnectorDefinition, DEFAULT_CALL_TIMEOUT_MS, DEFAULT_MEMORY_BYTES, FilesystemGrant, Grants, HttpGrant,
    Limits, PostgresGrant, Tolerance,
};
pub use file::{ManifestError, ManifestFile, line_of_key_in};
pub use flat::flat_keys;
