//! The request and response bodies of the REST API, in Kafka Connect's JSON shapes. The handlers
//! build and read these types, and the OpenAPI document's schemas are derived from them, so the
//! document cannot drift from what is answered.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::connector_store::TargetState;
use crate::task::{State, TaskStatus};

/// Every error: `{"error_code": <HTTP status>, "message": "..."}`, as Kafka Connect answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The HTTP status again.
    pub error_code: u16,
    pub message: String,
}

/// `GET /`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerInfo {
    pub version: String,
    /// The git commit the binary was built from (`unknown` outside a git checkout).
    pub commit: String,
    pub kafka_cluster_id: String,
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub message: String,
}

/// A connector's type.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorType {
    Source,
    Sink,
}

impl From<weir_connector_sdk::Kind> for ConnectorType {
    fn from(kind: weir_connector_sdk::Kind) -> Self {
        match kind {
            weir_connector_sdk::Kind::Source => ConnectorType::Source,
            weir_connector_sdk::Kind::Sink => ConnectorType::Sink,
        }
    }
}

/// One task of a connector.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskId {
    pub connector: String,
    pub task: u32,
}

/// A connector's name, flat config (every value a string; secrets `[hidden]`), tasks and type.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConnectorInfo {
    pub name: String,
    pub config: BTreeMap<String, String>,
    pub tasks: Vec<TaskId>,
    #[serde(rename = "type")]
    pub kind: ConnectorType,
}

/// The connector's own state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConnectorState {
    pub state: State,
    pub worker_id: String,
    /// Why it FAILED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// A task's state, and beyond Kafka Connect's shape what the component reports of itself
/// (`log.gauge`), e.g. a CDC source's snapshot progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskState {
    #[serde(flatten)]
    pub status: TaskStatus,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, i64>,
}

/// `GET /connectors/{name}/status`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConnectorStatus {
    pub name: String,
    pub connector: ConnectorState,
    pub tasks: Vec<TaskState>,
    #[serde(rename = "type")]
    pub kind: ConnectorType,
}

/// One connector in `GET /connectors?expand=...`.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ExpandedConnector {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ConnectorStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<ConnectorInfo>,
}

/// `GET /connectors`: the names, or with `expand` a map of name to what was asked for.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ConnectorList {
    Names(Vec<String>),
    Expanded(BTreeMap<String, ExpandedConnector>),
}

/// One value of a flat config sent in: Kafka Connect sends strings; numbers and booleans are
/// taken as their text.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ConfigValue {
    String(String),
    #[schema(value_type = f64)]
    Number(serde_json::Number),
    Boolean(bool),
}

impl From<ConfigValue> for Value {
    fn from(value: ConfigValue) -> Self {
        match value {
            ConfigValue::String(text) => Value::String(text),
            ConfigValue::Number(number) => Value::Number(number),
            ConfigValue::Boolean(flag) => Value::Bool(flag),
        }
    }
}

/// A flat config sent in: any keys, scalar values.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct FlatConfig(pub BTreeMap<String, ConfigValue>);

/// A config value as Kafka Connect shows it: its text.
pub fn config_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The flat config as the manifest model reads it.
pub fn to_map(config: FlatConfig) -> Map<String, Value> {
    config.0.into_iter().map(|(key, value)| (key, value.into())).collect()
}

/// A connector's flat config sent in (`POST /connectors`, `PUT /connectors/{name}/config`):
/// `connector.class` beside the connector's own keys and the framework's (`tasks.max`,
/// `transforms`, `errors.*`, ...). Which keys and values a plugin takes is its own JSON Schema's
/// (`GET /connector-plugins/{plugin}/config`); a config it refuses is answered 400 naming the
/// field.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ConnectorConfig {
    /// The plugin: a built-in (`datagen`, `file-source`, ...) or a component in the plugin
    /// directory.
    #[serde(rename = "connector.class")]
    #[schema(min_length = 1)]
    pub class: String,
    #[serde(flatten)]
    pub keys: FlatConfig,
}

impl ConnectorConfig {
    /// The flat config as the manifest model reads it.
    pub fn into_map(self) -> Map<String, Value> {
        let mut map = to_map(self.keys);
        map.insert("connector.class".to_owned(), Value::String(self.class));
        map
    }
}

/// `POST /connectors`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnector {
    /// Unique; not empty, no `/`.
    #[schema(min_length = 1, pattern = r"^[^/]*\S[^/]*$")]
    pub name: String,
    pub config: ConnectorConfig,
    /// RUNNING unless given.
    #[serde(default)]
    pub initial_state: Option<TargetState>,
}

/// `PATCH /connectors/{name}/config`: keys to set; `null` removes a key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct ConfigPatch(pub BTreeMap<String, Option<ConfigValue>>);

// By hand: utoipa cannot derive a map whose values may be `null`.
impl utoipa::PartialSchema for ConfigPatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
        let value = OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build();
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Keys to set (strings; numbers and booleans are taken as their text); `null` removes a key.",
            ))
            .additional_properties(Some(RefOr::T(Schema::OneOf(value))))
            .into()
    }
}

impl ToSchema for ConfigPatch {}

/// `GET /connectors/{name}/tasks`: one task and its config.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskInfo {
    pub id: TaskId,
    pub config: BTreeMap<String, String>,
}

/// The topics one connector has used.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveTopics {
    pub topics: Vec<String>,
}

/// One connector offset. A source's partition and position are what the connector wrote (any
/// JSON for the position); a sink's partition is `{"kafka_topic", "kafka_partition"}` and its
/// offset `{"kafka_offset"}`, the next offset its group reads. A `null` offset (in PATCH) forgets
/// the partition's.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OffsetEntry {
    pub partition: Map<String, Value>,
    #[serde(default)]
    pub offset: Option<Value>,
}

/// `{"offsets": [...]}` of `GET` and `PATCH /connectors/{name}/offsets`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorOffsetsBody {
    #[schema(min_items = 1)]
    pub offsets: Vec<OffsetEntry>,
}

/// A success message (offsets altered or reset).
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub message: String,
}

/// `GET /connector-plugins`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginInfo {
    pub class: String,
    #[serde(rename = "type")]
    pub kind: ConnectorType,
    pub version: String,
}

/// Kafka Connect's ConfigKeyInfo: one config key of a plugin.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConfigKeyInfo {
    pub name: String,
    /// STRING, INT, LONG, DOUBLE, BOOLEAN, LIST or PASSWORD.
    #[serde(rename = "type")]
    pub kind: String,
    pub required: bool,
    pub default_value: Option<String>,
    pub importance: String,
    pub documentation: String,
    pub group: String,
    pub order_in_group: usize,
    pub width: String,
    pub display_name: String,
    pub dependents: Vec<String>,
    pub order: usize,
}

/// Kafka Connect's ConfigValueInfo: a key's value as sent and its errors.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigValueInfo {
    pub name: String,
    pub value: Option<String>,
    pub recommended_values: Vec<String>,
    pub errors: Vec<String>,
    pub visible: bool,
}

/// One key of a validation answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigInfo {
    pub definition: ConfigKeyInfo,
    pub value: ConfigValueInfo,
}

/// Kafka Connect's ConfigInfos: the answer of `PUT .../config/validate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigInfos {
    pub name: String,
    pub error_count: usize,
    pub groups: Vec<String>,
    pub configs: Vec<ConfigInfo>,
}

/// A logger's level.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoggerLevel {
    pub level: String,
}

/// A level to set (`FATAL` is taken as ERROR, `WARNING` as WARN; any case).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetLevel {
    /// In any case: the pattern spells the case-insensitivity out, as JSON Schema patterns take no
    /// flags.
    #[schema(
        pattern = "^([Tt][Rr][Aa][Cc][Ee]|[Dd][Ee][Bb][Uu][Gg]|[Ii][Nn][Ff][Oo]|[Ww][Aa][Rr][Nn]([Ii][Nn][Gg])?|[Ee][Rr][Rr][Oo][Rr]|[Ff][Aa][Tt][Aa][Ll]|[Oo][Ff][Ff])$"
    )]
    pub level: String,
}
