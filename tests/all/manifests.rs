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
