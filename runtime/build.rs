//! Builds the connector components (wasm32-wasip2) that the binary bundles, plus the test
//! components, with a nested cargo in its own target directory.

use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGES: &[&str] = &[
    "weir-datagen",
    "weir-file-source",
    "weir-file-sink",
    "weir-blackhole",
    "weir-postgres-cdc",
    "weir-postgres-sink",
    "weir-http-sink",
    "weir-faulty",
    "weir-faulty-sink",
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("runtime/ sits in the workspace root").to_path_buf();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out: keep the guest build beside it, in
    // the same target directory, so there is one target dir to cache and clean.
    let target_dir = out_dir.ancestors().nth(4).map(Path::to_path_buf).unwrap_or_else(|| root.join("target"));
    let wasm_target_dir = target_dir.join("wasm");
    for watched in ["wit", "connector-sdk", "connectors", "tests/components"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("Cargo.lock").display());

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "wasm"])
        .arg("--target-dir")
        .arg(&wasm_target_dir);
    for package in PACKAGES {
        command.args(["-p", package]);
    }
    // The outer build's settings are for the host, not for the guests.
    for variable in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "CARGO_PROFILE_RELEASE_LTO",
    ] {
        command.env_remove(variable);
    }
    let status = command.status().expect("cannot run cargo to build the connector components");
    if !status.success() {
        panic!("building the connector components failed (is the target installed? `rustup target add wasm32-wasip2`)");
    }
    let components = wasm_target_dir.join("wasm32-wasip2").join("wasm");
    println!("cargo:rustc-env=WEIR_COMPONENTS_DIR={}", components.display());
    emit_commit(&root);
}

/// The commit `GET /` reports (`WEIR_GIT_COMMIT`), when building from a git checkout.
fn emit_commit(root: &Path) {
    let git = root.join(".git");
    if !git.is_dir() {
        return;
    }
    println!("cargo:rerun-if-changed={}", git.join("HEAD").display());
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD"))
        && let Some(reference) = head.trim().strip_prefix("ref: ")
    {
        // Only files that exist: a missing one would make every build rerun this script.
        for watched in [git.join(reference), git.join("packed-refs")] {
            if watched.exists() {
                println!("cargo:rerun-if-changed={}", watched.display());
            }
        }
    }
    let output = Command::new("git").current_dir(root).args(["rev-parse", "--short=12", "HEAD"]).output();
    if let Some(output) = output.ok().filter(|output| output.status.success()) {
        let commit = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if !commit.is_empty() {
            println!("cargo:rustc-env=WEIR_GIT_COMMIT={commit}");
        }
    }
}
