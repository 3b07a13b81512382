//! Debezium envelopes and row images, written straight to bytes (no intermediate JSON tree):
//! the per-change hot path. Field order and contents follow Debezium 3.6's PostgresConnector.

use crate::catalog::{Column, Table};
use crate::convert::{self, Modes};
use crate::pgoutput::TupleValue;
use crate::position::{write_i64, write_u64};
use crate::schema;

/// Nanoseconds since the epoch, now.
pub(crate) fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX))
}

pub(crate) fn now_ms() -> i64 {
    now_nanos() / 1_000_000
}

/// How cells are written: the handling modes and the unchanged-TOAST placeholder.
#[derive(Debug, Clone)]
pub(crate) struct CellStyle {
    pub(crate) modes: Modes,
    pub(crate) placeholder: String,
}

/// The `transaction` block of an event (`provide.transaction.metadata`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TransactionBlock {
    pub(crate) xid: u64,
    pub(crate) lsn: u64,
    pub(crate) total_order: u64,
    pub(crate) data_collection_order: u64,
}

/// What varies from event to event around the row images.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventSource<'a> {
    pub(crate) op: &'a str,
    /// `source.ts_*`: the commit time (streaming) or the snapshot's start, in microseconds.
    pub(crate) source_micros: i64,
    /// `source.snapshot`: `true`, `first`, ..., `false`.
    pub(crate) snapshot: &'a str,
    /// `source.sequence`: the last commit LSN before this event, and this event's LSN.
    pub(crate) last_commit_lsn: Option<u64>,
    pub(crate) lsn: u64,
    pub(crate) xid: Option<u64>,
    pub(crate) transaction: Option<TransactionBlock>,
}

/// A Debezium envelope, written straight to bytes (no intermediate JSON tree), in Debezium's
/// field order: `before`, `after`, `source`, `transaction`, `op`, `ts_ms`, `ts_us`, `ts_ns`;
/// wrapped as `{"schema", "payload"}` when the table has a value schema. Also returns where
/// `source.snapshot`'s text starts, so the snapshot can mark its last records afterwards.
pub(crate) fn envelope(
    table: &Table,
    before: Option<&[u8]>,
    after: Option<&[u8]>,
    event: &EventSource<'_>,
    now_nanos: i64,
) -> (Vec<u8>, usize) {
    let images = before.map_or(4, <[u8]>::len) + after.map_or(4, <[u8]>::len);
    let schema = table.value_schema.as_deref().unwrap_or("");
    let mut out = Vec::with_capacity(images + schema.len() + table.source_head.len() + 420);
    if !schema.is_empty() {
        out.extend_from_slice(b"{\"schema\":");
        out.extend_from_slice(schema.as_bytes());
        out.extend_from_slice(b",\"payload\":");
    }
    let image = |out: &mut Vec<u8>, image: Option<&[u8]>| out.extend_from_slice(image.unwrap_or(b"null"));
    out.extend_from_slice(b"{\"before\":");
    image(&mut out, before);
    out.extend_from_slice(b",\"after\":");
    image(&mut out, after);
    out.extend_from_slice(b",\"source\":");
    out.extend_from_slice(table.source_head.as_bytes());
    out.extend_from_slice(b"\"ts_ms\":");
    write_i64(&mut out, event.source_micros.div_euclid(1000));
    out.extend_from_slice(b",\"snapshot\":\"");
    let marker = out.len();
    out.extend_from_slice(event.snapshot.as_bytes());
    out.extend_from_slice(b"\",");
    out.extend_from_slice(table.source_db.as_bytes());
    out.extend_from_slice(b"\"sequence\":\"[");
    match event.last_commit_lsn {
        Some(lsn) => {
            out.extend_from_slice(b"\\\"");
            write_u64(&mut out, lsn);
            out.extend_from_slice(b"\\\"");
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\\\"");
    write_u64(&mut out, event.lsn);
    out.extend_from_slice(b"\\\"]\",\"ts_us\":");
    write_i64(&mut out, event.source_micros);
    out.extend_from_slice(b",\"ts_ns\":");
    write_i64(&mut out, event.source_micros.saturating_mul(1000));
    out.push(b',');
    out.extend_from_slice(table.source_table.as_bytes());
    out.extend_from_slice(b"\"txId\":");
    match event.xid {
        Some(xid) => write_u64(&mut out, xid),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"lsn\":");
    write_u64(&mut out, event.lsn);
    out.extend_from_slice(b",\"xmin\":null,\"origin\":null,\"origin_lsn\":null},\"transaction\":");
    match event.transaction {
        Some(block) => {
            out.extend_from_slice(b"{\"id\":\"");
            write_u64(&mut out, block.xid);
            out.push(b':');
            write_u64(&mut out, block.lsn);
            out.extend_from_slice(b"\",\"total_order\":");
            write_u64(&mut out, block.total_order);
            out.extend_from_slice(b",\"data_collection_order\":");
            write_u64(&mut out, block.data_collection_order);
            out.push(b'}');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"op\":\"");
    out.extend_from_slice(event.op.as_bytes());
    out.extend_from_slice(b"\",\"ts_ms\":");
    write_i64(&mut out, now_nanos / 1_000_000);
    out.extend_from_slice(b",\"ts_us\":");
    write_i64(&mut out, now_nanos / 1000);
    out.extend_from_slice(b",\"ts_ns\":");
    write_i64(&mut out, now_nanos);
    out.push(b'}');
    if !schema.is_empty() {
        out.push(b'}');
    }
    (out, marker)
}

/// Append the JSON of column `index` of `tuple`. An unchanged TOAST value is taken from `old`
/// when that has it (REPLICA IDENTITY FULL), otherwise it is the placeholder: never a silent null.
pub(crate) fn write_cell(
    out: &mut Vec<u8>,
    column: &Column,
    index: usize,
    tuple: &[TupleValue],
    old: Option<&[TupleValue]>,
    style: &CellStyle,
) {
    match tuple.get(index) {
        Some(TupleValue::Text(value)) => convert::write(out, &column.kind, value, &style.modes),
        Some(TupleValue::UnchangedToast) => match old.and_then(|old| old.get(index)) {
            Some(TupleValue::Text(value)) => convert::write(out, &column.kind, value, &style.modes),
            _ => convert::write_string(out, &style.placeholder),
        },
        Some(TupleValue::Binary(bytes)) => convert::write_string(out, &String::from_utf8_lossy(bytes)),
        Some(TupleValue::Null) | None => out.extend_from_slice(b"null"),
    }
}

/// A row image as a JSON object, in column order, written straight to bytes (see [`write_cell`]).
pub(crate) fn render_row(
    table: &Table,
    tuple: &[TupleValue],
    old: Option<&[TupleValue]>,
    style: &CellStyle,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 * table.columns.len() + 2);
    out.push(b'{');
    for (index, (column, column_key)) in table.columns.iter().zip(&table.column_keys).enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(column_key);
        write_cell(&mut out, column, index, tuple, old, style);
    }
    out.push(b'}');
    out
}

/// The record key: the primary key columns as a JSON object (wrapped with its schema when the
/// table has one), or none for a table without one.
pub(crate) fn key_of(
    table: &Table,
    tuple: &[TupleValue],
    old: Option<&[TupleValue]>,
    style: &CellStyle,
) -> Option<Vec<u8>> {
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
            Some(index) => write_cell(&mut out, &table.columns[*index], *index, tuple, old, style),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'}');
    Some(match &table.key_schema {
        Some(schema) => schema::wrap(schema, &out),
        None => out,
    })
}
