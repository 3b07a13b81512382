//! A connector's transforms, built once from its specs (every problem reported, each naming its
//! key) and applied in order to each record, honouring each transform's predicate.

use std::collections::{BTreeMap, BTreeSet};

use weir_connector_sdk::FieldError;

use super::ops::{Op, apply};
use super::predicate::Predicate;
use super::record::Record;
use super::spec::{PredicateSpec, TransformSpec, operation, predicate};

/// One transform of the chain: its alias (to name it in errors), what it does, and the
/// predicate (by index) with its `negate` flag.
#[derive(Debug)]
struct Step {
    alias: String,
    op: Op,
    predicate: Option<(usize, bool)>,
}

/// The transforms of one connector, ready to apply.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    steps: Vec<Step>,
    predicates: Vec<Predicate>,
}

/// A record a transform could not handle.
#[derive(Debug, thiserror::Error)]
#[error("transform `{alias}`: {message}")]
pub(crate) struct TransformError {
    pub(crate) alias: String,
    pub(crate) message: String,
}

impl Chain {
    /// Build the chain, or every problem, each naming its key (`transforms.<alias>.<key>`).
    pub(crate) fn new(transforms: &[TransformSpec], predicates: &[PredicateSpec]) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut names = BTreeMap::new();
        let mut built = Vec::new();
        for (index, spec) in predicates.iter().enumerate() {
            let field = |key: &str| format!("predicates.{}.{key}", spec.name);
            if names.insert(spec.name.clone(), index).is_some() {
                errors.push(FieldError::new(field("name"), "is listed twice"));
            }
            match predicate(spec) {
                Ok(predicate) => built.push(predicate),
                Err(error) => {
                    errors.push(FieldError::new(field(&error.key), error.message));
                    built.push(Predicate::RecordIsTombstone);
                }
            }
        }
        let mut steps = Vec::new();
        let mut aliases = BTreeSet::new();
        for spec in transforms {
            let field = |key: &str| format!("transforms.{}.{key}", spec.name);
            if spec.name.is_empty() || spec.name.contains([',', ' ']) {
                errors.push(FieldError::new("transforms", format!("`{}` is not a valid transform name", spec.name)));
            }
            if !aliases.insert(spec.name.clone()) {
                errors.push(FieldError::new(field("name"), "is listed twice"));
            }
            let predicate = match &spec.predicate {
                None => None,
                Some(name) => match names.get(name) {
                    Some(index) => Some((*index, spec.negate)),
                    None => {
                        errors.push(FieldError::new(field("predicate"), format!("no predicate is named `{name}`")));
                        None
                    }
                },
            };
            match operation(spec) {
                Ok(op) => steps.push(Step { alias: spec.name.clone(), op, predicate }),
                Err(error) => errors.push(FieldError::new(field(&error.key), error.message)),
            }
        }
        if errors.is_empty() { Ok(Self { steps, predicates: built }) } else { Err(errors) }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Apply every transform in order: the record, `None` if one dropped it, or the error of
    /// the transform that could not handle it.
    pub(crate) fn apply(&self, mut record: Record) -> Result<Option<Record>, TransformError> {
        for step in &self.steps {
            if let Some((index, negate)) = step.predicate
                && self.predicates[index].matches(&record) == negate
            {
                continue;
            }
            match apply(&step.op, record) {
                Ok(Some(next)) => record = next,
                Ok(None) => return Ok(None),
                Err(error) => return Err(TransformError { alias: step.alias.clone(), message: error.to_string() }),
            }
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::test_support::{record, spec, value_json};

    #[test]
    fn a_chain_applies_in_order_and_reports_the_failing_transform() {
        let chain = Chain::new(
            &[
                spec(
                    "add",
                    "org.apache.kafka.connect.transforms.InsertField$Value",
                    serde_json::json!({ "static.field": "origin", "static.value": "weir", "topic.field": "t" }),
                ),
                spec("drop", "ReplaceField$Value", serde_json::json!({ "exclude": "secret", "renames": "n:number" })),
                spec("route", "RegexRouter", serde_json::json!({ "regex": "orders-(.*)", "replacement": "$1-orders" })),
            ],
            &[],
        )
        .expect("valid chain");
        let out = chain.apply(record("orders-eu", None, Some(r#"{"n":1,"secret":"x"}"#))).expect("ok").expect("kept");
        assert_eq!(value_json(&out), serde_json::json!({ "number": 1, "origin": "weir", "t": "orders-eu" }));
        assert_eq!(out.topic, "eu-orders");
        let error = chain.apply(record("orders-eu", None, Some("not json"))).expect_err("not JSON");
        assert_eq!(error.alias, "add");
        assert!(error.to_string().contains("not JSON"), "{error}");
    }
}
