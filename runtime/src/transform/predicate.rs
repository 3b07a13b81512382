//! Predicates (Kafka Connect's `predicates`): which records a transform applies to.

use super::record::Record;

/// One predicate, parsed and checked (see `spec`).
#[derive(Debug)]
pub(super) enum Predicate {
    TopicNameMatches(regex_lite::Regex),
    HasHeaderKey(String),
    RecordIsTombstone,
}

impl Predicate {
    /// Whether `record` matches (a topic pattern must match the whole topic name).
    pub(super) fn matches(&self, record: &Record) -> bool {
        match self {
            Predicate::TopicNameMatches(regex) => {
                regex.find(&record.topic).is_some_and(|found| found.start() == 0 && found.end() == record.topic.len())
            }
            Predicate::HasHeaderKey(name) => record.headers.iter().any(|(key, _)| key == name),
            Predicate::RecordIsTombstone => record.value.is_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::transform::test_support::{record, spec};
    use crate::transform::{Chain, PredicateSpec};

    #[test]
    fn predicates_select_records_and_filter_drops_them() {
        let mut filter = spec("f", "Filter", serde_json::json!({}));
        filter.predicate = Some("isTest".into());
        let predicate = PredicateSpec {
            name: "isTest".into(),
            kind: "org.apache.kafka.connect.transforms.predicates.TopicNameMatches".into(),
            config: serde_json::json!({ "pattern": "test-.*" }).as_object().cloned().unwrap_or_default(),
        };
        let chain = Chain::new(std::slice::from_ref(&filter), std::slice::from_ref(&predicate)).expect("valid");
        assert!(chain.apply(record("test-1", None, None)).expect("ok").is_none());
        assert!(chain.apply(record("prod", None, None)).expect("ok").is_some());
        filter.negate = true;
        let chain = Chain::new(&[filter], &[predicate]).expect("valid");
        assert!(chain.apply(record("test-1", None, None)).expect("ok").is_some());
    }
}
