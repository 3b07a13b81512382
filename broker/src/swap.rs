//! Replacing sealed segments with the cleaner's output so that a crash at any moment leaves
//! either the old segments or the new one on disk, whole, and never neither.
//!
//! The cleaner replaces a run of consecutive sealed segments `[base, end)` (their base offsets
//! `base = b1 < b2 < ... < bn`, and `end` the base offset of the segment after them, which
//! stays) with one segment named like the first, `<base>.log`. The steps, each named by a
//! [`SwapStep`] so a test can stop after any of them and reopen:
//!
//! 1. Write `<base>.log.cleaned`, `<base>.index.cleaned` and `<base>.timeindex.cleaned`, and
//!    **fsync all three**: the rename in step 3 must never become durable before the data it
//!    names (after a power loss a renamed but unsynced file can be empty or hold zeros).
//! 2. Rename the two index files to `<base>.index.swap` and `<base>.timeindex.swap`.
//! 3. **The commit point**: rename the log to `<base>-<end>.log.swap` and **fsync the
//!    directory**, so the commit is durable before any old file goes (otherwise a power loss
//!    could keep the deletions of step 4 and lose the rename: neither old nor new). The range
//!    is in the name because compaction leaves gaps: the new segment's last record says nothing
//!    about which old segments it replaces.
//! 4. Delete the replaced segments `b2..bn` (each log file first: an index without its log is
//!    removed at open).
//! 5. Rename the index swaps over `<base>.index` and `<base>.timeindex`.
//! 6. Rename the log swap over `<base>.log` (atomically replacing the first old segment's log),
//!    then **fsync the directory**, so the final names are durable before the cleaner's
//!    checkpoint, written next, says the range is clean.
//!
//! [`recover`] runs when a partition opens (and before each cleaner pass, for the leftovers of a
//! pass that failed): `*.cleaned` files and index swaps without a log swap are from before a
//! commit and are deleted (the old segments are intact); a `<base>-<end>.log.swap` is a
//! committed swap and is finished from step 4 on. An index of the new segment that did not make
//! it is removed rather than trusted (it may be the old segment's); a sealed segment without
//! indexes rebuilds them from its log. Every step of the recovery can be repeated, so a crash
//! during recovery is recovered the same way.
//!
//! Readers are not disturbed: the partition keeps serving the old segments through their open
//! file handles (with their indexes loaded in memory) until the new segment takes their place
//! in memory right after the commit.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::batch::BatchHeader;
use crate::error::LogError;
use crate::fs_util::{remove_file_if_exists, sync_dir};
use crate::index::{IndexBuilder, IndexedBatch, OffsetIndexEntry, TimeIndexEntry};
use crate::segment::{BuiltIndexes, SealedSegment, SegmentPaths, encode_entries, parse_segment_file_name};

const CLEANED_SUFFIX: &str = ".cleaned";
const SWAP_SUFFIX: &str = ".swap";
const LOG_SWAP_SUFFIX: &str = ".log.swap";

/// A point in the swap after which a test can make the cleaner stop as if the process died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SwapStep {
    /// Half of the new log written, nothing synced.
    CleanedHalfWritten,
    /// Step 1 done.
    CleanedWritten,
    /// Step 2 done.
    IndexesRenamed,
    /// Step 3 done: committed.
    Committed,
    /// The first replaced segment of step 4 deleted, the others not.
    FirstReplacedDeleted,
    /// Step 4 done.
    ReplacedDeleted,
    /// Step 5 done.
    IndexesInstalled,
    /// Step 6's rename done, before its directory fsync.
    LogInstalled,
}

impl SwapStep {
    /// Every step, in order.
    #[cfg(test)]
    pub(crate) const ALL: [SwapStep; 8] = [
        SwapStep::CleanedHalfWritten,
        SwapStep::CleanedWritten,
        SwapStep::IndexesRenamed,
        SwapStep::Committed,
        SwapStep::FirstReplacedDeleted,
        SwapStep::ReplacedDeleted,
        SwapStep::IndexesInstalled,
        SwapStep::LogInstalled,
    ];

    /// Whether a stop after this step leaves the new segment on disk rather than the old ones.
    #[cfg(test)]
    pub(crate) fn is_committed(self) -> bool {
        !matches!(self, SwapStep::CleanedHalfWritten | SwapStep::CleanedWritten | SwapStep::IndexesRenamed)
    }
}

/// Fails with a simulated crash if the test hook asks to stop after `step`.
fn stop_if(crash_after: Option<SwapStep>, step: SwapStep, dir: &Path) -> Result<(), LogError> {
    if crash_after == Some(step) {
        return Err(LogError::Io {
            path: dir.to_owned(),
            source: io::Error::other(format!("simulated crash after {step:?} (test hook)")),
        });
    }
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn log_swap_path(dir: &Path, base_offset: i64, end: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}-{end:020}{LOG_SWAP_SUFFIX}"))
}

/// The `(base, end)` named by a log swap file name like `<base>-<end>.log.swap`.
fn parse_log_swap_name(name: &str) -> Option<(i64, i64)> {
    let stem = name.strip_suffix(LOG_SWAP_SUFFIX)?;
    let (base, end) = stem.split_once('-')?;
    let base = parse_segment_file_name(base, "")?;
    let end = parse_segment_file_name(end, "")?;
    (base < end).then_some((base, end))
}

fn rename(from: &Path, to: &Path) -> Result<(), LogError> {
    fs::rename(from, to).map_err(LogError::io(to))
}

/// The cleaner's output segment, written under `.cleaned` names (step 1).
#[derive(Debug)]
pub(crate) struct CleanedWriter {
    dir: PathBuf,
    base_offset: i64,
    paths: SegmentPaths,
    cleaned_log: PathBuf,
    log: BufWriter<File>,
    size: u64,
    builder: IndexBuilder,
    index: Vec<OffsetIndexEntry>,
    time_index: Vec<TimeIndexEntry>,
    index_interval: u32,
}

impl CleanedWriter {
    /// Starts `<base_offset>.log.cleaned` in `dir` (replacing a leftover of that name).
    pub(crate) fn create(dir: &Path, base_offset: i64, index_interval: u32) -> Result<Self, LogError> {
        let paths = SegmentPaths::new(dir, base_offset);
        let cleaned_log = with_suffix(&paths.log, CLEANED_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&cleaned_log)
            .map_err(LogError::io(&cleaned_log))?;
        Ok(CleanedWriter {
            dir: dir.to_owned(),
            base_offset,
            paths,
            cleaned_log,
            log: BufWriter::with_capacity(256 * 1024, file),
            size: 0,
            builder: IndexBuilder::new(index_interval),
            index: Vec::new(),
            time_index: Vec::new(),
            index_interval,
        })
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Bytes written so far.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Appends one whole, checked batch. The caller keeps batches in offset order and within
    /// `u32::MAX` offsets of the base (as the groups it forms do).
    pub(crate) fn push(&mut self, header: &BatchHeader, batch: &[u8]) -> Result<(), LogError> {
        self.log.write_all(batch).map_err(LogError::io(&self.cleaned_log))?;
        let (offset_entry, time_entry) = self.builder.on_batch(IndexedBatch {
            base_relative_offset: (header.base_offset - self.base_offset) as u32,
            last_relative_offset: (header.last_offset() - self.base_offset) as u32,
            position: self.size as u32,
            len: batch.len() as u64,
            max_timestamp: header.max_timestamp,
        });
        self.index.extend(offset_entry);
        self.time_index.extend(time_entry);
        self.size += batch.len() as u64;
        Ok(())
    }

    /// Deletes what was written: the output turned out to equal its input.
    pub(crate) fn discard(self) -> Result<(), LogError> {
        drop(self.log);
        remove_file_if_exists(&self.cleaned_log)
    }

    /// Runs the swap (steps 1 to 6) replacing the segments `replaced` (base offsets, the first
    /// equal to this writer's) that span `[base, end)`. `install` is called right after the
    /// commit with the new segment, to take the old ones' place in memory.
    pub(crate) fn swap_in(
        mut self,
        replaced: &[i64],
        end: i64,
        crash_after: Option<SwapStep>,
        install: impl FnOnce(SealedSegment) -> Result<(), LogError>,
    ) -> Result<(), LogError> {
        let dir = self.dir.clone();
        self.time_index.extend(self.builder.final_time_entry());
        let file = self
            .log
            .into_inner()
            .map_err(|error| LogError::Io { path: self.cleaned_log.clone(), source: error.into_error() })?;
        if crash_after == Some(SwapStep::CleanedHalfWritten) {
            file.set_len(self.size / 2).map_err(LogError::io(&self.cleaned_log))?;
            return stop_if(crash_after, SwapStep::CleanedHalfWritten, &dir);
        }
        let cleaned_index = with_suffix(&self.paths.index, CLEANED_SUFFIX);
        let cleaned_time_index = with_suffix(&self.paths.time_index, CLEANED_SUFFIX);
        write_synced(&cleaned_index, &encode_entries(&self.index, OffsetIndexEntry::to_bytes))?;
        write_synced(&cleaned_time_index, &encode_entries(&self.time_index, TimeIndexEntry::to_bytes))?;
        file.sync_all().map_err(LogError::io(&self.cleaned_log))?;
        stop_if(crash_after, SwapStep::CleanedWritten, &dir)?;

        rename(&cleaned_index, &with_suffix(&self.paths.index, SWAP_SUFFIX))?;
        rename(&cleaned_time_index, &with_suffix(&self.paths.time_index, SWAP_SUFFIX))?;
        stop_if(crash_after, SwapStep::IndexesRenamed, &dir)?;

        rename(&self.cleaned_log, &log_swap_path(&dir, self.base_offset, end))?;
        sync_dir(&dir)?;
        stop_if(crash_after, SwapStep::Committed, &dir)?;

        let indexes = BuiltIndexes {
            max_timestamp: self.builder.max_timestamp(),
            index: self.index,
            time_index: self.time_index,
        };
        install(SealedSegment::from_cleaned(
            self.base_offset,
            self.paths,
            file,
            self.size,
            indexes,
            self.index_interval,
        ))?;
        complete(&dir, self.base_offset, end, &replaced[1..], crash_after)
    }
}

fn write_synced(path: &Path, contents: &[u8]) -> Result<(), LogError> {
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(path).map_err(LogError::io(path))?;
    file.write_all(contents).map_err(LogError::io(path))?;
    file.sync_all().map_err(LogError::io(path))
}

/// Steps 4 to 6 of a committed swap of `[base, end)`, deleting the segments `doomed`.
fn complete(
    dir: &Path,
    base_offset: i64,
    end: i64,
    doomed: &[i64],
    crash_after: Option<SwapStep>,
) -> Result<(), LogError> {
    for (index, &doomed_base) in doomed.iter().enumerate() {
        let paths = SegmentPaths::new(dir, doomed_base);
        remove_file_if_exists(&paths.log)?;
        remove_file_if_exists(&paths.index)?;
        remove_file_if_exists(&paths.time_index)?;
        if index == 0 {
            stop_if(crash_after, SwapStep::FirstReplacedDeleted, dir)?;
        }
    }
    stop_if(crash_after, SwapStep::ReplacedDeleted, dir)?;

    let paths = SegmentPaths::new(dir, base_offset);
    for index in [&paths.index, &paths.time_index] {
        let swap = with_suffix(index, SWAP_SUFFIX);
        if swap.exists() {
            rename(&swap, index)?;
        } else {
            // Either already installed or never made it; in both cases the file at `index` may
            // belong to the old segment, so it goes and is rebuilt from the log.
            remove_file_if_exists(index)?;
        }
    }
    stop_if(crash_after, SwapStep::IndexesInstalled, dir)?;

    rename(&log_swap_path(dir, base_offset, end), &paths.log)?;
    stop_if(crash_after, SwapStep::LogInstalled, dir)?;
    sync_dir(dir)
}

/// Finishes or discards whatever an interrupted swap left in a partition directory (see the
/// module docs). Returns how many committed swaps it finished.
pub(crate) fn recover(dir: &Path) -> Result<usize, LogError> {
    let mut committed = Vec::new();
    let mut segment_bases = Vec::new();
    let mut leftovers = Vec::new();
    for entry in fs::read_dir(dir).map_err(LogError::io(dir))? {
        let entry = entry.map_err(LogError::io(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(range) = parse_log_swap_name(name) {
            committed.push(range);
        } else if let Some(base) = parse_segment_file_name(name, ".log") {
            segment_bases.push(base);
        } else if name.ends_with(CLEANED_SUFFIX) || name.ends_with(SWAP_SUFFIX) {
            leftovers.push(entry.path());
        }
    }
    committed.sort_unstable();
    for &(base, end) in &committed {
        let doomed: Vec<i64> = segment_bases.iter().copied().filter(|&other| base < other && other < end).collect();
        tracing::warn!(dir = %dir.display(), base, end, replaced = doomed.len(), "finishing an interrupted segment swap");
        complete(dir, base, end, &doomed, None)?;
    }
    // What is left is from before a commit: the segments it would have replaced are intact.
    let mut removed = 0;
    for path in leftovers {
        if path.exists() {
            remove_file_if_exists(&path)?;
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::warn!(dir = %dir.display(), files = removed, "removed the files of an unfinished clean");
        sync_dir(dir)?;
    }
    Ok(committed.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_swap_names_carry_the_replaced_range() {
        let path = log_swap_path(Path::new("/d"), 12, 3456);
        let name = path.file_name().and_then(|name| name.to_str()).expect("utf-8 name");
        assert_eq!(name, "00000000000000000012-00000000000000003456.log.swap");
        assert_eq!(parse_log_swap_name(name), Some((12, 3456)));
        assert_eq!(parse_log_swap_name("00000000000000000012.log.swap"), None);
        assert_eq!(parse_log_swap_name("00000000000000000012.index.swap"), None);
        assert_eq!(parse_log_swap_name("00000000000000000050-00000000000000000040.log.swap"), None);
    }
}
