//! Bad manifests are refused before anything runs, naming the file, the line and the field.

use std::time::Duration;

use crate::support::WeirProcess;

fn refused(manifest: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, manifest).expect("write manifest");
    let weir = WeirProcess::start(dir.path(), &[path], &[]);
    let (status, stdout, stderr) = weir.wait_exit(Duration::from_secs(120));
    assert_eq!(status.code(), Some(2), "a bad manifest exits with 2\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!dir.path().join("out").exists(), "nothing ran");
    stderr
}

#[test]
fn unknown_manifest_field_is_refused_with_file_line_and_field() {
    let stderr = refused("name: a\nconnector.class: datagen\ntask.max: 2\nconfig:\n  topic: t\n");
    assert!(stderr.contains("bad.yaml:3: field `task.max`"), "{stderr}");
}

#[test]
fn config_failing_the_schema_is_refused_naming_the_field() {
    let stderr = refused("name: a\nconnector.class: datagen\nconfig:\n  topic: t\n  iterations: lots\n");
    assert!(stderr.contains("bad.yaml:5: field `config.iterations`"), "{stderr}");
}

#[test]
fn missing_required_config_is_refused_naming_the_field() {
    let stderr = refused("name: a\nconnector.class: file-sink\nconfig:\n  topics: t\n");
    assert!(stderr.contains("field `config.file`"), "{stderr}");
    assert!(stderr.contains("is required"), "{stderr}");
}

#[test]
fn unknown_plugin_is_refused_naming_connector_class() {
    let stderr = refused("name: a\nconnector.class: nosuch\nconfig: {}\n");
    assert!(stderr.contains("bad.yaml:2: field `connector.class`: unknown plugin `nosuch`"), "{stderr}");
}

#[test]
fn every_example_manifest_validates() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests");
    let mut manifests: Vec<_> = std::fs::read_dir(&root)
        .expect("manifests dir")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    manifests.sort();
    assert!(manifests.iter().any(|path| path.ends_with("quickstart.yaml")), "{manifests:?}");
    let output = std::process::Command::new(crate::support::WEIR)
        .arg("validate")
        .args(&manifests)
        .output()
        .expect("run weir validate");
    assert!(
        output.status.success(),
        "weir validate {manifests:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

mod parser_properties {
    use std::path::Path;

    use proptest::prelude::*;
    use weir_runtime::ManifestFile;

    const VALID: &str =
        "name: orders\nconnector.class: datagen\ntasks.max: 2\nconfig:\n  topic: orders\n  max.interval: 10\n";

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Arbitrary text never panics the parser; an error always names the file.
        #[test]
        fn arbitrary_text_is_parsed_or_refused_with_the_file_named(text in "\\PC{0,400}") {
            if let Err(error) = ManifestFile::parse(Path::new("fuzz.yaml"), text) {
                prop_assert!(error.to_string().starts_with("fuzz.yaml"));
            }
        }

        /// A valid manifest with bytes cut, duplicated or replaced: parsed or refused, never a
        /// panic, and a refusal with a line points inside the text.
        #[test]
        fn mutated_manifests_are_parsed_or_refused(position in 0usize..VALID.len(), cut in 0usize..20, insert in "[ :\\-\\[\\]{}#'\"a-z0-9\\n]{0,8}") {
            let mut text = VALID.to_owned();
            let end = (position + cut).min(text.len());
            text.replace_range(position..end, &insert);
            let lines = text.lines().count().max(1);
            if let Err(error) = ManifestFile::parse(Path::new("fuzz.yaml"), text)
                && let Some(line) = error.line {
                    prop_assert!(line >= 1 && line <= lines + 1, "line {} of {}", line, lines);
                }
        }
    }
}

#[test]
fn a_component_importing_an_ungranted_capability_is_refused_naming_the_interface() {
    let stderr = refused(
        "name: cdc\nconnector.class: postgres-cdc\nconfig:\n  database.hostname: 127.0.0.1\n  database.user: u\n  \
         database.dbname: d\n  topic.prefix: pg\n",
    );
    assert!(stderr.contains("field `grants.postgres`"), "{stderr}");
    assert!(stderr.contains("weir:connector/postgres@0.1.0"), "{stderr}");
    let stderr = refused("name: out\nconnector.class: file-sink\nconfig:\n  topics: t\n  file: ./out/x.txt\n");
    assert!(stderr.contains("field `grants.filesystem`"), "{stderr}");
    assert!(stderr.contains("wasi:filesystem/preopens"), "{stderr}");
}
