//! The `postgres-sink` task: one transaction per `put` batch holding its rows and its offsets.
//!
//! - Records at or below the offset stored for their (table, topic, partition) are already in the
//!   table: they are skipped. This is what makes a redelivery after a crash (the runtime resumes
//!   from the consumer group's offsets, which trail the sink's) write nothing twice.
//! - The batch goes first as one round trip: `BEGIN`, the offsets compare-and-set, the
//!   statements, `COMMIT`. When a statement fails on a record's data (SQLSTATE classes 22 and 23:
//!   a constraint, a bad value), the transaction is redone with a savepoint per statement, and a
//!   failing statement is split in halves until the bad records stand alone; they are reported
//!   as failed records (the runtime's `errors.tolerance` / dead-letter queue decide their fate).
//! - A batch with failed records is not committed in `put`: its transaction stays open until the
//!   next `put` or `flush`, which the runtime only calls when it tolerated the failures (and has
//!   written the dead-letter records). With `errors.tolerance: none` the task fails instead, its
//!   transaction is rolled back, and the records come again after the restart.

use std::collections::BTreeMap;

use weir_connector_sdk::batch::SinkRecordRef;
use weir_connector_sdk::postgres::{self as pg, PgError};
use weir_connector_sdk::{Connector, ConnectorError, FieldError, RecordFailure, Sink, TaskContext};

use crate::config::{PkMode, SinkConfig, TableName};
use crate::offsets::{self, FENCED_SQLSTATE, OffsetKey, OffsetUpdate, Stored};
use crate::plan::{Piece, Statement, plan};
use crate::record::{Change, KeyRule};
use crate::sql::{self, ColumnType};

/// The columns of a target table, by name.
type TableColumns = BTreeMap<String, ColumnType>;

/// The savepoint each statement runs under on the slow path.
const SAVEPOINT: &str = "weir_sink_piece";

/// What a failed SQL call means for the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlFailure {
    /// The session is gone: reconnect, reload the offsets, retry.
    Connection(String),
    /// Another instance of this task moved the offsets (SQLSTATE `WSK01`).
    Fenced(String),
    /// A record's data was refused (SQLSTATE class 22 or 23, or 21000).
    Record(String),
    /// Worth retrying as is (serialization failure, deadlock, lock timeout, shutdown, ...).
    Transient(String),
    /// Anything else: the task cannot go on.
    Fatal(String),
}

/// The SQLSTATE at the end of a server error (`ERROR: ... (23505)`), as the host renders it.
pub fn sqlstate(message: &str) -> Option<&str> {
    let open = message.rfind('(')?;
    let code = message[open + 1..].strip_suffix(')')?;
    (code.len() == 5 && code.bytes().all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit())).then_some(code)
}

/// Classify a failed call by its kind and SQLSTATE, never by its prose.
pub fn classify(error: PgError) -> SqlFailure {
    match error {
        PgError::Connection(message) => SqlFailure::Connection(message),
        PgError::Server(message) => match sqlstate(&message) {
            Some(FENCED_SQLSTATE) => SqlFailure::Fenced(message),
            // 21000: `ON CONFLICT DO UPDATE` met one row twice (keys equal in SQL but not in
            // JSON, e.g. 1 and "1"): split, each record applies on its own, in order.
            Some(code) if code.starts_with("22") || code.starts_with("23") || code == "21000" => {
                SqlFailure::Record(message)
            }
            Some(code)
                if code.starts_with("08")
                    || code.starts_with("53")
                    || matches!(code, "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03") =>
            {
                SqlFailure::Transient(message)
            }
            _ => SqlFailure::Fatal(message),
        },
        PgError::NotGranted(message) | PgError::Usage(message) => SqlFailure::Fatal(message),
    }
}

/// The `postgres-sink` task.
#[derive(Debug)]
pub struct PostgresSink {
    config: SinkConfig,
    context: TaskContext,
    rule: KeyRule,
    offsets_table: TableName,
    /// Whether the current session has loaded the offsets (cleared when the session drops).
    connected: bool,
    /// Columns of the target tables seen so far (reloaded after a reconnect).
    tables: BTreeMap<TableName, TableColumns>,
    /// The last offset in the tables, per (table, topic, partition).
    stored: Stored,
    /// An open transaction with a batch that had failed records, and the offsets it moves.
    pending: Option<Vec<OffsetUpdate>>,
    /// Counters for the task's gauges.
    written: i64,
    skipped: i64,
}

impl Connector for PostgresSink {
    type Config = SinkConfig;
    const NAME: &'static str = "postgres-sink";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Writes records into Postgres tables (insert, upsert, update, delete), exactly once: offsets commit with the rows.";

    fn validate(config: &SinkConfig) -> Result<(), Vec<FieldError>> {
        let errors = config.check();
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

fn invalid(errors: &[FieldError]) -> ConnectorError {
    ConnectorError::InvalidConfig(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
}

impl Sink for PostgresSink {
    fn open(config: SinkConfig, context: TaskContext) -> Result<Self, ConnectorError> {
        let errors = config.check();
        if !errors.is_empty() {
            return Err(invalid(&errors));
        }
        let offsets_table = TableName::parse(&config.offsets_table)
            .map_err(|message| ConnectorError::invalid_config("offsets.table", message))?;
        let rule = KeyRule::new(&config);
        let sink = Self {
            config,
            context,
            rule,
            offsets_table,
            connected: false,
            tables: BTreeMap::new(),
            stored: Stored::new(),
            pending: None,
            written: 0,
            skipped: 0,
        };
        // The first `put` connects: a database that is down then is a retriable error of that
        // call, retried with backoff, rather than a task that fails to open.
        sink.context.info(&format!(
            "postgres-sink writing to {}:{}/{} (offsets in {})",
            sink.config.hostname,
            sink.config.port,
            sink.config.dbname,
            sink.offsets_table.display()
        ));
        Ok(sink)
    }

    fn put(&mut self, records: &[SinkRecordRef<'_>]) -> Result<Vec<RecordFailure>, ConnectorError> {
        self.ensure_connected()?;
        self.commit_pending()?;
        let mut failures: BTreeMap<usize, String> = BTreeMap::new();
        let mut by_table: BTreeMap<TableName, Vec<(usize, Change)>> = BTreeMap::new();
        let mut moved: BTreeMap<OffsetKey, i64> = BTreeMap::new();
        let mut skipped = 0i64;
        for (index, record) in records.iter().enumerate() {
            let table = match TableName::for_topic(&self.config.table_name_format, record.topic) {
                Ok(table) => table,
                Err(message) => {
                    failures.insert(index, format!("table.name.format: {message}"));
                    continue;
                }
            };
            let key = OffsetKey { table: table.display(), topic: record.topic.to_owned(), partition: record.partition };
            if self.stored.get(&key).is_some_and(|stored| *stored >= record.offset) {
                skipped += 1;
                continue;
            }
            let last = moved.entry(key).or_insert(record.offset);
            *last = (*last).max(record.offset);
            match self.rule.change(record) {
                Ok(Change::Skip(_)) => {}
                Ok(change) => by_table.entry(table).or_default().push((index, change)),
                Err(message) => {
                    failures.insert(index, message);
                }
            }
        }
        if skipped > 0 {
            self.skipped += skipped;
            self.context.gauge("already_written_records", self.skipped);
            self.context.debug(&format!("postgres-sink skipped {skipped} records already in the tables"));
        }
        if moved.is_empty() {
            return Ok(report(failures));
        }
        let updates: Vec<OffsetUpdate> = moved
            .into_iter()
            .map(|(key, offset)| OffsetUpdate { expected: self.stored.get(&key).copied(), key, offset })
            .collect();

        let mut statements: Vec<(Piece, Statement)> = Vec::new();
        for (table, changes) in by_table {
            let changes = self.prepare_table(&table, changes, &mut failures)?;
            let columns = self.tables.get(&table).cloned().unwrap_or_default();
            for piece in plan(&table, self.config.insert_mode, changes, self.config.batch_size as usize) {
                // A staging table of its own for each piece of the transaction.
                let stage = format!("weir_sink_stage_{}", statements.len());
                if let Some(rendered) = render_checked(piece, &columns, &stage, &mut failures) {
                    statements.push(rendered);
                }
            }
        }

        let cas = offsets::cas_sql(&self.offsets_table, &updates);
        let commit_now = failures.is_empty();
        match write_fast(&cas, &statements, commit_now) {
            Ok(()) => {
                self.finish(updates, commit_now, &statements);
                return Ok(report(failures));
            }
            Err(error) => {
                self.rollback();
                match classify(error) {
                    SqlFailure::Record(_) => {}
                    other => return Err(self.failed("writing a batch", other)),
                }
            }
        }

        // Slow path: a statement failed on a record's data. Redo under savepoints, splitting
        // failing statements until the bad records stand alone.
        if let Err(error) = pg::query(&format!("BEGIN; {cas}")) {
            self.rollback();
            return Err(self.failed("writing a batch", classify(error)));
        }
        for (piece, _) in &statements {
            let columns = self.tables.get(&piece.table).cloned().unwrap_or_default();
            if let Err(failure) = self.apply(piece, &piece.items, &columns, &mut failures) {
                self.rollback();
                return Err(self.failed("writing a batch", failure));
            }
        }
        let commit_now = failures.is_empty();
        if commit_now && let Err(error) = pg::query("COMMIT") {
            self.rollback();
            return Err(self.failed("committing a batch", classify(error)));
        }
        self.finish(updates, commit_now, &statements);
        Ok(report(failures))
    }

    fn flush(&mut self) -> Result<(), ConnectorError> {
        if self.pending.is_some() {
            self.commit_pending()?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        if self.pending.take().is_some() {
            // Not flushed: the records come again (the group offsets do not cover them).
            self.rollback();
        }
        self.context.info(&format!(
            "postgres-sink closing after {} rows written, {} records skipped as already written",
            self.written, self.skipped
        ));
        Ok(())
    }
}

/// Failures by index, as the runtime wants them. Per-record failures are fatal errors: retrying
/// the same data cannot help.
fn report(failures: BTreeMap<usize, String>) -> Vec<RecordFailure> {
    failures
        .into_iter()
        .map(|(index, message)| {
            RecordFailure::new(u32::try_from(index).unwrap_or(u32::MAX), ConnectorError::Fatal(message))
        })
        .collect()
}

/// The fast path: one transaction with the offsets' compare-and-set, then the statements in
/// order (runs of SQL statements in one round trip each, COPYs on their own), committed when
/// `commit`. The first error ends it, with the transaction still open.
fn write_fast(cas: &str, statements: &[(Piece, Statement)], commit: bool) -> Result<(), PgError> {
    let mut script = format!("BEGIN; {cas}");
    for (_, statement) in statements {
        match statement {
            Statement::Sql(text) => push_statement(&mut script, text),
            Statement::Copy { before, sql, data, after } => {
                if let Some(before) = before {
                    push_statement(&mut script, before);
                }
                if !script.is_empty() {
                    pg::query(&script)?;
                    script.clear();
                }
                pg::copy_in(sql, data.as_bytes())?;
                if let Some(after) = after {
                    push_statement(&mut script, after);
                }
            }
        }
    }
    if commit {
        push_statement(&mut script, "COMMIT");
    }
    if !script.is_empty() {
        pg::query(&script)?;
    }
    Ok(())
}

/// Append `statement` to a script of statements run in one round trip.
fn push_statement(script: &mut String, statement: &str) {
    if !script.is_empty() {
        script.push_str("; ");
    }
    script.push_str(statement);
}

/// Render `piece` for the fast path, moving records whose values cannot be written into
/// `failures`.
fn render_checked(
    mut piece: Piece,
    columns: &TableColumns,
    stage: &str,
    failures: &mut BTreeMap<usize, String>,
) -> Option<(Piece, Statement)> {
    loop {
        match piece.render_fast(columns, stage) {
            Ok(Some(statement)) => return Some((piece, statement)),
            Ok(None) => return None,
            Err((position, error)) => {
                let (index, _) = piece.items.remove(position);
                failures.insert(index, format!("table {}: {}", piece.table.display(), error.0));
                if piece.items.is_empty() {
                    return None;
                }
            }
        }
    }
}

impl PostgresSink {
    fn connect_options(&self) -> pg::ConnectOptions {
        pg::ConnectOptions {
            host: self.config.hostname.clone(),
            port: self.config.port,
            database: self.config.dbname.clone(),
            user: self.config.user.clone(),
            password: self.config.password.clone(),
        }
    }

    /// Connect (the host keeps an open session); on a new session, create the offsets table if
    /// needed and load the offsets.
    fn ensure_connected(&mut self) -> Result<(), ConnectorError> {
        if self.connected {
            return Ok(());
        }
        pg::connect(&self.connect_options()).map_err(|error| self.failed("connecting", classify(error)))?;
        pg::query(&offsets::create_sql(&self.offsets_table))
            .map_err(|error| self.failed("creating the offsets table", classify(error)))?;
        self.reload_offsets()?;
        self.tables.clear();
        self.connected = true;
        self.context.info(&format!(
            "postgres-sink connected; {} offsets stored in {}",
            self.stored.len(),
            self.offsets_table.display()
        ));
        Ok(())
    }

    fn reload_offsets(&mut self) -> Result<(), ConnectorError> {
        let rows = pg::query_rows(&offsets::load_sql(&self.offsets_table))
            .map_err(|error| self.failed("reading the offsets table", classify(error)))?;
        self.stored = offsets::parse_rows(&rows).map_err(|message| {
            ConnectorError::Fatal(format!("the offsets table {}: {message}", self.offsets_table.display()))
        })?;
        Ok(())
    }

    /// Commit the open transaction of a batch with failed records: the runtime moved on, so it
    /// tolerated them.
    fn commit_pending(&mut self) -> Result<(), ConnectorError> {
        let Some(updates) = self.pending.take() else { return Ok(()) };
        match pg::query("COMMIT") {
            Ok(_) => {
                self.apply_offsets(&updates);
                Ok(())
            }
            Err(error) => {
                self.connected = false;
                // The earlier batch is lost from this session; only a restart (from the group
                // offsets, which do not cover it) brings it back.
                Err(ConnectorError::Fatal(format!(
                    "committing the batch with failed records failed (the task restarts and writes it again): {error}"
                )))
            }
        }
    }

    fn finish(&mut self, updates: Vec<OffsetUpdate>, committed: bool, statements: &[(Piece, Statement)]) {
        let rows: usize = statements.iter().map(|(piece, _)| piece.items.len()).sum();
        self.written += rows as i64;
        self.context.gauge("written_rows", self.written);
        if committed {
            self.apply_offsets(&updates);
        } else {
            self.pending = Some(updates);
        }
    }

    fn apply_offsets(&mut self, updates: &[OffsetUpdate]) {
        for update in updates {
            self.stored.insert(update.key.clone(), update.offset);
        }
    }

    /// End the session's transaction, if any (an error here changes nothing: a broken session
    /// has no transaction left).
    fn rollback(&mut self) {
        if let Err(error) = pg::query("ROLLBACK")
            && error.is_retriable()
        {
            self.connected = false;
        }
    }

    /// The error a failed step returns to the runtime.
    fn failed(&mut self, what: &str, failure: SqlFailure) -> ConnectorError {
        match failure {
            SqlFailure::Connection(message) => {
                self.connected = false;
                ConnectorError::Retriable(format!("{what}: connection: {message}"))
            }
            SqlFailure::Fenced(message) => {
                // Learn what the other instance wrote; a retry then skips it.
                self.connected = false;
                ConnectorError::Retriable(format!("{what}: {message}"))
            }
            SqlFailure::Transient(message) => ConnectorError::Retriable(format!("{what}: {message}")),
            SqlFailure::Record(message) | SqlFailure::Fatal(message) => {
                ConnectorError::Fatal(format!("{what}: {message}"))
            }
        }
    }

    /// Apply `items` of `piece` under a savepoint; on a data error split them until the bad
    /// records stand alone (each then a failure).
    fn apply(
        &mut self,
        piece: &Piece,
        items: &[(usize, sql::Row)],
        columns: &TableColumns,
        failures: &mut BTreeMap<usize, String>,
    ) -> Result<(), SqlFailure> {
        let Ok(Some(statement)) = piece.render(items, columns) else { return Ok(()) };
        match pg::query(&format!("SAVEPOINT {SAVEPOINT}; {statement}; RELEASE SAVEPOINT {SAVEPOINT}")) {
            Ok(_) => Ok(()),
            Err(error) => match classify(error) {
                SqlFailure::Record(message) => {
                    pg::query(&format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}; RELEASE SAVEPOINT {SAVEPOINT}"))
                        .map_err(classify)?;
                    if let [(index, _)] = items {
                        failures.insert(*index, format!("table {}: {message}", piece.table.display()));
                        return Ok(());
                    }
                    let (first, second) = items.split_at(items.len() / 2);
                    self.apply(piece, first, columns, failures)?;
                    self.apply(piece, second, columns, failures)
                }
                other => Err(other),
            },
        }
    }

    /// Make sure `table` exists with a column for every field written (`auto.create`,
    /// `auto.evolve`); records that cannot be written move to `failures`.
    fn prepare_table(
        &mut self,
        table: &TableName,
        changes: Vec<(usize, Change)>,
        failures: &mut BTreeMap<usize, String>,
    ) -> Result<Vec<(usize, Change)>, ConnectorError> {
        if !self.tables.contains_key(table) {
            let columns = self.load_columns(table)?;
            match columns {
                Some(columns) => {
                    self.tables.insert(table.clone(), columns);
                }
                None if self.config.auto_create => self.create_table(table, &changes)?,
                None => {
                    return Err(ConnectorError::Fatal(format!(
                        "table {} does not exist (set auto.create: true to create it from the records)",
                        table.display()
                    )));
                }
            }
        }
        let columns = self.tables.get(table).cloned().unwrap_or_default();
        // Fields the table lacks: added (auto.evolve), or the record fails.
        let mut missing: Vec<(String, ColumnType)> = Vec::new();
        let mut kept = Vec::with_capacity(changes.len());
        for (index, change) in changes {
            let row = match &change {
                Change::Write { row, .. } => row,
                Change::Delete { key } => key,
                Change::Skip(_) => continue,
            };
            let unknown: Vec<&String> = row.keys().filter(|name| !columns.contains_key(*name)).collect();
            if unknown.is_empty() {
                kept.push((index, change));
                continue;
            }
            if !self.config.auto_evolve || matches!(change, Change::Delete { .. }) {
                failures.insert(
                    index,
                    format!(
                        "table {} has no column {} (set auto.evolve: true to add missing columns)",
                        table.display(),
                        unknown.iter().map(|name| name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                );
                continue;
            }
            for name in unknown {
                let value = &row[name];
                match missing.iter_mut().find(|(known, _)| known == name) {
                    // The first non-null value decides the type.
                    Some((_, column)) if column.sql_type == "text" && !value.is_null() && !value.is_string() => {
                        *column = ColumnType::for_value(value);
                    }
                    Some(_) => {}
                    None => missing.push((name.clone(), ColumnType::for_value(value))),
                }
            }
            kept.push((index, change));
        }
        if !missing.is_empty() {
            pg::query(&sql::add_columns(table, &missing))
                .map_err(|error| self.failed(&format!("adding columns to {}", table.display()), classify(error)))?;
            self.context.info(&format!(
                "postgres-sink added columns {} to {}",
                missing
                    .iter()
                    .map(|(name, column)| format!("{name} {}", column.sql_type))
                    .collect::<Vec<_>>()
                    .join(", "),
                table.display()
            ));
            let reloaded = self.load_columns(table)?.unwrap_or_default();
            self.tables.insert(table.clone(), reloaded);
        }
        Ok(kept)
    }

    /// The table's columns; `None` when it does not exist.
    fn load_columns(&mut self, table: &TableName) -> Result<Option<TableColumns>, ConnectorError> {
        let what = format!("reading the columns of {}", table.display());
        let exists = pg::query_rows(&sql::exists_query(table)).map_err(|error| self.failed(&what, classify(error)))?;
        if exists.first().and_then(|row| row.get("present")).and_then(serde_json::Value::as_str) != Some("t") {
            return Ok(None);
        }
        let rows = pg::query_rows(&sql::columns_query(table)).map_err(|error| self.failed(&what, classify(error)))?;
        let text = |row: &serde_json::Map<String, serde_json::Value>, name: &str| {
            row.get(name).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned()
        };
        Ok(Some(
            rows.iter()
                .map(|row| {
                    let column = ColumnType::from_catalog(
                        &text(row, "sql_type"),
                        &text(row, "category"),
                        &text(row, "type_name"),
                    );
                    (text(row, "name"), column)
                })
                .collect(),
        ))
    }

    /// `auto.create`: the table from the fields of `changes` (key columns first).
    fn create_table(&mut self, table: &TableName, changes: &[(usize, Change)]) -> Result<(), ConnectorError> {
        let mut key: Vec<String> = Vec::new();
        let mut columns: Vec<(String, ColumnType)> = Vec::new();
        for (_, change) in changes {
            let (change_key, row) = match change {
                Change::Write { key, row } => (key, row),
                Change::Delete { key } => (key, key),
                Change::Skip(_) => continue,
            };
            if key.is_empty() {
                key = change_key.keys().cloned().collect();
            }
            for (name, value) in row {
                match columns.iter_mut().find(|(known, _)| known == name) {
                    Some((_, column)) if column.sql_type == "text" && !value.is_null() && !value.is_string() => {
                        *column = ColumnType::for_value(value);
                    }
                    Some(_) => {}
                    None => columns.push((name.clone(), ColumnType::for_value(value))),
                }
            }
        }
        if self.config.pk_mode == PkMode::None {
            key.clear();
        }
        columns.sort_by_key(|(name, _)| key.iter().position(|known| known == name).unwrap_or(usize::MAX));
        let statement = sql::create_table(table, &columns, &key);
        pg::query(&statement)
            .map_err(|error| self.failed(&format!("creating table {}", table.display()), classify(error)))?;
        self.context.info(&format!("postgres-sink created table {}: {statement}", table.display()));
        let created = self.load_columns(table)?.unwrap_or_default();
        self.tables.insert(table.clone(), created);
        Ok(())
    }
}
