//! Atomic appends across partitions: records for several partitions and a commit batch (a source
//! task's offset record) that land together or not at all ([`crate::Log::append_atomic`]).
//!
//! One atomic append:
//! 1. holds every partition it writes, in one global order (two atomic appends never deadlock):
//!    no other append runs on them, and readers see only what was there before
//!    ([`WriteHold`]);
//! 2. writes an intent to the transaction journal, `<data_dir>/transactions.journal`: where each
//!    partition's part begins (offset, segment, byte). Synced, so it is on disk before any record
//!    it covers can be;
//! 3. writes the records and syncs them;
//! 4. writes the commit batch and syncs it: the commit point;
//! 5. publishes: readers see all of it at once.
//!
//! A failure in 3 or 4 truncates every partition back to where it began, notes an abort in the
//! journal and releases the partitions. A crash anywhere leaves the intent: reopening the log
//! finds the commit partition short of the commit batch and truncates every partition back, or
//! finds the commit batch whole and keeps everything. The journal is emptied at open, and when it
//! has grown while no atomic append is in flight.
//!
//! Only [`FlushPolicy::EveryBatch`] syncs: under the other policies the order of the writes
//! still keeps the append atomic through a killed process; a power loss can break it only for
//! what the policy may lose anyway.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::batch::EncodedBatches;
use crate::config::FlushPolicy;
use crate::error::LogError;
use crate::fs_util::{lock, run_parallel};
use crate::partition::{HoldStart, Partition, WriteHold};
use crate::record::AppendResult;

const JOURNAL_FILE: &str = "transactions.journal";
/// Past this size the journal is emptied when no atomic append is in flight.
const JOURNAL_RESET_BYTES: u64 = 1 << 20;
const ENTRY_HEADER_BYTES: usize = 8;
const KIND_INTENT: u8 = 1;
const KIND_ABORT: u8 = 2;

/// Where one partition's part of an atomic append begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IntentPart {
    pub(crate) topic: String,
    pub(crate) partition: u32,
    pub(crate) start: HoldStart,
}

/// An atomic append as the journal remembers it until it is known to be finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Intent {
    id: u64,
    /// The commit batch's partition, and how many records the append puts there in all: it is
    /// committed once that partition holds them.
    commit: IntentPart,
    commit_records: u64,
    data: Vec<IntentPart>,
}

/// Where a test stops an atomic append (see [`Stop`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnStep {
    /// The intent is in the journal; nothing else is written.
    Intent,
    /// The records are written and synced; the commit batch is not.
    Records,
    /// The commit batch is written and synced; nothing is published.
    Commit,
}

/// A test's stop in an atomic append: a crash (nothing else runs, as after kill -9) or an I/O
/// error there (the append undoes itself as after any failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stop {
    pub(crate) after: TxnStep,
    pub(crate) crash: bool,
}

fn stopped(step: TxnStep) -> LogError {
    LogError::Io {
        path: PathBuf::from("(test stop)"),
        source: std::io::Error::other(format!("stopped after {step:?}")),
    }
}

// --- journal ---

#[derive(Debug)]
struct JournalFile {
    file: File,
    len: u64,
    next_id: u64,
    in_flight: usize,
    /// An atomic append failed and could not be undone: its intent must stay for the reopen.
    keep: bool,
}

/// The transaction journal: intents and aborts, each framed as length, CRC32C, body.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    inner: Mutex<JournalFile>,
}

fn put_part(body: &mut Vec<u8>, part: &IntentPart) {
    body.extend_from_slice(&(part.topic.len() as u16).to_be_bytes());
    body.extend_from_slice(part.topic.as_bytes());
    body.extend_from_slice(&part.partition.to_be_bytes());
    body.extend_from_slice(&part.start.offset.to_be_bytes());
    body.extend_from_slice(&part.start.segment_base.to_be_bytes());
    body.extend_from_slice(&part.start.position.to_be_bytes());
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut entry = Vec::with_capacity(ENTRY_HEADER_BYTES + body.len());
    entry.extend_from_slice(&(body.len() as u32).to_be_bytes());
    entry.extend_from_slice(&crc32c::crc32c(body).to_be_bytes());
    entry.extend_from_slice(body);
    entry
}

fn encode_intent(intent: &Intent) -> Vec<u8> {
    let mut body = vec![KIND_INTENT];
    body.extend_from_slice(&intent.id.to_be_bytes());
    body.extend_from_slice(&intent.commit_records.to_be_bytes());
    put_part(&mut body, &intent.commit);
    body.extend_from_slice(&(intent.data.len() as u32).to_be_bytes());
    for part in &intent.data {
        put_part(&mut body, part);
    }
    frame(&body)
}

fn encode_abort(id: u64) -> Vec<u8> {
    let mut body = vec![KIND_ABORT];
    body.extend_from_slice(&id.to_be_bytes());
    frame(&body)
}

/// Reads big-endian fields off a body; `None` past its end.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_be_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }

    fn part(&mut self) -> Option<IntentPart> {
        let len = u16::from_be_bytes(self.take()?) as usize;
        if self.0.len() < len {
            return None;
        }
        let (topic, rest) = self.0.split_at(len);
        self.0 = rest;
        let topic = String::from_utf8(topic.to_vec()).ok()?;
        let partition = self.u32()?;
        let start = HoldStart { offset: self.i64()?, segment_base: self.i64()?, position: self.u64()? };
        Some(IntentPart { topic, partition, start })
    }
}

enum Entry {
    Intent(Intent),
    Abort(u64),
}

fn decode(body: &[u8]) -> Option<Entry> {
    let (&kind, rest) = body.split_first()?;
    let mut reader = Reader(rest);
    let id = reader.u64()?;
    match kind {
        KIND_ABORT => Some(Entry::Abort(id)),
        KIND_INTENT => {
            let commit_records = reader.u64()?;
            let commit = reader.part()?;
            let count = reader.u32()?;
            let data = (0..count).map(|_| reader.part()).collect::<Option<Vec<_>>>()?;
            Some(Entry::Intent(Intent { id, commit, commit_records, data }))
        }
        _ => None,
    }
}

/// The intents in `bytes` without an abort, up to the first torn or damaged entry (written, at
/// most, by an append that then wrote nothing else).
fn parse_journal(bytes: &[u8]) -> Vec<Intent> {
    let mut intents: Vec<Intent> = Vec::new();
    let mut rest = bytes;
    while let Some((header, after)) = rest.split_first_chunk::<ENTRY_HEADER_BYTES>() {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if after.len() < len || crc32c::crc32c(&after[..len]) != crc {
            break;
        }
        match decode(&after[..len]) {
            Some(Entry::Intent(intent)) => intents.push(intent),
            Some(Entry::Abort(id)) => intents.retain(|intent| intent.id != id),
            None => break,
        }
        rest = &after[len..];
    }
    intents
}

impl Journal {
    /// Opens (creating if needed) the journal in the data directory; returns it with the intents
    /// it holds that were not aborted. Call [`Journal::clear`] once they are resolved.
    pub(crate) fn open(dir: &Path) -> Result<(Self, Vec<Intent>), LogError> {
        let path = dir.join(JOURNAL_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(LogError::io(&path))?;
        let bytes = std::fs::read(&path).map_err(LogError::io(&path))?;
        let intents = parse_journal(&bytes);
        let next_id = intents.iter().map(|intent| intent.id + 1).max().unwrap_or(0);
        let inner = JournalFile { file, len: bytes.len() as u64, next_id, in_flight: 0, keep: false };
        Ok((Journal { path, inner: Mutex::new(inner) }, intents))
    }

    /// Empties the journal, durably.
    pub(crate) fn clear(&self) -> Result<(), LogError> {
        let mut inner = lock(&self.inner);
        Self::reset(&self.path, &mut inner)
    }

    fn reset(path: &Path, inner: &mut JournalFile) -> Result<(), LogError> {
        if inner.len > 0 {
            inner.file.set_len(0).map_err(LogError::io(path))?;
            inner.file.sync_data().map_err(LogError::io(path))?;
            inner.len = 0;
        }
        Ok(())
    }

    fn write(&self, inner: &mut JournalFile, entry: &[u8], sync: bool) -> Result<(), LogError> {
        inner.file.write_all_at(entry, inner.len).map_err(LogError::io(&self.path))?;
        inner.len += entry.len() as u64;
        if sync {
            inner.file.sync_data().map_err(LogError::io(&self.path))?;
        }
        Ok(())
    }

    /// Records an intent (its id assigned here) and counts it in flight.
    fn begin(&self, intent: &mut Intent, sync: bool) -> Result<(), LogError> {
        let mut inner = lock(&self.inner);
        if inner.in_flight == 0 && !inner.keep && inner.len > JOURNAL_RESET_BYTES {
            Self::reset(&self.path, &mut inner)?;
        }
        intent.id = inner.next_id;
        inner.next_id += 1;
        self.write(&mut inner, &encode_intent(intent), sync)?;
        inner.in_flight += 1;
        Ok(())
    }

    /// Records that an intent was undone, so a reopen leaves its partitions alone.
    fn abort(&self, id: u64, sync: bool) -> Result<(), LogError> {
        let mut inner = lock(&self.inner);
        self.write(&mut inner, &encode_abort(id), sync)
    }

    /// An intent is finished; `keep` when it failed without being undone.
    fn finish(&self, keep: bool) {
        let mut inner = lock(&self.inner);
        inner.in_flight -= 1;
        inner.keep |= keep;
    }
}

// --- recovery ---

/// Resolves the intents found at open against the recovered partitions: an intent whose commit
/// partition holds all of its records is kept; any other is truncated away in every partition.
///
/// # Errors
/// [`LogError::Rollback`] when a partition is not where its intent says it was written; I/O.
pub(crate) fn recover(
    intents: &[Intent],
    partition: impl Fn(&str, u32) -> Option<Arc<Partition>>,
) -> Result<(), LogError> {
    for intent in intents {
        let Some(commit) = partition(&intent.commit.topic, intent.commit.partition) else {
            // The topic was deleted: nothing of the append is left to undo there, and the
            // other partitions cannot tell a commit apart; keep what they hold.
            tracing::warn!(
                topic = intent.commit.topic,
                partition = intent.commit.partition,
                "the commit partition of an unfinished atomic append is gone; keeping its records"
            );
            continue;
        };
        if commit.end_offset() >= intent.commit.start.offset + intent.commit_records as i64 {
            continue;
        }
        for part in intent.data.iter().chain([&intent.commit]) {
            let Some(handle) = partition(&part.topic, part.partition) else { continue };
            if handle.truncate_to(part.start)? {
                tracing::warn!(
                    topic = part.topic,
                    partition = part.partition,
                    offset = part.start.offset,
                    "rolled back an unfinished atomic append"
                );
            }
        }
    }
    Ok(())
}

// --- the append ---

/// The index in `holds` of `partition`'s hold.
fn hold_of(holds: &[WriteHold<'_>], partition: &Partition) -> usize {
    holds.iter().position(|hold| std::ptr::eq(hold.partition(), partition)).unwrap_or_default()
}

/// Writes `data` (records per partition) and then `commit` as one unit; see the module docs.
/// Results are `data`'s, in input order.
///
/// # Errors
/// Whatever a write or sync fails with; nothing of the append is then visible, now or after a
/// reopen. [`LogError::PartitionFailed`] later on a partition whose undo failed too.
pub(crate) fn append_atomic(
    journal: &Journal,
    flush: FlushPolicy,
    mut data: Vec<(Arc<Partition>, EncodedBatches)>,
    mut commit: (Arc<Partition>, EncodedBatches),
    stop: Option<Stop>,
) -> Result<Vec<AppendResult>, LogError> {
    // Each partition once, in (topic, partition) order, with the bytes it is about to take.
    let mut involved: Vec<(Arc<Partition>, u64)> = Vec::new();
    for (partition, encoded) in data.iter().chain([&commit]) {
        let bytes = encoded.bytes().len() as u64;
        match involved.iter_mut().find(|(seen, _)| Arc::ptr_eq(seen, partition)) {
            Some((_, total)) => *total += bytes,
            None => involved.push((Arc::clone(partition), bytes)),
        }
    }
    involved.sort_by(|(a, _), (b, _)| (a.topic(), a.id()).cmp(&(b.topic(), b.id())));
    let mut holds = involved.iter().map(|(partition, bytes)| partition.hold(*bytes)).collect::<Result<Vec<_>, _>>()?;

    let part = |hold: &WriteHold<'_>| IntentPart {
        topic: hold.partition().topic().to_owned(),
        partition: hold.partition().id(),
        start: hold.start(),
    };
    let commit_at = hold_of(&holds, &commit.0);
    let commit_records = data
        .iter()
        .chain([&commit])
        .filter(|(partition, _)| Arc::ptr_eq(partition, &commit.0))
        .map(|(_, encoded)| encoded.record_count())
        .sum();
    let written: Vec<usize> = {
        let mut indexes: Vec<usize> = data.iter().map(|(partition, _)| hold_of(&holds, partition)).collect();
        indexes.sort_unstable();
        indexes.dedup();
        indexes
    };
    let mut intent = Intent {
        id: 0,
        commit: part(&holds[commit_at]),
        commit_records,
        data: written.iter().map(|&index| part(&holds[index])).collect(),
    };
    let durable = flush == FlushPolicy::EveryBatch;
    journal.begin(&mut intent, durable)?;

    let mut results = Vec::with_capacity(data.len());
    let outcome = (|| {
        let check = |step: TxnStep| match stop {
            Some(stop) if stop.after == step => Err(stopped(step)),
            _ => Ok(()),
        };
        check(TxnStep::Intent)?;
        for (partition, encoded) in &mut data {
            let at = hold_of(&holds, partition);
            results.push(holds[at].append(encoded)?);
        }
        if durable {
            let touched: Vec<&Partition> = written.iter().map(|&index| holds[index].partition()).collect();
            run_parallel(&touched, |partition| partition.sync_if_dirty())?;
        }
        check(TxnStep::Records)?;
        holds[commit_at].append(&mut commit.1)?;
        if durable {
            holds[commit_at].partition().sync_if_dirty()?;
        }
        check(TxnStep::Commit)
    })();

    match outcome {
        Ok(()) => {
            holds.into_iter().for_each(WriteHold::publish);
            journal.finish(false);
            Ok(results)
        }
        Err(error) if stop.is_some_and(|stop| stop.crash) => Err(error),
        Err(error) => {
            let undone =
                holds.iter_mut().try_for_each(WriteHold::undo).and_then(|()| journal.abort(intent.id, durable));
            match undone {
                Ok(()) => {
                    holds.into_iter().for_each(WriteHold::publish);
                    journal.finish(false);
                }
                Err(undo_error) => {
                    tracing::error!(%error, %undo_error, "an atomic append failed and could not be undone");
                    holds.into_iter().for_each(WriteHold::poison);
                    journal.finish(true);
                }
            }
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(topic: &str, offset: i64) -> IntentPart {
        IntentPart {
            topic: topic.to_owned(),
            partition: 3,
            start: HoldStart { offset, segment_base: offset - 10, position: 4096 },
        }
    }

    #[test]
    fn the_journal_keeps_intents_until_aborted_and_stops_at_a_torn_entry() {
        let first = Intent { id: 7, commit: part("weir-offsets", 40), commit_records: 1, data: vec![part("a", 100)] };
        let second = Intent {
            id: 8,
            commit: part("weir-offsets", 41),
            commit_records: 2,
            data: vec![part("a", 200), part("bé", 9)],
        };
        let third = Intent { id: 9, commit: part("weir-offsets", 43), commit_records: 1, data: vec![] };
        let mut bytes = encode_intent(&first);
        bytes.extend(encode_intent(&second));
        bytes.extend(encode_abort(7));
        assert_eq!(parse_journal(&bytes), vec![second.clone()]);
        let whole = bytes.len();
        bytes.extend(encode_intent(&third));
        assert_eq!(parse_journal(&bytes), vec![second.clone(), third]);
        for cut in whole..bytes.len() {
            assert_eq!(parse_journal(&bytes[..cut]), vec![second.clone()], "torn at {cut}");
        }
        let mut damaged = bytes.clone();
        damaged[whole + ENTRY_HEADER_BYTES + 3] ^= 1;
        assert_eq!(parse_journal(&damaged), vec![second]);
    }
}
