//! Producer ids that are never handed out twice, across restarts.
//!
//! Ids come in blocks (as Kafka's `ProducerIdManager` takes blocks from its controller): before
//! the first id of a block is handed out, the block's end is written to
//! `<log dir>/kafka-producer-ids.json` (replaced atomically, fsynced), so after a restart,
//! clean or not, allocation resumes past every id that may have been handed out; a restart
//! skips the rest of its block. A log without the file starts at its open time in milliseconds
//! times 1024, above every id the earlier scheme (start time × 1024 + a counter) handed out.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::LogError;
use crate::fs_util::{lock, write_atomically};

const FILE_NAME: &str = "kafka-producer-ids.json";
const FORMAT_VERSION: u32 = 1;
/// Ids reserved by one write of the file.
pub(super) const BLOCK_SIZE: i64 = 1000;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdsFile {
    version: u32,
    /// No id at or above this one has been handed out.
    reserved_until: i64,
}

#[derive(Debug)]
struct Block {
    next: i64,
    end: i64,
}

/// The producer-id allocator of one log.
#[derive(Debug)]
pub(super) struct ProducerIds {
    path: PathBuf,
    block: Mutex<Block>,
}

impl ProducerIds {
    /// Reads where allocation stopped in `dir`.
    ///
    /// # Errors
    ///
    /// [`LogError::Io`]; [`LogError::MetadataCorrupt`] for an unreadable file (handing out ids
    /// again from a guess could repeat one in use).
    pub(super) fn open(dir: &Path) -> Result<Self, LogError> {
        let path = dir.join(FILE_NAME);
        let reserved_until = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: IdsFile = serde_json::from_slice(&bytes)
                    .map_err(|source| LogError::MetadataCorrupt { path: path.clone(), source })?;
                file.reserved_until
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_millis() as i64)
                .saturating_mul(1024),
            Err(source) => return Err(LogError::Io { path, source }),
        };
        Ok(ProducerIds { path, block: Mutex::new(Block { next: reserved_until, end: reserved_until }) })
    }

    /// The next unused id (blocks on an fsync once per [`BLOCK_SIZE`] ids).
    ///
    /// # Errors
    ///
    /// [`LogError::Io`] when the next block cannot be reserved.
    pub(super) fn allocate(&self) -> Result<i64, LogError> {
        let mut block = lock(&self.block);
        if block.next >= block.end {
            let end = block.next.saturating_add(BLOCK_SIZE);
            let file = IdsFile { version: FORMAT_VERSION, reserved_until: end };
            write_atomically(&self.path, &serde_json::to_vec(&file).expect("plain structs serialize to JSON"))?;
            block.end = end;
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_after_a_reopen_never_repeat_earlier_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ids = ProducerIds::open(dir.path()).expect("open");
        let first: Vec<i64> = (0..3).map(|_| ids.allocate().expect("id")).collect();
        assert_eq!(first[1], first[0] + 1);
        drop(ids);
        let ids = ProducerIds::open(dir.path()).expect("reopen");
        let next = ids.allocate().expect("id");
        assert_eq!(next, first[0] + BLOCK_SIZE, "a restart resumes past the whole reserved block");
        for _ in 0..BLOCK_SIZE {
            ids.allocate().expect("id");
        }
        drop(ids);
        let ids = ProducerIds::open(dir.path()).expect("reopen");
        assert_eq!(ids.allocate().expect("id"), first[0] + 3 * BLOCK_SIZE);
    }

    #[test]
    fn an_unreadable_ids_file_is_an_error_not_a_guess() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE_NAME), b"{ torn").expect("write");
        assert!(matches!(ProducerIds::open(dir.path()), Err(LogError::MetadataCorrupt { .. })));
    }
}
