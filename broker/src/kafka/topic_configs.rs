//! Kafka's topic config names onto [`TopicConfig`]: `cleanup.policy`, `retention.ms`,
//! `retention.bytes`, `segment.bytes` reach the log; settings that mean nothing on one node
//! are accepted and ignored; anything else is refused as INVALID_CONFIG.

use crate::{CleanupPolicy, TopicConfig};

/// Kafka topic settings accepted without effect here (replication, formats, tuning of a
/// broker this is not), so tools that always send them still work.
const IGNORED: &[&str] = &[
    "min.insync.replicas",
    "unclean.leader.election.enable",
    "compression.type",
    "message.timestamp.type",
    "max.message.bytes",
    "flush.messages",
    "flush.ms",
    "index.interval.bytes",
    "segment.ms",
    "segment.index.bytes",
    "segment.jitter.ms",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "max.compaction.lag.ms",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "preallocate",
    "message.downconversion.enable",
];

/// Applies one `name = value` to `config`.
pub(super) fn apply(config: &mut TopicConfig, name: &str, value: Option<&str>) -> Result<(), String> {
    let Some(value) = value else {
        return Ok(());
    };
    let number = || value.trim().parse::<i64>().map_err(|_parse| format!("{name} must be a number, got {value:?}"));
    match name {
        "cleanup.policy" => {
            config.cleanup_policy = match value {
                "delete" => CleanupPolicy::Delete,
                "compact" | "compact,delete" | "delete,compact" => CleanupPolicy::Compact,
                other => return Err(format!("unknown cleanup.policy {other:?}")),
            };
        }
        "retention.ms" => config.retention_ms = Some(number()?).filter(|ms| *ms >= 0),
        "retention.bytes" => config.retention_bytes = u64::try_from(number()?).ok(),
        "segment.bytes" => {
            config.segment_bytes =
                Some(u64::try_from(number()?).map_err(|_negative| "segment.bytes must be positive".to_owned())?);
        }
        ignored if IGNORED.contains(&ignored) => {}
        other => return Err(format!("unknown topic config {other:?}")),
    }
    Ok(())
}

/// Puts one setting back to its default (Kafka's DELETE of a topic config). Ignored names
/// have no setting to reset.
pub(super) fn reset(config: &mut TopicConfig, name: &str) -> Result<(), String> {
    let defaults = TopicConfig::default();
    match name {
        "cleanup.policy" => config.cleanup_policy = defaults.cleanup_policy,
        "retention.ms" => config.retention_ms = defaults.retention_ms,
        "retention.bytes" => config.retention_bytes = defaults.retention_bytes,
        "segment.bytes" => config.segment_bytes = defaults.segment_bytes,
        ignored if IGNORED.contains(&ignored) => {}
        other => return Err(format!("unknown topic config {other:?}")),
    }
    Ok(())
}

/// The current value of a list setting as its items (only `cleanup.policy` is one), for
/// Kafka's APPEND and SUBTRACT.
pub(super) fn list(config: &TopicConfig, name: &str) -> Result<Vec<String>, String> {
    match name {
        "cleanup.policy" => Ok(vec![
            match config.cleanup_policy {
                CleanupPolicy::Delete => "delete",
                CleanupPolicy::Compact => "compact",
            }
            .to_owned(),
        ]),
        other => Err(format!("{other} is not a list: only SET and DELETE apply to it")),
    }
}

/// The topic's settings as Kafka names them, with whether each is set on the topic (not a
/// default).
pub(super) fn describe(config: &TopicConfig, log_segment_bytes: u64) -> Vec<(&'static str, String, bool)> {
    let policy = match config.cleanup_policy {
        CleanupPolicy::Delete => "delete",
        CleanupPolicy::Compact => "compact",
    };
    vec![
        ("cleanup.policy", policy.to_owned(), config.cleanup_policy != CleanupPolicy::Delete),
        ("retention.ms", config.retention_ms.unwrap_or(-1).to_string(), config.retention_ms.is_some()),
        (
            "retention.bytes",
            config.retention_bytes.map_or(-1, |bytes| bytes as i64).to_string(),
            config.retention_bytes.is_some(),
        ),
        (
            "segment.bytes",
            config.segment_bytes.unwrap_or(log_segment_bytes).to_string(),
            config.segment_bytes.is_some(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_names_reach_the_topic_config_and_unknown_ones_are_refused() {
        let mut config = TopicConfig::with_partitions(3);
        apply(&mut config, "cleanup.policy", Some("compact")).expect("valid");
        apply(&mut config, "retention.ms", Some("60000")).expect("valid");
        apply(&mut config, "retention.bytes", Some("-1")).expect("valid");
        apply(&mut config, "segment.bytes", Some("1048576")).expect("valid");
        apply(&mut config, "min.insync.replicas", Some("2")).expect("ignored");
        assert_eq!(config.cleanup_policy, CleanupPolicy::Compact);
        assert_eq!(
            (config.retention_ms, config.retention_bytes, config.segment_bytes),
            (Some(60000), None, Some(1 << 20))
        );
        assert!(apply(&mut config, "retention.ms", Some("soon")).is_err());
        assert!(apply(&mut config, "no.such.config", Some("1")).is_err());
        reset(&mut config, "retention.ms").expect("valid");
        reset(&mut config, "cleanup.policy").expect("valid");
        assert_eq!((config.retention_ms, config.cleanup_policy), (None, CleanupPolicy::Delete));
        assert_eq!(list(&config, "cleanup.policy"), Ok(vec!["delete".to_owned()]));
        assert!(list(&config, "retention.ms").is_err());
        assert!(reset(&mut config, "no.such.config").is_err());
    }
}
