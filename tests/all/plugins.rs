//! The plugin directory: components load from it; a broken file is refused with an error naming
//! it, and the good plugins still load.

use std::process::Command;

use crate::support::{WEIR, component};

#[test]
fn broken_plugin_file_is_named_and_the_others_still_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin dir");
    std::fs::copy(component("weir_faulty.wasm"), plugins.join("faulty.wasm")).expect("copy component");
    std::fs::write(plugins.join("broken.wasm"), b"\0asm\x0d\0\x01\0 definitely not a component").expect("write");
    let output = Command::new(WEIR)
        .args(["plugins", "--plugin-dir"])
        .arg(&plugins)
        .env("TMPDIR", dir.path())
        .output()
        .expect("run weir plugins");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stderr:\n{stderr}");
    assert!(
        stderr.contains("broken.wasm") && stderr.contains("not a valid WebAssembly component"),
        "stderr:\n{stderr}"
    );
    for plugin in ["datagen", "file-source", "file-sink", "blackhole", "faulty"] {
        assert!(stdout.lines().any(|line| line.starts_with(plugin)), "{plugin} missing from:\n{stdout}");
    }
}
