//! Which host interfaces a component may import, given its connector's grants.
//!
//! A component imports only the interfaces it uses (unused ones are dropped when it is built), so
//! its import list says which capabilities it needs. A connector whose component imports a
//! capability its grants do not open is refused when it is deployed (created, replaced or
//! validated), with an error naming the interface, rather than failing call by call later.

use weir_connector_sdk::FieldError;

use crate::manifest::Grants;

/// The interfaces a component imports, by name (`weir:connector/postgres@0.1.0`, ...).
pub(crate) fn imports_of(engine: &wasmtime::Engine, component: &wasmtime::component::Component) -> Vec<String> {
    component.component_type().imports(engine).map(|(name, _)| name.to_owned()).collect()
}

/// What a granted interface needs, by the package and interface name before `@`.
enum Need {
    /// A grant in the manifest's `grants.<key>`, present when the check says so.
    Grant(&'static str, fn(&Grants) -> bool),
    /// Nothing weir grants: network access goes through the host capabilities.
    Never,
}

fn need_of(interface: &str) -> Option<Need> {
    let unversioned = interface.split('@').next().unwrap_or(interface);
    match unversioned {
        "weir:connector/postgres" => Some(Need::Grant("postgres", |grants| !grants.postgres.is_empty())),
        "weir:connector/http" => Some(Need::Grant("http", |grants| !grants.http.is_empty())),
        "wasi:filesystem/preopens" => Some(Need::Grant("filesystem", |grants| !grants.filesystem.is_empty())),
        _ if unversioned.starts_with("wasi:sockets/") || unversioned.starts_with("wasi:http/") => Some(Need::Never),
        _ => None,
    }
}

/// One error per imported interface that `grants` does not open, each naming the interface
/// and the grant that would open it.
pub(crate) fn ungranted(imports: &[String], grants: &Grants) -> Vec<FieldError> {
    imports
        .iter()
        .filter_map(|interface| match need_of(interface)? {
            Need::Grant(_, granted) if granted(grants) => None,
            Need::Grant(key, _) => Some(FieldError::new(
                format!("grants.{key}"),
                format!(
                    "the component imports `{interface}`, which this connector's grants do not open: add \
                     `grants.{key}` to the manifest (refused at deploy, nothing was started)"
                ),
            )),
            Need::Never => Some(FieldError::new(
                "connector.class",
                format!(
                    "the component imports `{interface}`, which weir never grants (components reach the network \
                     only through host capabilities such as `postgres` and `http`)"
                ),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::PostgresGrant;

    fn imports(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn a_postgres_import_needs_a_postgres_grant() {
        let imports = imports(&["weir:connector/log@0.1.0", "weir:connector/postgres@0.1.0"]);
        let errors = ungranted(&imports, &Grants::default());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "grants.postgres");
        assert!(errors[0].message.contains("weir:connector/postgres@0.1.0"), "{}", errors[0].message);
        let grants = Grants {
            postgres: vec![PostgresGrant { host: "localhost".into(), port: 5432, database: "*".into() }],
            ..Grants::default()
        };
        assert!(ungranted(&imports, &grants).is_empty());
    }

    #[test]
    fn sockets_are_never_granted_and_plain_imports_need_nothing() {
        let errors = ungranted(
            &imports(&["wasi:sockets/tcp@0.2.6", "wasi:cli/environment@0.2.6", "weir:connector/state@0.1.0"]),
            &Grants::default(),
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "connector.class");
        assert!(errors[0].message.contains("wasi:sockets/tcp@0.2.6"));
    }
}
