//! The plugin registry: the built-in connectors bundled into the binary, any component in the
//! plugin directory, and (for benchmarks) connectors compiled natively into the host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use weir_connector_sdk::{ConnectorError, DynConnector, DynSinkTask, DynSourceTask, FieldError, Host, Kind, Spec};

use super::{cache, capabilities};
use crate::host::bindings::{SinkConnectorPre, SourceConnectorPre, types};
use crate::host::{TaskError, TaskSetup, TaskState, WasmEngine, call_result, instantiated, new_store, trap_report};
use crate::log::Generation;
use crate::manifest::{Grants, Limits};
use crate::state_store::StateStore;

/// The built-in connectors, compiled to components by `build.rs` and bundled into the binary.
pub const BUILTIN_COMPONENTS: &[(&str, &[u8])] = &[
    ("datagen", include_bytes!(concat!(env!("WEIR_COMPONENTS_DIR"), "/weir_datagen.wasm"))),
    ("file-source", include_bytes!(concat!(env!("WEIR_COMPONENTS_DIR"), "/weir_file_source.wasm"))),
    ("file-sink", include_bytes!(concat!(env!("WEIR_COMPONENTS_DIR"), "/weir_file_sink.wasm"))),
    ("blackhole", include_bytes!(concat!(env!("WEIR_COMPONENTS_DIR"), "/weir_blackhole.wasm"))),
    ("postgres-cdc", include_bytes!(concat!(env!("WEIR_COMPONENTS_DIR"), "/weir_postgres_cdc.wasm"))),
    ("postgres-sink", include_bytes!(concat!(env!("WEIR_COMPONENTS_DIR"), "/weir_postgres_sink.wasm"))),
    ("http-sink", include_bytes!(concat!(env!("WEIR_COMPONENTS_DIR"), "/weir_http_sink.wasm"))),
];

/// Opens a natively compiled source task.
pub type NativeSourceOpen = fn(&str, &str, u32, Box<dyn Host>) -> Result<Box<dyn DynSourceTask>, ConnectorError>;
/// Opens a natively compiled sink task.
pub type NativeSinkOpen = fn(&str, &str, u32, Box<dyn Host>) -> Result<Box<dyn DynSinkTask>, ConnectorError>;

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginOrigin {
    Builtin,
    File(PathBuf),
    Native,
}

pub(crate) enum PluginCode {
    Source(SourceConnectorPre<TaskState>),
    Sink(SinkConnectorPre<TaskState>),
    NativeSource(Box<dyn DynConnector>, NativeSourceOpen),
    NativeSink(Box<dyn DynConnector>, NativeSinkOpen),
}

/// A plugin that failed to load.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{origin}: not a valid WebAssembly component: {message}")]
    InvalidComponent { origin: String, message: String },
    #[error(
        "{origin}: the component exports neither the `source` nor the `sink` interface of weir:connector@0.1.0, or imports an interface the runtime does not grant: {message}"
    )]
    WrongWorld { origin: String, message: String },
    #[error("{origin}: spec() failed: {message}")]
    Spec { origin: String, message: String },
    #[error("{origin}: the config schema from spec() is not a valid JSON Schema: {message}")]
    Schema { origin: String, message: String },
    #[error("cannot read plugin directory {path}: {source}")]
    Directory { path: PathBuf, source: std::io::Error },
}

/// A loaded plugin.
pub struct Plugin {
    spec: Spec,
    origin: PluginOrigin,
    schema: serde_json::Value,
    validator: jsonschema::Validator,
    pub(crate) code: PluginCode,
    /// The interfaces the component imports (none for a native connector).
    imports: Vec<String>,
    engine: WasmEngine,
    state: Arc<StateStore>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("spec", &self.spec).field("origin", &self.origin).finish_non_exhaustive()
    }
}

impl Plugin {
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn origin(&self) -> &PluginOrigin {
        &self.origin
    }

    /// The interfaces the component imports (`weir:connector/postgres@0.1.0`, ...).
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// Errors for each imported capability that `grants` do not open, naming the interface.
    pub fn ungranted_imports(&self, grants: &Grants) -> Vec<FieldError> {
        capabilities::ungranted(&self.imports, grants)
    }

    /// The config's JSON Schema, parsed.
    pub fn schema(&self) -> &serde_json::Value {
        &self.schema
    }

    pub(crate) fn engine(&self) -> &WasmEngine {
        &self.engine
    }

    /// Errors of `config` against the plugin's JSON Schema, each naming the field.
    pub fn schema_errors(&self, config: &serde_json::Value) -> Vec<FieldError> {
        self.validator.iter_errors(config).map(|error| field_error(&error)).collect()
    }

    /// The connector's own `validate`.
    ///
    /// # Errors
    /// The component's field errors, or one error naming no field if the call itself failed.
    pub async fn validate(&self, config: &str) -> Result<(), Vec<FieldError>> {
        macro_rules! validate_with {
            ($pre:expr) => {{
                let mut store = self.scratch_store().map_err(call_failed)?;
                let bindings = instantiated($pre.instantiate_async(&mut store).await, &store).map_err(call_failed)?;
                let result = bindings.weir_connector_connector().call_validate(&mut store, config).await;
                finish_validate(&store, result)
            }};
        }
        match &self.code {
            PluginCode::NativeSource(connector, _) | PluginCode::NativeSink(connector, _) => connector.validate(config),
            PluginCode::Source(pre) => validate_with!(pre),
            PluginCode::Sink(pre) => validate_with!(pre),
        }
    }

    /// The connector's `task-configs`.
    ///
    /// # Errors
    /// The component's error, or a trap.
    pub async fn task_configs(&self, config: &str, max_tasks: u32) -> Result<Vec<String>, TaskError> {
        macro_rules! task_configs_with {
            ($pre:expr) => {{
                let mut store = self.scratch_store()?;
                let bindings = instantiated($pre.instantiate_async(&mut store).await, &store)?;
                let result = bindings.weir_connector_connector().call_task_configs(&mut store, config, max_tasks).await;
                call_result(result, &store, "task-configs")
            }};
        }
        match &self.code {
            PluginCode::NativeSource(connector, _) | PluginCode::NativeSink(connector, _) => {
                connector.task_configs(config, max_tasks).map_err(TaskError::Connector)
            }
            PluginCode::Source(pre) => task_configs_with!(pre),
            PluginCode::Sink(pre) => task_configs_with!(pre),
        }
    }

    /// Tell the connector `connector` (config `config`, references resolved) it was deleted:
    /// its `on-delete`, on an instance with the connector's grants and limits.
    ///
    /// # Errors
    /// The component's error, or a trap.
    pub async fn on_delete(
        &self,
        connector: &str,
        config: &str,
        grants: &Grants,
        limits: Limits,
    ) -> Result<(), TaskError> {
        macro_rules! on_delete_with {
            ($pre:expr) => {{
                let setup = TaskSetup { grants: grants.clone(), limits, ..scratch_setup(connector, &self.state) };
                let mut store = new_store(&self.engine, &setup)?;
                let bindings = instantiated($pre.instantiate_async(&mut store).await, &store)?;
                store.data_mut().call_started = std::time::Instant::now();
                let result = bindings.weir_connector_connector().call_on_delete(&mut store, config).await;
                call_result(result, &store, "on-delete")
            }};
        }
        match &self.code {
            PluginCode::NativeSource(native, _) | PluginCode::NativeSink(native, _) => {
                native.on_delete(config).map_err(TaskError::Connector)
            }
            PluginCode::Source(pre) => on_delete_with!(pre),
            PluginCode::Sink(pre) => on_delete_with!(pre),
        }
    }

    /// A store for a short-lived instance serving control-plane calls.
    fn scratch_store(&self) -> Result<wasmtime::Store<TaskState>, TaskError> {
        new_store(&self.engine, &scratch_setup(&self.spec.name, &self.state))
    }
}

fn scratch_setup(name: &str, state: &Arc<StateStore>) -> TaskSetup {
    TaskSetup {
        connector: Arc::from(name),
        task_id: 0,
        config: String::new(),
        task_config: String::new(),
        committed: Vec::new(),
        grants: Grants::default(),
        limits: Limits::default(),
        state: state.clone(),
        metrics: Arc::default(),
        generation: Generation::default(),
    }
}

fn call_failed(error: TaskError) -> Vec<FieldError> {
    vec![FieldError { field: String::new(), message: error.to_string() }]
}

fn finish_validate(
    store: &wasmtime::Store<TaskState>,
    result: wasmtime::Result<Result<(), Vec<types::FieldError>>>,
) -> Result<(), Vec<FieldError>> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(errors)) => {
            Err(errors.into_iter().map(|error| FieldError { field: error.field, message: error.message }).collect())
        }
        Err(error) => Err(call_failed(trap_report(store, "validate", &error))),
    }
}

/// Turn a JSON Schema error into a field error: the field is the instance path (or, for a
/// missing or unexpected property, that property).
fn field_error(error: &jsonschema::ValidationError<'_>) -> FieldError {
    use jsonschema::error::ValidationErrorKind;
    let path = error.instance_path().to_string();
    let mut field = path.trim_start_matches('/').replace('/', ".");
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().map(str::to_owned).unwrap_or_else(|| property.to_string());
            field = if field.is_empty() { name } else { format!("{field}.{name}") };
            FieldError { field, message: "is required".into() }
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let name = unexpected.join(", ");
            field = if field.is_empty() { name } else { format!("{field}.{name}") };
            FieldError { field, message: "is not a known config key of this connector".into() }
        }
        _ => FieldError { field, message: error.to_string() },
    }
}

/// Every plugin, by name.
#[derive(Debug)]
pub struct PluginRegistry {
    plugins: BTreeMap<String, Arc<Plugin>>,
}

impl PluginRegistry {
    /// Load the built-ins and every `*.wasm` in `plugin_dir`. A broken file in the plugin
    /// directory is reported in the returned list and skipped; the others still load.
    ///
    /// # Errors
    /// When a built-in fails to load (a broken build), or the plugin directory cannot be read.
    pub async fn load(
        engine: &WasmEngine,
        state: Arc<StateStore>,
        cache_dir: Option<&Path>,
        plugin_dir: Option<&Path>,
    ) -> Result<(Self, Vec<PluginError>), PluginError> {
        let mut plugins = BTreeMap::new();
        for (name, bytes) in BUILTIN_COMPONENTS {
            let plugin = load_component(engine, &state, bytes, cache_dir, PluginOrigin::Builtin, name).await?;
            plugins.insert(plugin.spec.name.clone(), Arc::new(plugin));
        }
        let mut rejected = Vec::new();
        if let Some(dir) = plugin_dir {
            let entries =
                std::fs::read_dir(dir).map_err(|source| PluginError::Directory { path: dir.to_owned(), source })?;
            let mut paths: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
                .collect();
            paths.sort();
            for path in paths {
                let origin_text = path.display().to_string();
                let loaded = match std::fs::read(&path) {
                    Ok(bytes) => {
                        load_component(
                            engine,
                            &state,
                            &bytes,
                            cache_dir,
                            PluginOrigin::File(path.clone()),
                            &origin_text,
                        )
                        .await
                    }
                    Err(error) => {
                        Err(PluginError::InvalidComponent { origin: origin_text, message: error.to_string() })
                    }
                };
                match loaded {
                    Ok(plugin) => {
                        tracing::info!(plugin = %plugin.spec.name, path = %path.display(), "loaded plugin");
                        plugins.insert(plugin.spec.name.clone(), Arc::new(plugin));
                    }
                    Err(error) => {
                        tracing::error!(%error, "skipping plugin");
                        rejected.push(error);
                    }
                }
            }
        }
        Ok((Self { plugins }, rejected))
    }

    /// Add a natively compiled connector (benchmarks, tests). Replaces a plugin of the same name.
    ///
    /// # Errors
    /// When its schema is not a valid JSON Schema.
    pub fn add_native_source(
        &mut self,
        engine: &WasmEngine,
        state: Arc<StateStore>,
        connector: Box<dyn DynConnector>,
        open: NativeSourceOpen,
    ) -> Result<(), PluginError> {
        let spec = connector.spec();
        self.add_native(engine, state, spec, PluginCode::NativeSource(connector, open))
    }

    /// See [`PluginRegistry::add_native_source`].
    ///
    /// # Errors
    /// When its schema is not a valid JSON Schema.
    pub fn add_native_sink(
        &mut self,
        engine: &WasmEngine,
        state: Arc<StateStore>,
        connector: Box<dyn DynConnector>,
        open: NativeSinkOpen,
    ) -> Result<(), PluginError> {
        let spec = connector.spec();
        self.add_native(engine, state, spec, PluginCode::NativeSink(connector, open))
    }

    fn add_native(
        &mut self,
        engine: &WasmEngine,
        state: Arc<StateStore>,
        spec: Spec,
        code: PluginCode,
    ) -> Result<(), PluginError> {
        let (schema, validator) = compile_schema(&spec, "native")?;
        let plugin = Plugin {
            spec,
            origin: PluginOrigin::Native,
            schema,
            validator,
            code,
            imports: Vec::new(),
            engine: engine.clone(),
            state,
        };
        self.plugins.insert(plugin.spec.name.clone(), Arc::new(plugin));
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.plugins.get(name).cloned()
    }

    pub fn plugins(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.values()
    }
}

fn compile_schema(spec: &Spec, origin: &str) -> Result<(serde_json::Value, jsonschema::Validator), PluginError> {
    let schema: serde_json::Value = serde_json::from_str(&spec.config_schema)
        .map_err(|error| PluginError::Schema { origin: origin.to_owned(), message: error.to_string() })?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|error| PluginError::Schema { origin: origin.to_owned(), message: error.to_string() })?;
    Ok((schema, validator))
}

async fn load_component(
    engine: &WasmEngine,
    state: &Arc<StateStore>,
    bytes: &[u8],
    cache_dir: Option<&Path>,
    origin: PluginOrigin,
    origin_text: &str,
) -> Result<Plugin, PluginError> {
    let component = cache::load(engine.engine(), bytes, cache_dir).map_err(|error| PluginError::InvalidComponent {
        origin: origin_text.to_owned(),
        message: format!("{error:#}"),
    })?;
    let imports = capabilities::imports_of(engine.engine(), &component);
    let linker = engine.linker().map_err(|error| PluginError::InvalidComponent {
        origin: origin_text.to_owned(),
        message: format!("{error:#}"),
    })?;
    let instance_pre = linker
        .instantiate_pre(&component)
        .map_err(|error| PluginError::WrongWorld { origin: origin_text.to_owned(), message: format!("{error:#}") })?;
    let code = match SourceConnectorPre::new(instance_pre.clone()) {
        Ok(pre) => PluginCode::Source(pre),
        Err(source_error) => match SinkConnectorPre::new(instance_pre.clone()) {
            Ok(pre) => PluginCode::Sink(pre),
            Err(sink_error) => {
                return Err(PluginError::WrongWorld {
                    origin: origin_text.to_owned(),
                    message: format!("as a source: {source_error:#}; as a sink: {sink_error:#}"),
                });
            }
        },
    };
    let spec_error = |message: String| PluginError::Spec { origin: origin_text.to_owned(), message };
    let mut store =
        new_store(engine, &scratch_setup(origin_text, state)).map_err(|error| spec_error(error.to_string()))?;
    macro_rules! spec_with {
        ($pre:expr) => {{
            let bindings = $pre
                .instantiate_async(&mut store)
                .await
                .map_err(|error| spec_error(trap_report(&store, "instantiate", &error).to_string()))?;
            bindings
                .weir_connector_connector()
                .call_spec(&mut store)
                .await
                .map_err(|error| spec_error(trap_report(&store, "spec", &error).to_string()))?
        }};
    }
    let wit_spec = match &code {
        PluginCode::Source(pre) => spec_with!(pre),
        PluginCode::Sink(pre) => spec_with!(pre),
        PluginCode::NativeSource(..) | PluginCode::NativeSink(..) => {
            return Err(spec_error("not a component".into()));
        }
    };
    let kind = match wit_spec.kind {
        types::ConnectorKind::Source => Kind::Source,
        types::ConnectorKind::Sink => Kind::Sink,
    };
    let world_kind = if matches!(code, PluginCode::Source(_)) { Kind::Source } else { Kind::Sink };
    if kind != world_kind {
        return Err(spec_error(format!(
            "spec() says kind {kind:?} but the component exports the {world_kind:?} interface"
        )));
    }
    let spec = Spec {
        name: wit_spec.name,
        version: wit_spec.version,
        kind,
        description: wit_spec.description,
        config_schema: wit_spec.config_schema,
    };
    if spec.name.trim().is_empty() {
        return Err(spec_error("spec() returned an empty name".into()));
    }
    let (schema, validator) = compile_schema(&spec, origin_text)?;
    Ok(Plugin { spec, origin, schema, validator, code, imports, engine: engine.clone(), state: state.clone() })
}
