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

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use weir_broker::Bytes;
use weir_connector_sdk::FieldError;

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
enum Part {
    Key,
    Value,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Key => "key",
            Part::Value => "value",
        }
    }

    fn get(self, record: &Record) -> Option<&Bytes> {
        match self {
            Part::Key => record.key.as_ref(),
            Part::Value => record.value.as_ref(),
        }
    }

    fn set(self, record: &mut Record, bytes: Option<Bytes>) {
        match self {
            Part::Key => record.key = bytes,
            Part::Value => record.value = bytes,
        }
    }

    /// The part as JSON (`None` for a null part).
    fn json(self, record: &Record) -> Result<Option<Value>, String> {
        self.get(record)
            .map(|bytes| {
                serde_json::from_slice(bytes)
                    .map_err(|error| format!("the record's {} is not JSON: {error}", self.name()))
            })
            .transpose()
    }

    fn set_json(self, record: &mut Record, value: &Value) {
        self.set(record, Some(Bytes::from(serde_json::to_vec(value).unwrap_or_default())));
    }

    /// The part as a JSON object, or an error naming the transform.
    fn object(self, record: &Record, transform: &str) -> Result<Option<Map<String, Value>>, String> {
        match self.json(record)? {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(format!(
                "{transform} needs the record's {} to be a JSON object, not {}",
                self.name(),
                kind_of(&other)
            )),
        }
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[derive(Debug)]
enum Op {
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

#[derive(Debug)]
enum Inserted {
    Static(Value),
    Topic,
    Partition,
    Offset,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeleteHandling {
    Drop,
    Rewrite,
    None,
}

#[derive(Debug)]
enum Predicate {
    TopicNameMatches(regex_lite::Regex),
    HasHeaderKey(String),
    RecordIsTombstone,
}

impl Predicate {
    fn matches(&self, record: &Record) -> bool {
        match self {
            Predicate::TopicNameMatches(regex) => {
                regex.find(&record.topic).is_some_and(|found| found.start() == 0 && found.end() == record.topic.len())
            }
            Predicate::HasHeaderKey(name) => record.headers.iter().any(|(key, _)| key == name),
            Predicate::RecordIsTombstone => record.value.is_none(),
        }
    }
}

#[derive(Debug)]
struct Step {
    alias: String,
    op: Op,
    predicate: Option<(usize, bool)>,
}

/// The transforms of one connector, ready to apply.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    steps: Vec<Step>,
    predicates: Vec<Predicate>,
}

/// A record a transform could not handle.
#[derive(Debug)]
pub(crate) struct TransformError {
    pub(crate) alias: String,
    pub(crate) message: String,
}

impl std::fmt::Display for TransformError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "transform `{}`: {}", self.alias, self.message)
    }
}

impl Chain {
    /// Build the chain, or every problem, each naming its key (`transforms.<alias>.<key>`).
    pub(crate) fn new(transforms: &[TransformSpec], predicates: &[PredicateSpec]) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut names = BTreeMap::new();
        let mut built = Vec::new();
        for (index, spec) in predicates.iter().enumerate() {
            let field = |key: &str| format!("predicates.{}.{key}", spec.name);
            if names.insert(spec.name.clone(), index).is_some() {
                errors.push(FieldError::new(field("name"), "is listed twice"));
            }
            match predicate(spec) {
                Ok(predicate) => built.push(predicate),
                Err((key, message)) => {
                    errors.push(FieldError::new(field(&key), message));
                    built.push(Predicate::RecordIsTombstone);
                }
            }
        }
        let mut steps = Vec::new();
        let mut aliases = std::collections::BTreeSet::new();
        for spec in transforms {
            let field = |key: &str| format!("transforms.{}.{key}", spec.name);
            if spec.name.is_empty() || spec.name.contains([',', ' ']) {
                errors.push(FieldError::new("transforms", format!("`{}` is not a valid transform name", spec.name)));
            }
            if !aliases.insert(spec.name.clone()) {
                errors.push(FieldError::new(field("name"), "is listed twice"));
            }
            let predicate = match &spec.predicate {
                None => None,
                Some(name) => match names.get(name) {
                    Some(index) => Some((*index, spec.negate)),
                    None => {
                        errors.push(FieldError::new(field("predicate"), format!("no predicate is named `{name}`")));
                        None
                    }
                },
            };
            match operation(spec) {
                Ok(op) => steps.push(Step { alias: spec.name.clone(), op, predicate }),
                Err((key, message)) => errors.push(FieldError::new(field(&key), message)),
            }
        }
        if errors.is_empty() { Ok(Self { steps, predicates: built }) } else { Err(errors) }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Apply every transform in order: the record, `None` if one dropped it, or the error of
    /// the transform that could not handle it.
    pub(crate) fn apply(&self, mut record: Record) -> Result<Option<Record>, TransformError> {
        for step in &self.steps {
            if let Some((index, negate)) = step.predicate
                && self.predicates[index].matches(&record) == negate
            {
                continue;
            }
            match apply(&step.op, record) {
                Ok(Some(next)) => record = next,
                Ok(None) => return Ok(None),
                Err(message) => return Err(TransformError { alias: step.alias.clone(), message }),
            }
        }
        Ok(Some(record))
    }
}

/// The class name without Kafka Connect's or Debezium's package.
fn short_name(kind: &str) -> &str {
    kind.strip_prefix("org.apache.kafka.connect.transforms.predicates.")
        .or_else(|| kind.strip_prefix("org.apache.kafka.connect.transforms."))
        .or_else(|| kind.strip_prefix("io.debezium.transforms."))
        .unwrap_or(kind)
}

type SpecError = (String, String);

fn text(spec: &Map<String, Value>, key: &str) -> Option<String> {
    match spec.get(key)? {
        Value::String(text) => Some(text.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn required(spec: &Map<String, Value>, key: &str) -> Result<String, SpecError> {
    text(spec, key).filter(|value| !value.is_empty()).ok_or_else(|| (key.to_owned(), "is required".to_owned()))
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
        Some(other) => Err((key.to_owned(), format!("`{other}` is not true or false"))),
    }
}

fn compile(pattern: &str, key: &str) -> Result<regex_lite::Regex, SpecError> {
    regex_lite::Regex::new(pattern).map_err(|error| (key.to_owned(), format!("not a valid regex: {error}")))
}

fn known_keys(spec: &Map<String, Value>, known: &[&str]) -> Result<(), SpecError> {
    match spec.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err((key.clone(), format!("is not a key of this transform (known: {})", known.join(", ")))),
        None => Ok(()),
    }
}

fn predicate(spec: &PredicateSpec) -> Result<Predicate, SpecError> {
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
        other => Err((
            "type".into(),
            format!("unknown predicate `{other}` (known: TopicNameMatches, HasHeaderKey, RecordIsTombstone)"),
        )),
    }
}

fn operation(spec: &TransformSpec) -> Result<Op, SpecError> {
    let config = &spec.config;
    let name = short_name(&spec.kind);
    let (base, part) = match name.split_once('$') {
        Some((base, "Key")) => (base, Some(Part::Key)),
        Some((base, "Value")) => (base, Some(Part::Value)),
        Some((_, other)) => return Err(("type".into(), format!("`${other}`: use `$Key` or `$Value`"))),
        None => (name, None),
    };
    let part_of = |base: &str| {
        part.ok_or_else(|| ("type".to_owned(), format!("`{base}` needs `$Key` or `$Value` (e.g. `{base}$Value`)")))
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
                return Err((
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
                    _ => return Err(("renames".into(), format!("`{pair}` is not `old:new`"))),
                }
            }
            Ok(Op::ReplaceField { part: part_of(base)?, include, exclude, renames })
        }
        "MaskField" => {
            known_keys(config, &["fields", "replacement"])?;
            let fields = list(config, "fields");
            if fields.is_empty() {
                return Err(("fields".into(), "is required".into()));
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
                return Err(("fields".into(), "is required".into()));
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
                return Err(("headers".into(), "is required".into()));
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
                    return Err(("delete.handling.mode".into(), format!("`{other}` is not drop, rewrite or none")));
                }
            };
            Ok(Op::ExtractNewRecordState {
                drop_tombstones: flag(config, "drop.tombstones", true)?,
                delete_handling,
                add_fields: list(config, "add.fields"),
            })
        }
        other => Err((
            "type".into(),
            format!(
                "unknown transform `{other}` (known: InsertField, ReplaceField, MaskField, ExtractField, HoistField, \
                 Flatten, ValueToKey, RegexRouter, TimestampRouter, InsertHeader, DropHeaders, Filter, \
                 ExtractNewRecordState)"
            ),
        )),
    }
}

fn apply(op: &Op, mut record: Record) -> Result<Option<Record>, String> {
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
                return Err("ValueToKey needs a value (the record is a tombstone)".into());
            };
            let mut key = Map::new();
            for field in fields {
                let value = map.get(field).ok_or_else(|| format!("ValueToKey: the value has no field `{field}`"))?;
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
) -> Result<Option<Record>, String> {
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
            return Err(format!("ExtractNewRecordState: the row state is {}, not an object", kind_of(&other)));
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

fn masked(value: &Value, replacement: Option<&str>) -> Result<Value, String> {
    Ok(match (value, replacement) {
        (Value::String(_), Some(text)) => Value::from(text),
        (Value::Number(_), Some(text)) => serde_json::from_str::<serde_json::Number>(text)
            .map(Value::Number)
            .map_err(|_| format!("MaskField: replacement `{text}` is not a number, for a numeric field"))?,
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

/// Format epoch milliseconds (UTC) with the `SimpleDateFormat` letters Kafka Connect's
/// `TimestampRouter` users write: `yyyy`, `yy`, `MM`, `dd`, `HH`, `mm`, `ss`, `SSS`; other
/// characters are copied, text in single quotes literally.
fn format_timestamp(millis: i64, format: &str) -> String {
    let days = millis.div_euclid(86_400_000);
    let in_day = millis.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let mut out = String::new();
    let chars: Vec<char> = format.chars().collect();
    let mut index = 0;
    while index < chars.len() {
        let letter = chars[index];
        let mut run = 1;
        while index + run < chars.len() && chars[index + run] == letter {
            run += 1;
        }
        match letter {
            '\'' => {
                let end = chars[index + 1..].iter().position(|&c| c == '\'').map_or(chars.len(), |at| index + 1 + at);
                out.extend(&chars[index + 1..end]);
                index = end + 1;
                continue;
            }
            'y' if run == 2 => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            'y' => out.push_str(&format!("{year:0run$}")),
            'M' => out.push_str(&format!("{month:0run$}")),
            'd' => out.push_str(&format!("{day:0run$}")),
            'H' => out.push_str(&format!("{:0run$}", in_day / 3_600_000)),
            'm' => out.push_str(&format!("{:0run$}", in_day / 60_000 % 60)),
            's' => out.push_str(&format!("{:0run$}", in_day / 1000 % 60)),
            'S' => out.push_str(&format!("{:0run$}", in_day % 1000)),
            other => (0..run).for_each(|_| out.push(other)),
        }
        index += run;
    }
    out
}

/// Howard Hinnant's days-from-civil inverse: (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, kind: &str, config: Value) -> TransformSpec {
        TransformSpec {
            name: name.into(),
            kind: kind.into(),
            predicate: None,
            negate: false,
            config: config.as_object().cloned().unwrap_or_default(),
        }
    }

    fn record(topic: &str, key: Option<&str>, value: Option<&str>) -> Record {
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

    fn value_json(record: &Record) -> Value {
        serde_json::from_slice(record.value.as_deref().expect("value")).expect("json")
    }

    #[test]
    fn a_chain_applies_in_order_and_reports_the_failing_transform() {
        let chain = Chain::new(
            &[
                spec(
                    "add",
                    "org.apache.kafka.connect.transforms.InsertField$Value",
                    serde_json::json!({ "static.field": "origin", "static.value": "weir", "topic.field": "t" }),
                ),
                spec("drop", "ReplaceField$Value", serde_json::json!({ "exclude": "secret", "renames": "n:number" })),
                spec("route", "RegexRouter", serde_json::json!({ "regex": "orders-(.*)", "replacement": "$1-orders" })),
            ],
            &[],
        )
        .expect("valid chain");
        let out = chain.apply(record("orders-eu", None, Some(r#"{"n":1,"secret":"x"}"#))).expect("ok").expect("kept");
        assert_eq!(value_json(&out), serde_json::json!({ "number": 1, "origin": "weir", "t": "orders-eu" }));
        assert_eq!(out.topic, "eu-orders");
        let error = chain.apply(record("orders-eu", None, Some("not json"))).expect_err("not JSON");
        assert_eq!(error.alias, "add");
        assert!(error.to_string().contains("not JSON"), "{error}");
    }

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

    #[test]
    fn predicates_select_records_and_filter_drops_them() {
        let mut filter = spec("f", "Filter", serde_json::json!({}));
        filter.predicate = Some("isTest".into());
        let predicate = PredicateSpec {
            name: "isTest".into(),
            kind: "org.apache.kafka.connect.transforms.predicates.TopicNameMatches".into(),
            config: serde_json::json!({ "pattern": "test-.*" }).as_object().cloned().unwrap_or_default(),
        };
        let chain = Chain::new(std::slice::from_ref(&filter), std::slice::from_ref(&predicate)).expect("valid");
        assert!(chain.apply(record("test-1", None, None)).expect("ok").is_none());
        assert!(chain.apply(record("prod", None, None)).expect("ok").is_some());
        filter.negate = true;
        let chain = Chain::new(&[filter], &[predicate]).expect("valid");
        assert!(chain.apply(record("test-1", None, None)).expect("ok").is_some());
    }

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

    #[test]
    fn timestamp_router_formats_utc_dates() {
        let chain = Chain::new(
            &[spec("ts", "TimestampRouter", serde_json::json!({ "timestamp.format": "yyyy-MM-dd'T'HH" }))],
            &[],
        )
        .expect("valid");
        let out = chain.apply(record("logs", None, None)).expect("ok").expect("kept");
        // 1_700_000_000_123 ms is 2023-11-14T22:13:20.123Z.
        assert_eq!(out.topic, "logs-2023-11-14T22");
        assert_eq!(format_timestamp(0, "yyyyMMdd HH:mm:ss.SSS"), "19700101 00:00:00.000");
        assert_eq!(format_timestamp(951_782_400_000, "yyMMdd"), "000229", "a leap day");
    }
}
