//! Atomic appends across partitions: records for several partitions and a commit batch (a source
//! task's offset record) that land together or not at all ([`crate::Log::append_atomic`]).
//!
//! One atomic append:
//! 1. holds every partition it writes, in one global order (two atomic appends never deadlock):
//!    no other append runs on them, and readers see only what was there before
//!    ([`WriteHold`]);
//! 2. writes an intent to the transaction journal, `<data_dir>/transactions.journal`: where each
//!    partition's part begins (offset, segment, byte) and how many records it has. Synced, so it
//!    is on disk before any record it covers can be;
//! 3. writes the records, then the commit batch, and syncs every partition at once;
//! 4. publishes: readers see all of it at once; the journal notes it settled (not synced).
//!
//! A failure in 3 truncates every partition back to where it began, notes the intent settled
//! (synced) and releases the partitions. A crash anywhere leaves the intent unsettled: reopening
//! the log keeps the append if every partition holds all of its part, and truncates every part
//! away otherwise. So two rounds of fsyncs (the intent, then all the data) make it atomic even
//! through a power loss. The journal is emptied at open, and when it has grown while no atomic
//! append is in flight.
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
const KIND_SETTLED: u8 = 2;

/// One partition's part of an atomic append: where it begins and how many records it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IntentPart {
    pub(crate) topic: String,
    pub(crate) partition: u32,
    pub(crate) start: HoldStart,
    pub(crate) records: u64,
}

/// An atomic append as the journal remembers it until it is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Intent {
    id: u64,
    parts: Vec<IntentPart>,
}

/// Where a test stops an atomic append (see [`Stop`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnStep {
    /// The intent is in the journal; nothing else is written.
    Intent,
    /// The records are written (not synced); the commit batch is not.
    Records,
    /// Everything is written and synced; nothing is published.
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

/// The transaction journal: intents, and notes that they settled, each framed as length,
/// CRC32C, body.
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
    body.extend_from_slice(&part.records.to_be_bytes());
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
    body.extend_from_slice(&(intent.parts.len() as u32).to_be_bytes());
    for part in &intent.parts {
        put_part(&mut body, part);
    }
    frame(&body)
}

fn encode_settled(id: u64) -> Vec<u8> {
    let mut body = vec![KIND_SETTLED];
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
        Some(IntentPart { topic, partition, start, records: self.u64()? })
    }
}

enum Entry {
    Intent(Intent),
    Settled(u64),
}

fn decode(body: &[u8]) -> Option<Entry> {
    let (&kind, rest) = body.split_first()?;
    let mut reader = Reader(rest);
    let id = reader.u64()?;
    match kind {
        KIND_SETTLED => Some(Entry::Settled(id)),
        KIND_INTENT => {
            let count = reader.u32()?;
            let parts = (0..count).map(|_| reader.part()).collect::<Option<Vec<_>>>()?;
            Some(Entry::Intent(Intent { id, parts }))
        }
        _ => None,
    }
}

/// The intents in `bytes` not settled, up to the first torn or damaged entry (written, at most,
/// by an append that then wrote nothing else).
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
            Some(Entry::Settled(id)) => intents.retain(|intent| intent.id != id),
            None => break,
        }
        rest = &after[len..];
    }
    intents
}

impl Journal {
    /// Opens (creating if needed) the journal in the data directory; returns it with the intents
    /// it holds that did not settle. Call [`Journal::clear`] once they are resolved.
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

    /// Records that an intent settled (committed, or undone), so a reopen leaves its partitions
    /// alone.
    fn settle(&self, id: u64, sync: bool) -> Result<(), LogError> {
        let mut inner = lock(&self.inner);
        self.write(&mut inner, &encode_settled(id), sync)
    }

    /// An intent is finished; `keep` when it failed without being undone.
    fn finish(&self, keep: bool) {
        let mut inner = lock(&self.inner);
        inner.in_flight -= 1;
        inner.keep |= keep;
    }
}

// --- recovery ---

/// Resolves the intents found at open against the recovered partitions: an intent whose every
/// partition holds all of its part is kept (it was synced whole, or reached the page cache whole
/// before the process died); any other is truncated away in every partition.
///
/// # Errors
/// [`LogError::Rollback`] when a partition is not where its intent says it was written; I/O.
pub(crate) fn recover(
    intents: &[Intent],
    partition: impl Fn(&str, u32) -> Option<Arc<Partition>>,
) -> Result<(), LogError> {
    for intent in intents {
        let handles: Vec<Option<Arc<Partition>>> =
            intent.parts.iter().map(|part| partition(&part.topic, part.partition)).collect();
        let whole = intent.parts.iter().zip(&handles).all(|(part, handle)| {
            // A deleted topic has nothing left to undo, and cannot say whether its part landed.
            handle.as_ref().is_none_or(|handle| handle.end_offset() >= part.start.offset + part.records as i64)
        });
        if whole {
            continue;
        }
        for (part, handle) in intent.parts.iter().zip(&handles) {
            if let Some(handle) = handle
                && handle.truncate_to(part.start)?
            {
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

    let records_in = |hold: &WriteHold<'_>| -> u64 {
        data.iter()
            .chain([&commit])
            .filter(|(partition, _)| std::ptr::eq(&**partition, hold.partition()))
            .map(|(_, encoded)| encoded.record_count())
            .sum()
    };
    let mut intent = Intent {
        id: 0,
        parts: holds
            .iter()
            .map(|hold| IntentPart {
                topic: hold.partition().topic().to_owned(),
                partition: hold.partition().id(),
                start: hold.start(),
                records: records_in(hold),
            })
            .collect(),
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
        check(TxnStep::Records)?;
        let at = hold_of(&holds, &commit.0);
        holds[at].append(&mut commit.1)?;
        if durable {
            let partitions: Vec<&Partition> = holds.iter().map(WriteHold::partition).collect();
            run_parallel(&partitions, |partition| partition.sync_if_dirty())?;
        }
        check(TxnStep::Commit)
    })();

    match outcome {
        Ok(()) => {
            holds.into_iter().for_each(WriteHold::publish);
            // Not synced: an intent found unsettled after a power loss is whole, and kept.
            if let Err(error) = journal.settle(intent.id, false) {
                tracing::warn!(%error, "could not note an atomic append settled; a reopen checks it instead");
            }
            journal.finish(false);
            Ok(results)
        }
        Err(error) if stop.is_some_and(|stop| stop.crash) => Err(error),
        Err(error) => {
            let undone =
                holds.iter_mut().try_for_each(WriteHold::undo).and_then(|()| journal.settle(intent.id, durable));
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
            records: 5,
        }
    }

    #[test]
    fn the_journal_keeps_intents_until_settled_and_stops_at_a_torn_entry() {
        let first = Intent { id: 7, parts: vec![part("weir-offsets", 40), part("a", 100)] };
        let second = Intent { id: 8, parts: vec![part("weir-offsets", 41), part("a", 200), part("bé", 9)] };
        let third = Intent { id: 9, parts: vec![part("weir-offsets", 43)] };
        let mut bytes = encode_intent(&first);
        bytes.extend(encode_intent(&second));
        bytes.extend(encode_settled(7));
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
