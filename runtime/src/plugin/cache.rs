//! Compiled components cached on disk, so a restart loads a component in ~0.3 ms instead of
//! compiling it again (~100 ms or more).
//!
//! An entry is named by the SHA-256 of the component's bytes and the engine's compatibility
//! hash (wasmtime version and every setting that affects code generation): an entry can only
//! ever be loaded by an engine that would have produced it.

#![allow(unsafe_code)]

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compile `bytes`, or load the result of an earlier compile from `cache_dir`.
///
/// # Errors
/// When `bytes` is not a valid component for this engine. A cache entry that cannot be read or
/// loaded is not an error: it is compiled again and replaced.
pub(crate) fn load(engine: &Engine, bytes: &[u8], cache_dir: Option<&Path>) -> Result<Component, wasmtime::Error> {
    let Some(cache_dir) = cache_dir else {
        return Component::new(engine, bytes);
    };
    let path = entry_path(engine, bytes, cache_dir);
    if path.exists() {
        // SAFETY: `deserialize_file` trusts its input to be a compiled artifact of this engine.
        // Entries are written only by `store` below, under the worker's own data directory, and
        // their names carry both the source hash and the engine's compatibility hash.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "compiled-component cache entry unusable, recompiling");
            }
        }
    }
    let component = Component::new(engine, bytes)?;
    if let Err(error) = store(&component, &path) {
        tracing::warn!(path = %path.display(), %error, "cannot write the compiled-component cache");
    }
    Ok(component)
}

fn entry_path(engine: &Engine, bytes: &[u8], cache_dir: &Path) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let source = Sha256::digest(bytes);
    cache_dir.join(format!("{}-{:016x}.cwasm", hex::encode(&source[..16]), hasher.finish()))
}

fn store(component: &Component, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let serialized = component.serialize()?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // Write then rename, so a crash never leaves a half-written entry under the real name.
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, serialized)?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::BUILTIN_COMPONENTS;

    fn entries(dir: &Path) -> Vec<PathBuf> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|read| read.filter_map(|entry| entry.ok().map(|entry| entry.path())).collect())
            .unwrap_or_default();
        entries.sort();
        entries
    }

    #[test]
    fn second_load_comes_from_the_cache_and_a_broken_entry_is_replaced() {
        let engine = crate::host::WasmEngine::new().expect("engine");
        let engine = engine.engine();
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, bytes) = BUILTIN_COMPONENTS.iter().find(|(name, _)| *name == "blackhole").expect("blackhole built in");
        load(engine, bytes, Some(dir.path())).expect("compile");
        let written = entries(dir.path());
        assert_eq!(written.len(), 1, "one cache entry: {written:?}");
        let modified = std::fs::metadata(&written[0]).and_then(|meta| meta.modified()).expect("mtime");

        load(engine, bytes, Some(dir.path())).expect("load from cache");
        let again = std::fs::metadata(&written[0]).and_then(|meta| meta.modified()).expect("mtime");
        assert_eq!(modified, again, "a cache hit does not rewrite the entry");

        std::fs::write(&written[0], b"not a compiled component").expect("corrupt the entry");
        load(engine, bytes, Some(dir.path())).expect("recompile over a broken entry");
        let repaired = std::fs::read(&written[0]).expect("entry");
        assert_ne!(repaired, b"not a compiled component", "the broken entry was replaced");
    }

    #[test]
    fn bytes_that_are_not_a_component_are_an_error() {
        let engine = crate::host::WasmEngine::new().expect("engine");
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(load(engine.engine(), b"\0asm garbage", Some(dir.path())).is_err());
        assert!(entries(dir.path()).is_empty(), "nothing cached for a failed compile");
    }
}
