//! A broker on a free loopback port, restartable on the same data directory, and the helpers
//! that run client processes against it with a deadline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use weir_broker::kafka::{KafkaConfig, KafkaServer};
use weir_broker::{Log, LogConfig};

/// A Kafka server on its own runtime thread, serving a log in `dir`.
pub(crate) struct Broker {
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Broker {
    /// Starts a broker on `dir` at `addr` (port 0 for a free one).
    pub(crate) fn start(dir: &Path, addr: &str) -> Broker {
        // `RUST_LOG=weir_broker=debug` shows what the server did, with the test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let dir = dir.to_owned();
        let addr = addr.to_owned();
        let thread = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let log = Log::open(&dir, LogConfig::default()).expect("log opens");
                let config = KafkaConfig { default_partitions: 1, ..KafkaConfig::default() };
                let server = KafkaServer::bind(addr.as_str(), log, config).await.expect("binds");
                ready_tx.send(server.local_addr().expect("local addr")).expect("test waits");
                server
                    .serve(async move {
                        stopped.await.ok();
                    })
                    .await;
            });
        });
        let addr = ready_rx.recv_timeout(Duration::from_secs(30)).expect("broker started");
        Broker { addr, stop: Some(stop), thread: Some(thread) }
    }

    pub(crate) fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Stops the broker and waits until its log is closed (so it can be opened again).
    pub(crate) fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("broker thread");
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The repository's `tests/kafka/` folder.
pub(crate) fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/kafka")
}

/// Fails with how to install `program` unless it runs.
pub(crate) fn require(program: &str, check: &[&str], install: &str) {
    let found = Command::new(program).args(check).stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(
        found.is_ok_and(|status| status.success()),
        "{program} is needed for this test: run tests/run.sh, or `{install}`"
    );
}

/// Runs `command` to completion, killing it after `timeout`; panics with its output unless it
/// succeeded.
pub(crate) fn run(mut command: Command, timeout: Duration, stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let description = format!("{command:?}");
    let mut child = command.spawn().unwrap_or_else(|error| panic!("cannot start {description}: {error}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped");
        pipe.write_all(input).expect("write stdin");
    }
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            let output = child.wait_with_output().expect("output");
            panic!(
                "{description} did not finish in {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        #[allow(
            clippy::disallowed_methods,
            reason = "a synchronous test thread waiting for a client process; the server runs on its own runtime thread"
        )]
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    assert!(
        output.status.success(),
        "{description} failed: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs one of the Python client scripts with arguments.
pub(crate) fn python(script: &str, args: &[&str], timeout: Duration) -> String {
    let mut command = Command::new("python3");
    command.arg(scripts().join("python").join(script)).args(args);
    String::from_utf8(run(command, timeout, None).stdout).expect("utf-8 output")
}
