//! The definition model: one connector as a manifest or the REST API describes it, with the
//! capabilities it is granted, its sandbox limits and the defaults of every key left out, and
//! the checks a definition must pass whichever form it was written in (YAML or flat).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
    /// Origins (scheme, host, port) the component may send requests to through the `http`
    /// import. Redirects are followed only within them.
    #[serde(default)]
    pub http: Vec<HttpGrant>,
}

/// One origin a component may reach over HTTP, written as a URL without a path:
///
/// ```yaml
/// grants:
///   http:
///     - https://api.example.com          # port 443
///     - http://127.0.0.1:8080
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct HttpGrant {
    /// `http` or `https`.
    pub scheme: String,
    /// Lowercase; exact match (no name resolution, so `localhost` and `127.0.0.1` are two grants).
    pub host: String,
    pub port: u16,
}

impl HttpGrant {
    /// Whether a request to `scheme://host:port` is within this grant.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.scheme == scheme && self.host.eq_ignore_ascii_case(host) && self.port == port
    }
}

impl TryFrom<String> for HttpGrant {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let shape = || format!("`{text}` is not an origin: write `http://host[:port]` or `https://host[:port]`");
        let (scheme, rest) = text.split_once("://").ok_or_else(shape)?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(format!("`{text}`: the scheme must be http or https")),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return Err(format!("{}: an origin has no path, query or user part", shape()));
        }
        // `[::1]:8080`: the port follows the bracket.
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                (host, port.parse::<u16>().map_err(|_| format!("`{text}`: `{port}` is not a port"))?)
            }
            _ => (authority, default_port),
        };
        if host.is_empty() {
            return Err(shape());
        }
        Ok(Self { scheme, host: host.to_ascii_lowercase(), port })
    }
}

impl From<HttpGrant> for String {
    fn from(grant: HttpGrant) -> String {
        format!("{}://{}:{}", grant.scheme, grant.host, grant.port)
    }
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

/// A definition that breaks one of the rules every definition must keep: the key (as Kafka
/// Connect names it) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub(super) struct InvalidField {
    pub(super) field: &'static str,
    pub(super) message: &'static str,
}

/// The checks of a definition's own keys (not its connector config, which the plugin's schema
/// checks), shared by the YAML and the flat forms.
pub(super) fn check_definition(definition: &ConnectorDefinition) -> Result<(), InvalidField> {
    let invalid = |field, message| Err(InvalidField { field, message });
    if definition.name.trim().is_empty() {
        return invalid("name", "must not be empty");
    }
    if definition.name.contains('/') || definition.name.chars().any(char::is_control) {
        return invalid("name", "must not contain '/' or control characters");
    }
    if definition.tasks_max == 0 {
        return invalid("tasks.max", "must be at least 1");
    }
    if definition.default_partitions == Some(0) {
        return invalid("topic.creation.default.partitions", "must be at least 1");
    }
    if definition.limits.memory_bytes < (1 << 20) {
        return invalid("limits.memory.bytes", "must be at least 1048576 (1 MiB)");
    }
    if definition.retry_timeout_ms < -1 {
        return invalid("errors.retry.timeout", "must be -1 (forever), 0 (no retries) or a number of ms");
    }
    if definition.tolerance == Tolerance::None && definition.dead_letter_topic.is_some() {
        return invalid(
            "errors.deadletterqueue.topic.name",
            "needs `errors.tolerance: all` (with `none` no record is ever sent to it)",
        );
    }
    if definition.limits.call_timeout_ms == 0 {
        return invalid("limits.call.timeout.ms", "must be at least 1");
    }
    if definition.restart_max_attempts > 0 && definition.restart_window_ms == 0 {
        return invalid("restart.window.ms", "must be at least 1 when restart.max.attempts is set");
    }
    if definition.restart_backoff_max_ms < definition.restart_backoff_initial_ms {
        return invalid("restart.backoff.max.ms", "must be at least restart.backoff.initial.ms");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> ConnectorDefinition {
        ConnectorDefinition { name: "orders".into(), class: "datagen".into(), ..ConnectorDefinition::default() }
    }

    /// A field name and a change that makes it invalid.
    type BadCase = (&'static str, fn(&mut ConnectorDefinition));

    #[test]
    fn defaults_pass_the_checks_and_each_bad_key_is_named() {
        assert_eq!(check_definition(&valid()), Ok(()));
        let cases: [BadCase; 10] = [
            ("name", |definition| definition.name = " ".into()),
            ("name", |definition| definition.name = "a/b".into()),
            ("tasks.max", |definition| definition.tasks_max = 0),
            ("topic.creation.default.partitions", |definition| definition.default_partitions = Some(0)),
            ("limits.memory.bytes", |definition| definition.limits.memory_bytes = 1024),
            ("errors.retry.timeout", |definition| definition.retry_timeout_ms = -2),
            ("errors.deadletterqueue.topic.name", |definition| definition.dead_letter_topic = Some("dlq".into())),
            ("limits.call.timeout.ms", |definition| definition.limits.call_timeout_ms = 0),
            ("restart.window.ms", |definition| definition.restart_window_ms = 0),
            ("restart.backoff.max.ms", |definition| definition.restart_backoff_max_ms = 1),
        ];
        for (field, break_it) in cases {
            let mut definition = valid();
            break_it(&mut definition);
            let invalid = check_definition(&definition).expect_err(field);
            assert_eq!(invalid.field, field, "{invalid}");
        }
    }

    #[test]
    fn http_grants_are_origins() {
        let grant = |text: &str| HttpGrant::try_from(text.to_owned());
        assert_eq!(
            grant("https://API.example.com").unwrap(),
            HttpGrant { scheme: "https".into(), host: "api.example.com".into(), port: 443 }
        );
        assert_eq!(grant("http://127.0.0.1:8080/").unwrap().port, 8080);
        assert_eq!(grant("http://[::1]:9000").unwrap().host, "[::1]");
        for bad in ["ftp://x", "example.com", "http://x/path", "http://x:port", "http://user@x", "http://"] {
            assert!(grant(bad).is_err(), "{bad}");
        }
        let yaml: Grants = serde_yaml_ng::from_str("http: [\"http://localhost:1234\"]").unwrap();
        assert!(yaml.http[0].allows("http", "LOCALHOST", 1234));
        assert!(!yaml.http[0].allows("https", "localhost", 1234));
        assert_eq!(serde_json::to_string(&yaml.http).unwrap(), "[\"http://localhost:1234\"]");
    }
}
