//! A map kept in an internal topic of the log: every change is appended as a record (key, value
//! or null for a delete), and the map is rebuilt by replaying the topic at start.
//!
//! Source offsets (`weir-offsets`) and connector state (`weir-state`) are two such maps. Keys
//! are namespaced by connector: `u16 length + connector name + the caller's key bytes`, so one
//! topic serves every connector and a connector's entries can be listed or dropped together.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use weir_broker::{Bytes, CleanupPolicy, Log, LogError, Record, TopicConfig};

/// Bytes read per replay step.
const REPLAY_CHUNK: usize = 1 << 20;

/// One connector's entries.
pub(crate) type Entries = BTreeMap<Vec<u8>, Vec<u8>>;

/// A connector-namespaced map backed by an internal topic.
#[derive(Debug)]
pub(crate) struct KeyedStore {
    log: Arc<Log>,
    topic: &'static str,
    entries: Mutex<HashMap<String, Entries>>,
}

impl KeyedStore {
    /// Open (creating the topic if needed) and replay.
    ///
    /// # Errors
    /// When the topic cannot be created or read.
    pub(crate) fn open(log: Arc<Log>, topic: &'static str) -> Result<Self, LogError> {
        log.ensure_topic(
            topic,
            TopicConfig { partitions: 1, cleanup_policy: CleanupPolicy::Compact, ..TopicConfig::default() },
        )?;
        let mut entries: HashMap<String, Entries> = HashMap::new();
        let mut next = log.start_offset(topic, 0)?;
        let end = log.end_offset(topic, 0)?;
        while next < end {
            let records = log.read(topic, 0, next, REPLAY_CHUNK)?;
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

    /// Write several entries of one connector in one append (`None` deletes). Durable per the
    /// log's flush policy when this returns; only then is the in-memory map updated.
    ///
    /// # Errors
    /// When the append fails; the map is then unchanged.
    pub(crate) fn put_all<'a>(
        &self,
        connector: &str,
        changes: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    ) -> Result<(), LogError> {
        let changes: Vec<_> = changes.into_iter().collect();
        if changes.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let records: Vec<Record> = changes
            .iter()
            .map(|(key, value)| Record {
                key: Some(Bytes::from(join_key(connector, key))),
                value: value.map(Bytes::copy_from_slice),
                headers: Vec::new(),
                timestamp: now,
            })
            .collect();
        self.log.append(self.topic, 0, &records)?;
        let mut entries = self.lock();
        let map = entries.entry(connector.to_owned()).or_default();
        for (key, value) in changes {
            match value {
                Some(value) => map.insert(key.to_vec(), value.to_vec()),
                None => map.remove(key),
            };
        }
        Ok(())
    }

    /// Delete every entry of a connector.
    ///
    /// # Errors
    /// When the append fails.
    pub(crate) fn clear(&self, connector: &str) -> Result<(), LogError> {
        let keys: Vec<Vec<u8>> = self.entries(connector).into_keys().collect();
        self.put_all(connector, keys.iter().map(|key| (key.as_slice(), None)))
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

    #[test]
    fn keys_round_trip_with_any_bytes() {
        let joined = join_key("orders", b"{\"task\":0}");
        assert_eq!(split_key(&joined), Some(("orders", &b"{\"task\":0}"[..])));
        assert_eq!(split_key(&[5, 0, b'a']), None);
    }

    #[test]
    fn entries_survive_reopen_and_deletes_stick() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = Log::open(dir.path(), Default::default()).unwrap();
            let store = KeyedStore::open(log, "weir-test").unwrap();
            store.put_all("a", [(&b"p1"[..], Some(&b"1"[..])), (&b"p2"[..], Some(&b"2"[..]))]).unwrap();
            store.put_all("a", [(&b"p1"[..], Some(&b"3"[..]))]).unwrap();
            store.put_all("b", [(&b"p1"[..], Some(&b"9"[..]))]).unwrap();
            store.put_all("a", [(&b"p2"[..], None)]).unwrap();
        }
        let log = Log::open(dir.path(), Default::default()).unwrap();
        let store = KeyedStore::open(log, "weir-test").unwrap();
        assert_eq!(store.entries("a").into_iter().collect::<Vec<_>>(), vec![(b"p1".to_vec(), b"3".to_vec())]);
        assert_eq!(store.get("b", b"p1"), Some(b"9".to_vec()));
        store.clear("b").unwrap();
        assert!(store.entries("b").is_empty());
    }
}
