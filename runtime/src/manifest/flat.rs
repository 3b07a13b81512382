//! Kafka Connect's flat form of a definition, the one its REST API speaks: one map of string
//! values where the connector's own config keys sit beside `name`, `connector.class`,
//! `tasks.max`, and transforms are spelled `transforms: a,b` plus `transforms.a.<key>`. Reading it
//! back needs the plugin's schema to know which strings were numbers, booleans or lists.

use weir_connector_sdk::FieldError;

use super::definition::{
    ConnectorDefinition, DEFAULT_CALL_TIMEOUT_MS, DEFAULT_MEMORY_BYTES, Grants, Tolerance, check_definition,
};
use crate::transform::{PredicateSpec, TransformSpec};

/// Keys of the flat (Kafka Connect REST) form that are not the connector's own config.
pub mod flat_keys {
    pub const NAME: &str = "name";
    pub const CLASS: &str = "connector.class";
    pub const TASKS_MAX: &str = "tasks.max";
    pub const PARTITIONS: &str = "topic.creation.default.partitions";
    /// The grants as JSON text, e.g. `{"filesystem":[{"path":"./out","access":"read-write"}]}`.
    pub const GRANTS: &str = "weir.grants";
    pub const MEMORY: &str = "limits.memory.bytes";
    pub const CALL_TIMEOUT: &str = "limits.call.timeout.ms";
    pub const RETRY_TIMEOUT: &str = "errors.retry.timeout";
    pub const RETRY_DELAY_MAX: &str = "errors.retry.delay.max.ms";
    pub const TOLERANCE: &str = "errors.tolerance";
    pub const DLQ_TOPIC: &str = "errors.deadletterqueue.topic.name";
    pub const DLQ_HEADERS: &str = "errors.deadletterqueue.context.headers.enable";
    pub const LOG_ENABLE: &str = "errors.log.enable";
    pub const LOG_MESSAGES: &str = "errors.log.include.messages";
    /// `transforms: a,b` with `transforms.a.type`, `transforms.a.<key>`, ...
    pub const TRANSFORMS: &str = "transforms";
    /// `predicates: p` with `predicates.p.type`, `predicates.p.<key>`, ...
    pub const PREDICATES: &str = "predicates";
    pub const RESTART_ATTEMPTS: &str = "restart.max.attempts";
    pub const RESTART_WINDOW: &str = "restart.window.ms";
    pub const RESTART_BACKOFF_INITIAL: &str = "restart.backoff.initial.ms";
    pub const RESTART_BACKOFF_MAX: &str = "restart.backoff.max.ms";
}

impl ConnectorDefinition {
    /// The flat form Kafka Connect's REST API uses: every value a string, the connector's own
    /// config keys beside `name`, `connector.class` and `tasks.max`; grants as JSON text under
    /// `weir.grants`, limits as `limits.memory.bytes` / `limits.call.timeout.ms` (only when not
    /// the defaults).
    pub fn to_flat(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::Value;
        let mut flat = serde_json::Map::new();
        flat.insert(flat_keys::CLASS.into(), Value::String(self.class.clone()));
        flat.insert(flat_keys::TASKS_MAX.into(), Value::String(self.tasks_max.to_string()));
        if let Some(partitions) = self.default_partitions {
            flat.insert(flat_keys::PARTITIONS.into(), Value::String(partitions.to_string()));
        }
        for (key, value) in &self.config {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            flat.insert(key.clone(), Value::String(text));
        }
        if self.grants != Grants::default() {
            let grants = serde_json::to_string(&self.grants).unwrap_or_default();
            flat.insert(flat_keys::GRANTS.into(), Value::String(grants));
        }
        if self.limits.memory_bytes != DEFAULT_MEMORY_BYTES {
            flat.insert(flat_keys::MEMORY.into(), Value::String(self.limits.memory_bytes.to_string()));
        }
        if self.limits.call_timeout_ms != DEFAULT_CALL_TIMEOUT_MS {
            flat.insert(flat_keys::CALL_TIMEOUT.into(), Value::String(self.limits.call_timeout_ms.to_string()));
        }
        let defaults = ConnectorDefinition::default();
        if self.retry_timeout_ms != defaults.retry_timeout_ms {
            flat.insert(flat_keys::RETRY_TIMEOUT.into(), Value::String(self.retry_timeout_ms.to_string()));
        }
        if self.retry_delay_max_ms != defaults.retry_delay_max_ms {
            flat.insert(flat_keys::RETRY_DELAY_MAX.into(), Value::String(self.retry_delay_max_ms.to_string()));
        }
        if self.tolerance != defaults.tolerance {
            flat.insert(flat_keys::TOLERANCE.into(), Value::String("all".into()));
        }
        if let Some(topic) = &self.dead_letter_topic {
            flat.insert(flat_keys::DLQ_TOPIC.into(), Value::String(topic.clone()));
        }
        for (key, value, default) in [
            (
                flat_keys::RESTART_ATTEMPTS,
                u64::from(self.restart_max_attempts),
                u64::from(defaults.restart_max_attempts),
            ),
            (flat_keys::RESTART_WINDOW, self.restart_window_ms, defaults.restart_window_ms),
            (flat_keys::RESTART_BACKOFF_INITIAL, self.restart_backoff_initial_ms, defaults.restart_backoff_initial_ms),
            (flat_keys::RESTART_BACKOFF_MAX, self.restart_backoff_max_ms, defaults.restart_backoff_max_ms),
        ] {
            if value != default {
                flat.insert(key.into(), Value::String(value.to_string()));
            }
        }
        for (key, on) in [
            (flat_keys::DLQ_HEADERS, self.dead_letter_context_headers),
            (flat_keys::LOG_ENABLE, self.log_errors),
            (flat_keys::LOG_MESSAGES, self.log_include_messages),
        ] {
            if on {
                flat.insert(key.into(), Value::String("true".into()));
            }
        }
        flatten_specs(
            &mut flat,
            flat_keys::TRANSFORMS,
            self.transforms.iter().map(|spec| {
                let mut config = spec.config.clone();
                if let Some(predicate) = &spec.predicate {
                    config.insert("predicate".into(), Value::String(predicate.clone()));
                }
                if spec.negate {
                    config.insert("negate".into(), Value::String("true".into()));
                }
                (spec.name.as_str(), spec.kind.as_str(), config)
            }),
        );
        flatten_specs(
            &mut flat,
            flat_keys::PREDICATES,
            self.predicates.iter().map(|spec| (spec.name.as_str(), spec.kind.as_str(), spec.config.clone())),
        );
        flat.insert(flat_keys::NAME.into(), Value::String(self.name.clone()));
        flat
    }

    /// Build a definition from the flat form. String values of the connector's config are
    /// coerced to the type `schema` (the plugin's config JSON Schema) declares for the key
    /// (integer, number, boolean, array, object); typed JSON values are taken as they are.
    ///
    /// # Errors
    /// Every field that cannot be read, each naming its key.
    pub fn from_flat(
        name: &str,
        flat: &serde_json::Map<String, serde_json::Value>,
        schema: Option<&serde_json::Value>,
    ) -> Result<Self, Vec<FieldError>> {
        use serde_json::Value;
        let mut errors = Vec::new();
        let mut definition = ConnectorDefinition { name: name.to_owned(), ..ConnectorDefinition::default() };
        fn flag(key: &str, value: &Value, errors: &mut Vec<FieldError>) -> bool {
            match value {
                Value::Bool(on) => *on,
                Value::String(text) if text.eq_ignore_ascii_case("true") => true,
                Value::String(text) if text.eq_ignore_ascii_case("false") => false,
                other => {
                    errors.push(FieldError::new(key, format!("{other} is not true or false")));
                    false
                }
            }
        }
        fn number<T: std::str::FromStr>(key: &str, value: &Value, errors: &mut Vec<FieldError>) -> Option<T> {
            let parsed = match value {
                Value::String(text) => text.trim().parse().ok(),
                Value::Number(number) => number.to_string().parse().ok(),
                _ => None,
            };
            if parsed.is_none() {
                errors.push(FieldError::new(key, format!("{value} is not a valid positive integer")));
            }
            parsed
        }
        for (key, value) in flat {
            match key.as_str() {
                flat_keys::NAME => {
                    if value.as_str() != Some(name) {
                        errors
                            .push(FieldError::new(key, format!("{value} does not match the connector name `{name}`")));
                    }
                }
                flat_keys::CLASS => match value.as_str() {
                    Some(class) => definition.class = class.to_owned(),
                    None => errors.push(FieldError::new(key, "must be a string")),
                },
                flat_keys::TASKS_MAX => {
                    if let Some(tasks) = number(key, value, &mut errors) {
                        definition.tasks_max = tasks;
                    }
                }
                flat_keys::PARTITIONS => definition.default_partitions = number(key, value, &mut errors),
                flat_keys::MEMORY => {
                    if let Some(bytes) = number(key, value, &mut errors) {
                        definition.limits.memory_bytes = bytes;
                    }
                }
                flat_keys::CALL_TIMEOUT => {
                    if let Some(millis) = number(key, value, &mut errors) {
                        definition.limits.call_timeout_ms = millis;
                    }
                }
                flat_keys::RETRY_TIMEOUT => {
                    if let Some(millis) = number::<i64>(key, value, &mut errors) {
                        definition.retry_timeout_ms = millis;
                    }
                }
                flat_keys::RETRY_DELAY_MAX => {
                    if let Some(millis) = number(key, value, &mut errors) {
                        definition.retry_delay_max_ms = millis;
                    }
                }
                flat_keys::TOLERANCE => match value.as_str() {
                    Some("none") => definition.tolerance = Tolerance::None,
                    Some("all") => definition.tolerance = Tolerance::All,
                    _ => errors.push(FieldError::new(key, format!("{value} is not `none` or `all`"))),
                },
                flat_keys::DLQ_TOPIC => match value.as_str() {
                    Some("") => definition.dead_letter_topic = None,
                    Some(topic) => definition.dead_letter_topic = Some(topic.to_owned()),
                    None => errors.push(FieldError::new(key, "must be a string")),
                },
                flat_keys::RESTART_ATTEMPTS => {
                    if let Some(attempts) = number(key, value, &mut errors) {
                        definition.restart_max_attempts = attempts;
                    }
                }
                flat_keys::RESTART_WINDOW => {
                    if let Some(millis) = number(key, value, &mut errors) {
                        definition.restart_window_ms = millis;
                    }
                }
                flat_keys::RESTART_BACKOFF_INITIAL => {
                    if let Some(millis) = number(key, value, &mut errors) {
                        definition.restart_backoff_initial_ms = millis;
                    }
                }
                flat_keys::RESTART_BACKOFF_MAX => {
                    if let Some(millis) = number(key, value, &mut errors) {
                        definition.restart_backoff_max_ms = millis;
                    }
                }
                flat_keys::DLQ_HEADERS => definition.dead_letter_context_headers = flag(key, value, &mut errors),
                flat_keys::LOG_ENABLE => definition.log_errors = flag(key, value, &mut errors),
                flat_keys::LOG_MESSAGES => definition.log_include_messages = flag(key, value, &mut errors),
                flat_keys::GRANTS => {
                    let parsed = match value {
                        Value::String(text) => serde_json::from_str(text),
                        other => serde_json::from_value(other.clone()),
                    };
                    match parsed {
                        Ok(grants) => definition.grants = grants,
                        Err(error) => errors.push(FieldError::new(key, format!("not valid grants: {error}"))),
                    }
                }
                flat_keys::TRANSFORMS | flat_keys::PREDICATES => {}
                _ if key.starts_with("transforms.") || key.starts_with("predicates.") => {}
                _ => {
                    let declared =
                        schema.and_then(|schema| schema.get("properties")).and_then(|properties| properties.get(key));
                    definition.config.insert(key.clone(), coerce(value, declared));
                }
            }
        }
        let mut transforms = unflatten_specs(flat, flat_keys::TRANSFORMS, &mut errors);
        definition.predicates = unflatten_specs(flat, flat_keys::PREDICATES, &mut errors)
            .into_iter()
            .map(|(name, kind, config)| PredicateSpec { name, kind, config })
            .collect();
        definition.transforms = transforms
            .drain(..)
            .map(|(name, kind, mut config)| {
                let predicate = config.remove("predicate").and_then(|value| value.as_str().map(str::to_owned));
                let negate = config.remove("negate").is_some_and(|value| {
                    value.as_bool() == Some(true)
                        || value.as_str().is_some_and(|text| text.eq_ignore_ascii_case("true"))
                });
                TransformSpec { name, kind, predicate, negate, config }
            })
            .collect();
        if definition.class.is_empty() && !errors.iter().any(|error| error.field == flat_keys::CLASS) {
            errors.push(FieldError::new(flat_keys::CLASS, "missing required configuration \"connector.class\""));
        }
        if let Err(invalid) = check_definition(&definition) {
            errors.push(FieldError::new(invalid.field, invalid.message));
        }
        if errors.is_empty() { Ok(definition) } else { Err(errors) }
    }
}

/// Write specs in Kafka Connect's flat form: `<prefix>: a,b`, `<prefix>.a.type`, `<prefix>.a.<key>`.
fn flatten_specs<'a>(
    flat: &mut serde_json::Map<String, serde_json::Value>,
    prefix: &str,
    specs: impl Iterator<Item = (&'a str, &'a str, serde_json::Map<String, serde_json::Value>)>,
) {
    use serde_json::Value;
    let mut names = Vec::new();
    for (name, kind, config) in specs {
        flat.insert(format!("{prefix}.{name}.type"), Value::String(kind.to_owned()));
        for (key, value) in config {
            let text = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            flat.insert(format!("{prefix}.{name}.{key}"), Value::String(text));
        }
        names.push(name);
    }
    if !names.is_empty() {
        flat.insert(prefix.to_owned(), Value::String(names.join(",")));
    }
}

/// Read specs from the flat form, in the order `<prefix>` lists them: (name, type, keys).
fn unflatten_specs(
    flat: &serde_json::Map<String, serde_json::Value>,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> Vec<(String, String, serde_json::Map<String, serde_json::Value>)> {
    let names: Vec<String> = match flat.get(prefix) {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(list)) => {
            list.split(',').map(str::trim).filter(|name| !name.is_empty()).map(str::to_owned).collect()
        }
        Some(other) => {
            errors.push(FieldError::new(prefix, format!("{other} is not a comma-separated list of names")));
            Vec::new()
        }
    };
    let mut specs: Vec<(String, String, serde_json::Map<String, serde_json::Value>)> =
        names.iter().map(|name| (name.clone(), String::new(), serde_json::Map::new())).collect();
    let dotted = format!("{prefix}.");
    for (key, value) in flat {
        let Some(rest) = key.strip_prefix(&dotted) else { continue };
        let Some((name, field)) = rest.split_once('.') else {
            errors.push(FieldError::new(key, format!("expected `{prefix}.<name>.<key>`")));
            continue;
        };
        let Some(spec) = specs.iter_mut().find(|spec| spec.0 == name) else {
            errors.push(FieldError::new(key, format!("`{name}` is not listed in `{prefix}`")));
            continue;
        };
        if field == "type" {
            match value.as_str() {
                Some(kind) => spec.1 = kind.to_owned(),
                None => errors.push(FieldError::new(key, "must be a string")),
            }
        } else {
            spec.2.insert(field.to_owned(), value.clone());
        }
    }
    for spec in &specs {
        if spec.1.is_empty() {
            errors.push(FieldError::new(format!("{prefix}.{}.type", spec.0), "is required"));
        }
    }
    specs
}

/// The types a JSON Schema property declares (`"type": "integer"` or `["integer", "null"]`).
fn declared_types(property: &serde_json::Value) -> Vec<&str> {
    match property.get("type") {
        Some(serde_json::Value::String(kind)) => vec![kind.as_str()],
        Some(serde_json::Value::Array(kinds)) => kinds.iter().filter_map(serde_json::Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// A string value read as the type its schema property declares; anything else unchanged
/// (so that a value that does not parse is reported by the schema check, naming the field).
/// References to config providers stay strings: they are resolved (and typed) on the worker.
fn coerce(value: &serde_json::Value, property: Option<&serde_json::Value>) -> serde_json::Value {
    use serde_json::Value;
    let (Value::String(text), Some(property)) = (value, property) else { return value.clone() };
    if text.contains("${") {
        return value.clone();
    }
    let types = declared_types(property);
    if types.contains(&"string") {
        return value.clone();
    }
    let trimmed = text.trim();
    for kind in types {
        let parsed = match kind {
            "integer" => {
                trimmed.parse::<i64>().ok().map(Value::from).or_else(|| trimmed.parse::<u64>().ok().map(Value::from))
            }
            "number" => {
                trimmed.parse::<f64>().ok().and_then(|number| serde_json::Number::from_f64(number).map(Value::Number))
            }
            "boolean" => trimmed.parse::<bool>().ok().map(Value::Bool),
            "null" => (trimmed.is_empty() || trimmed == "null").then_some(Value::Null),
            "array" => serde_json::from_str::<Value>(trimmed).ok().filter(Value::is_array).or_else(|| {
                Some(Value::Array(
                    trimmed
                        .split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(|item| Value::String(item.into()))
                        .collect(),
                ))
            }),
            "object" => serde_json::from_str::<Value>(trimmed).ok().filter(Value::is_object),
            _ => None,
        };
        if let Some(parsed) = parsed {
            return parsed;
        }
    }
    value.clone()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::manifest::ManifestFile;
    use crate::manifest::file::tests::GOOD;

    #[test]
    fn transforms_round_trip_through_the_flat_form() {
        let yaml = "name: t\nconnector.class: datagen\nconfig:\n  topic: x\ntransforms:\n  - name: add\n    \
                    type: InsertField$Value\n    static.field: origin\n    static.value: weir\n    predicate: isX\n  \
                    - name: route\n    type: RegexRouter\n    regex: x\n    replacement: y\npredicates:\n  - name: isX\n    \
                    type: TopicNameMatches\n    pattern: x.*\nrestart.max.attempts: 7\n";
        let file = ManifestFile::parse(Path::new("t.yaml"), yaml.into()).unwrap();
        let definition = &file.definitions[0];
        assert_eq!(definition.transforms.len(), 2);
        assert_eq!(definition.transforms[0].config["static.field"], "origin");
        let flat = definition.to_flat();
        assert_eq!(flat["transforms"], "add,route");
        assert_eq!(flat["transforms.add.type"], "InsertField$Value");
        assert_eq!(flat["transforms.add.predicate"], "isX");
        assert_eq!(flat["predicates.isX.pattern"], "x.*");
        assert_eq!(flat["restart.max.attempts"], "7");
        let back = ConnectorDefinition::from_flat("t", &flat, None).unwrap();
        assert_eq!(&back, definition);
        let mut stray = flat.clone();
        stray.insert("transforms.other.type".into(), "Filter".into());
        let errors = ConnectorDefinition::from_flat("t", &stray, None).unwrap_err();
        assert_eq!(errors[0].field, "transforms.other.type", "{errors:?}");
    }

    #[test]
    fn flat_form_round_trips_with_coercion() {
        let file = ManifestFile::parse(Path::new("m.yaml"), GOOD.into()).unwrap();
        let schema = serde_json::json!({"properties": {
            "topic": {"type": "string"}, "max.interval": {"type": "integer"}, "flag": {"type": ["boolean", "null"]}
        }});
        for definition in &file.definitions {
            let flat = definition.to_flat();
            assert!(flat.values().all(serde_json::Value::is_string), "{flat:?}");
            let back = ConnectorDefinition::from_flat(&definition.name, &flat, Some(&schema)).unwrap();
            assert_eq!(back.class, definition.class);
            assert_eq!(back.grants, definition.grants);
            assert_eq!(back.limits, definition.limits);
        }
        let flat = file.definitions[0].to_flat();
        assert_eq!(flat["max.interval"], "10");
        let back = ConnectorDefinition::from_flat("orders", &flat, Some(&schema)).unwrap();
        assert_eq!(back, file.definitions[0]);
        let mut typed = flat.clone();
        typed.insert("flag".into(), "true".into());
        typed.insert("tasks.max".into(), serde_json::json!(3));
        let back = ConnectorDefinition::from_flat("orders", &typed, Some(&schema)).unwrap();
        assert_eq!(back.config["flag"], true);
        assert_eq!(back.tasks_max, 3);
        let mut bad = flat;
        bad.insert("tasks.max".into(), "many".into());
        bad.remove("connector.class");
        let errors = ConnectorDefinition::from_flat("orders", &bad, None).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
        assert_eq!(fields, vec!["tasks.max", "connector.class"]);
    }
}
