//! The `postgres-cdc` source task: an initial snapshot through the slot's exported snapshot, then
//! the slot's pgoutput stream, as Debezium envelopes.
//!
//! Positions (JSON, one source partition `{"server": <topic.prefix>}`):
//! - snapshot rows: `{"snapshot": true, "snapshot_done": false, "consistent_point": C}`; the last
//!   row of the snapshot says `"snapshot_done": true`. A snapshot interrupted before that row was
//!   committed is read again from the start, never skipped; the slot is kept and streaming then
//!   starts from its position, so the topic replayed in order still gives the table (see
//!   [`PostgresCdc::snapshot_again`]).
//! - changes: `{"commit_lsn": F, "seq": n, "last": bool, "end_lsn": E}`: the transaction's commit
//!   LSN, the record's index in it, and whether it is the transaction's last record (then `E` is
//!   the commit's end LSN). `commit` acknowledges `E` to the slot only for a last record, so the
//!   slot never confirms part of a transaction; on restart the stream resumes from the slot and
//!   skips every record at or before the committed `(F, n)`.
//!
//! To know which record is a transaction's last, the newest record of the open transaction is
//! held back until the next change or the commit arrives.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use weir_connector_sdk::batch::{SourceBatchWriter, SourceRecordRef};
use weir_connector_sdk::postgres::{self as pg, PgError, WalEvent};
use weir_connector_sdk::{Connector, ConnectorError, FieldError, Source, TaskContext};

use crate::config::{CdcConfig, PublicationAutocreate, SlotInvalidatedAction, SnapshotMode};
use crate::filter::TableFilter;
use crate::pgoutput::{self, Message, TupleValue};
use crate::values;

/// Microseconds between 1970-01-01 and Postgres' epoch 2000-01-01.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Longest a poll waits for the replication stream.
const READ_WAIT_MS: u32 = 200;
const HEARTBEAT_PREFIX: &str = "weir_heartbeat";
/// The comment on a publication the connector created (and so may drop).
const PUBLICATION_COMMENT: &str = "created by weir postgres-cdc";

/// The connector.
pub struct PostgresCdc {
    config: CdcConfig,
    filter: TableFilter,
    context: TaskContext,
    partition: Vec<u8>,
    phase: Phase,
    relations: HashMap<u32, Arc<Table>>,
    transaction: Option<Transaction>,
    /// The newest record of the open transaction (or snapshot), not yet known to be its last.
    held: Option<Pending>,
    ready: VecDeque<Pending>,
    /// Records at or before this `(commit_lsn, seq)` were delivered already: skip them.
    skip_until: Option<(u64, u64)>,
    /// The last record handed to the runtime (the skip mark after a reconnect).
    emitted: Option<(u64, u64)>,
    streaming: bool,
    acked: u64,
    next_heartbeat: Option<Instant>,
    next_stats: Option<Instant>,
    /// Reused for each record's position JSON.
    position_buffer: Vec<u8>,
}

impl std::fmt::Debug for PostgresCdc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresCdc").field("slot", &self.config.slot_name).finish_non_exhaustive()
    }
}

enum Phase {
    /// Not connected yet: the first poll connects, so that a database that is down at start is
    /// a retriable poll error (retried with backoff) rather than a failed open.
    Starting,
    Snapshot(Snapshot),
    Streaming,
    /// `initial_only` after its snapshot: nothing more to do.
    Finished,
}

struct Snapshot {
    consistent_point: u64,
    tables: Vec<Table>,
    index: usize,
    cursor_open: bool,
    rows: u64,
}

#[derive(Clone)]
struct Table {
    schema: String,
    name: String,
    /// Name and type OID, in column order.
    columns: Vec<(String, u32)>,
    /// Primary key column names (empty: no key, records carry a null key).
    key: Vec<String>,
    /// What is the same for every event of the table, rendered once (see [`PostgresCdc::render`]).
    captured: bool,
    topic: Arc<str>,
    /// `"<column>":` of each column, in column order.
    column_keys: Vec<Vec<u8>>,
    /// The key columns' `"<column>":` and index in `columns` (none: always null).
    key_columns: Vec<(Vec<u8>, Option<usize>)>,
    /// `{"version":..,"connector":"postgresql","name":..,` of `source`.
    source_head: String,
    /// `"db":..,"sequence":null,"schema":..,"table":..,` of `source`.
    source_tail: String,
}

impl Table {
    /// A table with nothing rendered yet: see [`PostgresCdc::render`].
    fn new(schema: String, name: String, columns: Vec<(String, u32)>) -> Self {
        Table {
            schema,
            name,
            columns,
            key: Vec::new(),
            captured: false,
            topic: Arc::from(""),
            column_keys: Vec::new(),
            key_columns: Vec::new(),
            source_head: String::new(),
            source_tail: String::new(),
        }
    }
}

struct Transaction {
    final_lsn: u64,
    xid: u32,
    commit_time_ms: i64,
    seq: u64,
}

struct Pending {
    topic: Arc<str>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: Option<i64>,
    position: Position,
}

/// A record's source position (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Position {
    #[serde(default)]
    snapshot: bool,
    #[serde(default)]
    snapshot_done: bool,
    #[serde(default)]
    consistent_point: u64,
    #[serde(default)]
    commit_lsn: u64,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    last: bool,
    #[serde(default)]
    end_lsn: u64,
}

impl Position {
    /// The position as JSON into `out` (cleared first): what serde writes, without its
    /// machinery, once per record.
    fn write_json(&self, out: &mut Vec<u8>) {
        out.clear();
        let flag = |value: bool| if value { &b"true"[..] } else { &b"false"[..] };
        out.extend_from_slice(b"{\"snapshot\":");
        out.extend_from_slice(flag(self.snapshot));
        out.extend_from_slice(b",\"snapshot_done\":");
        out.extend_from_slice(flag(self.snapshot_done));
        out.extend_from_slice(b",\"consistent_point\":");
        write_u64(out, self.consistent_point);
        out.extend_from_slice(b",\"commit_lsn\":");
        write_u64(out, self.commit_lsn);
        out.extend_from_slice(b",\"seq\":");
        write_u64(out, self.seq);
        out.extend_from_slice(b",\"last\":");
        out.extend_from_slice(flag(self.last));
        out.extend_from_slice(b",\"end_lsn\":");
        write_u64(out, self.end_lsn);
        out.push(b'}');
    }
}

/// Decimal digits of `value`, without `core::fmt`.
fn write_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

fn write_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    write_u64(out, value.unsigned_abs());
}

fn pg_error(context: &str) -> impl FnOnce(PgError) -> ConnectorError + '_ {
    move |error| error.into_connector_error(context)
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

fn text_column(row: &Map<String, Value>, name: &str) -> Option<String> {
    row.get(name).and_then(Value::as_str).map(str::to_owned)
}

impl Connector for PostgresCdc {
    type Config = CdcConfig;
    const NAME: &'static str = "postgres-cdc";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Postgres change data capture: a consistent snapshot, then pgoutput logical replication, as Debezium events";

    fn validate(config: &CdcConfig) -> Result<(), Vec<FieldError>> {
        config.check()
    }

    /// With `slot.drop.on.delete`: drop the slot (once its last session let go of it) and the
    /// publication if this connector created it (it says so in its comment).
    fn on_delete(config: &CdcConfig) -> Result<(), ConnectorError> {
        if !config.slot_drop_on_delete {
            return Ok(());
        }
        connect(config)?;
        let slot = quote_literal(&config.slot_name);
        // The deleted task's replication session may take a moment to end on the server.
        let mut attempts = 0;
        loop {
            let rows = pg::query_rows(&format!(
                "SELECT active::text AS active FROM pg_replication_slots WHERE slot_name = {slot}"
            ))
            .map_err(pg_error("looking up the replication slot"))?;
            let Some(row) = rows.first() else { break };
            if text_column(row, "active").as_deref() != Some("true") {
                pg::query(&format!("SELECT pg_drop_replication_slot({slot})"))
                    .map_err(pg_error("dropping the replication slot"))?;
                break;
            }
            attempts += 1;
            if attempts > 100 {
                return Err(ConnectorError::Retriable(format!(
                    "replication slot {} is still in use by another session: not dropped",
                    config.slot_name
                )));
            }
            pg::query("SELECT pg_sleep(0.1)").map_err(pg_error("waiting for the replication slot"))?;
        }
        let publication = quote_literal(&config.publication_name);
        let ours = pg::query_rows(&format!(
            "SELECT 1 FROM pg_publication p WHERE p.pubname = {publication} AND obj_description(p.oid, 'pg_publication') = {}",
            quote_literal(PUBLICATION_COMMENT)
        ))
        .map_err(pg_error("looking up the publication"))?;
        if !ours.is_empty() {
            pg::query(&format!("DROP PUBLICATION IF EXISTS {}", quote_ident(&config.publication_name)))
                .map_err(pg_error("dropping the publication"))?;
        }
        Ok(())
    }
}

fn connect(config: &CdcConfig) -> Result<(), ConnectorError> {
    pg::connect(&pg::ConnectOptions {
        host: config.hostname.clone(),
        port: config.port,
        database: config.dbname.clone(),
        user: config.user.clone(),
        password: config.password.clone(),
    })
    .map_err(pg_error("connecting to Postgres"))
}

impl Source for PostgresCdc {
    fn open(config: CdcConfig, context: TaskContext) -> Result<Self, ConnectorError> {
        let filter = TableFilter::compile(config.table_include_list.as_deref(), config.table_exclude_list.as_deref())
            .map_err(ConnectorError::InvalidConfig)?;
        let partition =
            serde_json::to_vec(&json!({ "server": config.topic_prefix })).expect("a JSON object serializes");
        let task = PostgresCdc {
            config,
            filter,
            context,
            partition,
            phase: Phase::Starting,
            relations: HashMap::new(),
            transaction: None,
            held: None,
            ready: VecDeque::new(),
            skip_until: None,
            emitted: None,
            streaming: false,
            acked: 0,
            next_heartbeat: None,
            next_stats: None,
            position_buffer: Vec::with_capacity(160),
        };
        task.context.info(&format!("postgres-cdc for {} ({})", task.config.dbname, task.config.topic_prefix));
        Ok(task)
    }

    fn poll(&mut self, max: u32, batch: &mut SourceBatchWriter) -> Result<(), ConnectorError> {
        let max = max.max(1) as usize;
        if matches!(self.phase, Phase::Starting) {
            self.connect()?;
            self.ensure_publication()?;
            self.start()?;
        }
        if self.ready.is_empty() {
            match self.phase {
                Phase::Starting => {}
                Phase::Snapshot(_) => self.snapshot_step(max)?,
                Phase::Streaming => self.stream_step(max)?,
                Phase::Finished => {}
            }
        }
        let mut pushed = 0;
        while pushed < max {
            let Some(record) = self.ready.pop_front() else { break };
            let mut position = std::mem::take(&mut self.position_buffer);
            record.position.write_json(&mut position);
            batch.push(&SourceRecordRef {
                topic: &record.topic,
                partition: -1,
                timestamp: record.timestamp,
                key: record.key.as_deref(),
                value: record.value.as_deref(),
                headers: &[],
                source_partition: &self.partition,
                source_position: &position,
            });
            if !record.position.snapshot {
                self.emitted = Some(mark(&record.position));
            }
            self.position_buffer = position;
            pushed += 1;
        }
        Ok(())
    }

    fn commit(&mut self, positions: &[weir_connector_sdk::SourceOffset]) -> Result<(), ConnectorError> {
        for offset in positions {
            let Ok(position) = serde_json::from_slice::<Position>(&offset.position) else { continue };
            if position.last && position.end_lsn > self.acked && self.streaming {
                match pg::ack(position.end_lsn) {
                    Ok(()) => self.acked = position.end_lsn,
                    Err(error) => {
                        self.context.warn(&format!("cannot acknowledge {}: {error}", pg::format_lsn(position.end_lsn)))
                    }
                }
            }
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        pg::stop_replication();
        Ok(())
    }
}

/// The `(commit_lsn, seq)` mark of a change position: a last record covers its whole transaction.
fn mark(position: &Position) -> (u64, u64) {
    if position.last { (position.commit_lsn, u64::MAX) } else { (position.commit_lsn, position.seq) }
}

impl PostgresCdc {
    fn connect(&self) -> Result<(), ConnectorError> {
        connect(&self.config)
    }

    fn ensure_publication(&self) -> Result<(), ConnectorError> {
        let name = &self.config.publication_name;
        let found =
            pg::query_rows(&format!("SELECT pubname FROM pg_publication WHERE pubname = {}", quote_literal(name)))
                .map_err(pg_error("looking up the publication"))?;
        if !found.is_empty() {
            return Ok(());
        }
        let statement = match self.config.publication_autocreate_mode {
            PublicationAutocreate::Disabled => {
                return Err(ConnectorError::Fatal(format!(
                    "publication {name} does not exist and publication.autocreate.mode is disabled: create it (CREATE PUBLICATION {name} FOR TABLE ...)"
                )));
            }
            PublicationAutocreate::AllTables => format!("CREATE PUBLICATION {} FOR ALL TABLES", quote_ident(name)),
            PublicationAutocreate::Filtered => {
                let tables = self.candidate_tables()?;
                if tables.is_empty() {
                    format!("CREATE PUBLICATION {}", quote_ident(name))
                } else {
                    let list: Vec<String> = tables
                        .iter()
                        .map(|(schema, table)| format!("{}.{}", quote_ident(schema), quote_ident(table)))
                        .collect();
                    format!("CREATE PUBLICATION {} FOR TABLE {}", quote_ident(name), list.join(", "))
                }
            }
        };
        // The comment marks it as ours: `slot.drop.on.delete` drops only a publication it made.
        let comment = format!("COMMENT ON PUBLICATION {} IS {}", quote_ident(name), quote_literal(PUBLICATION_COMMENT));
        pg::query(&format!("{statement}; {comment}")).map_err(pg_error("creating the publication"))?;
        self.context.info(&format!("created publication {name}"));
        Ok(())
    }

    /// Every ordinary or partitioned table the filter selects.
    fn candidate_tables(&self) -> Result<Vec<(String, String)>, ConnectorError> {
        let rows = pg::query_rows(
            "SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1, 2",
        )
        .map_err(pg_error("listing tables"))?;
        Ok(rows
            .iter()
            .filter_map(|row| Some((text_column(row, "schema")?, text_column(row, "name")?)))
            .filter(|(schema, table)| self.filter.captures(schema, table))
            .collect())
    }

    /// The tables the snapshot reads: those of the publication that the filter selects.
    fn published_tables(&self) -> Result<Vec<Table>, ConnectorError> {
        let rows = pg::query_rows(&format!(
            "SELECT schemaname AS schema, tablename AS name FROM pg_publication_tables WHERE pubname = {} ORDER BY 1, 2",
            quote_literal(&self.config.publication_name)
        ))
        .map_err(pg_error("listing the publication's tables"))?;
        let mut tables = Vec::new();
        for row in rows {
            let (Some(schema), Some(name)) = (text_column(&row, "schema"), text_column(&row, "name")) else { continue };
            if self.filter.captures(&schema, &name) {
                let relation = format!("{}.{}", quote_ident(&schema), quote_ident(&name));
                tables.push(self.describe(&relation, schema, name)?);
            }
        }
        Ok(tables)
    }

    /// Columns and primary key of a relation (`relation`: a quoted name or an OID).
    fn describe(&self, relation: &str, schema: String, name: String) -> Result<Table, ConnectorError> {
        let regclass = if relation.bytes().all(|b| b.is_ascii_digit()) {
            relation.to_owned()
        } else {
            format!("{}::regclass", quote_literal(relation))
        };
        let columns = pg::query_rows(&format!(
            "SELECT attname, atttypid::int8 AS type FROM pg_attribute WHERE attrelid = {regclass} AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ))
        .map_err(pg_error("describing a table"))?;
        let key = pg::query_rows(&format!(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = {regclass} AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)"
        ))
        .map_err(pg_error("reading a primary key"))?;
        let columns = columns
            .iter()
            .filter_map(|row| Some((text_column(row, "attname")?, text_column(row, "type")?.parse().ok()?)))
            .collect();
        let key = key.iter().filter_map(|row| text_column(row, "attname")).collect();
        Ok(self.render(Table::new(schema, name, columns), key))
    }

    fn slot_confirmed_lsn(&self) -> Result<Option<u64>, ConnectorError> {
        let rows = pg::query_rows(&format!(
            "SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = {}",
            quote_literal(&self.config.slot_name)
        ))
        .map_err(pg_error("looking up the replication slot"))?;
        Ok(rows.first().map(|row| text_column(row, "lsn").and_then(|lsn| pg::parse_lsn(&lsn)).unwrap_or(0)))
    }

    fn drop_slot(&self) -> Result<(), ConnectorError> {
        pg::query(&format!("SELECT pg_drop_replication_slot({})", quote_literal(&self.config.slot_name)))
            .map_err(pg_error("dropping the replication slot"))?;
        Ok(())
    }

    /// Decide between snapshot and streaming from the committed position and the slot.
    fn start(&mut self) -> Result<(), ConnectorError> {
        let committed = self
            .context
            .committed_position(&self.partition)
            .and_then(|bytes| serde_json::from_slice::<Position>(&bytes).ok());
        let slot = self.slot_confirmed_lsn()?;
        let slot_name = self.config.slot_name.clone();
        match committed {
            Some(position) if !position.snapshot || position.snapshot_done => {
                let resnapshot = self.config.slot_invalidated_action == SlotInvalidatedAction::Resnapshot;
                let Some(confirmed) = slot else {
                    if self.config.snapshot_mode == SnapshotMode::WhenNeeded || resnapshot {
                        self.context.warn(&format!("replication slot {slot_name} is gone: snapshotting again"));
                        return self.begin_snapshot();
                    }
                    return Err(ConnectorError::Fatal(format!(
                        "replication slot {slot_name} is gone (dropped or invalidated): changes since the committed offset may be lost. \
                         Set slot.invalidated.action=resnapshot (or snapshot.mode=when_needed) to snapshot again, or delete the connector's offsets"
                    )));
                };
                let durable = if position.snapshot {
                    position.consistent_point
                } else if position.last {
                    position.end_lsn
                } else {
                    position.commit_lsn
                };
                if confirmed > durable && resnapshot {
                    self.context.warn(&format!(
                        "replication slot {slot_name} confirmed {} beyond the committed {}: dropping it and snapshotting again",
                        pg::format_lsn(confirmed),
                        pg::format_lsn(durable)
                    ));
                    self.drop_slot()?;
                    return self.begin_snapshot();
                }
                if confirmed > durable {
                    return Err(ConnectorError::Fatal(format!(
                        "replication slot {slot_name} has confirmed {} but weir committed only {}: the slot was recreated or advanced behind weir's back, \
                         and the changes in between are lost. Set slot.invalidated.action=resnapshot, or drop the slot and the connector's offsets, to snapshot again",
                        pg::format_lsn(confirmed),
                        pg::format_lsn(durable)
                    )));
                }
                if position.snapshot && self.config.snapshot_mode == SnapshotMode::InitialOnly {
                    self.phase = Phase::Finished;
                    return Ok(());
                }
                let start = if position.snapshot {
                    position.consistent_point
                } else if position.last {
                    position.end_lsn
                } else {
                    0
                };
                self.skip_until = (!position.snapshot).then(|| mark(&position));
                self.acked = confirmed;
                self.start_streaming(start)
            }
            _ => {
                if committed.is_some() {
                    self.context.info("the snapshot was interrupted: starting it again");
                }
                if self.config.snapshot_mode == SnapshotMode::Never {
                    if slot.is_none() {
                        pg::create_slot_with_snapshot(&slot_name, &self.config.publication_name)
                            .map_err(pg_error("creating the replication slot"))?;
                        pg::query("COMMIT").map_err(pg_error("ending the unused snapshot"))?;
                    }
                    return self.start_streaming(0);
                }
                match slot {
                    Some(confirmed) => self.snapshot_again(confirmed),
                    None => self.begin_snapshot(),
                }
            }
        }
    }

    fn begin_snapshot(&mut self) -> Result<(), ConnectorError> {
        let created = pg::create_slot_with_snapshot(&self.config.slot_name, &self.config.publication_name)
            .map_err(pg_error("creating the replication slot"))?;
        let tables = self.published_tables()?;
        self.context.info(&format!(
            "snapshot of {} tables at {} started",
            tables.len(),
            pg::format_lsn(created.consistent_point)
        ));
        self.enter_snapshot(created.consistent_point, tables);
        Ok(())
    }

    fn enter_snapshot(&mut self, consistent_point: u64, tables: Vec<Table>) {
        self.context.gauge("snapshot_running", 1);
        self.context.gauge("snapshot_tables_total", tables.len() as i64);
        self.context.gauge("snapshot_tables_done", 0);
        self.context.gauge("snapshot_rows", 0);
        self.phase = Phase::Snapshot(Snapshot { consistent_point, tables, index: 0, cursor_open: false, rows: 0 });
    }

    /// Snapshot again while keeping the slot (an interrupted snapshot, or a slot made before any
    /// offset was committed): read in a new `REPEATABLE READ` transaction, which starts after the
    /// slot's confirmed position, then stream from that position. Every change after the
    /// snapshot arrives; some before it arrive too, and replaying the topic in order absorbs
    /// them. Dropping the slot instead would leave the rows the interrupted snapshot had already
    /// delivered and that were deleted meanwhile in the topic, with no delete event ever.
    fn snapshot_again(&mut self, confirmed: u64) -> Result<(), ConnectorError> {
        pg::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").map_err(pg_error("starting the snapshot"))?;
        let tables = self.published_tables()?;
        self.context.info(&format!(
            "snapshot of {} tables again, keeping slot {} (streaming from {} afterwards)",
            tables.len(),
            self.config.slot_name,
            pg::format_lsn(confirmed)
        ));
        self.enter_snapshot(confirmed, tables);
        Ok(())
    }

    fn start_streaming(&mut self, start: u64) -> Result<(), ConnectorError> {
        pg::start_replication(&self.config.slot_name, &self.config.publication_name, start)
            .map_err(pg_error("starting replication"))?;
        self.phase = Phase::Streaming;
        self.streaming = true;
        self.context.info(&format!("streaming slot {} from {}", self.config.slot_name, pg::format_lsn(start)));
        Ok(())
    }

    fn snapshot_step(&mut self, max: usize) -> Result<(), ConnectorError> {
        let Phase::Snapshot(snapshot) = &mut self.phase else { return Ok(()) };
        let consistent_point = snapshot.consistent_point;
        if snapshot.index >= snapshot.tables.len() {
            let rows = snapshot.rows;
            if let Some(mut held) = self.held.take() {
                held.position.snapshot_done = true;
                if let Some(value) = held.value.take() {
                    let mut envelope: Value = serde_json::from_slice(&value).unwrap_or(Value::Null);
                    envelope["source"]["snapshot"] = json!("last");
                    held.value = Some(serde_json::to_vec(&envelope).expect("JSON serializes"));
                }
                self.ready.push_back(held);
            }
            pg::query("COMMIT").map_err(pg_error("ending the snapshot"))?;
            self.context.info(&format!("snapshot done: {rows} rows"));
            self.context.gauge("snapshot_running", 0);
            if self.config.snapshot_mode == SnapshotMode::InitialOnly {
                pg::stop_replication();
                self.phase = Phase::Finished;
                return Ok(());
            }
            return self.start_streaming(0);
        }
        let fetch = max.min(self.config.snapshot_fetch_size as usize).max(1);
        let table = snapshot.tables[snapshot.index].clone();
        if !snapshot.cursor_open {
            pg::query(&format!(
                "DECLARE weir_snapshot NO SCROLL CURSOR FOR SELECT * FROM {}.{}",
                quote_ident(&table.schema),
                quote_ident(&table.name)
            ))
            .map_err(pg_error("reading the snapshot"))?;
            snapshot.cursor_open = true;
        }
        let rows =
            pg::query_rows(&format!("FETCH {fetch} FROM weir_snapshot")).map_err(pg_error("reading the snapshot"))?;
        if rows.len() < fetch {
            pg::query("CLOSE weir_snapshot").map_err(pg_error("reading the snapshot"))?;
            snapshot.cursor_open = false;
            snapshot.index += 1;
            self.context.info(&format!(
                "snapshot of {}.{} done: table {} of {}, {} rows so far",
                table.schema,
                table.name,
                snapshot.index,
                snapshot.tables.len(),
                snapshot.rows + rows.len() as u64
            ));
        }
        snapshot.rows += rows.len() as u64;
        // Progress per fetch (not per row): tables done, rows read so far.
        self.context.gauge("snapshot_tables_done", snapshot.index as i64);
        self.context.gauge("snapshot_rows", i64::try_from(snapshot.rows).unwrap_or(i64::MAX));
        let ts_ms = now_ms();
        let placeholder = &self.config.unavailable_value_placeholder;
        let mut pending = Vec::with_capacity(rows.len());
        for mut row in rows {
            let tuple: Vec<TupleValue> = table
                .columns
                .iter()
                .map(|(name, _)| match row.remove(name) {
                    Some(Value::String(text)) => TupleValue::Text(text),
                    _ => TupleValue::Null,
                })
                .collect();
            let key = key_of(&table, &tuple, None, placeholder);
            let after = render_row(&table, &tuple, None, placeholder);
            let value = envelope(&table, None, Some(&after), "r", ts_ms, "true", None, consistent_point, ts_ms);
            let position = Position { snapshot: true, consistent_point, ..Position::default() };
            pending.push(Pending {
                topic: table.topic.clone(),
                key,
                value: Some(value),
                timestamp: Some(ts_ms),
                position,
            });
        }
        for record in pending {
            self.hold(record);
        }
        Ok(())
    }

    fn hold(&mut self, record: Pending) {
        if let Some(previous) = self.held.replace(record) {
            self.ready.push_back(previous);
        }
    }

    /// Fill in what is the same for every event of `table`, whose primary key is `key`.
    fn render(&self, mut table: Table, key: Vec<String>) -> Table {
        let text = |value: &str| serde_json::to_string(value).expect("a string serializes");
        table.captured = self.filter.captures(&table.schema, &table.name);
        table.topic = Arc::from(format!("{}.{}.{}", self.config.topic_prefix, table.schema, table.name));
        table.column_keys = table.columns.iter().map(|(name, _)| format!("{}:", text(name)).into_bytes()).collect();
        table.key_columns = key
            .iter()
            .map(|column| {
                (format!("{}:", text(column)).into_bytes(), table.columns.iter().position(|(name, _)| name == column))
            })
            .collect();
        table.key = key;
        table.source_head = format!(
            "{{\"version\":{},\"connector\":\"postgresql\",\"name\":{},",
            text(Self::VERSION),
            text(&self.config.topic_prefix)
        );
        table.source_tail = format!(
            "\"db\":{},\"sequence\":null,\"schema\":{},\"table\":{},",
            text(&self.config.dbname),
            text(&table.schema),
            text(&table.name)
        );
        table
    }

    fn reconnect(&mut self) -> Result<(), ConnectorError> {
        self.transaction = None;
        self.held = None;
        self.ready.clear();
        self.skip_until = self.emitted.or(self.skip_until);
        self.connect()?;
        self.start_streaming(0)
    }

    fn stream_step(&mut self, max: usize) -> Result<(), ConnectorError> {
        if !self.streaming {
            self.reconnect()?;
        }
        self.heartbeat();
        self.report_slot_stats();
        let events = match pg::read(u32::try_from(max).unwrap_or(u32::MAX), READ_WAIT_MS) {
            Ok(events) => events,
            Err(error) if error.is_retriable() => {
                self.streaming = false;
                self.context.warn(&format!("replication stream lost, reconnecting: {error}"));
                return Err(ConnectorError::Retriable(format!("replication stream lost: {error}")));
            }
            Err(error) => return Err(error.into_connector_error("reading the replication stream")),
        };
        for event in events {
            self.apply(event)?;
        }
        Ok(())
    }

    /// Report the slot's retained WAL (`pg_current_wal_lsn() - restart_lsn`) and the replication
    /// lag (`pg_current_wal_lsn() - confirmed_flush_lsn`), in bytes, as gauges and a log line,
    /// every `slot.stats.interval.s`: one query per interval, never per batch.
    fn report_slot_stats(&mut self) {
        if self.config.slot_stats_interval_s == 0 {
            return;
        }
        let now = Instant::now();
        if self.next_stats.is_some_and(|next| now < next) {
            return;
        }
        self.next_stats = Some(now + Duration::from_secs(self.config.slot_stats_interval_s));
        let rows = pg::query_rows(&format!(
            "SELECT (pg_current_wal_lsn() - restart_lsn)::int8 AS retained, (pg_current_wal_lsn() - confirmed_flush_lsn)::int8 AS lag \
             FROM pg_replication_slots WHERE slot_name = {}",
            quote_literal(&self.config.slot_name)
        ));
        let row = match rows {
            Ok(rows) => rows.into_iter().next(),
            Err(error) => {
                self.context.warn(&format!("cannot read the slot's statistics: {error}"));
                return;
            }
        };
        let bytes =
            |name: &str| row.as_ref().and_then(|row| text_column(row, name)).and_then(|text| text.parse::<i64>().ok());
        let (Some(retained), Some(lag)) = (bytes("retained"), bytes("lag")) else { return };
        self.context.gauge("slot_retained_wal_bytes", retained);
        self.context.gauge("replication_lag_bytes", lag);
        self.context.info(&format!(
            "slot {}: retained WAL {retained} bytes, replication lag {lag} bytes, acknowledged {}",
            self.config.slot_name,
            pg::format_lsn(self.acked)
        ));
    }

    fn heartbeat(&mut self) {
        if self.config.heartbeat_interval_ms == 0 {
            return;
        }
        let now = Instant::now();
        if self.next_heartbeat.is_some_and(|next| now < next) {
            return;
        }
        self.next_heartbeat = Some(now + Duration::from_millis(self.config.heartbeat_interval_ms));
        if let Err(error) = pg::query(&format!("SELECT pg_logical_emit_message(false, '{HEARTBEAT_PREFIX}', '')")) {
            self.context.warn(&format!("heartbeat failed: {error}"));
        }
    }

    fn apply(&mut self, event: WalEvent) -> Result<(), ConnectorError> {
        match event {
            WalEvent::Begin { final_lsn, xid, commit_time_micros } => {
                self.transaction = Some(Transaction {
                    final_lsn,
                    xid,
                    commit_time_ms: (commit_time_micros + POSTGRES_EPOCH_MICROS) / 1000,
                    seq: 0,
                });
            }
            WalEvent::Commit { end_lsn, .. } => {
                if let Some(mut held) = self.held.take() {
                    held.position.last = true;
                    held.position.end_lsn = end_lsn;
                    self.ready.push_back(held);
                }
                self.transaction = None;
            }
            WalEvent::Change { lsn, data } => {
                let message = pgoutput::decode(&data).map_err(|error| ConnectorError::Fatal(error.to_string()))?;
                self.change(lsn, message)?;
            }
            WalEvent::Message { lsn, transactional: false, prefix, .. } if prefix == HEARTBEAT_PREFIX => {
                if self.transaction.is_none() && self.held.is_none() && self.config.heartbeat_interval_ms > 0 {
                    let position =
                        Position { commit_lsn: lsn, seq: 0, last: true, end_lsn: lsn, ..Position::default() };
                    if !self.skipped(&position) {
                        let value = json!({ "ts_ms": now_ms() });
                        self.ready.push_back(Pending {
                            topic: Arc::from(format!("__debezium-heartbeat.{}", self.config.topic_prefix)),
                            key: Some(
                                serde_json::to_vec(&json!({ "serverName": self.config.topic_prefix }))
                                    .expect("JSON serializes"),
                            ),
                            value: Some(serde_json::to_vec(&value).expect("JSON serializes")),
                            timestamp: None,
                            position,
                        });
                    }
                }
            }
            WalEvent::Message { .. } | WalEvent::Keepalive { .. } => {}
        }
        Ok(())
    }

    fn skipped(&self, position: &Position) -> bool {
        self.skip_until.is_some_and(|until| mark(position) <= until)
    }

    fn relation(&self, id: u32) -> Result<&Arc<Table>, ConnectorError> {
        self.relations.get(&id).ok_or_else(|| {
            ConnectorError::Fatal(format!("pgoutput sent a change of relation {id} before describing it"))
        })
    }

    fn change(&mut self, lsn: u64, message: Message) -> Result<(), ConnectorError> {
        let (table_id, op, before, after, key) = match message {
            Message::Relation(relation) => {
                let key = match self.describe(&relation.id.to_string(), relation.schema.clone(), relation.name.clone())
                {
                    Ok(described) => described.key,
                    Err(_) if relation.replica_identity == b'd' => {
                        relation.columns.iter().filter(|column| column.key).map(|column| column.name.clone()).collect()
                    }
                    Err(_) => Vec::new(),
                };
                let columns = relation.columns.iter().map(|column| (column.name.clone(), column.type_oid)).collect();
                let table = self.render(Table::new(relation.schema.clone(), relation.name.clone(), columns), key);
                self.relations.insert(relation.id, Arc::new(table));
                return Ok(());
            }
            Message::Insert { relation, new } => {
                let table = self.relation(relation)?;
                if !table.captured {
                    return Ok(());
                }
                let placeholder = &self.config.unavailable_value_placeholder;
                let key = key_of(table, &new, None, placeholder);
                (relation, "c", None, Some(render_row(table, &new, None, placeholder)), key)
            }
            Message::Update { relation, old, new, .. } => {
                let table = self.relation(relation)?;
                if !table.captured {
                    return Ok(());
                }
                let placeholder = &self.config.unavailable_value_placeholder;
                let before = old.as_ref().map(|old| render_row(table, old, None, placeholder));
                let after = render_row(table, &new, old.as_deref(), placeholder);
                let key = key_of(table, &new, old.as_deref(), placeholder);
                (relation, "u", before, Some(after), key)
            }
            Message::Delete { relation, old, .. } => {
                let table = self.relation(relation)?;
                if !table.captured {
                    return Ok(());
                }
                let placeholder = &self.config.unavailable_value_placeholder;
                let key = key_of(table, &old, None, placeholder);
                (relation, "d", Some(render_row(table, &old, None, placeholder)), None, key)
            }
            Message::Truncate { relations, .. } => {
                for relation in relations {
                    self.emit(lsn, relation, "t", None, None, None)?;
                }
                return Ok(());
            }
            Message::Other(_) => return Ok(()),
        };
        self.emit(lsn, table_id, op, before, after, key)
    }

    fn emit(
        &mut self,
        lsn: u64,
        relation: u32,
        op: &str,
        before: Option<Vec<u8>>,
        after: Option<Vec<u8>>,
        key: Option<Vec<u8>>,
    ) -> Result<(), ConnectorError> {
        let table = Arc::clone(self.relation(relation)?);
        if !table.captured {
            return Ok(());
        }
        let Some(transaction) = self.transaction.as_mut() else {
            return Err(ConnectorError::Fatal("pgoutput sent a change outside a transaction".into()));
        };
        let (final_lsn, xid, commit_time_ms) = (transaction.final_lsn, transaction.xid, transaction.commit_time_ms);
        let tombstone = op == "d" && self.config.tombstones_on_delete;
        let first_seq = transaction.seq;
        transaction.seq += if tombstone { 2 } else { 1 };
        let value = envelope(
            &table,
            before.as_deref(),
            after.as_deref(),
            op,
            commit_time_ms,
            "false",
            Some(xid),
            lsn,
            now_ms(),
        );
        let topic = table.topic.clone();
        let position = Position { commit_lsn: final_lsn, seq: first_seq, ..Position::default() };
        if !self.skipped(&position) {
            self.hold(Pending {
                topic: topic.clone(),
                key: key.clone(),
                value: Some(value),
                timestamp: Some(commit_time_ms),
                position,
            });
        }
        if tombstone {
            let position = Position { commit_lsn: final_lsn, seq: first_seq + 1, ..Position::default() };
            if !self.skipped(&position) {
                self.hold(Pending { topic, key, value: None, timestamp: Some(commit_time_ms), position });
            }
        }
        Ok(())
    }
}

/// A Debezium envelope, written straight to bytes (no intermediate JSON tree): `before`,
/// `after`, `source`, `op`, `ts_ms`, in Debezium's order.
#[allow(clippy::too_many_arguments)]
fn envelope(
    table: &Table,
    before: Option<&[u8]>,
    after: Option<&[u8]>,
    op: &str,
    source_ts_ms: i64,
    snapshot: &str,
    xid: Option<u32>,
    lsn: u64,
    ts_ms: i64,
) -> Vec<u8> {
    let images = before.map_or(4, <[u8]>::len) + after.map_or(4, <[u8]>::len);
    let mut out = Vec::with_capacity(images + table.source_head.len() + table.source_tail.len() + 160);
    let image = |out: &mut Vec<u8>, image: Option<&[u8]>| out.extend_from_slice(image.unwrap_or(b"null"));
    out.extend_from_slice(b"{\"before\":");
    image(&mut out, before);
    out.extend_from_slice(b",\"after\":");
    image(&mut out, after);
    out.extend_from_slice(b",\"source\":");
    out.extend_from_slice(table.source_head.as_bytes());
    // `"ts_ms":S,"snapshot":"..",<tail>"txId":X,"lsn":L,"xmin":null},"op":"..","ts_ms":T}`
    out.extend_from_slice(b"\"ts_ms\":");
    write_i64(&mut out, source_ts_ms);
    out.extend_from_slice(b",\"snapshot\":\"");
    out.extend_from_slice(snapshot.as_bytes());
    out.extend_from_slice(b"\",");
    out.extend_from_slice(table.source_tail.as_bytes());
    out.extend_from_slice(b"\"txId\":");
    match xid {
        Some(xid) => write_u64(&mut out, u64::from(xid)),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"lsn\":");
    write_u64(&mut out, lsn);
    out.extend_from_slice(b",\"xmin\":null},\"op\":\"");
    out.extend_from_slice(op.as_bytes());
    out.extend_from_slice(b"\",\"ts_ms\":");
    write_i64(&mut out, ts_ms);
    out.push(b'}');
    out
}

/// Append the JSON of column `index` of `tuple`. An unchanged TOAST value is taken from `old`
/// when that has it (REPLICA IDENTITY FULL), otherwise it is the placeholder: never a silent null.
fn write_cell(
    out: &mut Vec<u8>,
    type_oid: u32,
    index: usize,
    tuple: &[TupleValue],
    old: Option<&[TupleValue]>,
    placeholder: &str,
) {
    let text = |out: &mut Vec<u8>, text: &str| serde_json::to_writer(out, text).expect("writing to a Vec cannot fail");
    match tuple.get(index) {
        Some(TupleValue::Text(value)) => values::write_json(out, type_oid, value),
        Some(TupleValue::UnchangedToast) => match old.and_then(|old| old.get(index)) {
            Some(TupleValue::Text(value)) => values::write_json(out, type_oid, value),
            _ => text(out, placeholder),
        },
        Some(TupleValue::Binary(bytes)) => text(out, &String::from_utf8_lossy(bytes)),
        Some(TupleValue::Null) | None => out.extend_from_slice(b"null"),
    }
}

/// A row image as a JSON object, in column order, written straight to bytes (see [`write_cell`]).
fn render_row(table: &Table, tuple: &[TupleValue], old: Option<&[TupleValue]>, placeholder: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 * table.columns.len() + 2);
    out.push(b'{');
    for (index, ((_, type_oid), column_key)) in table.columns.iter().zip(&table.column_keys).enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(column_key);
        write_cell(&mut out, *type_oid, index, tuple, old, placeholder);
    }
    out.push(b'}');
    out
}

/// The record key: the primary key columns as a JSON object, or none for a table without one.
fn key_of(table: &Table, tuple: &[TupleValue], old: Option<&[TupleValue]>, placeholder: &str) -> Option<Vec<u8>> {
    if table.key_columns.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(32);
    out.push(b'{');
    for (position, (column_key, index)) in table.key_columns.iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        out.extend_from_slice(column_key);
        match index {
            Some(index) => write_cell(&mut out, table.columns[*index].1, *index, tuple, old, placeholder),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'}');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_write_the_json_serde_reads() {
        let positions = [
            Position::default(),
            Position { snapshot: true, consistent_point: 0x1_6B37_4D48, ..Position::default() },
            Position { snapshot: true, snapshot_done: true, consistent_point: u64::MAX, ..Position::default() },
            Position { commit_lsn: 22_000_000, seq: 9, last: true, end_lsn: 22_000_120, ..Position::default() },
        ];
        let mut out = Vec::new();
        for position in positions {
            position.write_json(&mut out);
            assert_eq!(serde_json::from_slice::<Position>(&out).expect("JSON"), position);
            assert_eq!(
                serde_json::from_slice::<Value>(&out).expect("JSON"),
                serde_json::to_value(&position).expect("JSON")
            );
        }
    }

    #[test]
    fn integers_write_their_digits() {
        for value in [0, 7, 10, 1234567890, i64::MAX, -1, -10, i64::MIN] {
            let mut out = Vec::new();
            write_i64(&mut out, value);
            assert_eq!(String::from_utf8(out).expect("ASCII"), value.to_string());
        }
        let mut out = Vec::new();
        write_u64(&mut out, u64::MAX);
        assert_eq!(out, u64::MAX.to_string().as_bytes());
    }
}
