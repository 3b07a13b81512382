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
    /// Follow each delete event with a tombstone (same key, null value) for log compaction.
    #[serde(rename = "tombstones.on.delete", default = "yes")]
    pub tombstones_on_delete: bool,
    /// Stands in for a TOASTed value that an update left unchanged (pgoutput does not resend it).
    #[serde(rename = "unavailable.value.placeholder", default = "default_placeholder")]
    pub unavailable_value_placeholder: String,
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
    /// When the connector is deleted (not stopped or paused): drop its replication slot, and
    /// the publication if the connector created it. Off by default: the slot then keeps its
    /// WAL until someone drops it.
    #[serde(rename = "slot.drop.on.delete", default)]
    pub slot_drop_on_delete: bool,
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
fn default_placeholder() -> String {
    "__weir_unavailable_value".into()
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
