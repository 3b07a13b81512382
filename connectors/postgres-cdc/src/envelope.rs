//! Debezium envelopes and row images, written straight to bytes (no intermediate JSON tree):
//! the per-change hot path.

use crate::catalog::Table;
use crate::pgoutput::TupleValue;
use crate::position::{write_i64, write_u64};
use crate::values;

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

/// A Debezium envelope, written straight to bytes (no intermediate JSON tree): `before`,
/// `after`, `source`, `op`, `ts_ms`, in Debezium's order.
#[allow(clippy::too_many_arguments)]
pub(crate) fn envelope(
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
pub(crate) fn write_cell(
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
pub(crate) fn render_row(
    table: &Table,
    tuple: &[TupleValue],
    old: Option<&[TupleValue]>,
    placeholder: &str,
) -> Vec<u8> {
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
pub(crate) fn key_of(
    table: &Table,
    tuple: &[TupleValue],
    old: Option<&[TupleValue]>,
    placeholder: &str,
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
            Some(index) => write_cell(&mut out, table.columns[*index].1, *index, tuple, old, placeholder),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'}');
    Some(out)
}
