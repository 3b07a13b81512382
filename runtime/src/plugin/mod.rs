//! Connector plugins: loading components (with an on-disk cache of compiled code), reading their
//! spec, and checking configs against their schema.

mod cache;
mod capabilities;
mod registry;

pub(crate) use registry::PluginCode;
pub use registry::{
    BUILTIN_COMPONENTS, NativeSinkOpen, NativeSourceOpen, Plugin, PluginError, PluginOrigin, PluginRegistry,
};
