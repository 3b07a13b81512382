//! The record the transforms work on, and the JSON view of its key or value that the `$Key` /
//! `$Value` transforms edit.

use serde_json::{Map, Value};
use weir_broker::Bytes;

use super::ops::OpError;

/// A record on its way through the transforms.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    pub(crate) topic: String,
    /// The partition the source asked for (negative: by key) or the sink's record came from.
    pub(crate) partition: i32,
    /// The record's offset (sink side only).
    pub(crate) offset: Option<i64>,
    pub(crate) timestamp: i64,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<(String, Option<Bytes>)>,
}

/// Which part of the record a `$Key` / `$Value` transform edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Key,
    Value,
}

impl Part {
    pub(super) fn name(self) -> &'static str {
        match self {
            Part::Key => "key",
            Part::Value => "value",
        }
    }

    pub(super) fn get(self, record: &Record) -> Option<&Bytes> {
        match self {
            Part::Key => record.key.as_ref(),
            Part::Value => record.value.as_ref(),
        }
    }

    pub(super) fn set(self, record: &mut Record, bytes: Option<Bytes>) {
        match self {
            Part::Key => record.key = bytes,
            Part::Value => record.value = bytes,
        }
    }

    /// The part as JSON (`None` for a null part).
    pub(super) fn json(self, record: &Record) -> Result<Option<Value>, OpError> {
        self.get(record)
            .map(|bytes| serde_json::from_slice(bytes).map_err(|source| OpError::NotJson { part: self.name(), source }))
            .transpose()
    }

    pub(super) fn set_json(self, record: &mut Record, value: &Value) {
        self.set(record, Some(Bytes::from(serde_json::to_vec(value).unwrap_or_default())));
    }

    /// The part as a JSON object, or an error naming the transform.
    pub(super) fn object(
        self,
        record: &Record,
        transform: &'static str,
    ) -> Result<Option<Map<String, Value>>, OpError> {
        match self.json(record)? {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(OpError::NotAnObject { transform, part: self.name(), found: kind_of(&other) }),
        }
    }
}

/// How an error names a JSON value it did not expect.
pub(super) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
