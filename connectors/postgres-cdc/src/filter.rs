//! `table.include.list` / `table.exclude.list`: comma-separated regexes matched, anchored, against
//! `schema.table`, as in Debezium.

use regex_lite::Regex;

/// Which tables are captured.
#[derive(Debug, Clone)]
pub(crate) struct TableFilter {
    include: Vec<Regex>,
    exclude: Vec<Regex>,
}

const SYSTEM_SCHEMAS: &[&str] = &["pg_catalog", "information_schema", "pg_toast"];

fn compile_list(list: Option<&str>) -> Result<Vec<Regex>, String> {
    let Some(list) = list else { return Ok(Vec::new()) };
    list.split(',')
        .map(str::trim)
        .filter(|pattern| !pattern.is_empty())
        .map(|pattern| Regex::new(&format!("^(?:{pattern})$")).map_err(|error| format!("`{pattern}`: {error}")))
        .collect()
}

impl TableFilter {
    /// # Errors
    /// A pattern that is not a regular expression.
    pub(crate) fn compile(include: Option<&str>, exclude: Option<&str>) -> Result<Self, String> {
        Ok(Self { include: compile_list(include)?, exclude: compile_list(exclude)? })
    }

    pub(crate) fn captures(&self, schema: &str, table: &str) -> bool {
        if SYSTEM_SCHEMAS.contains(&schema) || schema.starts_with("pg_temp") {
            return false;
        }
        let name = format!("{schema}.{table}");
        (self.include.is_empty() || self.include.iter().any(|regex| regex.is_match(&name)))
            && !self.exclude.iter().any(|regex| regex.is_match(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_and_exclude_are_anchored_regexes() {
        let filter =
            TableFilter::compile(Some("public\\.order.*, inventory\\.items"), Some("public\\.orders_old")).unwrap();
        assert!(filter.captures("public", "orders"));
        assert!(filter.captures("inventory", "items"));
        assert!(!filter.captures("inventory", "items2"));
        assert!(!filter.captures("public", "orders_old"));
        assert!(!filter.captures("other", "public.orders"));
        let all = TableFilter::compile(None, None).unwrap();
        assert!(all.captures("public", "t"));
        assert!(!all.captures("pg_catalog", "pg_class"));
    }
}
