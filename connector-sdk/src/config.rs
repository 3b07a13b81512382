//! Parsing a config (JSON text) into a connector's config struct, with errors that name the
//! field, and the config's JSON Schema.

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use crate::types::{ConnectorError, FieldError};

/// Parse `config` (a JSON object) into `T`.
///
/// # Errors
/// A [`FieldError`] naming the field that failed: the one with a wrong type or value, an unknown
/// one (`deny_unknown_fields`), or a missing required one. An empty field means the text is not
/// JSON or not an object.
///
/// ```
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Config {
///     topic: String,
///     #[serde(rename = "max.interval", default)]
///     max_interval: u64,
/// }
///
/// let error = weir_connector_sdk::config::parse::<Config>(r#"{"topic":"t","max.interval":"x"}"#)
///     .err()
///     .unwrap();
/// assert_eq!(error.field, "max.interval");
/// let error = weir_connector_sdk::config::parse::<Config>(r#"{}"#).err().unwrap();
/// assert_eq!(error.field, "topic");
/// ```
pub fn parse<T: DeserializeOwned>(config: &str) -> Result<T, FieldError> {
    let mut deserializer = serde_json::Deserializer::from_str(config);
    let parsed: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| field_error(&error))?;
    deserializer.end().map_err(|error| FieldError::new("", message_of(&error)))?;
    Ok(parsed)
}

/// [`parse`], as the error the task entry points return.
///
/// # Errors
/// [`ConnectorError::InvalidConfig`] with `field: message`.
pub fn parse_for_task<T: DeserializeOwned>(config: &str) -> Result<T, ConnectorError> {
    parse(config).map_err(|error| ConnectorError::InvalidConfig(error.to_string()))
}

/// The JSON Schema (draft 2020-12) of `T`, as JSON text.
pub fn schema_of<T: schemars::JsonSchema>() -> String {
    schemars::schema_for!(T).as_value().to_string()
}

fn field_error(error: &serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let mut field = String::new();
    for segment in error.path().iter() {
        match segment {
            Segment::Seq { index } => field.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !field.is_empty() {
                    field.push('.');
                }
                field.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    let message = message_of(error.inner());
    // serde reports a missing field at the object that should hold it, naming the field only in
    // its message (serde has no structured form of it), so take the name from there.
    let missing = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next());
    if let Some(name) = missing {
        if !field.is_empty() {
            field.push('.');
        }
        field.push_str(name);
    }
    FieldError { field, message }
}

/// The error's message without serde_json's " at line L column C": a config is a JSON document
/// made by a program, and a user knows it by its fields, not its lines.
fn message_of(error: &serde_json::Error) -> String {
    let text = error.to_string();
    if error.line() == 0 {
        return text;
    }
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    text.strip_suffix(&suffix).map(str::to_owned).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Nested {
        /// The port to connect to.
        #[allow(dead_code)]
        port: u16,
    }

    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Config {
        /// Topic to write to.
        topic: String,
        /// Milliseconds between records.
        #[serde(rename = "max.interval", default)]
        max_interval: u64,
        #[serde(default)]
        database: Option<Nested>,
        #[serde(default)]
        hosts: Vec<String>,
        /// A secret.
        #[serde(default)]
        #[schemars(extend("writeOnly" = true))]
        password: Option<String>,
    }

    #[test]
    fn wrong_type_names_the_dotted_key() {
        let error = parse::<Config>(r#"{"topic":"t","max.interval":"soon"}"#).unwrap_err();
        assert_eq!(error.field, "max.interval");
        assert!(error.message.contains("invalid type"), "{}", error.message);
        assert!(!error.message.contains("line"), "{}", error.message);
    }

    #[test]
    fn unknown_field_is_named() {
        let error = parse::<Config>(r#"{"topic":"t","max.intervall":1}"#).unwrap_err();
        assert_eq!(error.field, "max.intervall");
        assert!(error.message.starts_with("unknown field"), "{}", error.message);
    }

    #[test]
    fn missing_field_is_named() {
        let error = parse::<Config>(r#"{"max.interval":1}"#).unwrap_err();
        assert_eq!(error.field, "topic");
        assert_eq!(error.message, "missing field `topic`");
        let error = parse::<Config>(r#"{"topic":"t","database":{}}"#).unwrap_err();
        assert_eq!(error.field, "database.port");
    }

    #[test]
    fn nested_and_listed_fields_have_paths() {
        let error = parse::<Config>(r#"{"topic":"t","database":{"port":70000}}"#).unwrap_err();
        assert_eq!(error.field, "database.port");
        let error = parse::<Config>(r#"{"topic":"t","database":{"prt":1}}"#).unwrap_err();
        assert_eq!(error.field, "database.prt");
        let error = parse::<Config>(r#"{"topic":"t","hosts":["a",2]}"#).unwrap_err();
        assert_eq!(error.field, "hosts[1]");
    }

    #[test]
    fn not_an_object_names_no_field() {
        let error = parse::<Config>(r#""topic""#).unwrap_err();
        assert_eq!(error.field, "");
        let error = parse::<Config>(r#"{"topic":"t"} trailing"#).unwrap_err();
        assert_eq!(error.field, "");
        let error = parse::<Config>("{").unwrap_err();
        assert_eq!(error.field, "");
    }

    #[test]
    fn valid_config_parses() {
        let config = parse::<Config>(r#"{"topic":"t","max.interval":5}"#).unwrap();
        assert_eq!(config.topic, "t");
        assert_eq!(config.max_interval, 5);
        assert!(config.database.is_none() && config.hosts.is_empty() && config.password.is_none());
    }

    #[test]
    fn schema_carries_doc_comments_keys_and_write_only() {
        let schema: serde_json::Value = serde_json::from_str(&schema_of::<Config>()).unwrap();
        let properties = &schema["properties"];
        assert_eq!(properties["topic"]["description"], "Topic to write to.");
        assert_eq!(properties["max.interval"]["description"], "Milliseconds between records.");
        assert_eq!(properties["password"]["writeOnly"], true);
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], serde_json::json!(["topic"]));
        assert!(schema["$schema"].as_str().unwrap().contains("2020-12"));
    }
}
