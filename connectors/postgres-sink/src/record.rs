//! What a record asks of the table: write a row, delete a key, or nothing. Reads JSON keys and
//! values, unwraps JsonConverter's `{"schema", "payload"}` and Debezium change events, and takes
//! the key columns as `pk.mode` says.

use serde_json::Value;
use weir_connector_sdk::batch::SinkRecordRef;

use crate::config::{KAFKA_PK_FIELDS, PkMode, SinkConfig};
use crate::sql::Row;

/// What one record does to its table.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Write `row` (key columns included); `key` holds the key columns' values.
    Write { key: Row, row: Row },
    /// Delete the row with this key.
    Delete { key: Row },
    /// Nothing (a tombstone with `delete.enabled` off, a truncate event): why, for the log.
    Skip(&'static str),
}

/// How the key columns are taken: resolved once from the config.
#[derive(Debug, Clone)]
pub struct KeyRule {
    mode: PkMode,
    fields: Vec<String>,
    delete_enabled: bool,
    unwrap: bool,
}

impl KeyRule {
    pub fn new(config: &SinkConfig) -> Self {
        let mut fields = config.pk_field_names();
        if config.pk_mode == PkMode::Kafka && fields.is_empty() {
            fields = KAFKA_PK_FIELDS.iter().map(|field| (*field).to_owned()).collect();
        }
        Self { mode: config.pk_mode, fields, delete_enabled: config.delete_enabled, unwrap: config.debezium_unwrap }
    }

    /// The change `record` asks for.
    ///
    /// # Errors
    /// Why the record cannot be written (a per-record failure).
    pub fn change(&self, record: &SinkRecordRef<'_>) -> Result<Change, String> {
        let Some(value) = record.value else {
            return if self.delete_enabled {
                Ok(Change::Delete { key: self.key(record, None)? })
            } else {
                Ok(Change::Skip("a tombstone (delete.enabled is off)"))
            };
        };
        let value: Value = serde_json::from_slice(value).map_err(|error| format!("the value is not JSON: {error}"))?;
        let value = payload(value);
        let row = match value {
            Value::Object(mut object) if self.unwrap && is_debezium(&object) => {
                let op = object.get("op").and_then(Value::as_str).unwrap_or_default().to_owned();
                match op.as_str() {
                    "c" | "r" | "u" => match object.remove("after") {
                        Some(Value::Object(after)) => after,
                        _ => return Err(format!("a Debezium `{op}` event without an `after` object")),
                    },
                    "d" => {
                        return if self.delete_enabled {
                            let before = match object.remove("before") {
                                Some(Value::Object(before)) => Some(before),
                                _ => None,
                            };
                            Ok(Change::Delete { key: self.key(record, before.as_ref())? })
                        } else {
                            Ok(Change::Skip("a Debezium delete (delete.enabled is off)"))
                        };
                    }
                    "t" => return Ok(Change::Skip("a Debezium truncate event (not applied)")),
                    other => {
                        return Ok(Change::Skip(if other == "m" {
                            "a Debezium message event"
                        } else {
                            "a Debezium event of an unknown op"
                        }));
                    }
                }
            }
            Value::Object(object) => object,
            other => return Err(format!("the value is not a JSON object but {}", kind(&other))),
        };
        let key = self.key(record, Some(&row))?;
        let mut row = row;
        for (name, value) in &key {
            row.insert(name.clone(), value.clone());
        }
        Ok(Change::Write { key, row })
    }

    /// The key columns of `record`; `row` is the value's row (or a delete's `before`).
    fn key(&self, record: &SinkRecordRef<'_>, row: Option<&Row>) -> Result<Row, String> {
        let mut key = Row::new();
        match self.mode {
            PkMode::None => {}
            PkMode::Kafka => {
                key.insert(self.fields[0].clone(), Value::String(record.topic.to_owned()));
                key.insert(self.fields[1].clone(), Value::from(record.partition));
                key.insert(self.fields[2].clone(), Value::from(record.offset));
            }
            PkMode::RecordValue => {
                let row = row.ok_or("a record without a value has no key under pk.mode record_value")?;
                for field in &self.fields {
                    let value = row.get(field).ok_or_else(|| format!("the value has no key field {field}"))?;
                    key.insert(field.clone(), value.clone());
                }
            }
            PkMode::RecordKey => {
                let bytes = record.key.ok_or("the record has no key (pk.mode record_key)")?;
                // A key that is not JSON is a string (e.g. StringConverter's).
                let parsed = serde_json::from_slice::<Value>(bytes)
                    .map(payload)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()));
                match parsed {
                    Value::Object(object) if self.fields.is_empty() => {
                        if object.is_empty() {
                            return Err("the key is an empty JSON object".into());
                        }
                        key = object;
                    }
                    Value::Object(object) => {
                        for field in &self.fields {
                            let value = object.get(field).ok_or_else(|| format!("the key has no field {field}"))?;
                            key.insert(field.clone(), value.clone());
                        }
                    }
                    Value::Null => return Err("the key is JSON null (pk.mode record_key)".into()),
                    primitive => match self.fields.as_slice() {
                        [name] => {
                            key.insert(name.clone(), primitive);
                        }
                        _ => {
                            return Err(format!(
                                "the key is a {}, not an object: name its one column in pk.fields",
                                kind(&primitive)
                            ));
                        }
                    },
                }
            }
        }
        if let Some((name, _)) = key.iter().find(|(_, value)| value.is_null()) {
            return Err(format!("key column {name} is null"));
        }
        Ok(key)
    }
}

/// JsonConverter with `schemas.enable`: `{"schema": ..., "payload": ...}` carries the data in
/// `payload`.
fn payload(value: Value) -> Value {
    match value {
        Value::Object(mut object)
            if object.len() == 2 && object.contains_key("schema") && object.contains_key("payload") =>
        {
            object.remove("payload").unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// A Debezium change event: `op` as a string, and `after` (maybe null) beside `before` or `source`.
fn is_debezium(object: &Row) -> bool {
    object.get("op").is_some_and(Value::is_string)
        && object.contains_key("after")
        && (object.contains_key("before") || object.contains_key("source"))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
