//! Generated bindings for the two worlds of `wit/connector.wit`.
//!
//! The sink world maps the interfaces it shares with the source world onto the source world's
//! generated modules, so both use one `ConnectorError`, one `Level` and one set of host traits.

#![allow(missing_debug_implementations, unreachable_pub, clippy::all)]

pub(crate) mod source_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "source-connector",
        imports: {
            "weir:connector/postgres": async,
            "weir:connector/state": async,
            "weir:connector/http": async,
        },
        exports: { default: async },
    });
}

pub(crate) mod sink_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sink-connector",
        exports: { default: async },
        with: {
            "weir:connector/types": super::source_world::weir::connector::types,
            "weir:connector/log": super::source_world::weir::connector::log,
            "weir:connector/offsets": super::source_world::weir::connector::offsets,
            "weir:connector/state": super::source_world::weir::connector::state,
            "weir:connector/postgres": super::source_world::weir::connector::postgres,
            "weir:connector/http": super::source_world::weir::connector::http,
        },
    });
}

pub(crate) use sink_world::SinkConnectorPre;
pub(crate) use source_world::SourceConnectorPre;
pub(crate) use source_world::weir::connector::{http, log, offsets, postgres, state, types};
