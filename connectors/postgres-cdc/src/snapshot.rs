//! The snapshot: every captured table read through a cursor in the `REPEATABLE READ`
//! transaction that imported the slot's exported snapshot (or a new one when snapshotting again
//! with the slot kept), as `op: "r"` events.

use std::sync::Arc;

use serde_json::Value;
use weir_connector_sdk::ConnectorError;
use weir_connector_sdk::postgres as pg;

use crate::catalog::{Table, pg_error, quote_ident, text_column};
use crate::config::{SnapshotLockingMode, SnapshotMode};
use crate::envelope::{EventSource, envelope, key_of, now_nanos, render_row};
use crate::pgoutput::TupleValue;
use crate::position::Position;
use crate::source::{Pending, Phase, PostgresCdc};

pub(crate) struct Snapshot {
    pub(crate) consistent_point: u64,
    pub(crate) tables: Vec<Table>,
    pub(crate) index: usize,
    pub(crate) cursor_open: bool,
    pub(crate) rows: u64,
    /// Rows of the current table so far.
    pub(crate) table_rows: u64,
    /// When the snapshot started (`source.ts_*`), microseconds since 1970.
    pub(crate) started_micros: i64,
    /// `source.txId` of the snapshot's records.
    pub(crate) xid: Option<u64>,
}

impl PostgresCdc {
    pub(crate) fn begin_snapshot(&mut self) -> Result<(), ConnectorError> {
        let created = pg::create_slot_with_snapshot(&self.config.slot_name, &self.config.publication_name)
            .map_err(pg_error("creating the replication slot"))?;
        let tables = self.published_tables()?;
        self.lock_tables(&tables)?;
        self.context.info(&format!(
            "snapshot of {} tables at {} started",
            tables.len(),
            pg::format_lsn(created.consistent_point)
        ));
        self.enter_snapshot(created.consistent_point, tables);
        Ok(())
    }

    /// `snapshot.locking.mode: shared`: the snapshot's transaction takes `ACCESS SHARE` locks on
    /// the tables it is about to read, held until it commits. PostgreSQL's `TRUNCATE` is not
    /// MVCC-safe: without the lock, a table truncated after the slot's snapshot was exported
    /// reads as empty to it, and its rows would never reach the topic (neither as reads nor, the
    /// truncate being skipped by default, as anything else).
    fn lock_tables(&self, tables: &[Table]) -> Result<(), ConnectorError> {
        if self.config.snapshot_locking_mode == SnapshotLockingMode::None || tables.is_empty() {
            return Ok(());
        }
        let names: Vec<String> =
            tables.iter().map(|table| format!("{}.{}", quote_ident(&table.schema), quote_ident(&table.name))).collect();
        pg::query(&format!(
            "SET LOCAL lock_timeout = '{}ms'; LOCK TABLE {} IN ACCESS SHARE MODE",
            self.config.snapshot_lock_timeout_ms,
            names.join(", ")
        ))
        .map_err(pg_error("locking the snapshot's tables (snapshot.locking.mode: shared)"))?;
        Ok(())
    }

    pub(crate) fn enter_snapshot(&mut self, consistent_point: u64, tables: Vec<Table>) {
        self.context.gauge("snapshot_running", 1);
        self.context.gauge("snapshot_tables_total", tables.len() as i64);
        self.context.gauge("snapshot_tables_done", 0);
        self.context.gauge("snapshot_rows", 0);
        let xid = self.snapshot_xid();
        self.phase = Phase::Snapshot(Snapshot {
            consistent_point,
            tables,
            index: 0,
            cursor_open: false,
            rows: 0,
            table_rows: 0,
            started_micros: now_nanos() / 1000,
            xid,
        });
    }

    /// Snapshot again while keeping the slot (an interrupted snapshot, or a slot made before any
    /// offset was committed): read in a new `REPEATABLE READ` transaction, which starts after the
    /// slot's confirmed position, then stream from that position. Every change after the
    /// snapshot arrives; some before it arrive too, and replaying the topic in order absorbs
    /// them. Dropping the slot instead would leave the rows the interrupted snapshot had already
    /// delivered and that were deleted meanwhile in the topic, with no delete event ever.
    pub(crate) fn snapshot_again(&mut self, confirmed: u64) -> Result<(), ConnectorError> {
        pg::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").map_err(pg_error("starting the snapshot"))?;
        let tables = self.published_tables()?;
        self.lock_tables(&tables)?;
        self.context.info(&format!(
            "snapshot of {} tables again, keeping slot {} (streaming from {} afterwards)",
            tables.len(),
            self.config.slot_name,
            pg::format_lsn(confirmed)
        ));
        self.enter_snapshot(confirmed, tables);
        Ok(())
    }

    pub(crate) fn snapshot_step(&mut self, max: usize) -> Result<(), ConnectorError> {
        let Phase::Snapshot(snapshot) = &mut self.phase else { return Ok(()) };
        let consistent_point = snapshot.consistent_point;
        if snapshot.index >= snapshot.tables.len() {
            let rows = snapshot.rows;
            if let Some(mut held) = self.held.take() {
                held.position.snapshot_done = true;
                held.mark_snapshot("last");
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
            snapshot.table_rows = 0;
        }
        let rows =
            pg::query_rows(&format!("FETCH {fetch} FROM weir_snapshot")).map_err(pg_error("reading the snapshot"))?;
        let table_done = rows.len() < fetch;
        let (rows_before, table_rows_before) = (snapshot.rows, snapshot.table_rows);
        if table_done {
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
        snapshot.table_rows += rows.len() as u64;
        // Progress per fetch (not per row): tables done, rows read so far.
        self.context.gauge("snapshot_tables_done", snapshot.index as i64);
        self.context.gauge("snapshot_rows", i64::try_from(snapshot.rows).unwrap_or(i64::MAX));
        let (source_micros, xid) = (snapshot.started_micros, snapshot.xid);
        // A table that ends on a fetch boundary: its last row is the one held back.
        if table_done
            && rows.is_empty()
            && table_rows_before > 0
            && let Some(held) = self.held.as_mut()
        {
            held.mark_snapshot("last_in_data_collection");
        }
        let now = now_nanos();
        let style = Arc::clone(&self.snapshot_style);
        let count = rows.len();
        let mut pending = Vec::with_capacity(count);
        for (index, mut row) in rows.into_iter().enumerate() {
            let tuple: Vec<TupleValue> = table
                .columns
                .iter()
                .map(|column| match row.remove(&column.name) {
                    Some(Value::String(text)) => TupleValue::Text(text),
                    _ => TupleValue::Null,
                })
                .collect();
            let key = key_of(&table, &tuple, None, &style);
            let after = render_row(&table, &tuple, None, &style);
            // Debezium's markers: the table's last row wins over its first.
            let marker = if table_done && index + 1 == count {
                "last_in_data_collection"
            } else if rows_before == 0 && index == 0 {
                "first"
            } else if table_rows_before == 0 && index == 0 {
                "first_in_data_collection"
            } else {
                "true"
            };
            let event = EventSource {
                op: "r",
                source_micros,
                snapshot: marker,
                last_commit_lsn: None,
                lsn: consistent_point,
                xid,
                transaction: None,
            };
            let (value, marker_at) = envelope(&table, None, Some(&after), &event, now);
            let position = Position { snapshot: true, consistent_point, ..Position::default() };
            pending.push(Pending {
                topic: table.topic.clone(),
                key,
                value: Some(value),
                timestamp: Some(now / 1_000_000),
                position,
                marker: Some((marker_at, marker.len())),
            });
        }
        for record in pending {
            self.hold(record);
        }
        Ok(())
    }

    /// The snapshot transaction's `source.txId`: the first transaction id not yet assigned when
    /// it started (`txid_current()`, which Debezium reads, would give the read-only snapshot an
    /// id of its own and make every slot creation on the server wait for the snapshot to end).
    fn snapshot_xid(&self) -> Option<u64> {
        let rows = pg::query_rows("SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS xid").ok()?;
        text_column(rows.first()?, "xid")?.parse().ok()
    }
}
