//! The snapshot: every captured table read through a cursor in the `REPEATABLE READ`
//! transaction that imported the slot's exported snapshot (or a new one when snapshotting again
//! with the slot kept), as `op: "r"` events.

use serde_json::{Value, json};
use weir_connector_sdk::ConnectorError;
use weir_connector_sdk::postgres as pg;

use crate::catalog::{Table, pg_error, quote_ident};
use crate::config::SnapshotMode;
use crate::envelope::{envelope, key_of, now_ms, render_row};
use crate::pgoutput::TupleValue;
use crate::position::Position;
use crate::source::{Pending, Phase, PostgresCdc};

pub(crate) struct Snapshot {
    pub(crate) consistent_point: u64,
    pub(crate) tables: Vec<Table>,
    pub(crate) index: usize,
    pub(crate) cursor_open: bool,
    pub(crate) rows: u64,
}

impl PostgresCdc {
    pub(crate) fn begin_snapshot(&mut self) -> Result<(), ConnectorError> {
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

    pub(crate) fn enter_snapshot(&mut self, consistent_point: u64, tables: Vec<Table>) {
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
    pub(crate) fn snapshot_again(&mut self, confirmed: u64) -> Result<(), ConnectorError> {
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

    pub(crate) fn snapshot_step(&mut self, max: usize) -> Result<(), ConnectorError> {
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
}
