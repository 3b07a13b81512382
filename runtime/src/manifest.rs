//! YAML manifests: one or more connector definitions per file (`---` separated), in Kafka
//! Connect's vocabulary (`connector.class`, `tasks.max`, `topics`).
//!
//! ```yaml
//! name: datagen-orders
//! connector.class: datagen
//! tasks.max: 1
//! topic.creation.default.partitions: 4
//! config:
//!   topic: orders
//!   iterations: 1000
//! grants:
//!   filesystem:
//!     - path: ./weir-out
//!       access: read-write
//! limits:
//!   memory.bytes: 67108864
//!   call.timeout.ms: 5000
//! ```
//!
//! Parsing only checks the manifest's own shape; the connector's `config` is checked against the
//! plugin's schema by [`crate::worker::Worker::validate`], and errors there name the line too.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use weir_connector_sdk::FieldError;

use crate::transform::{PredicateSpec, TransformSpec};

/// Default memory limit of one task's instance.
pub const DEFAULT_MEMORY_BYTES: u64 = 256 << 20;
/// Default deadline of one call into a component.
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 30_000;

/// One connector, as a manifest (or later the REST API) describes it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorDefinition {
    /// Unique connector name.
    pub name: String,
    /// The plugin: a built-in (`datagen`, `file-source`, `file-sink`, `blackhole`) or a
    /// component in the plugin directory.
    #[serde(rename = "connector.class")]
    pub class: String,
    /// Upper bound on the number of tasks (Kafka Connect's `tasks.max`).
    #[serde(rename = "tasks.max", default = "one")]
    pub tasks_max: u32,
    /// Partitions of topics this connector's records create (Kafka Connect's
    /// `topic.creation.default.partitions`).
    #[serde(rename = "topic.creation.default.partitions", default, skip_serializing_if = "Option::is_none")]
    pub default_partitions: Option<u32>,
    /// The connector's own config, checked against its JSON Schema.
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Capabilities granted to the component.
    #[serde(default)]
    pub grants: Grants,
    /// Sandbox limits of each task.
    #[serde(default)]
    pub limits: Limits,
    /// How long a retriable failure is retried, in ms (Kafka Connect's `errors.retry.timeout`):
    /// -1 retries forever, 0 not at all. Default 300000: weir retries by default, Kafka Connect
    /// (default 0) does not.
    #[serde(rename = "errors.retry.timeout", default = "default_retry_timeout")]
    pub retry_timeout_ms: i64,
    /// Longest wait between two retries, in ms (`errors.retry.delay.max.ms`).
    #[serde(rename = "errors.retry.delay.max.ms", default = "default_retry_delay_max")]
    pub retry_delay_max_ms: u64,
    /// `none`: a record that fails fails the task; `all`: it is skipped (and sent to the
    /// dead-letter topic if one is set) and the pipeline goes on.
    #[serde(rename = "errors.tolerance", default)]
    pub tolerance: Tolerance,
    /// Topic receiving the records that failed, with `errors.tolerance: all`.
    #[serde(rename = "errors.deadletterqueue.topic.name", default)]
    pub dead_letter_topic: Option<String>,
    /// Add `__connect.errors.*` headers (connector, task, stage, error class and message, original
    /// topic / partition / offset) to dead-letter records.
    #[serde(rename = "errors.deadletterqueue.context.headers.enable", default)]
    pub dead_letter_context_headers: bool,
    /// Log each failed record (per batch, at WARN).
    #[serde(rename = "errors.log.enable", default)]
    pub log_errors: bool,
    /// Include the records' keys and values in those log lines.
    #[serde(rename = "errors.log.include.messages", default)]
    pub log_include_messages: bool,
    /// Single message transforms, applied in order to each record (Kafka Connect's
    /// `transforms`; see [`crate::transform`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<TransformSpec>,
    /// Predicates the transforms refer to by name (Kafka Connect's `predicates`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub predicates: Vec<PredicateSpec>,
    /// Automatic restarts of a FAILED task: at most this many within `restart.window.ms`, then
    /// it stays FAILED with its last trace (0: never restart, as Kafka Connect).
    #[serde(rename = "restart.max.attempts", default = "default_restart_attempts")]
    pub restart_max_attempts: u32,
    /// The window, in ms, in which `restart.max.attempts` are counted.
    #[serde(rename = "restart.window.ms", default = "default_restart_window")]
    pub restart_window_ms: u64,
    /// Wait before the first automatic restart, in ms; each next one waits twice as long (with
    /// jitter), up to `restart.backoff.max.ms`.
    #[serde(rename = "restart.backoff.initial.ms", default = "default_restart_backoff_initial")]
    pub restart_backoff_initial_ms: u64,
    /// Longest wait before an automatic restart, in ms.
    #[serde(rename = "restart.backoff.max.ms", default = "default_restart_backoff_max")]
    pub restart_backoff_max_ms: u64,
}

impl Default for ConnectorDefinition {
    /// The defaults a manifest gets for every key it leaves out (name and plugin empty).
    fn default() -> Self {
        Self {
            name: String::new(),
            class: String::new(),
            tasks_max: one(),
            default_partitions: None,
            config: serde_json::Map::new(),
            grants: Grants::default(),
            limits: Limits::default(),
            retry_timeout_ms: default_retry_timeout(),
            retry_delay_max_ms: default_retry_delay_max(),
            tolerance: Tolerance::default(),
            dead_letter_topic: None,
            dead_letter_context_headers: false,
            log_errors: false,
            log_include_messages: false,
            transforms: Vec::new(),
            predicates: Vec::new(),
            restart_max_attempts: default_restart_attempts(),
            restart_window_ms: default_restart_window(),
            restart_backoff_initial_ms: default_restart_backoff_initial(),
            restart_backoff_max_ms: default_restart_backoff_max(),
        }
    }
}

impl ConnectorDefinition {
    /// The retry budget: `None` for "forever".
    pub fn retry_timeout(&self) -> Option<std::time::Duration> {
        u64::try_from(self.retry_timeout_ms).ok().map(std::time::Duration::from_millis)
    }
}

/// Kafka Connect's `errors.tolerance`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tolerance {
    #[default]
    None,
    All,
}

fn default_restart_attempts() -> u32 {
    3
}

fn default_restart_window() -> u64 {
    600_000
}

fn default_restart_backoff_initial() -> u64 {
    500
}

fn default_restart_backoff_max() -> u64 {
    30_000
}

fn default_retry_timeout() -> i64 {
    300_000
}

fn default_retry_delay_max() -> u64 {
    60_000
}

fn one() -> u32 {
    1
}

/// Capabilities a component gets. Nothing is granted unless listed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Directories the component may open, preopened through WASI at the same path.
    #[serde(default)]
    pub filesystem: Vec<FilesystemGrant>,
    /// Postgres servers (and databases) the component may connect to through the `postgres`
    /// import. Credentials stay in the connector's config; the grant only says where.
    #[serde(default)]
    pub postgres: Vec<PostgresGrant>,
}

/// One Postgres database a component may connect to.
///
/// ```yaml
/// grants:
///   postgres:
///     - host: localhost       # or a Unix socket directory
///       port: 5432
///       database: inventory   # `*` for any database on that server
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresGrant {
    pub host: String,
    #[serde(default = "default_postgres_port")]
    pub port: u16,
    pub database: String,
}

fn default_postgres_port() -> u16 {
    5432
}

impl PostgresGrant {
    /// Whether a connection to `host:port/database` is within this grant (exact host match: no
    /// name resolution, so `localhost` and `127.0.0.1` are two grants).
    pub fn allows(&self, host: &str, port: u16, database: &str) -> bool {
        self.host == host && self.port == port && (self.database == "*" || self.database == database)
    }
}

/// One directory a component may use.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemGrant {
    /// The directory, absolute or relative to the worker's working directory. It is created if
    /// missing. The component sees it under this same path.
    pub path: PathBuf,
    #[serde(default)]
    pub access: Access,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    #[default]
    ReadOnly,
    ReadWrite,
}

/// Per-task sandbox limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Most linear memory one task's instance may grow to.
    #[serde(rename = "memory.bytes", default = "default_memory")]
    pub memory_bytes: u64,
    /// Longest one call into the component may run before it is stopped (a trap).
    #[serde(rename = "call.timeout.ms", default = "default_call_timeout")]
    pub call_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { memory_bytes: DEFAULT_MEMORY_BYTES, call_timeout_ms: DEFAULT_CALL_TIMEOUT_MS }
    }
}

fn default_memory() -> u64 {
    DEFAULT_MEMORY_BYTES
}

fn default_call_timeout() -> u64 {
    DEFAULT_CALL_TIMEOUT_MS
}

impl ConnectorDefinition {
    /// The topics a sink reads: `config.topics`, a comma-separated string (Kafka Connect) or a
    /// YAML list.
    pub fn topics(&self) -> Vec<String> {
        match self.config.get("topics") {
            Some(serde_json::Value::String(list)) => {
                list.split(',').map(str::trim).filter(|topic| !topic.is_empty()).map(str::to_owned).collect()
            }
            Some(serde_json::Value::Array(items)) => {
                items.iter().filter_map(|item| item.as_str().map(str::to_owned)).collect()
            }
            _ => Vec::new(),
        }
    }
}

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
        if let Err((field, message)) = check_definition(&definition) {
            errors.push(FieldError::new(field, message));
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

/// A manifest that cannot be used, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The offending field, when known (`config.iterations`, `tasks.max`).
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A parsed manifest file: its definitions and its text (to point at lines later).
#[derive(Debug, Clone)]
pub struct ManifestFile {
    pub path: PathBuf,
    pub text: String,
    pub definitions: Vec<ConnectorDefinition>,
    /// 0-based line where each definition's document starts.
    document_starts: Vec<usize>,
}

impl ManifestFile {
    /// Read and parse a manifest file.
    ///
    /// # Errors
    /// When the file cannot be read or a document is not a valid connector definition; the error
    /// names the file, the line and the field.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|error| ManifestError {
            file: path.to_owned(),
            line: None,
            field: None,
            message: format!("cannot read the manifest: {error}"),
        })?;
        Self::parse(path, text)
    }

    /// Parse manifest text (`path` names it in errors).
    ///
    /// # Errors
    /// As [`ManifestFile::load`].
    pub fn parse(path: &Path, text: String) -> Result<Self, ManifestError> {
        let mut definitions = Vec::new();
        let mut document_starts = Vec::new();
        let separators: Vec<usize> = std::iter::once(0)
            .chain(text.lines().enumerate().filter(|(_, line)| line.starts_with("---")).map(|(index, _)| index))
            .collect();
        // First pass: find the empty documents (e.g. a trailing `---`). Second pass: deserialize
        // each document straight from the text, so errors carry the field path and the line.
        let mut empty = Vec::new();
        for document in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = serde_yaml_ng::Value::deserialize(document).map_err(|error| yaml_error(path, &text, &error))?;
            empty.push(value.is_null());
        }
        for (index, document) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let start = separators.get(index).copied().unwrap_or(0);
            if empty.get(index).copied().unwrap_or(true) {
                continue;
            }
            let definition =
                ConnectorDefinition::deserialize(document).map_err(|error| yaml_error(path, &text, &error))?;
            let mut definition = definition;
            check_definition(&definition).map_err(|(field, message)| ManifestError {
                file: path.to_owned(),
                line: line_of_key_from(&text, start, &field),
                field: Some(field),
                message,
            })?;
            resolve_grant_paths(&mut definition);
            definitions.push(definition);
            document_starts.push(start);
        }
        if definitions.is_empty() {
            return Err(ManifestError {
                file: path.to_owned(),
                line: None,
                field: None,
                message: "the manifest defines no connector".into(),
            });
        }
        Ok(Self { path: path.to_owned(), text, definitions, document_starts })
    }

    /// An error about `field` (a dotted path such as `config.iterations` or `connector.class`)
    /// of definition `index`, located in this file.
    pub fn field_error(&self, index: usize, field: &str, message: &str) -> ManifestError {
        let start = self.document_starts.get(index).copied().unwrap_or(0);
        let line = line_of_key_from(&self.text, start, field)
            .or_else(|| field.rsplit_once('.').and_then(|(parent, _)| line_of_key_from(&self.text, start, parent)));
        ManifestError {
            file: self.path.clone(),
            line,
            field: (!field.is_empty()).then(|| field.to_owned()),
            message: message.to_owned(),
        }
    }
}

fn check_definition(definition: &ConnectorDefinition) -> Result<(), (String, String)> {
    if definition.name.trim().is_empty() {
        return Err(("name".into(), "must not be empty".into()));
    }
    if definition.name.contains('/') || definition.name.chars().any(char::is_control) {
        return Err(("name".into(), "must not contain '/' or control characters".into()));
    }
    if definition.tasks_max == 0 {
        return Err(("tasks.max".into(), "must be at least 1".into()));
    }
    if definition.default_partitions == Some(0) {
        return Err(("topic.creation.default.partitions".into(), "must be at least 1".into()));
    }
    if definition.limits.memory_bytes < (1 << 20) {
        return Err(("limits.memory.bytes".into(), "must be at least 1048576 (1 MiB)".into()));
    }
    if definition.retry_timeout_ms < -1 {
        return Err(("errors.retry.timeout".into(), "must be -1 (forever), 0 (no retries) or a number of ms".into()));
    }
    if definition.tolerance == Tolerance::None && definition.dead_letter_topic.is_some() {
        return Err((
            "errors.deadletterqueue.topic.name".into(),
            "needs `errors.tolerance: all` (with `none` no record is ever sent to it)".into(),
        ));
    }
    if definition.limits.call_timeout_ms == 0 {
        return Err(("limits.call.timeout.ms".into(), "must be at least 1".into()));
    }
    if definition.restart_max_attempts > 0 && definition.restart_window_ms == 0 {
        return Err(("restart.window.ms".into(), "must be at least 1 when restart.max.attempts is set".into()));
    }
    if definition.restart_backoff_max_ms < definition.restart_backoff_initial_ms {
        return Err(("restart.backoff.max.ms".into(), "must be at least restart.backoff.initial.ms".into()));
    }
    Ok(())
}

/// Relative grant paths are relative to the worker's working directory; keep the written form
/// too, because that is the path the connector's config uses.
fn resolve_grant_paths(definition: &mut ConnectorDefinition) {
    for grant in &mut definition.grants.filesystem {
        if grant.path.as_os_str().is_empty() {
            grant.path = PathBuf::from(".");
        }
    }
}

fn yaml_error(path: &Path, text: &str, error: &serde_yaml_ng::Error) -> ManifestError {
    let message = error.to_string();
    // serde_yaml_ng appends " at line L column C" to its messages; keep ours shorter.
    let message = match message.find(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message,
    };
    let field = field_in_message(&message);
    let line = error
        .location()
        .map(|location| location.line())
        .or_else(|| field.as_deref().and_then(|field| line_of_key_in(text, field)));
    ManifestError { file: path.to_owned(), line, field, message }
}

/// serde names the field in backticks: "unknown field `foo`", "missing field `name`",
/// "tasks.max: invalid type ...".
fn field_in_message(message: &str) -> Option<String> {
    if let Some(start) = message.find('`') {
        let rest = &message[start + 1..];
        if let Some(end) = rest.find('`') {
            return Some(rest[..end].to_owned());
        }
    }
    let (path, _) = message.split_once(": ")?;
    (!path.contains(' ')).then(|| path.to_owned())
}

/// The 1-based line where a dotted key path (`config.max.interval`, `tasks.max`) is written,
/// found by walking the YAML's indentation. Keys may themselves contain dots, as Kafka Connect's
/// do, so each step tries the longest key first.
pub fn line_of_key_in(text: &str, dotted: &str) -> Option<usize> {
    line_of_key_from(text, 0, dotted)
}

fn line_of_key_from(text: &str, first_line: usize, dotted: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut start = first_line;
    let mut parent_indent: Option<usize> = None;
    let mut remaining = dotted;
    let mut found = None;
    while !remaining.is_empty() {
        let mut step = None;
        let parts: Vec<&str> = remaining.split('.').collect();
        'lengths: for take in (1..=parts.len()).rev() {
            let key = parts[..take].join(".");
            for (index, line) in lines.iter().enumerate().skip(start) {
                if index > first_line && line.starts_with("---") {
                    break; // the next document
                }
                let indent = line.len() - line.trim_start().len();
                let trimmed = line.trim_start().trim_start_matches("- ");
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                if let Some(parent) = parent_indent
                    && indent <= parent
                {
                    break; // left the parent's block
                }
                let unquoted = trimmed.trim_start_matches(['"', '\'']);
                if let Some(rest) = unquoted.strip_prefix(key.as_str()) {
                    let rest = rest.trim_start_matches(['"', '\'']);
                    if rest.starts_with(':') {
                        step = Some((index, indent, take));
                        break 'lengths;
                    }
                }
            }
        }
        let (index, indent, take) = step?;
        found = Some(index + 1);
        start = index + 1;
        parent_indent = Some(indent);
        remaining = match parts.get(take..) {
            Some(rest) if !rest.is_empty() => &remaining[parts[..take].join(".").len() + 1..],
            _ => "",
        };
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
name: orders
connector.class: datagen
tasks.max: 2
config:
  topic: orders
  max.interval: 10
---
name: sink
connector.class: file-sink
config:
  topics: orders, payments
  file: ./out/orders.txt
grants:
  filesystem:
    - path: ./out
      access: read-write
";

    #[test]
    fn parses_several_documents() {
        let file = ManifestFile::parse(Path::new("m.yaml"), GOOD.into()).unwrap();
        assert_eq!(file.definitions.len(), 2);
        assert_eq!(file.definitions[0].tasks_max, 2);
        assert_eq!(file.definitions[0].config["max.interval"], 10);
        assert_eq!(file.definitions[1].topics(), vec!["orders", "payments"]);
        assert_eq!(file.definitions[1].grants.filesystem[0].access, Access::ReadWrite);
        assert_eq!(file.definitions[1].limits, Limits::default());
    }

    #[test]
    fn unknown_field_names_field_and_line() {
        let text = "name: a\nconnector.class: datagen\ntask.max: 2\n";
        let error = ManifestFile::parse(Path::new("bad.yaml"), text.into()).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("task.max"));
        assert_eq!(error.line, Some(3));
        assert!(error.to_string().starts_with("bad.yaml:3: field `task.max`"), "{error}");
    }

    #[test]
    fn wrong_type_names_field_and_line() {
        let text = "name: a\nconnector.class: datagen\ntasks.max: many\n";
        let error = ManifestFile::parse(Path::new("bad.yaml"), text.into()).unwrap_err();
        assert_eq!(error.line, Some(3), "{error}");
        assert!(error.to_string().contains("tasks.max"), "{error}");
    }

    #[test]
    fn broken_yaml_names_line() {
        let text = "name: a\nconnector.class: [datagen\n";
        let error = ManifestFile::parse(Path::new("bad.yaml"), text.into()).unwrap_err();
        assert!(error.line.is_some(), "{error}");
    }

    #[test]
    fn zero_tasks_is_refused() {
        let text = "name: a\nconnector.class: datagen\ntasks.max: 0\n";
        let error = ManifestFile::parse(Path::new("bad.yaml"), text.into()).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("tasks.max"));
        assert_eq!(error.line, Some(3));
    }

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

    #[test]
    fn finds_dotted_keys_inside_blocks() {
        let file = ManifestFile::parse(Path::new("m.yaml"), GOOD.into()).unwrap();
        assert_eq!(line_of_key_in(GOOD, "config.max.interval"), Some(6));
        assert_eq!(line_of_key_in(GOOD, "tasks.max"), Some(3));
        assert_eq!(file.field_error(0, "config.topic", "bad").line, Some(5));
        assert_eq!(file.field_error(1, "config.file", "bad").line, Some(12));
        assert_eq!(file.field_error(1, "config.nope", "bad").line, Some(10));
        assert_eq!(file.field_error(1, "connector.class", "bad").line, Some(9));
    }
}
