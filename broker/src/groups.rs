//! Committed offsets of consumer groups.
//!
//! Each group's offsets live in one small JSON file, `<data_dir>/groups/<group>.json`, replaced
//! whole on every commit by write-to-temp, fsync, rename, fsync-directory. Why a file per group
//! rather than Kafka's `__consumer_offsets` topic replayed at open:
//!
//! - The file is bounded by the group's partition count. A commit log grows with every commit
//!   and needs key compaction to stay small, which the log does not have yet.
//! - Opening reads one file per group instead of replaying every commit ever made.
//! - Rename is atomic, so a crash leaves the old offsets or the new ones, never a torn mix, and
//!   a commit is durable when it returns (two fsyncs, independent of the data's flush policy:
//!   an offset that went backwards would re-deliver, which is safe; one that is lost outright
//!   would too, but commits are rare enough that paying for durability is cheap).
//!
//! Commits to different groups proceed in parallel; commits to one group are serialized by the
//! group's writer lock, and readers never wait for a commit's fsync.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::error::LogError;
use crate::fs_util::{lock, read, remove_file_if_exists, sync_dir, write, write_atomically};

/// Longest encoded group file name kept below common file-system limits (255 bytes).
const MAX_FILE_STEM_LEN: usize = 200;
const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupFile {
    version: u32,
    group: String,
    offsets: Vec<CommittedOffset>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommittedOffset {
    topic: String,
    partition: u32,
    offset: i64,
    /// The client's metadata string for the commit (Kafka's `committed_metadata`); absent in
    /// files written before it was kept, and when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    metadata: String,
}

/// A committed offset and the metadata string committed with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Committed {
    pub(crate) offset: i64,
    pub(crate) metadata: String,
}

type Offsets = BTreeMap<(String, u32), Committed>;

#[derive(Debug)]
struct Group {
    name: String,
    path: PathBuf,
    /// Serializes writers; `true` once the group is deleted, so a writer that raced the
    /// deletion looks the group up again instead of resurrecting its file.
    writer: Mutex<bool>,
    offsets: RwLock<Offsets>,
}

/// All groups' committed offsets.
#[derive(Debug)]
pub(crate) struct GroupStore {
    dir: PathBuf,
    groups: RwLock<HashMap<String, Arc<Group>>>,
}

/// The file name for a group: bytes outside `[A-Za-z0-9_-]` are percent-encoded, so any group id
/// is a safe, unique file name (the real name is also stored inside the file).
fn file_name(group: &str) -> Result<String, LogError> {
    if group.is_empty() {
        return Err(LogError::InvalidGroupName { group: group.to_owned(), reason: "empty" });
    }
    let mut name = String::with_capacity(group.len() + 5);
    for byte in group.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            name.push(byte as char);
        } else {
            write!(name, "%{byte:02X}").expect("writing to a String cannot fail");
        }
    }
    if name.len() > MAX_FILE_STEM_LEN {
        return Err(LogError::InvalidGroupName { group: group.to_owned(), reason: "too long to store as a file name" });
    }
    name.push_str(".json");
    Ok(name)
}

fn persist(path: &Path, group: &str, offsets: &Offsets) -> Result<(), LogError> {
    let file = GroupFile {
        version: FORMAT_VERSION,
        group: group.to_owned(),
        offsets: offsets
            .iter()
            .map(|((topic, partition), committed)| CommittedOffset {
                topic: topic.clone(),
                partition: *partition,
                offset: committed.offset,
                metadata: committed.metadata.clone(),
            })
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&file).expect("plain structs serialize to JSON");
    write_atomically(path, &json)
}

impl GroupStore {
    /// Loads every group file in `dir`.
    pub(crate) fn open(dir: PathBuf) -> Result<Self, LogError> {
        std::fs::create_dir_all(&dir).map_err(LogError::io(&dir))?;
        let mut groups = HashMap::new();
        for entry in std::fs::read_dir(&dir).map_err(LogError::io(&dir))? {
            let entry = entry.map_err(LogError::io(&dir))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                // A commit interrupted before its rename: the old file is still current.
                remove_file_if_exists(&path)?;
                continue;
            }
            if !name.ends_with(".json") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(LogError::io(&path))?;
            let file: GroupFile = serde_json::from_slice(&bytes)
                .map_err(|source| LogError::MetadataCorrupt { path: path.clone(), source })?;
            let offsets = file
                .offsets
                .into_iter()
                .map(|entry| {
                    ((entry.topic, entry.partition), Committed { offset: entry.offset, metadata: entry.metadata })
                })
                .collect();
            groups.insert(
                file.group.clone(),
                Arc::new(Group { name: file.group, path, writer: Mutex::new(false), offsets: RwLock::new(offsets) }),
            );
        }
        Ok(GroupStore { dir, groups: RwLock::new(groups) })
    }

    fn group(&self, name: &str) -> Option<Arc<Group>> {
        read(&self.groups).get(name).cloned()
    }

    fn group_or_create(&self, name: &str) -> Result<Arc<Group>, LogError> {
        if let Some(group) = self.group(name) {
            return Ok(group);
        }
        let path = self.dir.join(file_name(name)?);
        let mut groups = write(&self.groups);
        Ok(Arc::clone(groups.entry(name.to_owned()).or_insert_with(|| {
            Arc::new(Group {
                name: name.to_owned(),
                path,
                writer: Mutex::new(false),
                offsets: RwLock::new(BTreeMap::new()),
            })
        })))
    }

    /// Durably records `offsets` for `group` (other partitions' offsets are kept).
    #[cfg(test)]
    pub(crate) fn commit(&self, group: &str, offsets: &[(&str, u32, i64)]) -> Result<(), LogError> {
        let offsets: Vec<(&str, u32, i64, &str)> =
            offsets.iter().map(|(topic, partition, offset)| (*topic, *partition, *offset, "")).collect();
        self.commit_with_metadata(group, &offsets)
    }

    /// Durably records `offsets` for `group`, each with its metadata string (other partitions'
    /// offsets are kept).
    pub(crate) fn commit_with_metadata(&self, group: &str, offsets: &[(&str, u32, i64, &str)]) -> Result<(), LogError> {
        loop {
            let entry = self.group_or_create(group)?;
            let deleted = lock(&entry.writer);
            if *deleted {
                continue;
            }
            let mut next = read(&entry.offsets).clone();
            for (topic, partition, offset, metadata) in offsets {
                next.insert(
                    ((*topic).to_owned(), *partition),
                    Committed { offset: *offset, metadata: (*metadata).to_owned() },
                );
            }
            persist(&entry.path, &entry.name, &next)?;
            *write(&entry.offsets) = next;
            return Ok(());
        }
    }

    pub(crate) fn committed(&self, group: &str, topic: &str, partition: u32) -> Option<i64> {
        self.committed_with_metadata(group, topic, partition).map(|committed| committed.offset)
    }

    pub(crate) fn committed_with_metadata(&self, group: &str, topic: &str, partition: u32) -> Option<Committed> {
        let entry = self.group(group)?;
        let offsets = read(&entry.offsets);
        offsets.get(&(topic.to_owned(), partition)).cloned()
    }

    pub(crate) fn offsets(&self, group: &str) -> Vec<(String, u32, i64)> {
        self.group(group).map_or_else(Vec::new, |entry| {
            read(&entry.offsets)
                .iter()
                .map(|((topic, partition), committed)| (topic.clone(), *partition, committed.offset))
                .collect()
        })
    }

    /// Groups with at least one committed offset, sorted.
    pub(crate) fn groups(&self) -> Vec<String> {
        let mut names: Vec<String> = read(&self.groups)
            .values()
            .filter(|group| !read(&group.offsets).is_empty())
            .map(|group| group.name.clone())
            .collect();
        names.sort();
        names
    }

    /// Forgets the group and deletes its file. Deleting an unknown group is not an error.
    pub(crate) fn delete(&self, group: &str) -> Result<(), LogError> {
        let Some(entry) = write(&self.groups).remove(group) else {
            return Ok(());
        };
        let mut deleted = lock(&entry.writer);
        *deleted = true;
        remove_file_if_exists(&entry.path)?;
        sync_dir(&self.dir)
    }

    /// Drops every group's offsets for a deleted topic.
    pub(crate) fn forget_topic(&self, topic: &str) -> Result<(), LogError> {
        let groups: Vec<Arc<Group>> = read(&self.groups).values().cloned().collect();
        for entry in groups {
            let deleted = lock(&entry.writer);
            if *deleted || !read(&entry.offsets).keys().any(|(name, _)| name == topic) {
                continue;
            }
            let mut next = read(&entry.offsets).clone();
            next.retain(|(name, _), _| name != topic);
            persist(&entry.path, &entry.name, &next)?;
            *write(&entry.offsets) = next;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_file_names_escape_everything_but_safe_characters() {
        assert_eq!(file_name("connect-sink_1").expect("valid"), "connect-sink_1.json");
        assert_eq!(file_name("a/b.c").expect("valid"), "a%2Fb%2Ec.json");
        assert_eq!(file_name("..").expect("valid"), "%2E%2E.json");
        assert!(file_name("").is_err());
        assert!(file_name(&"x".repeat(300)).is_err());
    }

    #[test]
    fn commits_survive_reopening_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = GroupStore::open(dir.path().to_owned()).expect("open");
        store.commit("g/1", &[("t", 0, 5), ("t", 1, 7)]).expect("commit");
        store.commit("g/1", &[("t", 0, 9)]).expect("commit");
        drop(store);
        let store = GroupStore::open(dir.path().to_owned()).expect("reopen");
        assert_eq!(store.committed("g/1", "t", 0), Some(9));
        assert_eq!(store.offsets("g/1"), vec![("t".to_owned(), 0, 9), ("t".to_owned(), 1, 7)]);
        assert_eq!(store.groups(), vec!["g/1".to_owned()]);
    }

    #[test]
    fn commit_metadata_survives_reopening_and_old_files_read_without_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = GroupStore::open(dir.path().to_owned()).expect("open");
        store.commit_with_metadata("g", &[("t", 0, 5, "consumer-1 state")]).expect("commit");
        drop(store);
        std::fs::write(
            dir.path().join("old.json"),
            br#"{"version":1,"group":"old","offsets":[{"topic":"t","partition":0,"offset":3}]}"#,
        )
        .expect("write");
        let store = GroupStore::open(dir.path().to_owned()).expect("reopen");
        let committed = store.committed_with_metadata("g", "t", 0).expect("committed");
        assert_eq!(committed, Committed { offset: 5, metadata: "consumer-1 state".to_owned() });
        assert_eq!(
            store.committed_with_metadata("old", "t", 0),
            Some(Committed { offset: 3, metadata: String::new() })
        );
    }

    #[test]
    fn deleting_a_group_removes_its_file_and_offsets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = GroupStore::open(dir.path().to_owned()).expect("open");
        store.commit("g", &[("t", 0, 1)]).expect("commit");
        store.delete("g").expect("delete");
        assert_eq!(store.committed("g", "t", 0), None);
        let store = GroupStore::open(dir.path().to_owned()).expect("reopen");
        assert!(store.groups().is_empty());
        store.delete("never-existed").expect("idempotent");
    }

    #[test]
    fn a_leftover_temporary_file_is_ignored_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = GroupStore::open(dir.path().to_owned()).expect("open");
        store.commit("g", &[("t", 0, 1)]).expect("commit");
        std::fs::write(dir.path().join("g.json.tmp"), b"{ torn").expect("write");
        let store = GroupStore::open(dir.path().to_owned()).expect("reopen");
        assert_eq!(store.committed("g", "t", 0), Some(1));
        assert!(!dir.path().join("g.json.tmp").exists());
    }
}
