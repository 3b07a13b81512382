//! YAML loading: a manifest file holds one or more definitions (`---` separated); each is
//! deserialized straight from its document so that a bad key is reported with its file, line and
//! field, the way an editor wants it (`orders.yaml:3: field `task.max`: unknown field ...`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::definition::{ConnectorDefinition, check_definition};

/// A manifest that cannot be used, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The offending field, when known (`config.iterations`, `tasks.max`).
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A parsed manifest file: its definitions and its text (to point at lines later).
#[derive(Debug, Clone)]
pub struct ManifestFile {
    pub path: PathBuf,
    pub text: String,
    pub definitions: Vec<ConnectorDefinition>,
    /// 0-based line where each definition's document starts.
    document_starts: Vec<usize>,
}

impl ManifestFile {
    /// Read and parse a manifest file.
    ///
    /// # Errors
    /// When the file cannot be read or a document is not a valid connector definition; the error
    /// names the file, the line and the field.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|error| ManifestError {
            file: path.to_owned(),
            line: None,
            field: None,
            message: format!("cannot read the manifest: {error}"),
        })?;
        Self::parse(path, text)
    }

    /// Parse manifest text (`path` names it in errors).
    ///
    /// # Errors
    /// As [`ManifestFile::load`].
    pub fn parse(path: &Path, text: String) -> Result<Self, ManifestError> {
        let mut definitions = Vec::new();
        let mut document_starts = Vec::new();
        let separators: Vec<usize> = std::iter::once(0)
            .chain(text.lines().enumerate().filter(|(_, line)| line.starts_with("---")).map(|(index, _)| index))
            .collect();
        // First pass: find the empty documents (e.g. a trailing `---`). Second pass: deserialize
        // each document straight from the text, so errors carry the field path and the line.
        let mut empty = Vec::new();
        for document in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = serde_yaml_ng::Value::deserialize(document).map_err(|error| yaml_error(path, &text, &error))?;
            empty.push(value.is_null());
        }
        for (index, document) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let start = separators.get(index).copied().unwrap_or(0);
            if empty.get(index).copied().unwrap_or(true) {
                continue;
            }
            let definition =
                ConnectorDefinition::deserialize(document).map_err(|error| yaml_error(path, &text, &error))?;
            let mut definition = definition;
            check_definition(&definition).map_err(|invalid| ManifestError {
                file: path.to_owned(),
                line: line_of_key_from(&text, start, invalid.field),
                field: Some(invalid.field.to_owned()),
                message: invalid.message.to_owned(),
            })?;
            resolve_grant_paths(&mut definition);
            definitions.push(definition);
            document_starts.push(start);
        }
        if definitions.is_empty() {
            return Err(ManifestError {
                file: path.to_owned(),
                line: None,
                field: None,
                message: "the manifest defines no connector".into(),
            });
        }
        Ok(Self { path: path.to_owned(), text, definitions, document_starts })
    }

    /// An error about `field` (a dotted path such as `config.iterations` or `connector.class`)
    /// of definition `index`, located in this file.
    pub fn field_error(&self, index: usize, field: &str, message: &str) -> ManifestError {
        let start = self.document_starts.get(index).copied().unwrap_or(0);
        let line = line_of_key_from(&self.text, start, field)
            .or_else(|| field.rsplit_once('.').and_then(|(parent, _)| line_of_key_from(&self.text, start, parent)));
        ManifestError {
            file: self.path.clone(),
            line,
            field: (!field.is_empty()).then(|| field.to_owned()),
            message: message.to_owned(),
        }
    }
}

/// Relative grant paths are relative to the worker's working directory; keep the written form
/// too, because that is the path the connector's config uses.
fn resolve_grant_paths(definition: &mut ConnectorDefinition) {
    for grant in &mut definition.grants.filesystem {
        if grant.path.as_os_str().is_empty() {
            grant.path = PathBuf::from(".");
        }
    }
}

fn yaml_error(path: &Path, text: &str, error: &serde_yaml_ng::Error) -> ManifestError {
    let message = error.to_string();
    // serde_yaml_ng appends " at line L column C" to its messages; keep ours shorter.
    let message = match message.find(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message,
    };
    let field = field_in_message(&message);
    let line = error
        .location()
        .map(|location| location.line())
        .or_else(|| field.as_deref().and_then(|field| line_of_key_in(text, field)));
    ManifestError { file: path.to_owned(), line, field, message }
}

/// serde names the field in backticks: "unknown field `foo`", "missing field `name`",
/// "tasks.max: invalid type ...".
fn field_in_message(message: &str) -> Option<String> {
    if let Some(start) = message.find('`') {
        let rest = &message[start + 1..];
        if let Some(end) = rest.find('`') {
            return Some(rest[..end].to_owned());
        }
    }
    let (path, _) = message.split_once(": ")?;
    (!path.contains(' ')).then(|| path.to_owned())
}

/// The 1-based line where a dotted key path (`config.max.interval`, `tasks.max`) is written,
/// found by walking the YAML's indentation. Keys may themselves contain dots, as Kafka Connect's
/// do, so each step tries the longest key first.
pub fn line_of_key_in(text: &str, dotted: &str) -> Option<usize> {
    line_of_key_from(text, 0, dotted)
}

fn line_of_key_from(text: &str, first_line: usize, dotted: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut start = first_line;
    let mut parent_indent: Option<usize> = None;
    let mut remaining = dotted;
    let mut found = None;
    while !remaining.is_empty() {
        let mut step = None;
        let parts: Vec<&str> = remaining.split('.').collect();
        'lengths: for take in (1..=parts.len()).rev() {
            let key = parts[..take].join(".");
            for (index, line) in lines.iter().enumerate().skip(start) {
                if index > first_line && line.starts_with("---") {
                    break; // the next document
                }
                let indent = line.len() - line.trim_start().len();
                let trimmed = line.trim_start().trim_start_matches("- ");
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                if let Some(parent) = parent_indent
                    && indent <= parent
                {
                    break; // left the parent's block
                }
                let unquoted = trimmed.trim_start_matches(['"', '\'']);
                if let Some(rest) = unquoted.strip_prefix(key.as_str()) {
                    let rest = rest.trim_start_matches(['"', '\'']);
                    if rest.starts_with(':') {
                        step = Some((index, indent, take));
                        break 'lengths;
                    }
                }
            }
        }
        let (index, indent, take) = step?;
        found = Some(index + 1);
        start = index + 1;
        parent_indent = Some(indent);
        remaining = match parts.get(take..) {
            Some(rest) if !rest.is_empty() => &remaining[parts[..take].join(".").len() + 1..],
            _ => "",
        };
    }
    found
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::manifest::{Access, Limits};

    /// Two documents: a source with a dotted config key, a sink with a grant.
    pub(in crate::manifest) const GOOD: &str = "\
name: orders
connector.class: datagen
tasks.max: 2
config:
  topic: orders
  max.interval: 10
---
name: sink
connector.class: file-sink
config:
  topics: orders, payments
  file: ./out/orders.txt
grants:
  filesystem:
    - path: ./out
      access: read-write
";

    #[test]
    fn parses_several_documents() {
        let file = ManifestFile::parse(Path::new("m.yaml"), GOOD.into()).unwrap();
        assert_eq!(file.definitions.len(), 2);
        assert_eq!(file.definitions[0].tasks_max, 2);
        assert_eq!(file.definitions[0].config["max.interval"], 10);
        assert_eq!(file.definitions[1].topics(), vec!["orders", "payments"]);
        assert_eq!(file.definitions[1].grants.filesystem[0].access, Access::ReadWrite);
        assert_eq!(file.definitions[1].limits, Limits::default());
    }

    #[test]
    fn unknown_field_names_field_and_line() {
        let text = "name: a\nconnector.class: datagen\ntask.max: 2\n";
        let error = ManifestFile::parse(Path::new("bad.yaml"), text.into()).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("task.max"));
        assert_eq!(error.line, Some(3));
        assert!(error.to_string().starts_with("bad.yaml:3: field `task.max`"), "{error}");
    }

    #[test]
    fn wrong_type_names_field_and_line() {
        let text = "name: a\nconnector.class: datagen\ntasks.max: many\n";
        let error = ManifestFile::parse(Path::new("bad.yaml"), text.into()).unwrap_err();
        assert_eq!(error.line, Some(3), "{error}");
        assert!(error.to_string().contains("tasks.max"), "{error}");
    }

    #[test]
    fn broken_yaml_names_line() {
        let text = "name: a\nconnector.class: [datagen\n";
        let error = ManifestFile::parse(Path::new("bad.yaml"), text.into()).unwrap_err();
        assert!(error.line.is_some(), "{error}");
    }

    #[test]
    fn zero_tasks_is_refused() {
        let text = "name: a\nconnector.class: datagen\ntasks.max: 0\n";
        let error = ManifestFile::parse(Path::new("bad.yaml"), text.into()).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("tasks.max"));
        assert_eq!(error.line, Some(3));
    }

    #[test]
    fn finds_dotted_keys_inside_blocks() {
        let file = ManifestFile::parse(Path::new("m.yaml"), GOOD.into()).unwrap();
        assert_eq!(line_of_key_in(GOOD, "config.max.interval"), Some(6));
        assert_eq!(line_of_key_in(GOOD, "tasks.max"), Some(3));
        assert_eq!(file.field_error(0, "config.topic", "bad").line, Some(5));
        assert_eq!(file.field_error(1, "config.file", "bad").line, Some(12));
        assert_eq!(file.field_error(1, "config.nope", "bad").line, Some(10));
        assert_eq!(file.field_error(1, "connector.class", "bad").line, Some(9));
    }
}
