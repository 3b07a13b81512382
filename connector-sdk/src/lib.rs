//! Write weir connectors as WebAssembly components.
//!
//! A connector is a config struct deriving `serde::Deserialize` + `schemars::JsonSchema`, a type
//! implementing [`Connector`] and one of [`Source`] or [`Sink`], and one export macro
//! ([`export_source!`] or [`export_sink!`]). Built for `wasm32-wasip2` as a `cdylib`, the crate
//! is then a component of the `weir:connector` contract (`wit/connector.wit`); the WIT bindings
//! stay hidden in this crate.
//!
//! ```
//! use weir_connector_sdk::batch::{SourceBatchWriter, SourceRecordRef};
//! use weir_connector_sdk::{Connector, ConnectorError, FieldError, Source, TaskContext};
//!
//! /// Configuration of the `ticker` source. Doc comments are the user docs: they land in the
//! /// JSON Schema of the spec.
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! pub struct TickerConfig {
//!     /// Topic to write to.
//!     pub topic: String,
//!     /// Records per poll.
//!     #[serde(rename = "ticks.per.poll", default = "one")]
//!     pub ticks_per_poll: u32,
//!     /// API token: a secret, never shown back by the runtime.
//!     #[serde(default)]
//!     #[schemars(extend("writeOnly" = true))]
//!     pub token: Option<String>,
//! }
//!
//! fn one() -> u32 {
//!     1
//! }
//!
//! pub struct Ticker {
//!     config: TickerConfig,
//!     next: u64,
//! }
//!
//! impl Connector for Ticker {
//!     type Config = TickerConfig;
//!     const NAME: &'static str = "ticker";
//!     const VERSION: &'static str = "0.1.0";
//!     const DESCRIPTION: &'static str = "Counts.";
//!
//!     fn validate(config: &TickerConfig) -> Result<(), Vec<FieldError>> {
//!         if config.ticks_per_poll == 0 {
//!             return Err(vec![FieldError::new("ticks.per.poll", "must be at least 1")]);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! impl Source for Ticker {
//!     fn open(config: TickerConfig, context: TaskContext) -> Result<Self, ConnectorError> {
//!         // Resume after the committed position, if any.
//!         let next = context
//!             .committed_position(b"{}")
//!             .and_then(|position| String::from_utf8(position).ok()?.parse::<u64>().ok())
//!             .map_or(0, |last| last + 1);
//!         context.info(&format!("ticker starting at {next}"));
//!         Ok(Ticker { config, next })
//!     }
//!
//!     fn poll(&mut self, max: u32, batch: &mut SourceBatchWriter) -> Result<(), ConnectorError> {
//!         for _ in 0..max.min(self.config.ticks_per_poll) {
//!             let position = self.next.to_string();
//!             batch.push(&SourceRecordRef {
//!                 topic: &self.config.topic,
//!                 partition: -1,
//!                 timestamp: None,
//!                 key: None,
//!                 value: Some(position.as_bytes()),
//!                 headers: &[],
//!                 source_partition: b"{}",
//!                 source_position: position.as_bytes(),
//!             });
//!             self.next += 1;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! // In a `cdylib` built for wasm32-wasip2 this makes the crate a `source-connector`
//! // component; natively it only checks that `Ticker` is a `Source`.
//! weir_connector_sdk::export_source!(Ticker);
//! # fn main() {
//! #     let spec = weir_connector_sdk::native::source_connector::<Ticker>().spec();
//! #     assert!(spec.config_schema.contains("writeOnly"));
//! # }
//! ```
//!
//! The connector crate is a `cdylib` (plus `rlib`, so the runtime and tests can also link it
//! natively): `[lib] crate-type = ["cdylib", "rlib"]`. `cargo build --target wasm32-wasip2
//! --profile wasm` then writes the component to `target/wasm32-wasip2/wasm/<crate>.wasm`; no
//! separate componentize step.
//!
//! Key modules: [`batch`] (the packed batch codec, shared with the runtime), [`config`] (parsing
//! with errors that name the field), [`native`] (running connectors without WASM). The same
//! glue ([`DynConnector`], [`DynSourceTask`], [`DynSinkTask`]) stands behind both the wasm
//! exports and [`native`], so both run the same code apart from the boundary.
//!
//! A panic in a component aborts it (the `wasm` profile has `panic = "abort"`): the runtime sees
//! a trap and fails the task. Return [`ConnectorError`] for anything expected.

pub mod batch;
pub mod calendar;
pub mod config;
mod connector;
mod export;
mod glue;
mod host;
pub mod http;
pub mod native;
pub mod postgres;
mod types;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[path = "wasm.rs"]
pub mod __wasm;

pub use schemars;
pub use serde;
pub use serde_json;

pub use connector::{Connector, Sink, Source};
#[doc(hidden)]
pub use export::{__assert_sink, __assert_source};
pub use glue::{DynConnector, DynSinkTask, DynSourceTask};
pub use host::{Host, Level, TaskContext};
pub use types::{ConnectorError, FieldError, Kind, OffsetFailure, RecordFailure, SourceOffset, Spec};

/// The generated WIT bindings, used by the export macros. Not part of the API.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __bindings {
    /// The `sink-connector` world and the interfaces both worlds share, generated in a
    /// separate crate (see there why).
    pub use weir_connector_sdk_bindings as sink;

    /// The `source-connector` world; its shared interfaces are the ones of [`sink`].
    // Generated FFI glue: raw pointers into linear memory and `extern "C"` exports.
    #[allow(unsafe_code, unreachable_pub, missing_debug_implementations, missing_docs)]
    pub mod source {
        wit_bindgen::generate!({
            path: "../wit",
            world: "source-connector",
            pub_export_macro: true,
            export_macro_name: "__export_source_world",
            default_bindings_module: "weir_connector_sdk::__bindings::source",
            with: {
                "weir:connector/types@0.1.0": weir_connector_sdk_bindings::weir::connector::types,
                "weir:connector/log@0.1.0": weir_connector_sdk_bindings::weir::connector::log,
                "weir:connector/offsets@0.1.0": weir_connector_sdk_bindings::weir::connector::offsets,
                "weir:connector/state@0.1.0": weir_connector_sdk_bindings::weir::connector::state,
                "weir:connector/postgres@0.1.0": weir_connector_sdk_bindings::weir::connector::postgres,
                "weir:connector/http@0.1.0": weir_connector_sdk_bindings::weir::connector::http,
            },
        });
    }
}
