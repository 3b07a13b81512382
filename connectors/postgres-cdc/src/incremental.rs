//! Incremental snapshots (Debezium's, after Netflix's DBLog): tables read in chunks by primary
//! key while streaming goes on, without a lock, started by a signal ([`crate::signal`]).
//!
//! One chunk at a time, in a window of the stream:
//!
//! 1. **open**: in a `REPEATABLE READ` transaction, take the snapshot (`pg_current_snapshot()`)
//!    and read the next `incremental.snapshot.chunk.size` rows after the last key delivered, up
//!    to the table's largest key when its reading began (rows above it come by streaming);
//! 2. **close**: write a transactional logical message (the watermark) after the read. It
//!    reaches the stream after every transaction the read could see, since those committed
//!    before the read began;
//! 3. while the window is open, a streamed change of a key of the chunk (or a truncate of its
//!    table) drops that row from the chunk: the streamed event is as new as the read or newer.
//!    When the watermark arrives, the remaining rows are emitted as `op: "r"` reads with
//!    `source.snapshot: "incremental"`, in the watermark's transaction, so they take stream
//!    positions like any change.
//!
//! Every streamed event before the window must be one the read saw, or a chunk row would
//! overwrite a newer event with an older value. A transaction whose commit has already been
//! streamed can still be "in progress" to a snapshot taken a moment later (its commit record is
//! flushed before it leaves the server's list of running transactions), so a read whose
//! snapshot lists as in progress a transaction already streamed is rolled back and taken again.
//!
//! Progress ([`Progress`]) rides in the position of every record handed over while the snapshot
//! runs: the chunk's own rows carry the progress before the chunk (a restart between them reads
//! the chunk again), later records the progress after it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use weir_connector_sdk::ConnectorError;
use weir_connector_sdk::postgres as pg;

use crate::catalog::{Table, pg_error, quote_ident, quote_literal, text_column};
use crate::envelope::{EventSource, envelope, key_of, now_nanos, render_row};
use crate::pgoutput::TupleValue;
use crate::position::Position;
use crate::signal::split_collection;
use crate::source::{Pending, PostgresCdc};

/// The prefix of the watermark messages (`pg_logical_emit_message`).
pub(crate) const WATERMARK_PREFIX: &str = "weir_incremental_snapshot";
/// How many streamed transaction ids are remembered for the check of a chunk's snapshot: the
/// commits streamed since the previous read, and many more.
const RECENT_XIDS: usize = 4096;

/// How far an incremental snapshot got: what a committed position says about it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Progress {
    /// The id of the signal that started it.
    pub(crate) id: String,
    /// `schema.table` of the tables still to read; the first is being read.
    pub(crate) tables: Vec<String>,
    /// The key (each key column's text) of the last row delivered of the first table; none:
    /// from its start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_key: Option<Vec<String>>,
    /// The first table's largest key when its reading began; none: not begun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_key: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) paused: bool,
    /// Rows delivered so far.
    #[serde(default)]
    pub(crate) rows: u64,
}

impl Progress {
    fn render(&self) -> Arc<str> {
        Arc::from(serde_json::to_string(self).expect("progress serializes"))
    }
}

/// A running incremental snapshot.
pub(crate) struct Incremental {
    pub(crate) progress: Progress,
    /// `progress` as JSON, for the positions.
    pub(crate) rendered: Arc<str>,
    /// The first table, described once its reading began.
    table: Option<Arc<Table>>,
    pub(crate) window: Option<Window>,
    windows: u64,
    /// Makes watermarks unique across restarts of the task.
    nonce: i64,
}

impl Incremental {
    pub(crate) fn new(progress: Progress) -> Self {
        let rendered = progress.render();
        Incremental { progress, rendered, table: None, window: None, windows: 0, nonce: now_nanos() }
    }

    fn changed(&mut self) {
        self.rendered = self.progress.render();
    }

    /// The first table is done (or left out): on to the next.
    fn next_table(&mut self) {
        if !self.progress.tables.is_empty() {
            self.progress.tables.remove(0);
        }
        self.progress.last_key = None;
        self.progress.max_key = None;
        self.table = None;
        self.window = None;
        self.changed();
    }
}

/// A row of a chunk: its key and its `after` image.
type ChunkRow = (Option<Vec<u8>>, Vec<u8>);

/// An open window: a chunk read, waiting for its watermark.
pub(crate) struct Window {
    watermark: String,
    pub(crate) data_collection: Arc<str>,
    table: Arc<Table>,
    /// The chunk's rows, in key order; `None` once superseded.
    rows: Vec<Option<ChunkRow>>,
    keys: HashMap<Vec<u8>, usize>,
    /// The key of the chunk's last row.
    last_key: Option<Vec<String>>,
    /// Whether the chunk ends the table.
    table_done: bool,
}

impl Window {
    /// A streamed change of `key` in the window's table: the chunk's row of that key is older.
    pub(crate) fn supersede(&mut self, key: Option<&[u8]>) {
        if let Some(index) = key.and_then(|key| self.keys.remove(key)) {
            self.rows[index] = None;
        }
    }

    /// The table was truncated in the window: none of the chunk's rows exists any more.
    pub(crate) fn truncate(&mut self) {
        self.rows.iter_mut().for_each(|row| *row = None);
        self.keys.clear();
    }
}

/// The transaction ids of the latest transactions streamed (from their Begin on, so the open
/// one counts).
#[derive(Debug, Default)]
pub(crate) struct RecentXids(VecDeque<u32>);

impl RecentXids {
    pub(crate) fn push(&mut self, xid: u32) {
        if self.0.len() == RECENT_XIDS {
            self.0.pop_front();
        }
        self.0.push_back(xid);
    }

    fn contains(&self, xid: u32) -> bool {
        self.0.contains(&xid)
    }
}

/// The in-progress transaction ids of a `pg_snapshot` text (`xmin:xmax:xip,...`).
fn in_progress(snapshot: &str) -> Result<Vec<u64>, String> {
    let mut parts = snapshot.splitn(3, ':');
    let (Some(_xmin), Some(_xmax), Some(xip)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("`{snapshot}` is not a pg_snapshot"));
    };
    xip.split(',')
        .filter(|xid| !xid.is_empty())
        .map(|xid| xid.parse().map_err(|_| format!("`{snapshot}` is not a pg_snapshot")))
        .collect()
}

/// `"k1", "k2"` of the table's key columns.
fn key_columns(table: &Table) -> String {
    let columns: Vec<String> = table.key.iter().map(|name| quote_ident(name)).collect();
    columns.join(", ")
}

/// `("k1", "k2")` of the table's key columns.
fn key_tuple(table: &Table) -> String {
    format!("({})", key_columns(table))
}

fn literal_tuple(values: &[String]) -> String {
    let literals: Vec<String> = values.iter().map(|value| quote_literal(value)).collect();
    format!("({})", literals.join(", "))
}

/// The chunk after `last_key` up to `max_key`, in key order.
fn chunk_sql(table: &Table, progress: &Progress, chunk_size: u32) -> String {
    let key = key_tuple(table);
    let mut conditions = Vec::new();
    if let Some(last) = &progress.last_key {
        conditions.push(format!("{key} > {}", literal_tuple(last)));
    }
    if let Some(max) = &progress.max_key {
        conditions.push(format!("{key} <= {}", literal_tuple(max)));
    }
    format!(
        "SELECT * FROM {}.{}{} ORDER BY {} LIMIT {chunk_size}",
        quote_ident(&table.schema),
        quote_ident(&table.name),
        if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) },
        key_columns(table)
    )
}

/// A `data-collections` pattern, anchored as Debezium matches it (checked when the signal was
/// parsed).
fn anchored(pattern: &str) -> Option<regex_lite::Regex> {
    regex_lite::Regex::new(&format!("^(?:{pattern})$")).ok()
}

impl PostgresCdc {
    /// `execute-snapshot`: the captured, published tables with a primary key that the patterns
    /// match, added to the running incremental snapshot or starting one.
    pub(crate) fn execute_snapshot(&mut self, id: &str, patterns: &[String]) {
        let chosen = match self.snapshot_candidates(id, patterns) {
            Ok(chosen) => chosen,
            Err(error) => {
                self.context.warn(&format!("signal {id}: cannot choose the tables to snapshot: {error}"));
                return;
            }
        };
        if chosen.is_empty() {
            self.context.warn(&format!("signal {id}: no table to snapshot"));
            return;
        }
        match self.incremental.as_mut() {
            Some(incremental) => {
                let added: Vec<String> =
                    chosen.into_iter().filter(|name| !incremental.progress.tables.contains(name)).collect();
                if !added.is_empty() {
                    self.context.info(&format!(
                        "incremental snapshot {}: {} added by signal {id}",
                        incremental.progress.id,
                        added.join(", ")
                    ));
                    incremental.progress.tables.extend(added);
                    incremental.changed();
                }
            }
            None => {
                self.context.info(&format!("incremental snapshot {id} of {} started", chosen.join(", ")));
                self.incremental =
                    Some(Incremental::new(Progress { id: id.to_owned(), tables: chosen, ..Progress::default() }));
            }
        }
        self.report_incremental();
    }

    fn snapshot_candidates(&self, id: &str, patterns: &[String]) -> Result<Vec<String>, ConnectorError> {
        let captured: Vec<String> =
            self.candidate_tables()?.into_iter().map(|(schema, table)| format!("{schema}.{table}")).collect();
        let published: Vec<String> = pg::query_rows(&format!(
            "SELECT schemaname || '.' || tablename AS name FROM pg_publication_tables WHERE pubname = {}",
            quote_literal(&self.config.publication_name)
        ))
        .map_err(pg_error("listing the publication's tables"))?
        .iter()
        .filter_map(|row| text_column(row, "name"))
        .collect();
        let mut chosen: Vec<String> = Vec::new();
        for pattern in patterns {
            let Some(regex) = anchored(pattern) else { continue };
            let matched: Vec<&String> = captured.iter().filter(|name| regex.is_match(name)).collect();
            if matched.is_empty() {
                self.context.warn(&format!(
                    "signal {id}: `{pattern}` matches no captured table (see table.include.list, table.exclude.list)"
                ));
            }
            for name in matched {
                if !published.contains(name) {
                    self.context.warn(&format!(
                        "signal {id}: {name} is not in publication {}, so its changes would not stream: left out \
                         (ALTER PUBLICATION {} ADD TABLE {name})",
                        self.config.publication_name, self.config.publication_name
                    ));
                } else if !chosen.contains(name) {
                    chosen.push(name.clone());
                }
            }
        }
        let mut keyed = Vec::with_capacity(chosen.len());
        for name in chosen {
            match self.snapshot_table(&name)? {
                Some(_) => keyed.push(name),
                None => self.context.warn(&format!("signal {id}: {name} has no primary key: left out")),
            }
        }
        Ok(keyed)
    }

    /// A table to read in chunks: described, captured, with a primary key; `None` otherwise
    /// (or when it is gone).
    fn snapshot_table(&self, name: &str) -> Result<Option<Table>, ConnectorError> {
        let Some((schema, table)) = split_collection(name) else { return Ok(None) };
        let relation = format!("{}.{}", quote_ident(schema), quote_ident(table));
        match self.describe(&relation, schema.to_owned(), table.to_owned()) {
            Ok(described) if described.captured && !described.key.is_empty() => Ok(Some(described)),
            Ok(_) => Ok(None),
            Err(error) if error.is_retriable() => Err(error),
            Err(error) => {
                self.context.warn(&format!("incremental snapshot: cannot describe {name}: {}", error.message()));
                Ok(None)
            }
        }
    }

    /// `stop-snapshot`: these tables (all when empty) leave the incremental snapshot.
    pub(crate) fn stop_snapshot(&mut self, patterns: &[String]) {
        let Some(incremental) = self.incremental.as_mut() else {
            self.context.info("stop-snapshot: no incremental snapshot runs");
            return;
        };
        if patterns.is_empty() {
            self.context.info(&format!(
                "incremental snapshot {} stopped, {} rows delivered",
                incremental.progress.id, incremental.progress.rows
            ));
            self.finish_incremental();
            return;
        }
        let regexes: Vec<regex_lite::Regex> = patterns.iter().filter_map(|pattern| anchored(pattern)).collect();
        let stopped = |name: &String| regexes.iter().any(|regex| regex.is_match(name));
        let current_stopped = incremental.progress.tables.first().is_some_and(&stopped);
        let rest: Vec<String> =
            incremental.progress.tables.iter().skip(1).filter(|name| !stopped(name)).cloned().collect();
        if current_stopped {
            incremental.next_table();
            incremental.progress.tables = rest;
        } else {
            incremental.progress.tables.truncate(1);
            incremental.progress.tables.extend(rest);
        }
        incremental.changed();
        self.context.info(&format!(
            "incremental snapshot {}: still to read {}",
            incremental.progress.id,
            incremental.progress.tables.join(", ")
        ));
        if incremental.progress.tables.is_empty() {
            self.finish_incremental();
        }
        self.report_incremental();
    }

    /// `pause-snapshot` / `resume-snapshot`: no new chunk while paused (an open one completes).
    pub(crate) fn pause_snapshot(&mut self, paused: bool) {
        let Some(incremental) = self.incremental.as_mut() else {
            self.context.info("pause/resume-snapshot: no incremental snapshot runs");
            return;
        };
        if incremental.progress.paused != paused {
            incremental.progress.paused = paused;
            incremental.changed();
            let state = if paused { "paused" } else { "resumed" };
            self.context.info(&format!("incremental snapshot {} {state}", incremental.progress.id));
        }
        self.report_incremental();
    }

    fn finish_incremental(&mut self) {
        if let Some(incremental) = self.incremental.take() {
            self.context.info(&format!(
                "incremental snapshot {} done: {} rows",
                incremental.progress.id, incremental.progress.rows
            ));
            self.context
                .gauge("incremental_snapshot_rows", i64::try_from(incremental.progress.rows).unwrap_or(i64::MAX));
        }
        self.report_incremental();
    }

    /// The gauges: `incremental_snapshot_running`, `_paused`, `_tables_remaining`, `_rows`.
    pub(crate) fn report_incremental(&self) {
        let (running, paused, remaining) = match &self.incremental {
            Some(incremental) => {
                let progress = &incremental.progress;
                self.context.gauge("incremental_snapshot_rows", i64::try_from(progress.rows).unwrap_or(i64::MAX));
                (1, i64::from(progress.paused), progress.tables.len() as i64)
            }
            None => (0, 0, 0),
        };
        self.context.gauge("incremental_snapshot_running", running);
        self.context.gauge("incremental_snapshot_paused", paused);
        self.context.gauge("incremental_snapshot_tables_remaining", remaining);
    }

    /// The incremental snapshot a committed (or last handed over) position says runs.
    pub(crate) fn resume_incremental(&mut self, progress: Option<Progress>) {
        self.incremental = progress.map(Incremental::new);
        if let Some(incremental) = &self.incremental {
            self.context.info(&format!(
                "incremental snapshot {} resumes: {} after key {:?}",
                incremental.progress.id,
                incremental.progress.tables.join(", "),
                incremental.progress.last_key
            ));
        }
        self.report_incremental();
    }

    /// Between stream reads: REST signals, then the next chunk when no window is open.
    pub(crate) fn incremental_step(&mut self) -> Result<(), ConnectorError> {
        self.poll_rest_signals();
        // Bounded: tables left out or empty cost a query or two each.
        for _ in 0..16 {
            let Some(incremental) = self.incremental.as_ref() else { return Ok(()) };
            if incremental.progress.paused || incremental.window.is_some() {
                return Ok(());
            }
            let Some(name) = incremental.progress.tables.first().cloned() else {
                self.finish_incremental();
                return Ok(());
            };
            let table = match incremental.table.clone().filter(|table| *table.data_collection == *name) {
                Some(table) => table,
                None => match self.snapshot_table(&name)? {
                    Some(table) => {
                        let table = Arc::new(table);
                        if let Some(incremental) = self.incremental.as_mut() {
                            incremental.table = Some(Arc::clone(&table));
                        }
                        table
                    }
                    None => {
                        self.context.warn(&format!(
                            "incremental snapshot: {name} is gone, no longer captured or has no primary key: left out"
                        ));
                        self.next_incremental_table();
                        continue;
                    }
                },
            };
            if self.incremental.as_ref().is_some_and(|incremental| incremental.progress.max_key.is_none()) {
                let Some(max_key) = self.max_key(&table)? else {
                    self.context.info(&format!("incremental snapshot of {name}: the table is empty"));
                    self.next_incremental_table();
                    continue;
                };
                if let Some(incremental) = self.incremental.as_mut() {
                    incremental.progress.max_key = Some(max_key);
                    incremental.changed();
                }
            }
            return self.read_chunk(table);
        }
        Ok(())
    }

    fn next_incremental_table(&mut self) {
        if let Some(incremental) = self.incremental.as_mut() {
            incremental.next_table();
        }
        self.report_incremental();
    }

    /// The table's largest key now (each key column's text); none for an empty table.
    fn max_key(&self, table: &Table) -> Result<Option<Vec<String>>, ConnectorError> {
        let descending: Vec<String> = table.key.iter().map(|name| format!("{} DESC", quote_ident(name))).collect();
        let rows = pg::query_rows(&format!(
            "SELECT {} FROM {}.{} ORDER BY {} LIMIT 1",
            key_columns(table),
            quote_ident(&table.schema),
            quote_ident(&table.name),
            descending.join(", ")
        ))
        .map_err(pg_error("reading a table's largest key"))?;
        Ok(rows.first().and_then(|row| table.key.iter().map(|name| text_column(row, name)).collect()))
    }

    /// Open a window: read the next chunk of `table` and write the watermark.
    fn read_chunk(&mut self, table: Arc<Table>) -> Result<(), ConnectorError> {
        let Some(progress) = self.incremental.as_ref().map(|incremental| incremental.progress.clone()) else {
            return Ok(());
        };
        let chunk_size = self.config.incremental_snapshot_chunk_size.max(1);
        let snapshot = pg::query_rows(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_current_snapshot()::text AS snapshot",
        )
        .map_err(pg_error("starting an incremental snapshot chunk"))?;
        let running = in_progress(&snapshot.first().and_then(|row| text_column(row, "snapshot")).unwrap_or_default())
            .map_err(ConnectorError::Fatal)?;
        if running.iter().any(|xid| self.recent_xids.contains(*xid as u32)) {
            // A transaction already streamed is still running to this snapshot: take another.
            pg::query("ROLLBACK").map_err(pg_error("ending an incremental snapshot chunk"))?;
            self.context.debug("incremental snapshot: a streamed commit is not yet visible; reading the chunk again");
            return Ok(());
        }
        let rows = match pg::query_rows(&chunk_sql(&table, &progress, chunk_size)) {
            Ok(rows) => rows,
            Err(error) => {
                let _ = pg::query("ROLLBACK");
                if error.is_retriable() {
                    return Err(error.into_connector_error("reading an incremental snapshot chunk"));
                }
                self.context.warn(&format!(
                    "incremental snapshot of {}: the chunk read failed ({error}): table left out",
                    table.data_collection
                ));
                self.next_incremental_table();
                return Ok(());
            }
        };
        pg::query("COMMIT").map_err(pg_error("ending an incremental snapshot chunk"))?;
        let style = Arc::clone(&self.snapshot_style);
        let mut chunk = Vec::with_capacity(rows.len());
        let mut keys = HashMap::with_capacity(rows.len());
        let mut last_key = None;
        for mut row in rows {
            last_key = table.key.iter().map(|name| text_column(&row, name)).collect::<Option<Vec<String>>>();
            let tuple: Vec<TupleValue> = table
                .columns
                .iter()
                .map(|column| match row.remove(&column.name) {
                    Some(serde_json::Value::String(text)) => TupleValue::Text(text),
                    _ => TupleValue::Null,
                })
                .collect();
            let key = key_of(&table, &tuple, None, &style);
            if let Some(key) = &key {
                keys.insert(key.clone(), chunk.len());
            }
            chunk.push(Some((key, render_row(&table, &tuple, None, &style))));
        }
        let table_done = chunk.len() < chunk_size as usize || last_key.is_none() || last_key == progress.max_key;
        let Some(incremental) = self.incremental.as_mut() else { return Ok(()) };
        incremental.windows += 1;
        let watermark = format!("{}/{}/{}", progress.id, incremental.nonce, incremental.windows);
        pg::query(&format!(
            "SELECT pg_logical_emit_message(true, {}, {})",
            quote_literal(WATERMARK_PREFIX),
            quote_literal(&watermark)
        ))
        .map_err(pg_error("writing an incremental snapshot watermark"))?;
        incremental.window = Some(Window {
            watermark,
            data_collection: Arc::clone(&table.data_collection),
            table,
            rows: chunk,
            keys,
            last_key,
            table_done,
        });
        Ok(())
    }

    /// A watermark reached the stream (inside its own transaction): emit its window's rows.
    pub(crate) fn close_window(&mut self, lsn: u64, content: &[u8]) {
        let Some(incremental) = self.incremental.as_mut() else { return };
        let Some(window) = incremental.window.take_if(|window| window.watermark.as_bytes() == content) else {
            // A watermark of a window given up (a stop, a reconnect) or of an earlier run.
            return;
        };
        let Some(transaction) = self.transaction.as_mut() else { return };
        let now = now_nanos();
        let event = EventSource {
            op: "r",
            source_micros: now / 1000,
            snapshot: "incremental",
            last_commit_lsn: self.last_commit_lsn,
            lsn,
            xid: Some(u64::from(transaction.xid)),
            transaction: None,
        };
        // The chunk's rows carry the progress before the chunk (signals in the window included).
        let before = Arc::clone(&incremental.rendered);
        let mut records = Vec::with_capacity(window.rows.len());
        for (key, after) in window.rows.into_iter().flatten() {
            let (value, _) = envelope(&window.table, None, Some(&after), &event, now);
            let position = Position {
                commit_lsn: transaction.final_lsn,
                seq: transaction.seq,
                incremental: Some(Arc::clone(&before)),
                ..Position::default()
            };
            transaction.seq += 1;
            records.push(Pending {
                topic: window.table.topic.clone(),
                key,
                value: Some(value),
                timestamp: Some(now / 1_000_000),
                position,
                marker: None,
            });
        }
        incremental.progress.rows += records.len() as u64;
        if window.table_done {
            self.context.info(&format!(
                "incremental snapshot {}: {} done, {} rows so far",
                incremental.progress.id, window.data_collection, incremental.progress.rows
            ));
            incremental.next_table();
        } else {
            incremental.progress.last_key = window.last_key;
            incremental.changed();
        }
        for record in records {
            self.hold(record);
        }
        if self.incremental.as_ref().is_some_and(|incremental| incremental.progress.tables.is_empty()) {
            self.finish_incremental();
        } else {
            self.report_incremental();
        }
    }

    /// A streamed change of `key` in `table`: it supersedes the open chunk's row of that key.
    pub(crate) fn supersede(&mut self, table: &Table, key: Option<&[u8]>) {
        if let Some(window) = self.incremental.as_mut().and_then(|incremental| incremental.window.as_mut())
            && *window.data_collection == *table.data_collection
        {
            window.supersede(key);
        }
    }

    /// A streamed truncate of `table`: the open chunk of it is empty.
    pub(crate) fn truncated(&mut self, table: &Table) {
        if let Some(window) = self.incremental.as_mut().and_then(|incremental| incremental.window.as_mut())
            && *window.data_collection == *table.data_collection
        {
            window.truncate();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_list_their_running_transactions() {
        assert_eq!(in_progress("100:104:100,102"), Ok(vec![100, 102]));
        assert_eq!(in_progress("100:100:"), Ok(vec![]));
        assert!(in_progress("garbage").is_err());
        assert!(in_progress("1:2:x").is_err());
    }

    #[test]
    fn recent_xids_keep_the_latest() {
        let mut recent = RecentXids::default();
        for xid in 0..(RECENT_XIDS as u32 + 10) {
            recent.push(xid);
        }
        assert!(!recent.contains(9));
        assert!(recent.contains(10));
        assert!(recent.contains(RECENT_XIDS as u32 + 9));
    }

    #[test]
    fn chunks_read_after_the_last_key_up_to_the_largest_in_key_order() {
        let mut table = Table::new("public".into(), "t\"x".into(), Vec::new());
        table.key = vec!["a".into(), "b".into()];
        let mut progress = Progress { id: "s".into(), tables: vec!["public.t\"x".into()], ..Progress::default() };
        assert_eq!(
            chunk_sql(&table, &progress, 10),
            "SELECT * FROM \"public\".\"t\"\"x\" ORDER BY \"a\", \"b\" LIMIT 10"
        );
        progress.last_key = Some(vec!["1".into(), "it's".into()]);
        progress.max_key = Some(vec!["9".into(), "z".into()]);
        assert_eq!(
            chunk_sql(&table, &progress, 5),
            "SELECT * FROM \"public\".\"t\"\"x\" WHERE (\"a\", \"b\") > ('1', 'it''s') AND (\"a\", \"b\") <= ('9', 'z') \
             ORDER BY \"a\", \"b\" LIMIT 5"
        );
    }

    #[test]
    fn a_window_drops_superseded_and_truncated_rows() {
        let table = Arc::new(Table::new("public".into(), "t".into(), Vec::new()));
        let mut window = Window {
            watermark: "w".into(),
            data_collection: Arc::from("public.t"),
            table,
            rows: vec![Some((Some(b"1".to_vec()), b"{}".to_vec())), Some((Some(b"2".to_vec()), b"{}".to_vec()))],
            keys: HashMap::from([(b"1".to_vec(), 0), (b"2".to_vec(), 1)]),
            last_key: None,
            table_done: false,
        };
        window.supersede(Some(b"2"));
        window.supersede(Some(b"3"));
        window.supersede(None);
        assert_eq!(window.rows.iter().flatten().count(), 1);
        assert!(window.rows[1].is_none());
        window.truncate();
        assert_eq!(window.rows.iter().flatten().count(), 0);
    }
}
