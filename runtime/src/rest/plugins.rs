//! `/connector-plugins`: the plugins, their config keys, and config validation in Kafka
//! Connect's response shape, driven by the JSON Schema each component returns from `spec()`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde_json::{Map, Value, json};

use super::bodies::{
    ConfigInfo, ConfigInfos, ConfigKeyInfo, ConfigValueInfo, ErrorBody, FlatConfig, PluginInfo, config_text, to_map,
};
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

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListParams {
    /// Only connectors (all of weir's plugins are, so it changes nothing).
    #[serde(rename = "connectorsOnly")]
    #[param(rename = "connectorsOnly")]
    #[allow(dead_code)]
    connectors_only: Option<bool>,
}

/// Every plugin: `[{"class", "type", "version"}]`.
#[utoipa::path(get, path = "/connector-plugins", tag = "plugins", params(ListParams), responses((status = 200, description = "Plugins", body = Vec<PluginInfo>), (status = 400, description = "connectorsOnly is not true or false", body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<ApiState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Vec<PluginInfo>>, ApiError> {
    params.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let plugins = state
        .herder
        .plugins()
        .plugins()
        .map(|plugin| {
            let spec = plugin.spec();
            PluginInfo { class: spec.name.clone(), kind: spec.kind.into(), version: spec.version.clone() }
        })
        .collect();
    Ok(Json(plugins))
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

fn key_info(
    name: &str,
    kind: &str,
    required: bool,
    documentation: String,
    group: &str,
    order: (usize, usize),
) -> ConfigKeyInfo {
    ConfigKeyInfo {
        name: name.to_owned(),
        kind: kind.to_owned(),
        required,
        default_value: None,
        importance: if required { "HIGH" } else { "MEDIUM" }.to_owned(),
        documentation,
        group: group.to_owned(),
        order_in_group: order.0,
        width: "NONE".to_owned(),
        display_name: name.to_owned(),
        dependents: Vec::new(),
        order: order.1,
    }
}

/// Every config key: the framework's keys (group `Common`), then the schema's properties (group
/// `Connector`).
fn definitions(plugin: &Plugin) -> Vec<ConfigKeyInfo> {
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
    let mut out: Vec<ConfigKeyInfo> = common
        .iter()
        .enumerate()
        .map(|(order, (name, kind, required, documentation))| {
            key_info(name, kind, *required, (*documentation).to_owned(), "Common", (order + 1, order + 1))
        })
        .collect();
    let properties = schema.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    for (order, (name, property)) in properties.iter().enumerate() {
        let documentation = property.get("description").and_then(Value::as_str).unwrap_or_default().to_owned();
        let mut key = key_info(
            name,
            type_name(property),
            required.contains(&name.as_str()),
            documentation,
            "Connector",
            (order + 1, common.len() + order + 1),
        );
        key.default_value = property.get("default").and_then(|default| match default {
            Value::String(text) => Some(text.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        });
        if let Some(title) = property.get("title").and_then(Value::as_str) {
            key.display_name = title.to_owned();
        }
        out.push(key);
    }
    out
}

/// The plugin's config keys (Kafka Connect's ConfigKeyInfo list).
#[utoipa::path(get, path = "/connector-plugins/{plugin}/config", tag = "plugins", params(("plugin" = String, Path)), responses((status = 200, description = "Config keys", body = Vec<ConfigKeyInfo>), (status = 404, description = "Unknown plugin", body = ErrorBody)))]
pub(super) async fn config(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<ConfigKeyInfo>>, ApiError> {
    let plugin = plugin(&state, &name)?;
    Ok(Json(definitions(&plugin)))
}

/// Validate a flat config against the plugin: per-field errors in Kafka Connect's response
/// (`{name, error_count, groups, configs: [{definition, value: {name, value, errors, ...}}]}`).
/// Answers 200 whether or not the config is valid.
#[utoipa::path(put, path = "/connector-plugins/{plugin}/config/validate", tag = "plugins", params(("plugin" = String, Path)), request_body = FlatConfig, responses((status = 200, description = "Validation result", body = ConfigInfos), (status = 400, description = "Malformed body, or a connector.class other than the plugin", body = ErrorBody), (status = 404, description = "Unknown plugin", body = ErrorBody)))]
pub(super) async fn validate(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Result<Json<FlatConfig>, JsonRejection>,
) -> Result<Json<ConfigInfos>, ApiError> {
    let Json(body) = body?;
    let plugin = plugin(&state, &name)?;
    let mut flat: Map<String, Value> = to_map(body);
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
    let value_info = |key: &str, value: Option<String>, errors: Vec<String>| ConfigValueInfo {
        name: key.to_owned(),
        value,
        recommended_values: Vec::new(),
        errors,
        visible: true,
    };
    let mut configs = Vec::new();
    for definition in definitions(&plugin) {
        let key = definition.name.clone();
        let value = flat.get(&key).map(|value| {
            if config_provider::is_secret_field(schema, &key) {
                config_provider::HIDDEN.to_owned()
            } else {
                config_text(value)
            }
        });
        let value = value_info(&key, value, errors.remove(&key).unwrap_or_default());
        configs.push(ConfigInfo { definition, value });
    }
    // Errors about keys the schema does not list (unknown keys, the config as a whole).
    for (key, messages) in errors {
        let key = if key.is_empty() { "config".to_owned() } else { key };
        let mut definition = key_info(&key, "STRING", false, String::new(), "Connector", (0, 0));
        definition.importance = "LOW".to_owned();
        let value = value_info(&key, flat.get(&key).map(|value| value.to_string()), messages);
        configs.push(ConfigInfo { definition, value });
    }
    let error_count = configs.iter().map(|config| config.value.errors.len()).sum();
    Ok(Json(ConfigInfos { name, error_count, groups: vec!["Common".to_owned(), "Connector".to_owned()], configs }))
}
