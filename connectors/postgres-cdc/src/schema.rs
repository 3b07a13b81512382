//! Debezium's Kafka Connect schemas, as Kafka Connect's JsonConverter writes them with
//! `schemas.enable=true` (`{"schema": ..., "payload": ...}`): a table's key and envelope
//! schemas, the transaction metadata and heartbeat schemas. Rendered once per table, then
//! copied in front of every payload.

use serde_json::{Value, json};

use crate::config::{
    BinaryHandlingMode, DecimalHandlingMode, HstoreHandlingMode, IntervalHandlingMode, TimePrecisionMode,
};
use crate::convert::{Kind, Modes, oid};

/// What a column's schema needs beyond its [`Kind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColumnType {
    pub(crate) type_oid: u32,
    /// `pg_type.typname` (`uuid`, `json`, an enum's name, ...).
    pub(crate) type_name: String,
    /// The element type's name of an array type.
    pub(crate) element_name: String,
    /// Allowed labels of an enum type, comma-separated.
    pub(crate) enum_labels: Option<String>,
    pub(crate) optional: bool,
}

fn named(kind: &str, optional: bool, name: &str) -> Value {
    json!({ "type": kind, "optional": optional, "name": name, "version": 1 })
}

/// The Connect schema of one value (no `field` name).
fn value_schema(kind: &Kind, column: &ColumnType, type_name: &str, optional: bool, modes: &Modes) -> Value {
    let plain = |kind: &str| json!({ "type": kind, "optional": optional });
    let time = modes.time;
    match kind {
        Kind::Bool => plain("boolean"),
        Kind::Integer => plain(match column.type_oid {
            oid::INT2 => "int16",
            oid::INT4 => "int32",
            _ if type_name == "int2" => "int16",
            _ if type_name == "int4" => "int32",
            _ => "int64",
        }),
        Kind::Float => plain(if column.type_oid == oid::FLOAT4 || type_name == "float4" { "float" } else { "double" }),
        Kind::Numeric { precision, scale } => match (modes.decimal, scale) {
            (DecimalHandlingMode::Double, _) => plain("double"),
            (DecimalHandlingMode::String, _) => plain("string"),
            (DecimalHandlingMode::Precise, Some(scale)) => {
                let mut schema = named("bytes", optional, "org.apache.kafka.connect.data.Decimal");
                let mut parameters = json!({ "scale": scale.to_string() });
                if let Some(precision) = precision {
                    parameters["connect.decimal.precision"] = json!(precision.to_string());
                }
                schema["parameters"] = parameters;
                schema
            }
            (DecimalHandlingMode::Precise, None) => json!({
                "type": "struct",
                "fields": [
                    { "type": "int32", "optional": false, "field": "scale" },
                    { "type": "bytes", "optional": false, "field": "value" },
                ],
                "optional": optional,
                "name": "io.debezium.data.VariableScaleDecimal",
                "version": 1,
                "doc": "Variable scaled decimal",
            }),
        },
        Kind::Money => match modes.decimal {
            DecimalHandlingMode::Double => plain("double"),
            DecimalHandlingMode::String => plain("string"),
            DecimalHandlingMode::Precise => {
                let mut schema = named("bytes", optional, "org.apache.kafka.connect.data.Decimal");
                schema["parameters"] = json!({ "scale": "2" });
                schema
            }
        },
        Kind::Text => match type_name {
            "uuid" => named("string", optional, "io.debezium.data.Uuid"),
            "json" | "jsonb" => named("string", optional, "io.debezium.data.Json"),
            "xml" => named("string", optional, "io.debezium.data.Xml"),
            _ => match &column.enum_labels {
                Some(labels) => {
                    let mut schema = named("string", optional, "io.debezium.data.Enum");
                    schema["parameters"] = json!({ "allowed": labels });
                    schema
                }
                None => plain("string"),
            },
        },
        Kind::Bytea => match modes.binary {
            BinaryHandlingMode::Bytes => plain("bytes"),
            _ => plain("string"),
        },
        Kind::Bits { length: 1, varying: false } => plain("boolean"),
        Kind::Bits { length, .. } => {
            let mut schema = named("bytes", optional, "io.debezium.data.Bits");
            schema["parameters"] = json!({ "length": length.to_string() });
            schema
        }
        Kind::Date => match time {
            TimePrecisionMode::Iso => plain("string"),
            TimePrecisionMode::Connect => named("int32", optional, "org.apache.kafka.connect.data.Date"),
            _ => named("int32", optional, "io.debezium.time.Date"),
        },
        Kind::Time { precision } => match time {
            TimePrecisionMode::Iso => plain("string"),
            TimePrecisionMode::Connect => named("int32", optional, "org.apache.kafka.connect.data.Time"),
            TimePrecisionMode::Adaptive if *precision <= 3 => named("int32", optional, "io.debezium.time.Time"),
            _ => named("int64", optional, "io.debezium.time.MicroTime"),
        },
        Kind::TimeTz => match time {
            TimePrecisionMode::Iso => plain("string"),
            _ => named("string", optional, "io.debezium.time.ZonedTime"),
        },
        Kind::Timestamp { precision } => match time {
            TimePrecisionMode::Iso => plain("string"),
            TimePrecisionMode::Connect => named("int64", optional, "org.apache.kafka.connect.data.Timestamp"),
            _ if *precision <= 3 => named("int64", optional, "io.debezium.time.Timestamp"),
            _ => named("int64", optional, "io.debezium.time.MicroTimestamp"),
        },
        Kind::TimestampTz => match time {
            TimePrecisionMode::Iso => plain("string"),
            _ => named("string", optional, "io.debezium.time.ZonedTimestamp"),
        },
        Kind::Interval => match modes.interval {
            IntervalHandlingMode::Numeric => named("int64", optional, "io.debezium.time.MicroDuration"),
            IntervalHandlingMode::String => named("string", optional, "io.debezium.time.Interval"),
        },
        Kind::Hstore => match modes.hstore {
            HstoreHandlingMode::Json => named("string", optional, "io.debezium.data.Json"),
            HstoreHandlingMode::Map => json!({
                "type": "map",
                "keys": { "type": "string", "optional": false },
                "values": { "type": "string", "optional": true },
                "optional": optional,
            }),
        },
        Kind::Array(element) => {
            let element_name = column.element_name.clone();
            let element_column = ColumnType {
                type_oid: 0,
                type_name: element_name.clone(),
                element_name: String::new(),
                enum_labels: None,
                optional: true,
            };
            json!({
                "type": "array",
                "items": value_schema(element, &element_column, &element_name, true, modes),
                "optional": optional,
            })
        }
    }
}

/// The schema of a column as a struct field.
fn field(name: &str, kind: &Kind, column: &ColumnType, optional: bool, modes: &Modes) -> Value {
    let mut schema = value_schema(kind, column, &column.type_name, optional, modes);
    schema["field"] = json!(name);
    schema
}

fn source_schema() -> Value {
    let field = |kind: &str, optional: bool, name: &str| json!({ "type": kind, "optional": optional, "field": name });
    json!({
        "type": "struct",
        "fields": [
            field("string", false, "version"),
            field("string", false, "connector"),
            field("string", false, "name"),
            field("int64", false, "ts_ms"),
            {
                "type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1,
                "parameters": { "allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental" },
                "default": "false", "field": "snapshot",
            },
            field("string", false, "db"),
            field("string", true, "sequence"),
            field("int64", true, "ts_us"),
            field("int64", true, "ts_ns"),
            field("string", false, "schema"),
            field("string", false, "table"),
            field("int64", true, "txId"),
            field("int64", true, "lsn"),
            field("int64", true, "xmin"),
            field("string", true, "origin"),
            field("int64", true, "origin_lsn"),
        ],
        "optional": false,
        "name": "io.debezium.connector.postgresql.Source",
        "version": 1,
        "field": "source",
    })
}

/// One column of a table, for its schemas.
#[derive(Debug)]
pub(crate) struct SchemaColumn<'a> {
    pub(crate) name: &'a str,
    pub(crate) kind: &'a Kind,
    pub(crate) column: &'a ColumnType,
}

/// The key schema (`<prefix>.<schema>.<table>.Key`) of the key columns, as JSON text.
pub(crate) fn key_schema(topic: &str, key: &[SchemaColumn<'_>], modes: &Modes) -> String {
    let fields: Vec<Value> =
        key.iter().map(|column| field(column.name, column.kind, column.column, false, modes)).collect();
    json!({ "type": "struct", "fields": fields, "optional": false, "name": format!("{topic}.Key") }).to_string()
}

/// The envelope schema (`<prefix>.<schema>.<table>.Envelope`, version 2), as JSON text.
pub(crate) fn envelope_schema(topic: &str, columns: &[SchemaColumn<'_>], modes: &Modes) -> String {
    let fields: Vec<Value> = columns
        .iter()
        .map(|column| field(column.name, column.kind, column.column, column.column.optional, modes))
        .collect();
    let image = |name: &str| json!({ "type": "struct", "fields": fields, "optional": true, "name": format!("{topic}.Value"), "field": name });
    let optional = |kind: &str, name: &str| json!({ "type": kind, "optional": true, "field": name });
    json!({
        "type": "struct",
        "fields": [
            image("before"),
            image("after"),
            source_schema(),
            {
                "type": "struct",
                "fields": [
                    { "type": "string", "optional": false, "field": "id" },
                    { "type": "int64", "optional": false, "field": "total_order" },
                    { "type": "int64", "optional": false, "field": "data_collection_order" },
                ],
                "optional": true, "name": "event.block", "version": 1, "field": "transaction",
            },
            { "type": "string", "optional": false, "field": "op" },
            optional("int64", "ts_ms"),
            optional("int64", "ts_us"),
            optional("int64", "ts_ns"),
        ],
        "optional": false,
        "name": format!("{topic}.Envelope"),
        "version": 2,
    })
    .to_string()
}

/// The transaction topic's key schema.
pub(crate) fn transaction_key_schema() -> String {
    json!({
        "type": "struct",
        "fields": [{ "type": "string", "optional": false, "field": "id" }],
        "optional": false,
        "name": "io.debezium.connector.common.TransactionMetadataKey",
        "version": 1,
    })
    .to_string()
}

/// The transaction topic's value schema.
pub(crate) fn transaction_value_schema() -> String {
    json!({
        "type": "struct",
        "fields": [
            { "type": "string", "optional": false, "field": "status" },
            { "type": "string", "optional": false, "field": "id" },
            { "type": "int64", "optional": true, "field": "event_count" },
            {
                "type": "array",
                "items": {
                    "type": "struct",
                    "fields": [
                        { "type": "string", "optional": false, "field": "data_collection" },
                        { "type": "int64", "optional": false, "field": "event_count" },
                    ],
                    "optional": true, "name": "event.collection", "version": 1,
                },
                "optional": true, "field": "data_collections",
            },
            { "type": "int64", "optional": false, "field": "ts_ms" },
        ],
        "optional": false,
        "name": "io.debezium.connector.common.TransactionMetadataValue",
        "version": 1,
    })
    .to_string()
}

/// The heartbeat topic's key and value schemas.
pub(crate) fn heartbeat_schemas() -> (String, String) {
    let key = json!({
        "type": "struct",
        "fields": [{ "type": "string", "optional": false, "field": "serverName" }],
        "optional": false,
        "name": "io.debezium.connector.common.ServerNameKey",
    });
    let value = json!({
        "type": "struct",
        "fields": [{ "type": "int64", "optional": false, "field": "ts_ms" }],
        "optional": false,
        "name": "io.debezium.connector.common.Heartbeat",
    });
    (key.to_string(), value.to_string())
}

/// `{"schema":<schema>,"payload":<payload>}`.
pub(crate) fn wrap(schema: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(schema.len() + payload.len() + 24);
    out.extend_from_slice(b"{\"schema\":");
    out.extend_from_slice(schema.as_bytes());
    out.extend_from_slice(b",\"payload\":");
    out.extend_from_slice(payload);
    out.push(b'}');
    out
}
