//! Validation of a connector definition against its plugin.

use std::sync::Arc;

use weir_connector_sdk::{FieldError, Kind};

use crate::config_provider;
use crate::manifest::ConnectorDefinition;
use crate::plugin::{Plugin, PluginRegistry};
use crate::transform::Chain;

/// Check a definition: the plugin exists, its capabilities are granted, the transforms build,
/// the config (references resolved) satisfies the plugin's JSON Schema and the connector's own
/// `validate`. Errors name the field (`connector.class`, `config.<key>`) and never quote a
/// resolved secret.
pub(crate) async fn validate(
    registry: &PluginRegistry,
    definition: &ConnectorDefinition,
) -> Result<Arc<Plugin>, Vec<FieldError>> {
    let Some(plugin) = registry.get(&definition.class) else {
        let known: Vec<&str> = registry.plugins().map(|plugin| plugin.spec().name.as_str()).collect();
        return Err(vec![FieldError {
            field: "connector.class".into(),
            message: format!("unknown plugin `{}` (known: {})", definition.class, known.join(", ")),
        }]);
    };
    let mut errors = plugin.ungranted_imports(&definition.grants);
    if let Err(found) = Chain::new(&definition.transforms, &definition.predicates) {
        errors.extend(found);
    }
    let mut resolved = serde_json::Map::new();
    let mut secrets = Vec::new();
    for (key, value) in &definition.config {
        let single: serde_json::Map<String, serde_json::Value> = [(key.clone(), value.clone())].into_iter().collect();
        match config_provider::resolve(&single) {
            Ok((mut one, found)) => {
                config_provider::remember(&found);
                secrets.extend(found);
                resolved.extend(std::mem::take(&mut one));
            }
            Err(error) => errors.push(FieldError { field: config_field(key), message: error.to_string() }),
        }
    }
    if errors.iter().any(|error| error.field.starts_with("config.")) {
        // An unresolvable reference: the schema check would only repeat it.
        return Err(errors);
    }
    let config = serde_json::Value::Object(resolved);
    errors.extend(plugin.schema_errors(&config).into_iter().map(|error| FieldError {
        field: config_field(&error.field),
        message: config_provider::scrub(&error.message, &secrets),
    }));
    if plugin.spec().kind == Kind::Sink && definition.topics().is_empty() {
        errors.push(FieldError { field: "config.topics".into(), message: "a sink needs at least one topic".into() });
    }
    if errors.is_empty()
        && let Err(found) = plugin.validate(&config.to_string()).await
    {
        errors.extend(found.into_iter().map(|error| FieldError {
            field: config_field(&error.field),
            message: config_provider::scrub(&error.message, &secrets),
        }));
    }
    if errors.is_empty() { Ok(plugin) } else { Err(errors) }
}

/// Field names of connector config are reported as `config.<key>`.
fn config_field(field: &str) -> String {
    if field.is_empty() { "config".into() } else { format!("config.{field}") }
}
