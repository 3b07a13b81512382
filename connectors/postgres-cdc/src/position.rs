//! Source positions: where a record sits in the snapshot or the stream, as the JSON the runtime
//! stores in the offsets topic (one source partition `{"server": <topic.prefix>}`):
//! - snapshot rows: `{"snapshot": true, "snapshot_done": false, "consistent_point": C}`; the last
//!   row of the snapshot says `"snapshot_done": true`. A snapshot interrupted before that row was
//!   committed is read again from the start, never skipped; the slot is kept and streaming then
//!   starts from its position, so the topic replayed in order still gives the table (see
//!   [`crate::source::PostgresCdc::snapshot_again`]).
//! - changes: `{"commit_lsn": F, "seq": n, "last": bool, "end_lsn": E}`: the transaction's commit
//!   LSN, the record's index in it, and whether it is the transaction's last record (then `E` is
//!   the commit's end LSN). `commit` acknowledges `E` to the slot only for a last record, so the
//!   slot never confirms part of a transaction; on restart the stream resumes from the slot and
//!   skips every record at or before the committed `(F, n)`.
//! - while an incremental snapshot runs, every change position also carries its progress,
//!   `"incremental": {...}` (see [`crate::incremental::Progress`]): the tables still to read, the
//!   key of the last row delivered of the first one and its largest key, paused or not. A record
//!   carries the progress as of when it was handed over, so the committed position says how far
//!   the snapshot got; a restart resumes it from there.

use std::sync::Arc;

/// A record's source position (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Position {
    #[serde(default)]
    pub(crate) snapshot: bool,
    #[serde(default)]
    pub(crate) snapshot_done: bool,
    #[serde(default)]
    pub(crate) consistent_point: u64,
    #[serde(default)]
    pub(crate) commit_lsn: u64,
    #[serde(default)]
    pub(crate) seq: u64,
    #[serde(default)]
    pub(crate) last: bool,
    #[serde(default)]
    pub(crate) end_lsn: u64,
    /// The incremental snapshot's progress as JSON (`None`: none runs), written as is.
    #[serde(skip)]
    pub(crate) incremental: Option<Arc<str>>,
}

/// The incremental snapshot's progress in a committed position.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct CommittedProgress {
    #[serde(default)]
    pub(crate) incremental: Option<crate::incremental::Progress>,
}

impl Position {
    /// The position as JSON into `out` (cleared first): what serde writes, without its
    /// machinery, once per record.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
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
        if let Some(progress) = &self.incremental {
            out.extend_from_slice(b",\"incremental\":");
            out.extend_from_slice(progress.as_bytes());
        }
        out.push(b'}');
    }
}

/// Decimal digits of `value`, without `core::fmt`.
///
/// In WASM a 64-bit division is a real `div` (there is no 64-bit multiply-high to turn a division
/// by a constant into a multiplication), so `value` is split into at most three parts below 10^8
/// (one or two divisions), and the parts are written with 32-bit arithmetic, two digits at a time.
pub(crate) fn write_u64(out: &mut Vec<u8>, value: u64) {
    const E8: u64 = 100_000_000;
    if let Ok(small) = u32::try_from(value) {
        write_u32(out, small);
    } else if value < E8 * E8 {
        write_u32(out, (value / E8) as u32);
        write_eight(out, (value % E8) as u32);
    } else {
        let high = value / E8;
        write_u32(out, (high / E8) as u32);
        write_eight(out, (high % E8) as u32);
        write_eight(out, (value % E8) as u32);
    }
}

/// Two-digit pairs `00` to `99`.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

fn write_u32(out: &mut Vec<u8>, mut value: u32) {
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    while value >= 100 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        start -= 2;
        digits[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if value >= 10 {
        start -= 2;
        let pair = value as usize * 2;
        digits[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        start -= 1;
        digits[start] = b'0' + value as u8;
    }
    out.extend_from_slice(&digits[start..]);
}

/// Exactly eight digits of `value` (below 10^8), zero-padded.
fn write_eight(out: &mut Vec<u8>, value: u32) {
    let (high, low) = ((value / 10_000) as usize, (value % 10_000) as usize);
    let mut digits = [0u8; 8];
    for (slot, part) in [high / 100, high % 100, low / 100, low % 100].into_iter().enumerate() {
        digits[slot * 2..slot * 2 + 2].copy_from_slice(&PAIRS[part * 2..part * 2 + 2]);
    }
    out.extend_from_slice(&digits);
}

pub(crate) fn write_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    write_u64(out, value.unsigned_abs());
}

/// The `(commit_lsn, seq)` mark of a change position: a last record covers its whole transaction.
pub(crate) fn mark(position: &Position) -> (u64, u64) {
    if position.last { (position.commit_lsn, u64::MAX) } else { (position.commit_lsn, position.seq) }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

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
    fn a_position_carries_the_incremental_progress_it_was_given() {
        let progress = crate::incremental::Progress {
            id: "ad-hoc-1".into(),
            tables: vec!["public.t".into(), "public.u".into()],
            last_key: Some(vec!["41".into()]),
            max_key: Some(vec!["20000".into()]),
            paused: true,
            rows: 1024,
        };
        let rendered: Arc<str> = Arc::from(serde_json::to_string(&progress).expect("JSON"));
        let position = Position { commit_lsn: 7, seq: 2, incremental: Some(rendered), ..Position::default() };
        let mut out = Vec::new();
        position.write_json(&mut out);
        let read: Position = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(read, Position { incremental: None, ..position });
        let committed: CommittedProgress = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(committed.incremental, Some(progress));
        Position::default().write_json(&mut out);
        assert!(serde_json::from_slice::<CommittedProgress>(&out).expect("JSON").incremental.is_none());
    }

    #[test]
    fn integers_write_their_digits() {
        let mut unsigned = vec![0, 9, 10, 99, 100, 101, u64::from(u32::MAX), u64::from(u32::MAX) + 1, u64::MAX];
        for power in 1..20 {
            let exact = 10u64.pow(power);
            unsigned.extend([exact - 1, exact, exact + 1, exact / 7 * 3]);
        }
        for value in unsigned {
            let mut out = Vec::new();
            write_u64(&mut out, value);
            assert_eq!(String::from_utf8(out).expect("ASCII"), value.to_string());
        }
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
