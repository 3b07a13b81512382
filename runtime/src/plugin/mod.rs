//! Connector plugins: loading components (with an on-disk cache of compiled code), reading their
//! spec, and checking configs against their schema.

mod cache;
mod registry;

pub use registry::{
    BUILTIN_COMPONENTS, NativeSinkOpen, NativeSourceOpen, Plugin, PluginError, PluginOrigin, PluginRegistry,
};
pub(crate) use registry::PluginCode;
