//! The export macros: one line that turns a [`crate::Source`] or [`crate::Sink`] into a
//! component.
//!
//! Each expands, on `wasm32` only, to wit-bindgen's export glue for the matching world
//! (`source-connector` or `sink-connector`) over [`crate::__wasm::SourceExport`] /
//! [`crate::__wasm::SinkExport`], plus the custom section describing the world. It must be
//! expanded in the connector's own crate, the `cdylib`, because that is where the exported
//! functions have to be emitted. Natively it only checks that the type implements the trait.

/// Export a [`Source`](crate::Source) as the component's `source-connector` world.
///
/// ```ignore
/// weir_connector_sdk::export_source!(Datagen);
/// ```
#[macro_export]
macro_rules! export_source {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __WeirSourceExport = $crate::__wasm::SourceExport<$ty>;
            $crate::__bindings::source::__export_source_world!(
                __WeirSourceExport with_types_in $crate::__bindings::source
            );
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = $crate::__assert_source::<$ty>;
    };
}

/// Export a [`Sink`](crate::Sink) as the component's `sink-connector` world.
///
/// ```ignore
/// weir_connector_sdk::export_sink!(FileSink);
/// ```
#[macro_export]
macro_rules! export_sink {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __WeirSinkExport = $crate::__wasm::SinkExport<$ty>;
            $crate::__bindings::sink::__export_sink_world!(
                __WeirSinkExport with_types_in $crate::__bindings::sink
            );
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = $crate::__assert_sink::<$ty>;
    };
}

/// Natively, [`export_source!`] only checks its argument with this.
#[doc(hidden)]
pub fn __assert_source<S: crate::Source + 'static>() {}

/// Natively, [`export_sink!`] only checks its argument with this.
#[doc(hidden)]
pub fn __assert_sink<S: crate::Sink + 'static>() {}
