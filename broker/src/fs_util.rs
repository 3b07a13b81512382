//! Small file-system helpers shared by the metadata, group and segment code.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::LogError;

/// At most this many fsyncs run at once when several partitions need one.
const MAX_PARALLEL_SYNCS: usize = 8;

/// Fsyncs a directory so that file creations, renames and deletions in it survive power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|handle| handle.sync_all()).map_err(LogError::io(dir))
}

/// Replaces `path` with `contents` so that a crash at any moment leaves either the old or the new
/// file, never a mix: write a temporary file, fsync it, rename it over `path`, fsync the
/// directory.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), LogError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(tmp).map_err(LogError::io(tmp))?;
    file.write_all(contents).map_err(LogError::io(tmp))?;
    file.sync_all().map_err(LogError::io(tmp))?;
    drop(file);
    fs::rename(tmp, path).map_err(LogError::io(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Removes a file; a file that is already gone is fine.
pub(crate) fn remove_file_if_exists(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            Err(LogError::Io { path: path.to_owned(), source: error })
        }
        _ => Ok(()),
    }
}

/// Removes a directory tree; one that is already gone is fine.
pub(crate) fn remove_dir_if_exists(path: &Path) -> Result<(), LogError> {
    match fs::remove_dir_all(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            Err(LogError::Io { path: path.to_owned(), source: error })
        }
        _ => Ok(()),
    }
}

// A panic while a lock is held leaves the protected value as it was at the panic; every
// structure here stays usable in that state (at worst an append that was half done is written
// over by the next one), so poisoning is not treated as fatal.

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `work` on every item, on up to [`MAX_PARALLEL_SYNCS`] threads (fsyncs of different
/// files overlap well), returning the first error after all items ran.
pub(crate) fn run_parallel<T: Sync>(
    items: &[T],
    work: impl Fn(&T) -> Result<(), LogError> + Sync,
) -> Result<(), LogError> {
    if items.len() <= 1 {
        return items.iter().try_for_each(work);
    }
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut first_error = None;
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(index) else { break };
            if let Err(error) = work(item) {
                first_error.get_or_insert(error);
            }
        }
        first_error
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..items.len().min(MAX_PARALLEL_SYNCS))
            // A helper that cannot be spawned just leaves its share to the others.
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(scope, worker).ok())
            .collect();
        let mut first_error = worker();
        for helper in helpers {
            match helper.join() {
                Ok(error) => first_error = first_error.or(error),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        first_error.map_or(Ok(()), Err)
    })
}
