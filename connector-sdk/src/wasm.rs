//! The component side: the generated Guest traits implemented once, generically, over any
//! [`Source`] or [`Sink`] by delegating to the shared glue, and a [`Host`] that calls the WIT
//! imports. [`crate::export_source!`] and [`crate::export_sink!`] name these types in the
//! connector's crate, where the exported functions must be emitted.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

use crate::__bindings::{sink as sink_world, source as source_world};
use crate::connector::{Sink, Source};
use crate::glue::{self, SinkTaskGlue, SourceTaskGlue};
use crate::host::{Host, Level};
use crate::types::{ConnectorError, FieldError, Kind, OffsetFailure, RecordFailure, SourceOffset, Spec};

use sink_world::weir::connector::{log as wit_log, offsets as wit_offsets, state as wit_state, types as wit};

/// The [`Host`] of a component: every call is a WIT import.
#[derive(Debug, Clone, Copy, Default)]
pub struct WasmHost;

impl Host for WasmHost {
    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Trace => wit_log::Level::Trace,
            Level::Debug => wit_log::Level::Debug,
            Level::Info => wit_log::Level::Info,
            Level::Warn => wit_log::Level::Warn,
            Level::Error => wit_log::Level::Error,
        };
        wit_log::log(level, message);
    }

    fn committed_offsets(&self) -> Vec<SourceOffset> {
        wit_offsets::committed()
            .into_iter()
            .map(|offset| SourceOffset { partition: offset.partition, position: offset.position })
            .collect()
    }

    fn state_get(&self, key: &str) -> Option<Vec<u8>> {
        wit_state::get(key)
    }

    fn state_set(&self, key: &str, value: &[u8]) {
        wit_state::set(key, value);
    }

    fn state_delete(&self, key: &str) {
        wit_state::delete(key);
    }

    fn gauge(&self, name: &str, value: i64) {
        wit_log::gauge(name, value);
    }
}

fn to_wit_error(error: ConnectorError) -> wit::ConnectorError {
    match error {
        ConnectorError::Retriable(message) => wit::ConnectorError::Retriable(message),
        ConnectorError::Fatal(message) => wit::ConnectorError::Fatal(message),
        ConnectorError::InvalidConfig(message) => wit::ConnectorError::InvalidConfig(message),
    }
}

fn to_wit_spec(spec: Spec) -> wit::ConnectorSpec {
    wit::ConnectorSpec {
        name: spec.name,
        version: spec.version,
        kind: match spec.kind {
            Kind::Source => wit::ConnectorKind::Source,
            Kind::Sink => wit::ConnectorKind::Sink,
        },
        description: spec.description,
        config_schema: spec.config_schema,
    }
}

fn to_wit_field_errors(errors: Vec<FieldError>) -> Vec<wit::FieldError> {
    errors.into_iter().map(|error| wit::FieldError { field: error.field, message: error.message }).collect()
}

fn to_wit_failures(failures: Vec<RecordFailure>) -> Vec<wit::RecordFailure> {
    failures
        .into_iter()
        .map(|failure| wit::RecordFailure {
            index: failure.index,
            error: to_wit_error(failure.error),
            context: failure.context,
        })
        .collect()
}

fn to_wit_offset_failures(failures: Vec<OffsetFailure>) -> Vec<wit::OffsetFailure> {
    failures
        .into_iter()
        .map(|failure| wit::OffsetFailure {
            topic: failure.topic,
            partition: failure.partition,
            offset: failure.offset,
            error: to_wit_error(failure.error),
            context: failure.context,
        })
        .collect()
}

fn from_wit_offsets(positions: Vec<wit::SourceOffset>) -> Vec<SourceOffset> {
    positions
        .into_iter()
        .map(|offset| SourceOffset { partition: offset.partition, position: offset.position })
        .collect()
}

/// The task lives in a `RefCell` because resource methods take `&self`. A component is single
/// threaded and never re-entered, so a failed borrow is a broken invariant, reported rather than
/// panicked on.
fn busy() -> wit::ConnectorError {
    wit::ConnectorError::Fatal("task called while already in a call".to_owned())
}

/// The exports of source connector `S`.
#[derive(Debug)]
pub struct SourceExport<S>(PhantomData<fn() -> S>);

impl<S: Source + 'static> source_world::exports::weir::connector::connector::Guest for SourceExport<S> {
    fn spec() -> wit::ConnectorSpec {
        to_wit_spec(glue::spec::<S>(Kind::Source))
    }

    fn validate(config: String) -> Result<(), Vec<wit::FieldError>> {
        glue::validate::<S>(&config).map_err(to_wit_field_errors)
    }

    fn task_configs(config: String, max_tasks: u32) -> Result<Vec<String>, wit::ConnectorError> {
        glue::task_configs::<S>(&config, max_tasks).map_err(to_wit_error)
    }

    fn on_delete(config: String) -> Result<(), wit::ConnectorError> {
        glue::on_delete::<S>(&config).map_err(to_wit_error)
    }
}

impl<S: Source + 'static> source_world::exports::weir::connector::source::Guest for SourceExport<S> {
    type SourceTask = SourceTaskResource<S>;
}

/// The `source-task` resource of source connector `S`.
pub struct SourceTaskResource<S> {
    task: RefCell<SourceTaskGlue<S>>,
}

impl<S> fmt::Debug for SourceTaskResource<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceTaskResource").finish_non_exhaustive()
    }
}

impl<S: Source + 'static> source_world::exports::weir::connector::source::GuestSourceTask for SourceTaskResource<S> {
    fn open(
        config: String,
        task_config: String,
        task_id: u32,
    ) -> Result<source_world::exports::weir::connector::source::SourceTask, wit::ConnectorError> {
        let task =
            SourceTaskGlue::<S>::open(&config, &task_config, task_id, Box::new(WasmHost)).map_err(to_wit_error)?;
        Ok(source_world::exports::weir::connector::source::SourceTask::new(Self { task: RefCell::new(task) }))
    }

    fn poll(&self, max: u32) -> Result<Vec<u8>, wit::ConnectorError> {
        let mut task = self.task.try_borrow_mut().map_err(|_| busy())?;
        task.poll(max).map_err(to_wit_error)
    }

    fn commit(&self, positions: Vec<wit::SourceOffset>) -> Result<(), wit::ConnectorError> {
        let mut task = self.task.try_borrow_mut().map_err(|_| busy())?;
        task.commit(&from_wit_offsets(positions)).map_err(to_wit_error)
    }

    fn close(&self) -> Result<(), wit::ConnectorError> {
        let mut task = self.task.try_borrow_mut().map_err(|_| busy())?;
        task.close().map_err(to_wit_error)
    }
}

/// The exports of sink connector `S`.
#[derive(Debug)]
pub struct SinkExport<S>(PhantomData<fn() -> S>);

impl<S: Sink + 'static> sink_world::exports::weir::connector::connector::Guest for SinkExport<S> {
    fn spec() -> wit::ConnectorSpec {
        to_wit_spec(glue::spec::<S>(Kind::Sink))
    }

    fn validate(config: String) -> Result<(), Vec<wit::FieldError>> {
        glue::validate::<S>(&config).map_err(to_wit_field_errors)
    }

    fn task_configs(config: String, max_tasks: u32) -> Result<Vec<String>, wit::ConnectorError> {
        glue::task_configs::<S>(&config, max_tasks).map_err(to_wit_error)
    }

    fn on_delete(config: String) -> Result<(), wit::ConnectorError> {
        glue::on_delete::<S>(&config).map_err(to_wit_error)
    }
}

impl<S: Sink + 'static> sink_world::exports::weir::connector::sink::Guest for SinkExport<S> {
    type SinkTask = SinkTaskResource<S>;
}

/// The `sink-task` resource of sink connector `S`.
pub struct SinkTaskResource<S> {
    task: RefCell<SinkTaskGlue<S>>,
}

impl<S> fmt::Debug for SinkTaskResource<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkTaskResource").finish_non_exhaustive()
    }
}

impl<S: Sink + 'static> sink_world::exports::weir::connector::sink::GuestSinkTask for SinkTaskResource<S> {
    fn open(
        config: String,
        task_config: String,
        task_id: u32,
    ) -> Result<sink_world::exports::weir::connector::sink::SinkTask, wit::ConnectorError> {
        let task = SinkTaskGlue::<S>::open(&config, &task_config, task_id, Box::new(WasmHost)).map_err(to_wit_error)?;
        Ok(sink_world::exports::weir::connector::sink::SinkTask::new(Self { task: RefCell::new(task) }))
    }

    fn put(&self, records: Vec<u8>) -> Result<Vec<wit::RecordFailure>, wit::ConnectorError> {
        let mut task = self.task.try_borrow_mut().map_err(|_| busy())?;
        task.put(&records).map(to_wit_failures).map_err(to_wit_error)
    }

    fn flush(&self) -> Result<Vec<wit::OffsetFailure>, wit::ConnectorError> {
        let mut task = self.task.try_borrow_mut().map_err(|_| busy())?;
        task.flush().map(to_wit_offset_failures).map_err(to_wit_error)
    }

    fn close(&self) -> Result<(), wit::ConnectorError> {
        let mut task = self.task.try_borrow_mut().map_err(|_| busy())?;
        task.close().map_err(to_wit_error)
    }
}
