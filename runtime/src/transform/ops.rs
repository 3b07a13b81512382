//! The operations the transforms perform, each applied to one record at a time, and the errors
//! that fail a record (stage `TRANSFORMATION`) rather than the connector.

use serde_json::{Map, Value};
use weir_broker::Bytes;

use super::record::{Part, Record, kind_of};
use super::time::format_timestamp;

/// Why a record could not be transformed. The text becomes the record's error message (in the
/// task's trace and the dead-letter headers), so it names the transform and the part.
#[derive(Debug, thiserror::Error)]
pub(super) enum OpError {
    #[error("the record's {part} is not JSON: {source}")]
    NotJson { part: &'static str, source: serde_json::Error },
    #[error("{transform} needs the record's {part} to be a JSON object, not {found}")]
    NotAnObject { transform: &'static str, part: &'static str, found: &'static str },
    #[error("ValueToKey needs a value (the record is a tombstone)")]
    ValueToKeyTombstone,
    #[error("ValueToKey: the value has no field `{field}`")]
    ValueToKeyMissingField { field: String },
    #[error("MaskField: replacement `{replacement}` is not a number, for a numeric field")]
    MaskNotANumber { replacement: String, source: serde_json::Error },
    #[error("ExtractNewRecordState: the row state is {found}, not an object")]
    RowStateNotAnObject { found: &'static str },
}

/// One transform, parsed and checked (see `spec`), ready to apply.
#[derive(Debug)]
pub(super) enum Op {
    InsertField { part: Part, fields: Vec<(String, Inserted)> },
    ReplaceField { part: Part, include: Vec<String>, exclude: Vec<String>, renames: Vec<(String, String)> },
    MaskField { part: Part, fields: Vec<String>, replacement: Option<String> },
    ExtractField { part: Part, field: String },
    HoistField { part: Part, field: String },
    Flatten { part: Part, delimiter: String },
    ValueToKey { fields: Vec<String> },
    RegexRouter { regex: regex_lite::Regex, replacement: String },
    TimestampRouter { topic_format: String, timestamp_format: String },
    InsertHeader { header: String, value: String },
    DropHeaders { headers: Vec<String> },
    Filter,
    ExtractNewRecordState { drop_tombstones: bool, delete_handling: DeleteHandling, add_fields: Vec<String> },
}

/// What `InsertField` puts into a field.
#[derive(Debug)]
pub(super) enum Inserted {
    Static(Value),
    Topic,
    Partition,
    Offset,
    Timestamp,
}

/// What `ExtractNewRecordState` does with a delete (`delete.handling.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DeleteHandling {
    Drop,
    Rewrite,
    None,
}

/// The record after `op`: `None` if the operation dropped it.
pub(super) fn apply(op: &Op, mut record: Record) -> Result<Option<Record>, OpError> {
    match op {
        Op::InsertField { part, fields } => {
            let Some(mut map) = part.object(&record, "InsertField")? else { return Ok(Some(record)) };
            for (field, inserted) in fields {
                let value = match inserted {
                    Inserted::Static(value) => value.clone(),
                    Inserted::Topic => Value::from(record.topic.clone()),
                    Inserted::Partition => Value::from(record.partition),
                    Inserted::Offset => record.offset.map_or(Value::Null, Value::from),
                    Inserted::Timestamp => Value::from(record.timestamp),
                };
                map.insert(field.clone(), value);
            }
            part.set_json(&mut record, &Value::Object(map));
        }
        Op::ReplaceField { part, include, exclude, renames } => {
            let Some(map) = part.object(&record, "ReplaceField")? else { return Ok(Some(record)) };
            let mut out = Map::new();
            for (key, value) in map {
                if exclude.contains(&key) || (!include.is_empty() && !include.contains(&key)) {
                    continue;
                }
                let key = renames.iter().find(|(from, _)| *from == key).map_or(key, |(_, to)| to.clone());
                out.insert(key, value);
            }
            part.set_json(&mut record, &Value::Object(out));
        }
        Op::MaskField { part, fields, replacement } => {
            let Some(mut map) = part.object(&record, "MaskField")? else { return Ok(Some(record)) };
            for field in fields {
                if let Some(value) = map.get_mut(field) {
                    *value = masked(value, replacement.as_deref())?;
                }
            }
            part.set_json(&mut record, &Value::Object(map));
        }
        Op::ExtractField { part, field } => {
            let Some(mut map) = part.object(&record, "ExtractField")? else { return Ok(Some(record)) };
            match map.remove(field) {
                None | Some(Value::Null) => part.set(&mut record, None),
                Some(value) => part.set_json(&mut record, &value),
            }
        }
        Op::HoistField { part, field } => {
            let value = part.json(&record)?.unwrap_or(Value::Null);
            let mut map = Map::new();
            map.insert(field.clone(), value);
            part.set_json(&mut record, &Value::Object(map));
        }
        Op::Flatten { part, delimiter } => {
            let Some(map) = part.object(&record, "Flatten")? else { return Ok(Some(record)) };
            let mut out = Map::new();
            flatten_into(&mut out, "", map, delimiter);
            part.set_json(&mut record, &Value::Object(out));
        }
        Op::ValueToKey { fields } => {
            let Some(map) = Part::Value.object(&record, "ValueToKey")? else {
                return Err(OpError::ValueToKeyTombstone);
            };
            let mut key = Map::new();
            for field in fields {
                let value = map.get(field).ok_or_else(|| OpError::ValueToKeyMissingField { field: field.clone() })?;
                key.insert(field.clone(), value.clone());
            }
            Part::Key.set_json(&mut record, &Value::Object(key));
        }
        Op::RegexRouter { regex, replacement } => {
            if let Some(captures) = regex.captures(&record.topic) {
                let mut topic = String::new();
                captures.expand(replacement, &mut topic);
                record.topic = topic;
            }
        }
        Op::TimestampRouter { topic_format, timestamp_format } => {
            let stamp = format_timestamp(record.timestamp, timestamp_format);
            record.topic = topic_format.replace("${topic}", &record.topic).replace("${timestamp}", &stamp);
        }
        Op::InsertHeader { header, value } => record.headers.push((header.clone(), Some(Bytes::from(value.clone())))),
        Op::DropHeaders { headers } => record.headers.retain(|(name, _)| !headers.contains(name)),
        Op::Filter => return Ok(None),
        Op::ExtractNewRecordState { drop_tombstones, delete_handling, add_fields } => {
            return extract_new_record_state(record, *drop_tombstones, *delete_handling, add_fields);
        }
    }
    Ok(Some(record))
}

/// Debezium's `ExtractNewRecordState`: the envelope's `after` as the value; deletes dropped,
/// rewritten (`before` with `__deleted: "true"`) or kept as tombstones; `add.fields` copied from
/// the envelope as `__<field>` (`op`, `ts_ms`, or a `source` field such as `table`, `lsn`).
fn extract_new_record_state(
    mut record: Record,
    drop_tombstones: bool,
    delete_handling: DeleteHandling,
    add_fields: &[String],
) -> Result<Option<Record>, OpError> {
    let Some(envelope) = Part::Value.object(&record, "ExtractNewRecordState")? else {
        return Ok(if drop_tombstones { None } else { Some(record) });
    };
    let op = envelope.get("op").and_then(Value::as_str).unwrap_or_default().to_owned();
    let state = if op == "d" {
        match delete_handling {
            DeleteHandling::Drop => return Ok(None),
            DeleteHandling::None => {
                record.value = None;
                return Ok(Some(record));
            }
            DeleteHandling::Rewrite => envelope.get("before").cloned(),
        }
    } else if envelope.contains_key("after") || envelope.contains_key("op") {
        envelope.get("after").cloned()
    } else {
        // Not an envelope (a heartbeat or a schema change): passed on unchanged.
        return Ok(Some(record));
    };
    let mut state = match state {
        Some(Value::Object(map)) => map,
        None | Some(Value::Null) => return Ok(None),
        Some(other) => {
            return Err(OpError::RowStateNotAnObject { found: kind_of(&other) });
        }
    };
    if delete_handling == DeleteHandling::Rewrite {
        state.insert("__deleted".into(), Value::from(if op == "d" { "true" } else { "false" }));
    }
    for field in add_fields {
        let found = envelope
            .get(field)
            .or_else(|| envelope.get("source").and_then(|source| source.get(field)))
            .cloned()
            .unwrap_or(Value::Null);
        state.insert(format!("__{}", field.replace('.', "_")), found);
    }
    Part::Value.set_json(&mut record, &Value::Object(state));
    Ok(Some(record))
}

fn masked(value: &Value, replacement: Option<&str>) -> Result<Value, OpError> {
    Ok(match (value, replacement) {
        (Value::String(_), Some(text)) => Value::from(text),
        (Value::Number(_), Some(text)) => serde_json::from_str::<serde_json::Number>(text)
            .map(Value::Number)
            .map_err(|source| OpError::MaskNotANumber { replacement: text.to_owned(), source })?,
        (Value::String(_), None) => Value::from(""),
        (Value::Number(_), None) => Value::from(0),
        (Value::Bool(_), _) => Value::from(false),
        (Value::Array(_), _) => Value::Array(Vec::new()),
        (Value::Object(_), _) => Value::Object(Map::new()),
        (Value::Null, _) => Value::Null,
    })
}

fn flatten_into(out: &mut Map<String, Value>, prefix: &str, map: Map<String, Value>, delimiter: &str) {
    for (key, value) in map {
        let name = if prefix.is_empty() { key } else { format!("{prefix}{delimiter}{key}") };
        match value {
            Value::Object(inner) => flatten_into(out, &name, inner, delimiter),
            other => {
                out.insert(name, other);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::Chain;
    use crate::transform::test_support::{record, spec, value_json};

    #[test]
    fn key_and_value_shapes() {
        let chain = Chain::new(
            &[
                spec("k", "ValueToKey", serde_json::json!({ "fields": "id" })),
                spec("x", "ExtractField$Key", serde_json::json!({ "field": "id" })),
                spec("h", "HoistField$Value", serde_json::json!({ "field": "row" })),
                spec("f", "Flatten$Value", serde_json::json!({ "delimiter": "_" })),
                spec("m", "MaskField$Value", serde_json::json!({ "fields": "row_card" })),
            ],
            &[],
        )
        .expect("valid");
        let out = chain.apply(record("t", None, Some(r#"{"id":42,"card":"4111"}"#))).expect("ok").expect("kept");
        assert_eq!(out.key.as_deref(), Some(&b"42"[..]));
        assert_eq!(value_json(&out), serde_json::json!({ "row_id": 42, "row_card": "" }));
    }

    #[test]
    fn extract_new_record_state_unwraps_debezium_envelopes() {
        let unwrap = |config: Value| {
            Chain::new(&[spec("u", "io.debezium.transforms.ExtractNewRecordState", config)], &[]).expect("valid")
        };
        let update =
            r#"{"before":null,"after":{"id":1,"name":"a"},"op":"u","source":{"table":"items","lsn":10},"ts_ms":5}"#;
        let delete = r#"{"before":{"id":1,"name":"a"},"after":null,"op":"d","source":{"table":"items"},"ts_ms":6}"#;
        let chain = unwrap(serde_json::json!({ "add.fields": "op,table" }));
        let out = chain.apply(record("t", None, Some(update))).expect("ok").expect("kept");
        assert_eq!(value_json(&out), serde_json::json!({ "id": 1, "name": "a", "__op": "u", "__table": "items" }));
        assert!(chain.apply(record("t", None, Some(delete))).expect("ok").is_none(), "deletes dropped by default");
        assert!(chain.apply(record("t", None, None)).expect("ok").is_none(), "tombstones dropped by default");
        let chain = unwrap(serde_json::json!({ "delete.handling.mode": "rewrite", "drop.tombstones": "false" }));
        let out = chain.apply(record("t", None, Some(delete))).expect("ok").expect("kept");
        assert_eq!(value_json(&out), serde_json::json!({ "id": 1, "name": "a", "__deleted": "true" }));
        assert!(chain.apply(record("t", None, None)).expect("ok").is_some());
    }
}
