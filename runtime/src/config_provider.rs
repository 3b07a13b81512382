//! Config providers: `${env:NAME}` and `${file:/path/to/file:key}` inside config values.
//!
//! Connector configs are stored, shown over REST and logged with the references; they are
//! resolved on the worker only when a task starts (and for validation), so a secret lives in
//! the environment or a file, never in the log of configs. Fields the plugin's schema marks as
//! secret (`writeOnly: true`, or `format: "password"` / `"secret"`) are shown as [`HIDDEN`].
//!
//! A `file` reference reads a Java-properties-style file (`key=value` or `key: value` lines,
//! `#` comments), as Kafka Connect's `FileConfigProvider` does.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::RwLock;

/// What a secret-marked field shows instead of its value.
pub const HIDDEN: &str = "[hidden]";

/// A reference that could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("environment variable {name} referenced by `{reference}` is not set")]
    EnvMissing { name: String, reference: String },
    #[error("cannot read {path} referenced by `{reference}`: {message}")]
    FileUnreadable { path: String, reference: String, message: String },
    #[error("key {key} not found in {path} referenced by `{reference}`")]
    FileKeyMissing { path: String, key: String, reference: String },
    #[error("unknown config provider in `{reference}` (known: env, file)")]
    UnknownProvider { reference: String },
}

/// The config with every reference replaced by its value, plus the resolved values (so that
/// messages quoting them can be scrubbed).
///
/// # Errors
/// The first reference that cannot be resolved.
pub fn resolve(
    config: &serde_json::Map<String, serde_json::Value>,
) -> Result<(serde_json::Map<String, serde_json::Value>, Vec<String>), ProviderError> {
    let mut secrets = Vec::new();
    let mut out = serde_json::Map::new();
    for (key, value) in config {
        out.insert(key.clone(), resolve_value(value, &mut secrets)?);
    }
    Ok((out, secrets))
}

fn resolve_value(value: &serde_json::Value, secrets: &mut Vec<String>) -> Result<serde_json::Value, ProviderError> {
    Ok(match value {
        serde_json::Value::String(text) => serde_json::Value::String(resolve_text(text, secrets)?),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(|item| resolve_value(item, secrets)).collect::<Result<_, _>>()?)
        }
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(key, item)| Ok((key.clone(), resolve_value(item, secrets)?)))
                .collect::<Result<_, ProviderError>>()?,
        ),
        other => other.clone(),
    })
}

/// Replace every `${provider:...}` in `text`.
fn resolve_text(text: &str, secrets: &mut Vec<String>) -> Result<String, ProviderError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(length) = rest[start..].find('}') else { break };
        let reference = &rest[start..start + length + 1];
        let inner = &reference[2..reference.len() - 1];
        // Only `${provider:...}` is a reference (Kafka Connect's pattern has the colon too): a
        // placeholder such as the Postgres sink's `${topic}` is the connector's, left as written.
        if !inner.contains(':') {
            out.push_str(&rest[..start + length + 1]);
            rest = &rest[start + length + 1..];
            continue;
        }
        out.push_str(&rest[..start]);
        let value = lookup(inner, reference)?;
        if !value.is_empty() {
            secrets.push(value.clone());
        }
        out.push_str(&value);
        rest = &rest[start + length + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup(inner: &str, reference: &str) -> Result<String, ProviderError> {
    if let Some(name) = inner.strip_prefix("env:") {
        return std::env::var(name)
            .map_err(|_| ProviderError::EnvMissing { name: name.to_owned(), reference: reference.to_owned() });
    }
    if let Some(path_and_key) = inner.strip_prefix("file:") {
        let (path, key) = path_and_key.rsplit_once(':').unwrap_or((path_and_key, ""));
        let text = std::fs::read_to_string(Path::new(path)).map_err(|error| ProviderError::FileUnreadable {
            path: path.to_owned(),
            reference: reference.to_owned(),
            message: error.to_string(),
        })?;
        return properties_value(&text, key).ok_or_else(|| ProviderError::FileKeyMissing {
            path: path.to_owned(),
            key: key.to_owned(),
            reference: reference.to_owned(),
        });
    }
    Err(ProviderError::UnknownProvider { reference: reference.to_owned() })
}

fn properties_value(text: &str, key: &str) -> Option<String> {
    text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with(['#', '!'])).find_map(|line| {
        let split = line.find(['=', ':'])?;
        (line[..split].trim() == key).then(|| line[split + 1..].trim().to_owned())
    })
}

/// Values resolved on this worker so far: log output is scrubbed of them (see
/// [`ScrubbingWriter`]), because a component may log its own config.
static RESOLVED: RwLock<BTreeSet<String>> = RwLock::new(BTreeSet::new());

/// Shortest resolved value that is scrubbed from logs: shorter ones (`1`, `on`) would mangle
/// every line and are not secrets anyway.
const MIN_SCRUBBED_LEN: usize = 3;

/// Remember resolved values so that log output never shows them.
pub fn remember(secrets: &[String]) {
    let mut resolved = RESOLVED.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    resolved.extend(secrets.iter().filter(|secret| secret.len() >= MIN_SCRUBBED_LEN).cloned());
}

/// `text` with every value resolved so far replaced by `***`.
pub fn scrub_resolved(text: &str) -> String {
    let resolved = RESOLVED.read().unwrap_or_else(|poisoned| poisoned.into_inner());
    // Longest first, so that a secret containing another is replaced whole.
    let mut secrets: Vec<&String> = resolved.iter().collect();
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    secrets.into_iter().fold(text.to_owned(), |text, secret| text.replace(secret.as_str(), "***"))
}

/// A log writer that scrubs resolved values from each line before writing it to stderr; the
/// binary installs it as the `tracing_subscriber::fmt` writer. The formatter writes one event
/// per `write_all`, so a value is never split across two writes.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScrubbingWriter;

impl Write for ScrubbingWriter {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buffer);
        std::io::stderr().write_all(scrub_resolved(&text).as_bytes())?;
        Ok(buffer.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Does the config contain any reference?
pub fn has_references(config: &serde_json::Map<String, serde_json::Value>) -> bool {
    config.values().any(|value| value.to_string().contains("${"))
}

/// Replace every occurrence of a resolved secret in `message` with `***`.
pub fn scrub(message: &str, secrets: &[String]) -> String {
    secrets.iter().fold(message.to_owned(), |message, secret| message.replace(secret.as_str(), "***"))
}

/// Is `field` marked secret by the JSON Schema (`writeOnly`, or `format` password/secret)?
pub fn is_secret_field(schema: &serde_json::Value, field: &str) -> bool {
    let Some(property) = schema.get("properties").and_then(|properties| properties.get(field)) else {
        return false;
    };
    property.get("writeOnly").and_then(serde_json::Value::as_bool) == Some(true)
        || matches!(property.get("format").and_then(serde_json::Value::as_str), Some("password" | "secret"))
}

/// The config as shown to users: secret fields replaced by [`HIDDEN`].
pub fn redact(
    config: &serde_json::Map<String, serde_json::Value>,
    schema: &serde_json::Value,
) -> serde_json::Map<String, serde_json::Value> {
    config
        .iter()
        .map(|(key, value)| {
            let shown =
                if is_secret_field(schema, key) { serde_json::Value::String(HIDDEN.into()) } else { value.clone() };
            (key.clone(), shown)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn resolves_env_and_file_references() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets.properties");
        std::fs::write(&file, "# comment\npassword = s3cret\nuser: bob\n").unwrap();
        // SAFETY-free: tests in this module use a variable name no other test reads.
        let name = "WEIR_CONFIG_PROVIDER_TEST_TOKEN";
        let config = map(json!({
            "token": format!("${{env:{name}}}"),
            "password": format!("${{file:{}:password}}", file.display()),
            "dsn": format!("postgres://${{file:{}:user}}@host", file.display()),
            "count": 3
        }));
        let missing = resolve(&config).unwrap_err();
        assert!(matches!(missing, ProviderError::EnvMissing { .. }), "{missing}");
        #[allow(unsafe_code)]
        // SAFETY: set before any thread reads this test-only variable.
        unsafe {
            std::env::set_var(name, "tok")
        };
        let (resolved, secrets) = resolve(&config).unwrap();
        assert_eq!(resolved["token"], "tok");
        assert_eq!(resolved["password"], "s3cret");
        assert_eq!(resolved["dsn"], "postgres://bob@host");
        assert_eq!(resolved["count"], 3);
        assert_eq!(scrub("bad value s3cret", &secrets), "bad value ***");
    }

    #[test]
    fn placeholders_without_a_provider_are_left_as_written() {
        let config = map(json!({
            "table.name.format": "sink.${topic}_copy",
            "both": "${topic}-${unknown:x}",
            "open": "${topic",
        }));
        let (resolved, secrets) = resolve(&map(json!({
            "table.name.format": "sink.${topic}_copy",
            "open": "${topic",
        })))
        .unwrap();
        assert_eq!(resolved["table.name.format"], "sink.${topic}_copy");
        assert_eq!(resolved["open"], "${topic");
        assert!(secrets.is_empty());
        let error = resolve(&config).unwrap_err();
        assert!(
            matches!(&error, ProviderError::UnknownProvider { reference } if reference == "${unknown:x}"),
            "{error}"
        );
    }

    #[test]
    fn secret_fields_are_hidden() {
        let schema = json!({"properties": {
            "password": {"type": "string", "writeOnly": true},
            "key": {"type": "string", "format": "password"},
            "topic": {"type": "string"}
        }});
        let shown = redact(&map(json!({"password": "x", "key": "y", "topic": "t"})), &schema);
        assert_eq!(shown["password"], HIDDEN);
        assert_eq!(shown["key"], HIDDEN);
        assert_eq!(shown["topic"], "t");
    }
}
