//! Topic names and topic metadata files.
//!
//! Each topic has `<data_dir>/topics/<topic>.json` (its name and [`TopicConfig`]) next to its
//! partition directories `<data_dir>/topics/<topic>-<partition>/`. The metadata file is the
//! commit point of creation and deletion: a topic is created by making its partition directories
//! and then atomically writing the file, and deleted by removing the file first. A partition
//! directory without metadata is therefore the leftover of an interrupted create or delete, and
//! is removed at open.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::TopicConfig;
use crate::error::LogError;
use crate::fs_util::write_atomically;

/// Kafka's limit on topic name length.
const MAX_TOPIC_NAME_LEN: usize = 249;
const FORMAT_VERSION: u32 = 1;

/// Checks a topic name against Kafka's rules: 1 to 249 characters from `[a-zA-Z0-9._-]`, and
/// not `.` or `..`. The same rules keep names safe as directory names.
pub(crate) fn validate_topic_name(name: &str) -> Result<(), LogError> {
    let invalid = |reason| Err(LogError::InvalidTopicName { topic: name.to_owned(), reason });
    if name.is_empty() {
        return invalid("empty");
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return invalid("longer than 249 characters");
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are reserved");
    }
    if !name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-')) {
        return invalid("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

pub(crate) fn metadata_path(topics_dir: &Path, topic: &str) -> PathBuf {
    topics_dir.join(format!("{topic}.json"))
}

pub(crate) fn partition_dir(topics_dir: &Path, topic: &str, partition: u32) -> PathBuf {
    topics_dir.join(format!("{topic}-{partition}"))
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicMetadata {
    version: u32,
    name: String,
    config: TopicConfig,
}

/// Atomically writes a topic's metadata file.
pub(crate) fn write_metadata(topics_dir: &Path, topic: &str, config: &TopicConfig) -> Result<(), LogError> {
    let metadata = TopicMetadata { version: FORMAT_VERSION, name: topic.to_owned(), config: config.clone() };
    let json = serde_json::to_vec_pretty(&metadata).expect("plain structs serialize to JSON");
    write_atomically(&metadata_path(topics_dir, topic), &json)
}

/// Reads a topic's metadata file: its name and config.
pub(crate) fn read_metadata(path: &Path) -> Result<(String, TopicConfig), LogError> {
    let bytes = std::fs::read(path).map_err(LogError::io(path))?;
    let metadata: TopicMetadata =
        serde_json::from_slice(&bytes).map_err(|source| LogError::MetadataCorrupt { path: path.to_owned(), source })?;
    Ok((metadata.name, metadata.config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        for valid in ["orders", "__consumer_offsets", "a.b-c_d", &"x".repeat(249)] {
            assert!(validate_topic_name(valid).is_ok(), "{valid}");
        }
        for invalid in ["", ".", "..", "a/b", "a b", "ü", &"x".repeat(250)] {
            assert!(validate_topic_name(invalid).is_err(), "{invalid}");
        }
    }

    #[test]
    fn metadata_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = TopicConfig::with_partitions(4);
        write_metadata(dir.path(), "t", &config).expect("write");
        let (name, read_back) = read_metadata(&metadata_path(dir.path(), "t")).expect("read");
        assert_eq!(name, "t");
        assert_eq!(read_back, config);
    }
}
