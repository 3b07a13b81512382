//! Segments: the files a partition is made of.
//!
//! A partition directory holds one `.log` file per segment, named by the segment's base offset
//! (`00000000000000000000.log`, zero-padded to 20 digits so names sort like offsets), next to its
//! `.index` and `.timeindex` (see [`crate::index`]). Exactly one segment, the last, takes
//! appends: [`ActiveSegment`]. Rolling seals it into a [`SealedSegment`], a read-only value that
//! retention may delete whole.
//!
//! Sealing fsyncs the segment's data and both indexes whatever the flush policy (one fsync per
//! segment, negligible), so after any crash every sealed segment is known to be whole and only
//! the active segment needs scanning ([`crate::validator`]).
//!
//! Reads go through [`BatchReader`] on a [`SegmentSlice`]: a handle to the file plus a byte range
//! captured under the partition lock. Positional reads (`pread`) on a shared handle let readers
//! run outside the lock while appends continue, and keep working on a segment that retention has
//! just unlinked.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::{BATCH_HEADER_SIZE, BatchError, BatchHeader, BatchSpan, EncodedBatches};
use crate::error::LogError;
use crate::fs_util::remove_file_if_exists;
use crate::index::{
    IndexBuilder, IndexedBatch, OffsetIndexEntry, TimeIndexEntry, parse_offset_index, parse_time_index,
};
use crate::validator::{OffsetSequence, ScanOutcome, scan_segment};

/// How much a reader fetches from the file at a time (more if one batch is bigger).
const READ_AHEAD_BYTES: usize = 64 * 1024;

/// The three files of a segment.
#[derive(Clone, Debug)]
pub(crate) struct SegmentPaths {
    pub(crate) log: Arc<Path>,
    pub(crate) index: PathBuf,
    pub(crate) time_index: PathBuf,
}

impl SegmentPaths {
    pub(crate) fn new(dir: &Path, base_offset: i64) -> Self {
        let stem = format!("{base_offset:020}");
        SegmentPaths {
            log: dir.join(format!("{stem}.log")).into(),
            index: dir.join(format!("{stem}.index")),
            time_index: dir.join(format!("{stem}.timeindex")),
        }
    }

    fn delete(&self) -> Result<(), LogError> {
        // The log first: an index without its log is ignored (and cleaned) at the next open.
        remove_file_if_exists(&self.log)?;
        remove_file_if_exists(&self.index)?;
        remove_file_if_exists(&self.time_index)
    }
}

/// The base offset named by a segment file name like `00000000000000001234.log`.
pub(crate) fn parse_segment_file_name(name: &str, extension: &str) -> Option<i64> {
    let stem = name.strip_suffix(extension)?;
    if stem.len() != 20 || !stem.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// A byte range of a segment file to read, captured under the partition lock.
#[derive(Clone, Debug)]
pub(crate) struct SegmentSlice {
    pub(crate) log: Arc<File>,
    pub(crate) path: Arc<Path>,
    pub(crate) start: u64,
    pub(crate) end: u64,
}

/// One batch as read from a file, header checked, CRC not yet checked.
#[derive(Debug)]
pub(crate) struct RawBatch {
    pub(crate) position: u64,
    pub(crate) header: BatchHeader,
    pub(crate) bytes: Bytes,
}

/// Reads whole batches from a byte range of a segment, a chunk at a time. Framing damage comes
/// back as [`LogError::SegmentCorrupt`] with the batch's position; I/O failures as
/// [`LogError::Io`].
#[derive(Debug)]
pub(crate) struct BatchReader<'a> {
    file: &'a File,
    path: &'a Arc<Path>,
    position: u64,
    end: u64,
    chunk: Bytes,
    chunk_start: u64,
    bytes_read: u64,
}

impl<'a> BatchReader<'a> {
    pub(crate) fn new(file: &'a File, path: &'a Arc<Path>, start: u64, end: u64) -> Self {
        BatchReader { file, path, position: start, end, chunk: Bytes::new(), chunk_start: start, bytes_read: 0 }
    }

    pub(crate) fn for_slice(slice: &'a SegmentSlice) -> Self {
        BatchReader::new(&slice.log, &slice.path, slice.start, slice.end)
    }

    fn corrupt(&self, source: BatchError) -> LogError {
        LogError::SegmentCorrupt { path: self.path.to_path_buf(), position: self.position, source }
    }

    /// Makes `len` bytes from `self.position` available in `self.chunk`; returns their start
    /// index in the chunk.
    fn fill(&mut self, len: usize) -> Result<usize, LogError> {
        let chunk_end = self.chunk_start + self.chunk.len() as u64;
        if self.position >= self.chunk_start && self.position + len as u64 <= chunk_end {
            return Ok((self.position - self.chunk_start) as usize);
        }
        let available = (self.end - self.position) as usize;
        let read_len = len.max(READ_AHEAD_BYTES).min(available);
        let mut buf = vec![0u8; read_len];
        self.file.read_exact_at(&mut buf, self.position).map_err(LogError::io(self.path.to_path_buf()))?;
        self.bytes_read += read_len as u64;
        self.chunk = Bytes::from(buf);
        self.chunk_start = self.position;
        Ok(0)
    }

    /// Bytes read from the file so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next whole batch, or `None` at the end of the range.
    pub(crate) fn next_batch(&mut self) -> Result<Option<RawBatch>, LogError> {
        if self.position >= self.end {
            return Ok(None);
        }
        let remaining = self.end - self.position;
        if remaining < BATCH_HEADER_SIZE as u64 {
            return Err(
                self.corrupt(BatchError::Truncated { needed: BATCH_HEADER_SIZE, available: remaining as usize })
            );
        }
        let at = self.fill(BATCH_HEADER_SIZE)?;
        let header = BatchHeader::parse(&self.chunk[at..]).map_err(|error| self.corrupt(error))?;
        let size = header.size();
        if size as u64 > remaining {
            return Err(self.corrupt(BatchError::Truncated { needed: size, available: remaining as usize }));
        }
        let at = self.fill(size)?;
        let batch = RawBatch { position: self.position, header, bytes: self.chunk.slice(at..at + size) };
        self.position += size as u64;
        Ok(Some(batch))
    }
}

fn open_log_for_append(path: &Path, create: bool) -> Result<File, LogError> {
    OpenOptions::new().read(true).write(true).create_new(create).open(path).map_err(LogError::io(path))
}

fn open_index_for_append(path: &Path) -> Result<File, LogError> {
    OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path).map_err(LogError::io(path))
}

pub(crate) fn encode_entries<const N: usize, T: Copy>(entries: &[T], to_bytes: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    entries.iter().flat_map(|entry| to_bytes(*entry)).collect()
}

/// The segment that takes appends.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    base_offset: i64,
    paths: SegmentPaths,
    log: Arc<File>,
    index_file: File,
    time_index_file: File,
    size: u64,
    next_offset: i64,
    index: Vec<OffsetIndexEntry>,
    time_index: Vec<TimeIndexEntry>,
    builder: IndexBuilder,
    /// The in-memory indexes hold entries the files missed (a failed index write); sealing
    /// rewrites the files whole.
    index_files_stale: bool,
}

/// What recovery found in the active segment.
#[derive(Debug)]
pub(crate) struct RecoveryReport {
    pub(crate) truncated_bytes: u64,
    pub(crate) damage: Option<(u64, BatchError)>,
}

impl ActiveSegment {
    /// Creates a new, empty segment starting at `base_offset`.
    pub(crate) fn create(dir: &Path, base_offset: i64, index_interval: u32) -> Result<Self, LogError> {
        let paths = SegmentPaths::new(dir, base_offset);
        let log = open_log_for_append(&paths.log, true)?;
        Ok(ActiveSegment {
            base_offset,
            index_file: open_index_for_append(&paths.index)?,
            time_index_file: open_index_for_append(&paths.time_index)?,
            paths,
            log: Arc::new(log),
            size: 0,
            next_offset: base_offset,
            index: Vec::new(),
            time_index: Vec::new(),
            builder: IndexBuilder::new(index_interval),
            index_files_stale: false,
        })
    }

    /// Reopens the last segment of a partition after a restart (clean or not): keeps every whole
    /// batch that passes its checks, truncates the file after the first one that does not (a
    /// torn write or corruption: nothing after it can be trusted to be in sequence), and rebuilds
    /// both indexes from the scan, since their tails may be as torn as the log's.
    pub(crate) fn recover(
        dir: &Path,
        base_offset: i64,
        index_interval: u32,
    ) -> Result<(Self, RecoveryReport), LogError> {
        let paths = SegmentPaths::new(dir, base_offset);
        let log = open_log_for_append(&paths.log, false)?;
        let size = log.metadata().map_err(LogError::io(&*paths.log))?.len();
        let ScanOutcome { valid_size, next_offset, index, time_index, builder, damage } =
            scan_segment(&log, &paths.log, base_offset, size, index_interval, OffsetSequence::Contiguous)?;
        if valid_size < size {
            log.set_len(valid_size).map_err(LogError::io(&*paths.log))?;
            log.sync_all().map_err(LogError::io(&*paths.log))?;
        }
        let index_file = open_index_for_append(&paths.index)?;
        index_file
            .write_all_at(&encode_entries(&index, OffsetIndexEntry::to_bytes), 0)
            .map_err(LogError::io(&paths.index))?;
        let time_index_file = open_index_for_append(&paths.time_index)?;
        time_index_file
            .write_all_at(&encode_entries(&time_index, TimeIndexEntry::to_bytes), 0)
            .map_err(LogError::io(&paths.time_index))?;
        let segment = ActiveSegment {
            base_offset,
            paths,
            log: Arc::new(log),
            index_file,
            time_index_file,
            size: valid_size,
            next_offset,
            index,
            time_index,
            builder,
            index_files_stale: false,
        };
        let report = RecoveryReport { truncated_bytes: size - valid_size, damage };
        Ok((segment, report))
    }

    /// Cuts the segment back to its first `position` bytes (a batch boundary), durably, and
    /// rebuilds its indexes from what stays. Readers holding a slice of the old file handle keep
    /// reading the bytes they captured, which all lie below their own end.
    pub(crate) fn truncate(&mut self, dir: &Path, position: u64, index_interval: u32) -> Result<(), LogError> {
        self.log.set_len(position).map_err(LogError::io(&*self.paths.log))?;
        self.log.sync_all().map_err(LogError::io(&*self.paths.log))?;
        let (segment, report) = ActiveSegment::recover(dir, self.base_offset, index_interval)?;
        if let Some((at, error)) = &report.damage {
            tracing::warn!(segment = %self.paths.log.display(), position = at, %error, "truncated a corrupt batch below the undone append too");
        }
        *self = segment;
        Ok(())
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn log(&self) -> &Arc<File> {
        &self.log
    }

    pub(crate) fn log_path(&self) -> &Arc<Path> {
        &self.paths.log
    }

    pub(crate) fn max_timestamp(&self) -> Option<i64> {
        self.builder.max_timestamp()
    }

    pub(crate) fn offset_index(&self) -> &[OffsetIndexEntry] {
        &self.index
    }

    pub(crate) fn time_index(&self) -> &[TimeIndexEntry] {
        &self.time_index
    }

    /// Writes the batches `spans` of `encoded` (consecutive, first record at offset
    /// `append_base + spans[0].first_record`) at the end of the segment in one write.
    pub(crate) fn append_run(
        &mut self,
        encoded: &EncodedBatches,
        spans: &[BatchSpan],
        append_base: i64,
    ) -> Result<(), LogError> {
        let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
            return Ok(());
        };
        let run = &encoded.bytes()[first.position..last.position + last.len];
        self.log.write_all_at(run, self.size).map_err(LogError::io(&*self.paths.log))?;
        let mut new_index = Vec::new();
        let mut new_time_index = Vec::new();
        for span in spans {
            let batch_base = append_base + span.first_record as i64;
            let batch_last = batch_base + i64::from(span.record_count) - 1;
            let (offset_entry, time_entry) = self.builder.on_batch(IndexedBatch {
                base_relative_offset: (batch_base - self.base_offset) as u32,
                last_relative_offset: (batch_last - self.base_offset) as u32,
                position: (self.size + (span.position - first.position) as u64) as u32,
                len: span.len as u64,
                max_timestamp: span.max_timestamp,
            });
            new_index.extend(offset_entry);
            new_time_index.extend(time_entry);
            self.next_offset = batch_last + 1;
        }
        self.size += run.len() as u64;
        self.push_index_entries(&new_index, &new_time_index);
        Ok(())
    }

    /// Appends entries to the in-memory indexes and (best effort) their files. A failed index
    /// write does not fail the append: the data is written, recovery rebuilds the active
    /// segment's indexes anyway, and sealing rewrites stale files.
    fn push_index_entries(&mut self, index: &[OffsetIndexEntry], time_index: &[TimeIndexEntry]) {
        if !index.is_empty() {
            let at = (self.index.len() * crate::index::OFFSET_INDEX_ENTRY_SIZE) as u64;
            if let Err(error) = self.index_file.write_all_at(&encode_entries(index, OffsetIndexEntry::to_bytes), at) {
                tracing::warn!(path = %self.paths.index.display(), %error, "offset index write failed; it will be rewritten at seal");
                self.index_files_stale = true;
            }
            self.index.extend_from_slice(index);
        }
        if !time_index.is_empty() {
            let at = (self.time_index.len() * crate::index::TIME_INDEX_ENTRY_SIZE) as u64;
            if let Err(error) =
                self.time_index_file.write_all_at(&encode_entries(time_index, TimeIndexEntry::to_bytes), at)
            {
                tracing::warn!(path = %self.paths.time_index.display(), %error, "time index write failed; it will be rewritten at seal");
                self.index_files_stale = true;
            }
            self.time_index.extend_from_slice(time_index);
        }
    }

    /// Makes the segment ready to be sealed: adds the final time-index entry and fsyncs the data
    /// and both indexes. Done before the next segment's file exists, so a crash in between
    /// leaves this segment as the (recoverable) last one.
    pub(crate) fn prepare_seal(&mut self) -> Result<(), LogError> {
        if let Some(entry) = self.builder.final_time_entry() {
            self.push_index_entries(&[], &[entry]);
        }
        if self.index_files_stale {
            rewrite(&self.index_file, &self.paths.index, &encode_entries(&self.index, OffsetIndexEntry::to_bytes))?;
            rewrite(
                &self.time_index_file,
                &self.paths.time_index,
                &encode_entries(&self.time_index, TimeIndexEntry::to_bytes),
            )?;
            self.index_files_stale = false;
        }
        self.log.sync_data().map_err(LogError::io(&*self.paths.log))?;
        self.index_file.sync_data().map_err(LogError::io(&self.paths.index))?;
        self.time_index_file.sync_data().map_err(LogError::io(&self.paths.time_index))
    }

    /// The read-only form of this segment. Call [`Self::prepare_seal`] first.
    pub(crate) fn into_sealed(self, index_interval: u32) -> SealedSegment {
        SealedSegment {
            base_offset: self.base_offset,
            paths: self.paths,
            log: self.log,
            size: self.size,
            max_timestamp: self.builder.max_timestamp(),
            index: Some(self.index),
            time_index: Some(self.time_index),
            index_interval,
        }
    }

    pub(crate) fn slice(&self, start: u64) -> SegmentSlice {
        SegmentSlice { log: Arc::clone(&self.log), path: Arc::clone(&self.paths.log), start, end: self.size }
    }
}

fn rewrite(file: &File, path: &Path, contents: &[u8]) -> Result<(), LogError> {
    file.set_len(0).map_err(LogError::io(path))?;
    file.write_all_at(contents, 0).map_err(LogError::io(path))
}

/// The indexes of a segment built while writing it.
#[derive(Debug)]
pub(crate) struct BuiltIndexes {
    /// `None` for a segment without records.
    pub(crate) max_timestamp: Option<i64>,
    pub(crate) index: Vec<OffsetIndexEntry>,
    pub(crate) time_index: Vec<TimeIndexEntry>,
}

/// A full, read-only segment.
#[derive(Debug)]
pub(crate) struct SealedSegment {
    base_offset: i64,
    paths: SegmentPaths,
    log: Arc<File>,
    size: u64,
    /// `None` for a segment without records.
    max_timestamp: Option<i64>,
    /// Loaded on first use: a long log has many segments, and most are never read again.
    index: Option<Vec<OffsetIndexEntry>>,
    time_index: Option<Vec<TimeIndexEntry>>,
    index_interval: u32,
}

impl SealedSegment {
    /// Opens a sealed segment at startup. Its age comes from the last time-index entry; only a
    /// missing or damaged time index costs a scan of the segment.
    pub(crate) fn open(dir: &Path, base_offset: i64, index_interval: u32) -> Result<Self, LogError> {
        let paths = SegmentPaths::new(dir, base_offset);
        let log = File::open(&paths.log).map_err(LogError::io(&*paths.log))?;
        let size = log.metadata().map_err(LogError::io(&*paths.log))?.len();
        let mut segment = SealedSegment {
            base_offset,
            paths,
            log: Arc::new(log),
            size,
            max_timestamp: None,
            index: None,
            time_index: None,
            index_interval,
        };
        match read_index_file(&segment.paths.time_index).map(|bytes| parse_time_index(&bytes)) {
            Ok(Ok(entries)) if !entries.is_empty() || size == 0 => {
                segment.max_timestamp = entries.last().map(|entry| entry.timestamp);
            }
            _ => segment.rebuild_indexes()?,
        }
        Ok(segment)
    }

    /// A segment the cleaner wrote (see [`crate::swap`]): `log` is its file, whatever name it
    /// has now; `paths` are the names it ends up with.
    pub(crate) fn from_cleaned(
        base_offset: i64,
        paths: SegmentPaths,
        log: File,
        size: u64,
        indexes: BuiltIndexes,
        index_interval: u32,
    ) -> Self {
        SealedSegment {
            base_offset,
            paths,
            log: Arc::new(log),
            size,
            max_timestamp: indexes.max_timestamp,
            index: Some(indexes.index),
            time_index: Some(indexes.time_index),
            index_interval,
        }
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn max_timestamp(&self) -> Option<i64> {
        self.max_timestamp
    }

    /// Loads both indexes now, so the segment never reads its index files again: the cleaner
    /// is about to replace them under the same names.
    pub(crate) fn load_indexes(&mut self) -> Result<(), LogError> {
        self.offset_index()?;
        self.time_index()?;
        Ok(())
    }

    /// The offset index, loaded (and checked, and rebuilt if damaged) on first use.
    pub(crate) fn offset_index(&mut self) -> Result<&[OffsetIndexEntry], LogError> {
        if self.index.is_none() {
            match read_index_file(&self.paths.index).map(|bytes| parse_offset_index(&bytes, self.size)) {
                Ok(Ok(entries)) => self.index = Some(entries),
                Ok(Err(damage)) => {
                    tracing::warn!(path = %self.paths.index.display(), ?damage, "rebuilding damaged offset index");
                    self.rebuild_indexes()?;
                }
                Err(error) => {
                    tracing::warn!(path = %self.paths.index.display(), %error, "rebuilding unreadable offset index");
                    self.rebuild_indexes()?;
                }
            }
        }
        Ok(self.index.as_deref().unwrap_or_default())
    }

    /// The time index, loaded (and rebuilt if damaged) on first use.
    pub(crate) fn time_index(&mut self) -> Result<&[TimeIndexEntry], LogError> {
        if self.time_index.is_none() {
            match read_index_file(&self.paths.time_index).map(|bytes| parse_time_index(&bytes)) {
                Ok(Ok(entries)) => self.time_index = Some(entries),
                _ => self.rebuild_indexes()?,
            }
        }
        Ok(self.time_index.as_deref().unwrap_or_default())
    }

    /// Scans the segment and rewrites both index files from what it finds.
    fn rebuild_indexes(&mut self) -> Result<(), LogError> {
        // Sealed segments may be the cleaner's, with gaps between batches.
        let mut outcome = scan_segment(
            &self.log,
            &self.paths.log,
            self.base_offset,
            self.size,
            self.index_interval,
            OffsetSequence::Increasing,
        )?;
        if let Some((position, error)) = &outcome.damage {
            // Sealed segments were fsynced whole, so this is damage after the fact. Keep the file
            // (truncating would leave a hole in the offsets); reads past this point will fail with
            // SegmentCorrupt.
            tracing::error!(path = %self.paths.log.display(), position, %error, "sealed segment is corrupt");
        }
        outcome.time_index.extend(outcome.builder.final_time_entry());
        for (path, contents) in [
            (&self.paths.index, encode_entries(&outcome.index, OffsetIndexEntry::to_bytes)),
            (&self.paths.time_index, encode_entries(&outcome.time_index, TimeIndexEntry::to_bytes)),
        ] {
            if let Err(error) = crate::fs_util::write_atomically(path, &contents) {
                tracing::warn!(path = %path.display(), %error, "could not rewrite index; it stays in memory");
            }
        }
        self.max_timestamp = outcome.builder.max_timestamp();
        self.index = Some(outcome.index);
        self.time_index = Some(outcome.time_index);
        Ok(())
    }

    pub(crate) fn slice(&self, start: u64) -> SegmentSlice {
        SegmentSlice { log: Arc::clone(&self.log), path: Arc::clone(&self.paths.log), start, end: self.size }
    }

    /// Deletes the segment's files. Readers holding its handle keep reading the unlinked file.
    pub(crate) fn delete_files(&self) -> Result<(), LogError> {
        self.paths.delete()
    }
}

fn read_index_file(path: &Path) -> Result<Vec<u8>, std::io::Error> {
    std::fs::read(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_file_names_are_twenty_digit_base_offsets() {
        let paths = SegmentPaths::new(Path::new("/d"), 1234);
        assert_eq!(&*paths.log, Path::new("/d/00000000000000001234.log"));
        assert_eq!(paths.index, Path::new("/d/00000000000000001234.index"));
        assert_eq!(paths.time_index, Path::new("/d/00000000000000001234.timeindex"));
        assert_eq!(parse_segment_file_name("00000000000000001234.log", ".log"), Some(1234));
        assert_eq!(parse_segment_file_name("1234.log", ".log"), None);
        assert_eq!(parse_segment_file_name("00000000000000001234.index", ".log"), None);
    }
}
