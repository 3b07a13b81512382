//! Single message transforms (Kafka Connect's `transforms`), applied by the worker to every
//! record a source produced (before it is written) and every record a sink is given (before
//! `put`). Keys and values are schemaless JSON, as with Kafka Connect's `JsonConverter` and
//! `schemas.enable=false`.
//!
//! The built-ins keep Kafka Connect's class names (the package prefix is optional) and keys:
//! `InsertField`, `ReplaceField`, `MaskField`, `ExtractField`, `HoistField`, `Flatten` (each
//! `$Key` or `$Value`), `ValueToKey`, `RegexRouter`, `TimestampRouter`, `InsertHeader`,
//! `DropHeaders`, `Filter`, and Debezium's `ExtractNewRecordState`. Predicates:
//! `TopicNameMatches`, `HasHeaderKey`, `RecordIsTombstone`, with `negate`.
//!
//! A record a transform cannot handle (a value that is not JSON where one must be, ...) fails
//! in stage `TRANSFORMATION`: with `errors.tolerance: all` it goes to the dead-letter topic and
//! the pipeline goes on.
//!
//! One file per idea: `spec` parses the manifest's specs into operations (every problem named by
//! its key), `ops` applies one operation to a record, `predicate` decides which records a
//! transform sees, `time` formats `TimestampRouter`'s dates, and `chain` runs a connector's
//! transforms in order. `record` is the record they all work on.

mod chain;
mod ops;
mod predicate;
mod record;
mod spec;
#[cfg(test)]
mod test_support;
mod time;

pub(crate) use chain::Chain;
pub(crate) use record::Record;
pub use spec::{PredicateSpec, TransformSpec};
