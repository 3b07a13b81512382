//! The `postgres-sink` configuration: the connection in postgres-cdc's names, the write
//! behaviour in the names of Confluent's JDBC sink (`insert.mode`, `pk.mode`, `pk.fields`,
//! `table.name.format`, `auto.create`, `auto.evolve`, `delete.enabled`, `batch.size`). The doc
//! comments are the user documentation: they land in the connector's JSON Schema.

use weir_connector_sdk::FieldError;

/// The placeholder of `table.name.format` replaced by the record's topic.
pub const TOPIC_PLACEHOLDER: &str = "${topic}";

/// Configuration of the `postgres-sink` connector.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Comma-separated topics to consume. Read by the runtime; every record it puts is written.
    pub topics: String,
    /// Host name (or Unix socket directory) of the target Postgres server. The manifest must
    /// grant it under `grants.postgres`.
    #[serde(rename = "database.hostname")]
    pub hostname: String,
    /// Port of the target Postgres server.
    #[serde(rename = "database.port", default = "default_port")]
    pub port: u16,
    /// Role to connect as. It needs INSERT, UPDATE, DELETE on the target tables, CREATE on their
    /// schema for `auto.create` / `auto.evolve` (ALTER needs ownership), and CREATE on the schema
    /// of `offsets.table` the first time.
    #[serde(rename = "database.user")]
    pub user: String,
    /// Password of the role.
    #[serde(rename = "database.password", default)]
    #[schemars(extend("writeOnly" = true))]
    pub password: String,
    /// Database holding the target tables.
    #[serde(rename = "database.dbname")]
    pub dbname: String,
    /// How rows are written: `insert` (plain INSERT: a duplicate key is a failed record),
    /// `upsert` (INSERT ... ON CONFLICT on the key DO UPDATE) or `update` (UPDATE by key; a
    /// record whose row does not exist changes nothing).
    #[serde(rename = "insert.mode", default)]
    pub insert_mode: InsertMode,
    /// Whether a record with a null value (a tombstone), or a Debezium delete event, deletes the
    /// row with its key. Needs `pk.mode: record_key`. Off: tombstones are skipped.
    #[serde(rename = "delete.enabled", default)]
    pub delete_enabled: bool,
    /// Where the key columns come from: `none` (no key: only `insert`), `record_key` (the
    /// record's key: the fields of a JSON object key, or one column named by `pk.fields` for a
    /// primitive key), `record_value` (fields of the value, named by `pk.fields`) or `kafka`
    /// (columns `__connect_topic`, `__connect_partition`, `__connect_offset`).
    #[serde(rename = "pk.mode", default)]
    pub pk_mode: PkMode,
    /// Comma-separated key column names. `record_key`: the fields of an object key to use (empty:
    /// all of them), or the one column of a primitive key. `record_value`: required, the value
    /// fields forming the key. `kafka`: three names replacing the defaults.
    #[serde(rename = "pk.fields", default)]
    pub pk_fields: String,
    /// The target table, `table` or `schema.table`; `${topic}` is replaced by the record's topic.
    /// Each part is used exactly as written (quoted: case and dots within a topic are kept, so a
    /// topic `a.b` gives the table `"a.b"` unless the format has a schema part of its own). Route
    /// CDC topics to plain names with a `RegexRouter` transform.
    #[serde(rename = "table.name.format", default = "default_table_format")]
    pub table_name_format: String,
    /// Create a missing target table from the first records' fields (JSON types: integer →
    /// `bigint`, other numbers → `double precision`, boolean, string → `text`, object and array
    /// → `jsonb`, null only → `text`), with the key columns as its primary key.
    #[serde(rename = "auto.create", default)]
    pub auto_create: bool,
    /// Add a (nullable) column for a record field the table lacks, typed as for `auto.create`.
    /// Off: such a record fails (see `errors.tolerance`).
    #[serde(rename = "auto.evolve", default)]
    pub auto_evolve: bool,
    /// Rows per statement. A `put` batch (the runtime's batch) is written in one transaction,
    /// with its offsets, as statements of at most this many rows.
    #[serde(rename = "batch.size", default = "default_batch_size")]
    #[schemars(range(min = 1, max = 100_000))]
    pub batch_size: u32,
    /// The table, `table` or `schema.table`, in which the sink keeps the offsets it has written
    /// (created if missing), keyed by target table, topic and partition. Written in the same
    /// transaction as the rows: after a crash the sink skips what is already in the tables.
    #[serde(rename = "offsets.table", default = "default_offsets_table")]
    pub offsets_table: String,
    /// Unwrap Debezium change events (a value with `op` and `after`): `c`, `r`, `u` write
    /// `after`, `d` deletes by key (with `delete.enabled`), `t` (truncate) is skipped with a
    /// warning. A value `{"schema": ..., "payload": ...}` (JsonConverter with schemas) is always
    /// read from its `payload`.
    #[serde(rename = "debezium.unwrap", default = "yes")]
    pub debezium_unwrap: bool,
}

/// Confluent's `insert.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InsertMode {
    /// Plain INSERT.
    #[default]
    Insert,
    /// INSERT ... ON CONFLICT (key) DO UPDATE.
    Upsert,
    /// UPDATE by key.
    Update,
}

/// Confluent's `pk.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PkMode {
    /// No key.
    #[default]
    None,
    /// The record's key.
    RecordKey,
    /// Fields of the record's value.
    RecordValue,
    /// The record's topic, partition and offset.
    Kafka,
}

fn default_port() -> u16 {
    5432
}

fn default_table_format() -> String {
    TOPIC_PLACEHOLDER.to_owned()
}

fn default_batch_size() -> u32 {
    3000
}

fn default_offsets_table() -> String {
    "__weir_sink_offsets".to_owned()
}

fn yes() -> bool {
    true
}

/// The default column names of `pk.mode: kafka`, as Confluent's.
pub const KAFKA_PK_FIELDS: [&str; 3] = ["__connect_topic", "__connect_partition", "__connect_offset"];

impl SinkConfig {
    /// The `pk.fields` names, trimmed, empty ones dropped.
    pub fn pk_field_names(&self) -> Vec<String> {
        self.pk_fields.split(',').map(str::trim).filter(|field| !field.is_empty()).map(str::to_owned).collect()
    }

    /// Every problem, each naming its key.
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.topics.split(',').all(|topic| topic.trim().is_empty()) {
            errors.push(FieldError::new("topics", "must name at least one topic"));
        }
        if self.hostname.is_empty() {
            errors.push(FieldError::new("database.hostname", "must not be empty"));
        }
        if self.user.is_empty() {
            errors.push(FieldError::new("database.user", "must not be empty"));
        }
        if self.dbname.is_empty() {
            errors.push(FieldError::new("database.dbname", "must not be empty"));
        }
        let fields = self.pk_field_names();
        match self.pk_mode {
            PkMode::None => {
                if self.insert_mode != InsertMode::Insert {
                    errors.push(FieldError::new(
                        "insert.mode",
                        format!(
                            "`{}` needs a key: set pk.mode to record_key, record_value or kafka",
                            insert_mode_name(self.insert_mode)
                        ),
                    ));
                }
                if !fields.is_empty() {
                    errors.push(FieldError::new("pk.fields", "is only read with a pk.mode other than none"));
                }
            }
            PkMode::RecordKey => {}
            PkMode::RecordValue => {
                if fields.is_empty() {
                    errors.push(FieldError::new("pk.fields", "pk.mode record_value needs the key's value fields"));
                }
            }
            PkMode::Kafka => {
                if !fields.is_empty() && fields.len() != 3 {
                    errors.push(FieldError::new(
                        "pk.fields",
                        format!("pk.mode kafka takes three names (topic, partition, offset), not {}", fields.len()),
                    ));
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(duplicate) = fields.iter().find(|field| !seen.insert(field.as_str())) {
            errors.push(FieldError::new("pk.fields", format!("names {duplicate} twice")));
        }
        if self.delete_enabled && self.pk_mode != PkMode::RecordKey {
            errors.push(FieldError::new("delete.enabled", "deletes by the record's key: needs pk.mode record_key"));
        }
        if let Err(message) = check_table_format(&self.table_name_format) {
            errors.push(FieldError::new("table.name.format", message));
        }
        if let Err(message) = TableName::parse(&self.offsets_table) {
            errors.push(FieldError::new("offsets.table", message));
        }
        if self.batch_size == 0 {
            errors.push(FieldError::new("batch.size", "must be at least 1"));
        }
        errors
    }
}

fn insert_mode_name(mode: InsertMode) -> &'static str {
    match mode {
        InsertMode::Insert => "insert",
        InsertMode::Upsert => "upsert",
        InsertMode::Update => "update",
    }
}

/// `table.name.format` must give a valid name for a plausible topic, and hold no other `${`.
fn check_table_format(format: &str) -> Result<(), String> {
    let rest = format.replace(TOPIC_PLACEHOLDER, "");
    if rest.contains("${") {
        return Err(format!("`{format}` has a placeholder other than {TOPIC_PLACEHOLDER}"));
    }
    TableName::for_topic(format, "topic").map(|_| ())
}

/// A table name as `schema.table` parts, each used as a quoted identifier.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName {
    pub schema: Option<String>,
    pub table: String,
}

/// Postgres truncates identifiers longer than this (NAMEDATALEN - 1): refuse rather than let two
/// names meet.
const MAX_IDENTIFIER_BYTES: usize = 63;

impl TableName {
    /// `table` or `schema.table`.
    ///
    /// # Errors
    /// A message saying what is wrong with `text`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (schema, table) = match text.split_once('.') {
            Some((schema, table)) => (Some(schema), table),
            None => (None, text),
        };
        let check = |part: &str| -> Result<(), String> {
            if part.is_empty() {
                return Err(format!("`{text}` has an empty name part"));
            }
            if part.len() > MAX_IDENTIFIER_BYTES {
                return Err(format!("`{part}` is longer than Postgres' {MAX_IDENTIFIER_BYTES}-byte identifiers"));
            }
            if part.contains('\0') {
                return Err(format!("`{text}` contains a NUL character"));
            }
            Ok(())
        };
        if let Some(schema) = schema {
            check(schema)?;
        }
        check(table)?;
        Ok(Self { schema: schema.map(str::to_owned), table: table.to_owned() })
    }

    /// The table of records of `topic` under `format`: the schema part (before the first `.`)
    /// comes from the format only, so a topic's own dots stay inside the table name.
    ///
    /// # Errors
    /// A message naming the topic when the result is no valid name.
    pub fn for_topic(format: &str, topic: &str) -> Result<Self, String> {
        let (schema, table) = match format.split_once('.') {
            Some((schema, table)) if !schema.contains(TOPIC_PLACEHOLDER) => (Some(schema), table),
            _ => (None, format),
        };
        let table = table.replace(TOPIC_PLACEHOLDER, topic);
        let name = match schema {
            Some(schema) => TableName::parse(schema).map(|parsed| TableName { schema: Some(parsed.table), table })?,
            None => TableName { schema: None, table },
        };
        if name.table.is_empty() || name.table.len() > MAX_IDENTIFIER_BYTES {
            return Err(format!(
                "the table for topic `{topic}` would be `{}`: empty or longer than {MAX_IDENTIFIER_BYTES} bytes",
                name.table
            ));
        }
        Ok(name)
    }

    /// The name as SQL: quoted identifiers.
    pub fn to_sql(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", crate::sql::ident(schema), crate::sql::ident(&self.table)),
            None => crate::sql::ident(&self.table),
        }
    }

    /// The name as written (for messages and the offsets table).
    pub fn display(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{schema}.{}", self.table),
            None => self.table.clone(),
        }
    }
}
