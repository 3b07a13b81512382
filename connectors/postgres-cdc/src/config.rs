//! The `postgres-cdc` configuration, in Debezium's names so a Debezium config carries over. The
//! doc comments are the user documentation: they land in the connector's JSON Schema.

use weir_connector_sdk::FieldError;

/// Configuration of the `postgres-cdc` source.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CdcConfig {
    /// Host name (or Unix socket directory) of the Postgres server. The manifest must grant it
    /// under `grants.postgres`.
    #[serde(rename = "database.hostname")]
    pub hostname: String,
    /// Port of the Postgres server.
    #[serde(rename = "database.port", default = "default_port")]
    pub port: u16,
    /// Role to connect as; it needs the REPLICATION attribute (and CREATE on the database to
    /// create the publication).
    #[serde(rename = "database.user")]
    pub user: String,
    /// Password of the role.
    #[serde(rename = "database.password", default)]
    #[schemars(extend("writeOnly" = true))]
    pub password: String,
    /// Database to capture.
    #[serde(rename = "database.dbname")]
    pub dbname: String,
    /// Prefix of the topics: changes of table `s.t` go to `<topic.prefix>.s.t`. Also the
    /// `source.name` of the events.
    #[serde(rename = "topic.prefix")]
    pub topic_prefix: String,
    /// Logical decoding plugin; only `pgoutput` (accepted for Debezium configs).
    #[serde(rename = "plugin.name", default)]
    pub plugin_name: PluginName,
    /// The logical replication slot (one per source database).
    #[serde(rename = "slot.name", default = "default_slot")]
    pub slot_name: String,
    /// The publication the slot streams.
    #[serde(rename = "publication.name", default = "default_publication")]
    pub publication_name: String,
    /// What to do when the publication is missing at start.
    #[serde(rename = "publication.autocreate.mode", default)]
    pub publication_autocreate_mode: PublicationAutocreate,
    /// Comma-separated regular expressions matched against `schema.table`: capture only these
    /// tables. Unset: every table outside the system schemas.
    #[serde(rename = "table.include.list", default)]
    pub table_include_list: Option<String>,
    /// Comma-separated regular expressions matched against `schema.table`: tables not to capture.
    #[serde(rename = "table.exclude.list", default)]
    pub table_exclude_list: Option<String>,
    /// Whether and when to read the tables' existing rows before streaming changes.
    #[serde(rename = "snapshot.mode", default)]
    pub snapshot_mode: SnapshotMode,
    /// Rows fetched per snapshot read.
    #[serde(rename = "snapshot.fetch.size", default = "default_fetch_size")]
    #[schemars(range(min = 1, max = 100_000))]
    pub snapshot_fetch_size: u32,
    /// Whether the snapshot holds `ACCESS SHARE` locks on the captured tables until it ends, so
    /// that a `TRUNCATE` or DDL (which PostgreSQL does not keep MVCC-safe) waits for it instead
    /// of emptying a table under it. Debezium's key and default.
    #[serde(rename = "snapshot.locking.mode", default)]
    pub snapshot_locking_mode: SnapshotLockingMode,
    /// How long the snapshot waits for its table locks before failing the task.
    #[serde(rename = "snapshot.lock.timeout.ms", default = "default_lock_timeout")]
    #[schemars(range(min = 1))]
    pub snapshot_lock_timeout_ms: u64,
    /// Follow each delete event with a tombstone (same key, null value) for log compaction.
    #[serde(rename = "tombstones.on.delete", default = "yes")]
    pub tombstones_on_delete: bool,
    /// Stands in for a TOASTed value that an update left unchanged (pgoutput does not resend it).
    #[serde(rename = "unavailable.value.placeholder", default = "default_placeholder")]
    pub unavailable_value_placeholder: String,
    /// How `date`, `time`, `timestamp` values are written (Debezium's modes, plus weir's `iso`).
    #[serde(rename = "time.precision.mode", default)]
    pub time_precision_mode: TimePrecisionMode,
    /// How `numeric` and `money` values are written.
    #[serde(rename = "decimal.handling.mode", default)]
    pub decimal_handling_mode: DecimalHandlingMode,
    /// How `bytea` values are written.
    #[serde(rename = "binary.handling.mode", default)]
    pub binary_handling_mode: BinaryHandlingMode,
    /// How `interval` values are written.
    #[serde(rename = "interval.handling.mode", default)]
    pub interval_handling_mode: IntervalHandlingMode,
    /// How `hstore` values are written.
    #[serde(rename = "hstore.handling.mode", default)]
    pub hstore_handling_mode: HstoreHandlingMode,
    /// Comma-separated operations not to emit: `c` (inserts), `u` (updates), `d` (deletes), `t`
    /// (truncates), or `none`. Debezium's default skips truncates.
    #[serde(rename = "skipped.operations", default = "default_skipped")]
    pub skipped_operations: String,
    /// Write BEGIN and END events of each transaction to `<topic.prefix>.transaction` and a
    /// `transaction` block (id, total and per-table order) in each change event.
    #[serde(rename = "provide.transaction.metadata", default)]
    pub provide_transaction_metadata: bool,
    /// Prefix of the heartbeat topic, `<topic.heartbeat.prefix>.<topic.prefix>`.
    #[serde(rename = "topic.heartbeat.prefix", default = "default_heartbeat_prefix")]
    pub topic_heartbeat_prefix: String,
    /// Write each value as Kafka Connect's JsonConverter does with `schemas.enable=true`:
    /// `{"schema": <Debezium's Connect schema>, "payload": <event>}`.
    #[serde(rename = "value.converter.schemas.enable", default)]
    pub value_schemas_enable: bool,
    /// The same for keys.
    #[serde(rename = "key.converter.schemas.enable", default)]
    pub key_schemas_enable: bool,
    /// Milliseconds between heartbeats (a `pg_logical_emit_message` that keeps the slot advancing
    /// while the captured tables are idle, written to `__debezium-heartbeat.<topic.prefix>`);
    /// 0: none.
    #[serde(rename = "heartbeat.interval.ms", default)]
    pub heartbeat_interval_ms: u64,
    /// What to do when the slot is gone or was recreated behind weir's back (its confirmed LSN
    /// is ahead of the committed offset): `fail` the task saying so, or `resnapshot`.
    #[serde(rename = "slot.invalidated.action", default)]
    pub slot_invalidated_action: SlotInvalidatedAction,
    /// Seconds between reports of the slot's retained WAL (`pg_current_wal_lsn() - restart_lsn`)
    /// and replication lag (`pg_current_wal_lsn() - confirmed_flush_lsn`) in bytes: a log line
    /// and the task gauges `slot_retained_wal_bytes` / `replication_lag_bytes` (status and
    /// /metrics). 0: never.
    #[serde(rename = "slot.stats.interval.s", default = "default_stats_interval")]
    pub slot_stats_interval_s: u64,
    /// The signal table, `schema.table`, in Debezium's shape (columns `id`, `type`, `data`): a
    /// row inserted there is a signal (`execute-snapshot`, `stop-snapshot`, `pause-snapshot`,
    /// `resume-snapshot`, `log`), read from the replication stream in commit order, so the
    /// table must be in the publication. Unset: signals come only through weir's REST API
    /// (`POST /connectors/{name}/signals`).
    #[serde(rename = "signal.data.collection", default)]
    pub signal_data_collection: Option<String>,
    /// Rows read per chunk of an incremental snapshot.
    #[serde(rename = "incremental.snapshot.chunk.size", default = "default_chunk_size")]
    #[schemars(range(min = 1, max = 100_000))]
    pub incremental_snapshot_chunk_size: u32,
    /// When the connector is deleted (not stopped or paused): drop its replication slot, and
    /// the publication if the connector created it. Off by default: the slot then keeps its
    /// WAL until someone drops it.
    #[serde(rename = "slot.drop.on.delete", default)]
    pub slot_drop_on_delete: bool,
}

/// Debezium's `time.precision.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimePrecisionMode {
    /// `date` as days since the epoch; `time` and `timestamp` as epoch milliseconds up to
    /// precision 3, microseconds above; `timestamptz` as ISO 8601 in UTC with six fractional digits.
    #[default]
    Adaptive,
    /// As `adaptive`, but `time` always in microseconds.
    AdaptiveTimeMicroseconds,
    /// Kafka Connect's logical types: `date` in days, `time` and `timestamp` in milliseconds.
    Connect,
    /// weir's own form: `date`, `time` as their text, `timestamp` as ISO 8601, `timestamptz`
    /// as ISO 8601 in UTC (`...Z`) with the fractional digits Postgres writes.
    Iso,
}

/// Debezium's `decimal.handling.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecimalHandlingMode {
    /// Exact: the unscaled value's two's-complement bytes (base64 in JSON); an unconstrained
    /// `numeric` as `{"scale", "value"}`.
    #[default]
    Precise,
    /// A JSON number (a double: may round).
    Double,
    /// The exact decimal as a string.
    String,
}

/// Debezium's `binary.handling.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BinaryHandlingMode {
    /// Bytes (base64 in JSON).
    #[default]
    Bytes,
    /// A base64 string.
    Base64,
    /// A URL-safe base64 string.
    Base64UrlSafe,
    /// A lower-case hexadecimal string.
    Hex,
}

/// Debezium's `interval.handling.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntervalHandlingMode {
    /// Microseconds (a month counts 30.4375 days).
    #[default]
    Numeric,
    /// ISO 8601, `P<y>Y<m>M<d>DT<h>H<m>M<s>S`.
    String,
}

/// Debezium's `hstore.handling.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HstoreHandlingMode {
    /// A string holding the JSON object.
    #[default]
    Json,
    /// A JSON object (a Connect map).
    Map,
}

/// What to do with an invalidated slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlotInvalidatedAction {
    /// Fail the task with a message that says what happened and what to do.
    #[default]
    Fail,
    /// Drop the slot if it is there, create it again and snapshot again.
    Resnapshot,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PluginName {
    #[default]
    Pgoutput,
}

/// Debezium's `publication.autocreate.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PublicationAutocreate {
    /// `CREATE PUBLICATION ... FOR ALL TABLES` (breaks UPDATE/DELETE on tables without a
    /// replica identity).
    #[default]
    AllTables,
    /// `CREATE PUBLICATION ... FOR TABLE` the tables the include/exclude lists select.
    Filtered,
    /// Never create it: fail when it is missing.
    Disabled,
}

/// Debezium's `snapshot.locking.mode` (its `custom` has no counterpart: weir runs no plugins here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotLockingMode {
    /// `LOCK TABLE ... IN ACCESS SHARE MODE` on every captured table, held until the snapshot
    /// commits: writes go on, `TRUNCATE`, `ALTER TABLE` and `DROP TABLE` wait.
    #[default]
    Shared,
    /// No locks: a table truncated while the snapshot reads it reads as empty.
    None,
}

/// Debezium's `snapshot.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    /// Snapshot when there is no committed offset, then stream.
    #[default]
    Initial,
    /// Never snapshot: stream from the slot's position.
    Never,
    /// Snapshot, then stop producing (no streaming).
    InitialOnly,
    /// Snapshot when there is no committed offset or the slot is gone, then stream.
    WhenNeeded,
}

fn default_port() -> u16 {
    5432
}
fn default_slot() -> String {
    "weir".into()
}
fn default_publication() -> String {
    "weir_publication".into()
}
fn default_fetch_size() -> u32 {
    1024
}
fn default_chunk_size() -> u32 {
    1024
}
fn default_lock_timeout() -> u64 {
    10_000
}
fn default_placeholder() -> String {
    "__debezium_unavailable_value".into()
}
fn default_skipped() -> String {
    "t".into()
}
fn default_heartbeat_prefix() -> String {
    "__debezium-heartbeat".into()
}
fn default_stats_interval() -> u64 {
    60
}
fn yes() -> bool {
    true
}

impl CdcConfig {
    /// Checks the schema cannot express.
    ///
    /// # Errors
    /// One [`FieldError`] per problem.
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for (field, list) in
            [("table.include.list", &self.table_include_list), ("table.exclude.list", &self.table_exclude_list)]
        {
            if let Some(list) = list
                && let Err(error) = crate::filter::TableFilter::compile(Some(list), None)
            {
                errors.push(FieldError::new(field, &error));
            }
        }
        if !is_identifier(&self.slot_name) {
            errors.push(FieldError::new("slot.name", "lower-case letters, digits and underscores only"));
        }
        if let Err(error) = crate::convert::Skipped::parse(&self.skipped_operations) {
            errors.push(FieldError::new("skipped.operations", &error));
        }
        if let Some(collection) = &self.signal_data_collection
            && crate::signal::split_collection(collection).is_none()
        {
            errors.push(FieldError::new("signal.data.collection", "must be `schema.table`"));
        }
        if self.topic_prefix.is_empty() {
            errors.push(FieldError::new("topic.prefix", "must not be empty"));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
