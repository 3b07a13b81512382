//! `/connector-plugins`: the plugins, their config keys, and config validation in Kafka
//! Connect's response shape, driven by the JSON Schema each component returns from `spec()`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Map, Value, json};

use super::connectors::kind_name;
use super::error::ApiError;
use super::router::ApiState;
use crate::config_provider;
use crate::manifest::{ConnectorDefinition, flat_keys};
use crate::plugin::Plugin;

fn plugin(state: &ApiState, name: &str) -> Result<std::sync::Arc<Plugin>, ApiError> {
    state.herder.plugins().get(name).ok_or_else(|| {
        ApiError::not_found(format!("Failed to find any class that implements Connector and which name matches {name}"))
    })
}

/// Every plugin: `[{"class", "type", "version"}]`. All of weir's plugins are connectors, so
/// `connectorsOnly` changes nothing.
#[utoipa::path(get, path = "/connector-plugins", tag = "plugins", params(("connectorsOnly" = Option<bool>, Query)), responses((status = 200, description = "Plugins", body = Value)))]
pub(super) async fn list(State(state): State<ApiState>, RawQuery(_query): RawQuery) -> Json<Value> {
    let plugins: Vec<Value> = state
        .herder
        .plugins()
        .plugins()
        .map(|plugin| {
            let spec = plugin.spec();
            json!({ "class": spec.name, "type": kind_name(spec.kind), "version": spec.version })
        })
        .collect();
    Json(json!(plugins))
}

fn type_name(property: &Value) -> &'static str {
    let kinds: Vec<&str> = match property.get("type") {
        Some(Value::String(kind)) => vec![kind.as_str()],
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if property.get("writeOnly").and_then(Value::as_bool) == Some(true)
        || matches!(property.get("format").and_then(Value::as_str), Some("password" | "secret"))
    {
        return "PASSWORD";
    }
    match kinds.iter().find(|kind| **kind != "null") {
        Some(&"integer") => "LONG",
        Some(&"number") => "DOUBLE",
        Some(&"boolean") => "BOOLEAN",
        Some(&"array") => "LIST",
        Some(&"object") => "STRING",
        _ => "STRING",
    }
}

/// (name, definition) of every config key: the framework's keys (group `Common`), then the
/// schema's properties (group `Connector`).
fn definitions(plugin: &Plugin) -> Vec<(String, Value)> {
    let schema = plugin.schema();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let common = [
        (flat_keys::NAME, "STRING", true, "Globally unique name of the connector."),
        (flat_keys::CLASS, "STRING", true, "The plugin: a built-in or a component in the plugin directory."),
        (flat_keys::TASKS_MAX, "INT", false, "Most tasks to create."),
        (flat_keys::PARTITIONS, "INT", false, "Partitions of the topics this connector creates."),
        (flat_keys::GRANTS, "STRING", false, "Capabilities granted to the component, as JSON."),
        (flat_keys::MEMORY, "LONG", false, "Most linear memory of one task's instance."),
        (flat_keys::CALL_TIMEOUT, "LONG", false, "Longest one call into the component may run."),
    ];
    let mut out: Vec<(String, Value)> = common
        .iter()
        .enumerate()
        .map(|(order, (name, kind, required, documentation))| {
            ((*name).to_owned(), json!({
                "name": name, "type": kind, "required": required, "default_value": null,
                "importance": if *required { "HIGH" } else { "MEDIUM" }, "documentation": documentation,
                "group": "Common", "order_in_group": order + 1, "width": "NONE", "display_name": name, "dependents": [],
                "order": order + 1,
            }))
        })
        .collect();
    let properties = schema.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    for (order, (name, property)) in properties.iter().enumerate() {
        let is_required = required.contains(&name.as_str());
        out.push((name.clone(), json!({
            "name": name,
            "type": type_name(property),
            "required": is_required,
            "default_value": property.get("default").map(|default| match default { Value::String(text) => json!(text), Value::Null => Value::Null, other => json!(other.to_string()) }),
            "importance": if is_required { "HIGH" } else { "MEDIUM" },
            "documentation": property.get("description").cloned().unwrap_or(json!("")),
            "group": "Connector",
            "order_in_group": order + 1,
            "width": "NONE",
            "display_name": property.get("title").cloned().unwrap_or(json!(name)),
            "dependents": [],
            "order": common.len() + order + 1,
        })));
    }
    out
}

/// The plugin's config keys (Kafka Connect's ConfigKeyInfo list).
#[utoipa::path(get, path = "/connector-plugins/{plugin}/config", tag = "plugins", params(("plugin" = String, Path)), responses((status = 200, description = "Config keys", body = Value), (status = 404, description = "Unknown plugin", body = Value)))]
pub(super) async fn config(State(state): State<ApiState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let plugin = plugin(&state, &name)?;
    Ok(Json(json!(definitions(&plugin).into_iter().map(|(_, definition)| definition).collect::<Vec<_>>())))
}

/// Validate a flat config against the plugin: per-field errors in Kafka Connect's response
/// (`{name, error_count, groups, configs: [{definition, value: {name, value, errors, ...}}]}`).
/// Answers 200 whether or not the config is valid.
#[utoipa::path(put, path = "/connector-plugins/{plugin}/config/validate", tag = "plugins", params(("plugin" = String, Path)), request_body = Value, responses((status = 200, description = "Validation result", body = Value), (status = 400, description = "Malformed body", body = Value), (status = 404, description = "Unknown plugin", body = Value)))]
pub(super) async fn validate(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body?;
    let plugin = plugin(&state, &name)?;
    let mut flat: Map<String, Value> =
        body.as_object().cloned().ok_or_else(|| ApiError::bad_request("The config must be a JSON object"))?;
    if let Some(class) = flat.get(flat_keys::CLASS).and_then(Value::as_str)
        && class != name
    {
        return Err(ApiError::bad_request(format!(
            "Included connector type {class} does not match request type {name}"
        )));
    }
    flat.insert(flat_keys::CLASS.into(), json!(name));
    let connector_name = flat.get(flat_keys::NAME).and_then(Value::as_str).unwrap_or("validation").to_owned();
    let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    match ConnectorDefinition::from_flat(&connector_name, &flat, Some(plugin.schema())) {
        Ok(definition) => {
            if let Err(found) = state.herder.validate(&definition).await {
                for error in found {
                    let key = error.field.strip_prefix("config.").unwrap_or(&error.field).to_owned();
                    let key = if key == "config" { String::new() } else { key };
                    errors.entry(key).or_default().push(error.message);
                }
            }
        }
        Err(found) => {
            for error in found {
                errors.entry(error.field).or_default().push(error.message);
            }
        }
    }
    let schema = plugin.schema();
    let mut configs = Vec::new();
    let mut seen = Vec::new();
    for (key, definition) in definitions(&plugin) {
        let value = flat.get(&key).map(|value| {
            if config_provider::is_secret_field(schema, &key) {
                json!(config_provider::HIDDEN)
            } else {
                match value {
                    Value::String(text) => json!(text),
                    other => json!(other.to_string()),
                }
            }
        });
        configs.push(json!({
            "definition": definition,
            "value": { "name": key, "value": value, "recommended_values": [], "errors": errors.remove(&key).unwrap_or_default(), "visible": true },
        }));
        seen.push(key);
    }
    // Errors about keys the schema does not list (unknown keys, the config as a whole).
    for (key, messages) in errors {
        let key = if key.is_empty() { "config".to_owned() } else { key };
        configs.push(json!({
            "definition": { "name": key, "type": "STRING", "required": false, "default_value": null, "importance": "LOW", "documentation": "", "group": "Connector", "order_in_group": 0, "width": "NONE", "display_name": key, "dependents": [], "order": 0 },
            "value": { "name": key, "value": flat.get(&key).map(|value| value.to_string()), "recommended_values": [], "errors": messages, "visible": true },
        }));
    }
    let error_count: usize =
        configs.iter().map(|config| config["value"]["errors"].as_array().map_or(0, Vec::len)).sum();
    Ok(Json(json!({ "name": name, "error_count": error_count, "groups": ["Common", "Connector"], "configs": configs })))
}
