//! A map kept in an internal topic of the log: every change is appended as a record (key, value
//! or null for a delete), and the map is rebuilt by replaying the topic at start.
//!
//! Source offsets (`weir-offsets`) and connector state (`weir-state`) are two such maps. Keys
//! are namespaced by connector: `u16 length + connector name + the caller's key bytes`, so one
//! topic serves every connector and a connector's entries can be listed or dropped together.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::log::{
    Bytes, CleanupPolicy, EventLog, FetchRequest, Generation, LogError, PartitionBatch, Record, TopicConfig,
};

/// Bytes read per replay step.
const REPLAY_CHUNK: usize = 1 << 20;

/// One connector's entries.
pub(crate) type Entries = BTreeMap<Vec<u8>, Vec<u8>>;

/// Changes to one connector's entries: key, and the new value or `None` to delete.
pub(crate) type Changes<'a> = Vec<(&'a [u8], Option<&'a [u8]>)>;

/// A connector-namespaced map backed by an internal topic.
#[derive(Debug)]
pub(crate) struct KeyedStore {
    log: Arc<dyn EventLog>,
    topic: &'static str,
    entries: Mutex<HashMap<String, Entries>>,
}

impl KeyedStore {
    /// Open (creating the topic if needed) and replay.
    ///
    /// # Errors
    /// When the topic cannot be created or read.
    pub(crate) async fn open(log: Arc<dyn EventLog>, topic: &'static str) -> Result<Self, LogError> {
        log.ensure_topic(
            topic,
            TopicConfig { partitions: 1, cleanup_policy: CleanupPolicy::Compact, ..TopicConfig::default() },
        )
        .await?;
        let mut entries: HashMap<String, Entries> = HashMap::new();
        let range = log.offset_range(topic, 0).await?;
        let mut next = range.start;
        while next < range.end {
            let request = FetchRequest { topic: topic.to_owned(), partition: 0, from: next };
            let fetched = log.fetch(vec![request], REPLAY_CHUNK, usize::MAX).await?;
            let Some(records) = fetched.into_iter().next().map(|partition| partition.records) else { break };
            let Some(last) = records.last() else { break };
            next = last.offset + 1;
            for record in records {
                let Some((connector, key)) = record.key.as_deref().and_then(split_key) else {
                    tracing::warn!(topic, offset = record.offset, "skipping a record with a malformed key");
                    continue;
                };
                let map = entries.entry(connector.to_owned()).or_default();
                match record.value {
                    Some(value) => map.insert(key.to_vec(), value.to_vec()),
                    None => map.remove(key),
                };
            }
        }
        Ok(Self { log, topic, entries: Mutex::new(entries) })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entries>> {
        // A panic while holding this lock leaves the map as consistent as the log: recover it.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every entry of a connector.
    pub(crate) fn entries(&self, connector: &str) -> Entries {
        self.lock().get(connector).cloned().unwrap_or_default()
    }

    pub(crate) fn get(&self, connector: &str, key: &[u8]) -> Option<Vec<u8>> {
        self.lock().get(connector).and_then(|map| map.get(key).cloned())
    }

    /// The records that store `changes`, for a caller that appends them itself (together with
    /// other records) and then calls [`KeyedStore::apply`].
    pub(crate) fn batch(&self, connector: &str, changes: &Changes<'_>) -> PartitionBatch {
        let now = now_ms();
        let records = changes
            .iter()
            .map(|(key, value)| Record {
                key: Some(Bytes::from(join_key(connector, key))),
                value: value.map(Bytes::copy_from_slice),
                headers: Vec::new(),
                timestamp: now,
            })
            .collect();
        PartitionBatch { topic: self.topic.to_owned(), partition: 0, records }
    }

    /// Update the in-memory map after the records of `changes` are durable.
    pub(crate) fn apply(&self, connector: &str, changes: Changes<'_>) {
        let mut entries = self.lock();
        let map = entries.entry(connector.to_owned()).or_default();
        for (key, value) in changes {
            match value {
                Some(value) => map.insert(key.to_vec(), value.to_vec()),
                None => map.remove(key),
            };
        }
    }

    /// Write several entries of one connector in one append (`None` deletes). Durable per the
    /// log's flush policy when this returns; only then is the in-memory map updated.
    ///
    /// # Errors
    /// When the append fails; the map is then unchanged.
    pub(crate) async fn put_all(
        &self,
        connector: &str,
        changes: Changes<'_>,
        generation: Generation,
    ) -> Result<(), LogError> {
        if changes.is_empty() {
            return Ok(());
        }
        let batch = self.batch(connector, &changes);
        self.log.append(Arc::from([batch]), generation).await?;
        self.apply(connector, changes);
        Ok(())
    }

    /// Delete every entry of a connector.
    ///
    /// # Errors
    /// When the append fails.
    pub(crate) async fn clear(&self, connector: &str, generation: Generation) -> Result<(), LogError> {
        let keys: Vec<Vec<u8>> = self.entries(connector).into_keys().collect();
        self.put_all(connector, keys.iter().map(|key| (key.as_slice(), None)).collect(), generation).await
    }
}

fn join_key(connector: &str, key: &[u8]) -> Vec<u8> {
    let name = connector.as_bytes();
    let length = u16::try_from(name.len()).unwrap_or(u16::MAX);
    let name = &name[..usize::from(length)];
    let mut out = Vec::with_capacity(2 + name.len() + key.len());
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(key);
    out
}

fn split_key(raw: &[u8]) -> Option<(&str, &[u8])> {
    let length = usize::from(u16::from_le_bytes(raw.get(..2)?.try_into().ok()?));
    let name = std::str::from_utf8(raw.get(2..2 + length)?).ok()?;
    Some((name, &raw[2 + length..]))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::EmbeddedLog;

    #[test]
    fn keys_round_trip_with_any_bytes() {
        let joined = join_key("orders", b"{\"task\":0}");
        assert_eq!(split_key(&joined), Some(("orders", &b"{\"task\":0}"[..])));
        assert_eq!(split_key(&[5, 0, b'a']), None);
    }

    #[tokio::test]
    async fn entries_survive_reopen_and_deletes_stick() {
        let dir = tempfile::tempdir().unwrap();
        let generation = Generation::default();
        {
            let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(dir.path(), Default::default()).await.unwrap());
            let store = KeyedStore::open(log, "weir-test").await.unwrap();
            store
                .put_all("a", vec![(&b"p1"[..], Some(&b"1"[..])), (&b"p2"[..], Some(&b"2"[..]))], generation)
                .await
                .unwrap();
            store.put_all("a", vec![(&b"p1"[..], Some(&b"3"[..]))], generation).await.unwrap();
            store.put_all("b", vec![(&b"p1"[..], Some(&b"9"[..]))], generation).await.unwrap();
            store.put_all("a", vec![(&b"p2"[..], None)], generation).await.unwrap();
        }
        let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(dir.path(), Default::default()).await.unwrap());
        let store = KeyedStore::open(log, "weir-test").await.unwrap();
        assert_eq!(store.entries("a").into_iter().collect::<Vec<_>>(), vec![(b"p1".to_vec(), b"3".to_vec())]);
        assert_eq!(store.get("b", b"p1"), Some(b"9".to_vec()));
        store.clear("b", generation).await.unwrap();
        assert!(store.entries("b").is_empty());
    }
}
