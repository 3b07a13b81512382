//! The transform and predicate specs as a manifest (or the flat form) writes them, and their
//! parsing into operations: unknown types, unknown keys and bad values are refused here, once,
//! each naming its key, so applying an operation never meets a bad spec.

use serde_json::{Map, Value};

use super::ops::{DeleteHandling, Inserted, Op};
use super::predicate::Predicate;
use super::record::Part;

/// One transform as a manifest lists it:
///
/// ```yaml
/// transforms:
///   - name: route
///     type: RegexRouter
///     regex: "orders-(.*)"
///     replacement: "$1"
///     predicate: isOrders      # optional, from `predicates`
///     negate: false
/// ```
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct TransformSpec {
    /// The alias (Kafka Connect's `transforms=<alias>,...`).
    pub name: String,
    /// The class: `InsertField$Value`, `org.apache.kafka.connect.transforms.RegexRouter`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Apply only to records this predicate (by name) matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<String>,
    /// Apply only to records the predicate does not match.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negate: bool,
    /// The transform's own keys (`static.field`, `regex`, ...), as Kafka Connect names them.
    #[serde(flatten)]
    pub config: Map<String, Value>,
}

/// One predicate (Kafka Connect's `predicates`): `name`, `type` and its keys.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct PredicateSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(flatten)]
    pub config: Map<String, Value>,
}

/// The class name without Kafka Connect's or Debezium's package.
fn short_name(kind: &str) -> &str {
    kind.strip_prefix("org.apache.kafka.connect.transforms.predicates.")
        .or_else(|| kind.strip_prefix("org.apache.kafka.connect.transforms."))
        .or_else(|| kind.strip_prefix("io.debezium.transforms."))
        .unwrap_or(kind)
}

/// A spec that cannot be used: the key at fault (`type`, `regex`, ...) and what is wrong. The
/// chain prefixes the key with `transforms.<alias>.` or `predicates.<name>.`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub(super) struct SpecError {
    pub(super) key: String,
    pub(super) message: String,
}

impl SpecError {
    fn new(key: String, message: String) -> Self {
        Self { key, message }
    }
}

fn text(spec: &Map<String, Value>, key: &str) -> Option<String> {
    match spec.get(key)? {
        Value::String(text) => Some(text.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn required(spec: &Map<String, Value>, key: &str) -> Result<String, SpecError> {
    text(spec, key)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| SpecError::new(key.to_owned(), "is required".to_owned()))
}

/// A comma-separated list (or a YAML list).
fn list(spec: &Map<String, Value>, key: &str) -> Vec<String> {
    match spec.get(key) {
        Some(Value::Array(items)) => items.iter().filter_map(|item| item.as_str().map(str::to_owned)).collect(),
        _ => text(spec, key)
            .map(|text| text.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default(),
    }
}

fn flag(spec: &Map<String, Value>, key: &str, default: bool) -> Result<bool, SpecError> {
    match text(spec, key).as_deref() {
        None => Ok(default),
        Some(text) if text.eq_ignore_ascii_case("true") => Ok(true),
        Some(text) if text.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(SpecError::new(key.to_owned(), format!("`{other}` is not true or false"))),
    }
}

fn compile(pattern: &str, key: &str) -> Result<regex_lite::Regex, SpecError> {
    regex_lite::Regex::new(pattern)
        .map_err(|error| SpecError::new(key.to_owned(), format!("not a valid regex: {error}")))
}

fn known_keys(spec: &Map<String, Value>, known: &[&str]) -> Result<(), SpecError> {
    match spec.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => {
            Err(SpecError::new(key.clone(), format!("is not a key of this transform (known: {})", known.join(", "))))
        }
        None => Ok(()),
    }
}

/// Parse a predicate spec.
pub(super) fn predicate(spec: &PredicateSpec) -> Result<Predicate, SpecError> {
    let config = &spec.config;
    match short_name(&spec.kind) {
        "TopicNameMatches" => {
            known_keys(config, &["pattern"])?;
            Ok(Predicate::TopicNameMatches(compile(&required(config, "pattern")?, "pattern")?))
        }
        "HasHeaderKey" => {
            known_keys(config, &["name"])?;
            Ok(Predicate::HasHeaderKey(required(config, "name")?))
        }
        "RecordIsTombstone" => {
            known_keys(config, &[])?;
            Ok(Predicate::RecordIsTombstone)
        }
        other => Err(SpecError::new(
            "type".into(),
            format!("unknown predicate `{other}` (known: TopicNameMatches, HasHeaderKey, RecordIsTombstone)"),
        )),
    }
}

/// Parse a transform spec into its operation (its predicate is the chain's business).
pub(super) fn operation(spec: &TransformSpec) -> Result<Op, SpecError> {
    let config = &spec.config;
    let name = short_name(&spec.kind);
    let (base, part) = match name.split_once('$') {
        Some((base, "Key")) => (base, Some(Part::Key)),
        Some((base, "Value")) => (base, Some(Part::Value)),
        Some((_, other)) => return Err(SpecError::new("type".into(), format!("`${other}`: use `$Key` or `$Value`"))),
        None => (name, None),
    };
    let part_of = |base: &str| {
        part.ok_or_else(|| {
            SpecError::new("type".to_owned(), format!("`{base}` needs `$Key` or `$Value` (e.g. `{base}$Value`)"))
        })
    };
    match base {
        "InsertField" => {
            known_keys(
                config,
                &["static.field", "static.value", "topic.field", "partition.field", "offset.field", "timestamp.field"],
            )?;
            let mut fields = Vec::new();
            if let Some(field) = text(config, "static.field") {
                let value = config.get("static.value").cloned().unwrap_or(Value::Null);
                fields.push((field, Inserted::Static(value)));
            }
            for (key, inserted) in [
                ("topic.field", Inserted::Topic),
                ("partition.field", Inserted::Partition),
                ("offset.field", Inserted::Offset),
                ("timestamp.field", Inserted::Timestamp),
            ] {
                if let Some(field) = text(config, key) {
                    fields.push((field, inserted));
                }
            }
            if fields.is_empty() {
                return Err(SpecError::new(
                    "static.field".into(),
                    "one of static.field, topic.field, partition.field, offset.field or timestamp.field is required"
                        .into(),
                ));
            }
            Ok(Op::InsertField { part: part_of(base)?, fields })
        }
        "ReplaceField" => {
            known_keys(config, &["include", "exclude", "renames", "whitelist", "blacklist"])?;
            let mut include = list(config, "include");
            include.extend(list(config, "whitelist"));
            let mut exclude = list(config, "exclude");
            exclude.extend(list(config, "blacklist"));
            let mut renames = Vec::new();
            for pair in list(config, "renames") {
                match pair.split_once(':') {
                    Some((from, to)) if !from.is_empty() && !to.is_empty() => {
                        renames.push((from.to_owned(), to.to_owned()));
                    }
                    _ => return Err(SpecError::new("renames".into(), format!("`{pair}` is not `old:new`"))),
                }
            }
            Ok(Op::ReplaceField { part: part_of(base)?, include, exclude, renames })
        }
        "MaskField" => {
            known_keys(config, &["fields", "replacement"])?;
            let fields = list(config, "fields");
            if fields.is_empty() {
                return Err(SpecError::new("fields".into(), "is required".into()));
            }
            Ok(Op::MaskField { part: part_of(base)?, fields, replacement: text(config, "replacement") })
        }
        "ExtractField" => {
            known_keys(config, &["field"])?;
            Ok(Op::ExtractField { part: part_of(base)?, field: required(config, "field")? })
        }
        "HoistField" => {
            known_keys(config, &["field"])?;
            Ok(Op::HoistField { part: part_of(base)?, field: required(config, "field")? })
        }
        "Flatten" => {
            known_keys(config, &["delimiter"])?;
            Ok(Op::Flatten { part: part_of(base)?, delimiter: text(config, "delimiter").unwrap_or_else(|| ".".into()) })
        }
        "ValueToKey" => {
            known_keys(config, &["fields"])?;
            let fields = list(config, "fields");
            if fields.is_empty() {
                return Err(SpecError::new("fields".into(), "is required".into()));
            }
            Ok(Op::ValueToKey { fields })
        }
        "RegexRouter" => {
            known_keys(config, &["regex", "replacement"])?;
            let regex = compile(&format!("^(?:{})$", required(config, "regex")?), "regex")?;
            Ok(Op::RegexRouter { regex, replacement: required(config, "replacement")? })
        }
        "TimestampRouter" => {
            known_keys(config, &["topic.format", "timestamp.format"])?;
            Ok(Op::TimestampRouter {
                topic_format: text(config, "topic.format").unwrap_or_else(|| "${topic}-${timestamp}".into()),
                timestamp_format: text(config, "timestamp.format").unwrap_or_else(|| "yyyyMMdd".into()),
            })
        }
        "InsertHeader" => {
            known_keys(config, &["header", "value.literal"])?;
            Ok(Op::InsertHeader { header: required(config, "header")?, value: required(config, "value.literal")? })
        }
        "DropHeaders" => {
            known_keys(config, &["headers"])?;
            let headers = list(config, "headers");
            if headers.is_empty() {
                return Err(SpecError::new("headers".into(), "is required".into()));
            }
            Ok(Op::DropHeaders { headers })
        }
        "Filter" => {
            known_keys(config, &[])?;
            Ok(Op::Filter)
        }
        "ExtractNewRecordState" => {
            known_keys(config, &["drop.tombstones", "delete.handling.mode", "add.fields"])?;
            let delete_handling = match text(config, "delete.handling.mode").as_deref() {
                None | Some("drop") => DeleteHandling::Drop,
                Some("rewrite") => DeleteHandling::Rewrite,
                Some("none") => DeleteHandling::None,
                Some(other) => {
                    return Err(SpecError::new(
                        "delete.handling.mode".into(),
                        format!("`{other}` is not drop, rewrite or none"),
                    ));
                }
            };
            Ok(Op::ExtractNewRecordState {
                drop_tombstones: flag(config, "drop.tombstones", true)?,
                delete_handling,
                add_fields: list(config, "add.fields"),
            })
        }
        other => Err(SpecError::new(
            "type".into(),
            format!(
                "unknown transform `{other}` (known: InsertField, ReplaceField, MaskField, ExtractField, HoistField, \
                 Flatten, ValueToKey, RegexRouter, TimestampRouter, InsertHeader, DropHeaders, Filter, \
                 ExtractNewRecordState)"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::transform::Chain;
    use crate::transform::test_support::spec;

    #[test]
    fn bad_specs_name_the_key() {
        let errors = Chain::new(
            &[
                spec("a", "Nope", serde_json::json!({})),
                spec("b", "ExtractField", serde_json::json!({ "field": "x" })),
                spec("c", "RegexRouter", serde_json::json!({ "regex": "(" , "replacement": "x" })),
                spec("d", "MaskField$Value", serde_json::json!({ "fields": "x", "colour": "red" })),
            ],
            &[],
        )
        .expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
        assert_eq!(fields, ["transforms.a.type", "transforms.b.type", "transforms.c.regex", "transforms.d.colour"]);
    }
}
