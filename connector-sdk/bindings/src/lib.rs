//! Generated bindings for the `sink-connector` world and for the interfaces both worlds share
//! (`types`, `log`, `offsets`, `state`, `postgres`, `http`). An implementation detail of `weir-connector-sdk`: use
//! that crate, never this one.
//!
//! Why a separate crate: wit-bindgen names the export macro of an exported interface after the
//! interface (`__export_weir_connector_connector_0_1_0_cabi`) and, for use from another crate,
//! puts it at the crate root. Both worlds export `connector`, so generating both in one crate
//! defines that macro twice. The SDK generates `source-connector` itself and maps its shared
//! interfaces onto the ones generated here (`with:`), so every WIT type exists once.
//!
//! Empty unless compiled for `wasm32`: natively nothing here is needed.

#![cfg(target_arch = "wasm32")]
// The generated code is FFI glue: raw pointers into linear memory and `extern "C"` exports.
#![allow(unsafe_code, unreachable_pub, missing_debug_implementations, missing_docs)]

wit_bindgen::generate!({
    path: "../../wit",
    world: "sink-connector",
    pub_export_macro: true,
    export_macro_name: "__export_sink_world",
    default_bindings_module: "weir_connector_sdk::__bindings::sink",
});
