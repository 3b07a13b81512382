//! A throwaway Postgres for the CDC tests: `initdb` in a temp dir, `wal_level=logical`, a free
//! port on loopback, the socket in the temp dir; stopped (immediate) and removed on drop.
//!
//! initdb and postgres refuse to run as root, and CI runs as root: then they run as the
//! `postgres` user through `runuser`, in a directory that user owns.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::wait_until;

pub(crate) struct Postgres {
    pub(crate) port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

pub(crate) fn bindir() -> PathBuf {
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    for version in ["17", "16", "15"] {
        let dir = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"));
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    panic!("no Postgres server binaries (initdb): install postgresql-15 (tests/run.sh does)");
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

impl Postgres {
    /// Start a fresh server (database `postgres`, superuser `postgres`, trust auth on loopback).
    pub(crate) fn start() -> Self {
        let bin = bindir();
        let dir = tempfile::Builder::new().prefix("weir-pg").tempdir().expect("tempdir");
        if is_root() {
            let status =
                Command::new("chown").arg("-R").arg("postgres:postgres").arg(dir.path()).status().expect("chown");
            assert!(status.success(), "chown of the Postgres temp dir failed");
        }
        let data = dir.path().join("data");
        let server = Self { port: free_port(), dir, bin };
        let output = server.run(
            &server.bin.join("initdb"),
            &["-D", data.to_str().expect("utf-8 path"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        );
        assert!(output.status.success(), "initdb failed: {}", String::from_utf8_lossy(&output.stderr));
        server.start_server();
        server
    }

    fn run(&self, program: &Path, args: &[&str]) -> Output {
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.args(args).current_dir(self.dir.path()).output().expect("run a Postgres binary")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Start (or restart) the server on the same port and data directory.
    pub(crate) fn start_server(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c wal_level=logical -c max_wal_senders=10 \
             -c max_replication_slots=10 -c fsync=off -c synchronous_commit=on",
            self.port,
            self.dir.path().display()
        );
        let data = self.data();
        let log = self.dir.path().join("postgres.log");
        let output = self.run(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                data.to_str().expect("utf-8"),
                "-l",
                log.to_str().expect("utf-8"),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            output.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        wait_until("Postgres accepts connections", Duration::from_secs(30), || {
            let output = self.psql_raw("SELECT 1");
            (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
        });
    }

    /// Stop the server (`fast`: disconnects clients, as a restart in production would).
    pub(crate) fn stop_server(&self) {
        let data = self.data();
        let output =
            self.run(&self.bin.join("pg_ctl"), &["-D", data.to_str().expect("utf-8"), "-m", "fast", "-w", "stop"]);
        assert!(output.status.success(), "pg_ctl stop failed: {}", String::from_utf8_lossy(&output.stderr));
    }

    fn psql_raw(&self, sql: &str) -> Output {
        self.psql_raw_in("postgres", sql)
    }

    pub(crate) fn psql_raw_in(&self, database: &str, sql: &str) -> Output {
        Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", database])
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("run psql")
    }

    /// Run SQL with psql; panics on failure; returns the unaligned, tuples-only output.
    pub(crate) fn sql(&self, sql: &str) -> String {
        self.sql_in("postgres", sql)
    }

    /// [`Postgres::sql`] in another database.
    pub(crate) fn sql_in(&self, database: &str, sql: &str) -> String {
        let output = self.psql_raw_in(database, sql);
        assert!(output.status.success(), "psql failed on {sql:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ =
            self.run(&self.bin.join("pg_ctl"), &["-D", data.to_str().unwrap_or(""), "-m", "immediate", "-w", "stop"]);
    }
}
