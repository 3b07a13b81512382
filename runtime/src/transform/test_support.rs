//! Builders the transform tests share: a spec from JSON, a record with a fixed partition,
//! offset and timestamp, and a record's value read back as JSON.

use serde_json::Value;
use weir_broker::Bytes;

use super::{Record, TransformSpec};

pub(super) fn spec(name: &str, kind: &str, config: Value) -> TransformSpec {
    TransformSpec {
        name: name.into(),
        kind: kind.into(),
        predicate: None,
        negate: false,
        config: config.as_object().cloned().unwrap_or_default(),
    }
}

pub(super) fn record(topic: &str, key: Option<&str>, value: Option<&str>) -> Record {
    Record {
        topic: topic.into(),
        partition: 1,
        offset: Some(7),
        timestamp: 1_700_000_000_123,
        key: key.map(|key| Bytes::from(key.to_owned())),
        value: value.map(|value| Bytes::from(value.to_owned())),
        headers: Vec::new(),
    }
}

pub(super) fn value_json(record: &Record) -> Value {
    serde_json::from_slice(record.value.as_deref().expect("value")).expect("json")
}
