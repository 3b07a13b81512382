//! The `datagen` configuration. The doc comments are the user documentation: they land in the
//! connector's JSON Schema.

use weir_connector_sdk::FieldError;

use crate::events;

/// The largest `value.size` accepted: a batch holds many values, and this is a generator for
/// tests and benchmarks, not for filling memory.
pub const MAX_VALUE_SIZE: u32 = 1 << 20;

/// Configuration of the `datagen` source.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatagenConfig {
    /// Topic the generated records are written to.
    pub topic: String,

    /// Total number of records across all tasks; 0 generates without end.
    #[serde(default)]
    pub iterations: u64,

    /// Milliseconds between two records of one task; 0 generates as fast as the runtime polls.
    /// Unlike Confluent's datagen, where this bounds a random interval, the interval is fixed,
    /// so that runs are reproducible.
    #[serde(default, rename = "max.interval")]
    pub max_interval: u64,

    /// Which events to generate, after Confluent datagen's quickstarts.
    #[serde(default)]
    pub quickstart: Quickstart,

    /// Pad every value with a `"pad"` string field so that it is exactly this many bytes (for
    /// benchmarks). It must leave room for the largest event of the quickstart: at least 98
    /// for `pageviews`, 123 for `users`, 164 for `orders` (less when `iterations` keeps the ids
    /// short). Unset: no padding.
    #[serde(default, rename = "value.size")]
    #[schemars(range(min = 1, max = 1_048_576))]
    pub value_size: Option<u32>,
}

/// A kind of synthetic event. Every value carries a unique integer `id`; the record key is that
/// id in decimal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Quickstart {
    /// `{"id","ordertime","itemid","orderunits","address":{"city","state","zipcode"}}`
    #[default]
    Orders,
    /// `{"id","registertime","userid","regionid","gender"}`
    Users,
    /// `{"id","viewtime","userid","pageid"}`
    Pageviews,
}

impl Quickstart {
    pub fn as_str(self) -> &'static str {
        match self {
            Quickstart::Orders => "orders",
            Quickstart::Users => "users",
            Quickstart::Pageviews => "pageviews",
        }
    }
}

impl DatagenConfig {
    /// The largest id any task generates.
    pub(crate) fn max_id(&self) -> u64 {
        self.iterations.checked_sub(1).unwrap_or(u64::MAX)
    }

    /// The checks the schema cannot express.
    ///
    /// # Errors
    /// Every problem found, naming its field.
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.topic.is_empty() {
            errors.push(FieldError::new("topic", "must not be empty"));
        }
        if let Some(size) = self.value_size {
            let minimum = events::max_len(self.quickstart, self.max_id()) + events::PAD_OVERHEAD;
            if (size as usize) < minimum {
                errors.push(FieldError::new(
                    "value.size",
                    format!(
                        "must be at least {minimum} for quickstart {} with these iterations \
                         (the largest event plus the pad field); quickstart pageviews has the \
                         smallest events",
                        self.quickstart.as_str()
                    ),
                ));
            } else if size > MAX_VALUE_SIZE {
                errors.push(FieldError::new("value.size", format!("must be at most {MAX_VALUE_SIZE}")));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

/// What one task generates: ids `task`, `task + tasks`, `task + 2 * tasks`, ... (the task config
/// made by `task_configs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskAssignment {
    pub(crate) task: u64,
    pub(crate) tasks: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> DatagenConfig {
        weir_connector_sdk::config::parse(json).unwrap()
    }

    #[test]
    fn defaults_are_endless_full_speed_orders() {
        let config = config(r#"{"topic":"orders"}"#);
        assert_eq!(config.iterations, 0);
        assert_eq!(config.max_interval, 0);
        assert_eq!(config.quickstart, Quickstart::Orders);
        assert_eq!(config.value_size, None);
        assert!(config.check().is_ok());
    }

    #[test]
    fn documented_minimum_value_sizes_hold() {
        for (quickstart, minimum) in [("pageviews", 98), ("users", 123), ("orders", 164)] {
            let fits = config(&format!(r#"{{"topic":"t","quickstart":"{quickstart}","value.size":{minimum}}}"#));
            assert!(fits.check().is_ok(), "{quickstart} {minimum}");
            let short = config(&format!(r#"{{"topic":"t","quickstart":"{quickstart}","value.size":{}}}"#, minimum - 1));
            let errors = short.check().unwrap_err();
            assert_eq!(errors[0].field, "value.size");
        }
    }

    #[test]
    fn iterations_shorten_the_largest_event() {
        let config = config(r#"{"topic":"t","iterations":1000,"value.size":150}"#);
        assert!(config.check().is_ok());
    }
}
