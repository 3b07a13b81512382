//! [`KafkaServer`]: binds the listener, accepts connections, and shuts down on request.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::KafkaConfig;
use super::connection::serve_connection;
use super::hosted_groups::HostedGroups;
use super::producer_ids::ProducerIds;
use super::producer_state::ProducerStates;
use crate::Log;
use crate::coordinator::GroupCoordinator;

/// Why the server could not start.
#[derive(thiserror::Error, Debug)]
pub enum KafkaServerError {
    /// The listen address could not be bound.
    #[error("cannot listen for Kafka clients")]
    Bind {
        /// The OS error.
        source: io::Error,
    },
    /// The producer-id state in the log's directory could not be read.
    #[error("cannot read the Kafka producer ids of the log")]
    ProducerIds {
        /// What went wrong.
        source: crate::LogError,
    },
}

/// What every connection shares.
#[derive(Debug)]
pub(super) struct Context {
    pub(super) log: Arc<Log>,
    pub(super) groups: Arc<GroupCoordinator>,
    pub(super) config: KafkaConfig,
    pub(super) producers: ProducerStates,
    pub(super) producer_ids: ProducerIds,
    pub(super) hosted: Option<Arc<dyn HostedGroups>>,
    pub(super) advertised_host: String,
    pub(super) advertised_port: i32,
}

impl Context {
    /// The hosted groups, if someone in this process runs any.
    pub(super) fn hosted(&self) -> Option<&dyn HostedGroups> {
        self.hosted.as_deref()
    }
}

/// A Kafka protocol server on a [`Log`]: bind, then [`serve`](KafkaServer::serve).
///
/// ```no_run
/// # async fn run(log: std::sync::Arc<weir_broker::Log>) -> Result<(), weir_broker::kafka::KafkaServerError> {
/// use weir_broker::kafka::{KafkaConfig, KafkaServer};
/// let server = KafkaServer::bind("127.0.0.1:9092", log, KafkaConfig::default()).await?;
/// server.serve(async { tokio::signal::ctrl_c().await.ok(); }).await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct KafkaServer {
    listener: TcpListener,
    context: Arc<Context>,
}

impl KafkaServer {
    /// Binds `addr` and prepares to serve `log` (with a new group coordinator on it). Must be
    /// called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`KafkaServerError::Bind`]; [`KafkaServerError::ProducerIds`].
    pub async fn bind(addr: impl ToSocketAddrs, log: Arc<Log>, config: KafkaConfig) -> Result<Self, KafkaServerError> {
        let groups = GroupCoordinator::new(Arc::clone(&log), config.coordinator.clone());
        Self::bind_with_coordinator(addr, log, groups, config).await
    }

    /// As [`KafkaServer::bind`], sharing a coordinator that in-process members (weir's worker
    /// group) also use.
    ///
    /// # Errors
    ///
    /// [`KafkaServerError::Bind`]; [`KafkaServerError::ProducerIds`].
    pub async fn bind_with_coordinator(
        addr: impl ToSocketAddrs,
        log: Arc<Log>,
        groups: Arc<GroupCoordinator>,
        config: KafkaConfig,
    ) -> Result<Self, KafkaServerError> {
        let producer_ids = ProducerIds::open(log.dir()).map_err(|source| KafkaServerError::ProducerIds { source })?;
        let listener = TcpListener::bind(addr).await.map_err(|source| KafkaServerError::Bind { source })?;
        let local = listener.local_addr().map_err(|source| KafkaServerError::Bind { source })?;
        let advertised_host = config.advertised_host.clone().unwrap_or_else(|| match local.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
            ip => ip.to_string(),
        });
        let advertised_port = i32::from(config.advertised_port.unwrap_or(local.port()));
        tracing::info!(%local, advertised_host, advertised_port, "Kafka listener bound");
        let context = Arc::new(Context {
            log,
            groups,
            config,
            producers: ProducerStates::default(),
            producer_ids,
            hosted: None,
            advertised_host,
            advertised_port,
        });
        Ok(KafkaServer { listener, context })
    }

    /// Shows the groups `hosted` runs in this process (weir's sink tasks) to Kafka clients as
    /// consumer groups, and keeps Kafka clients out of them (see `hosted_groups`).
    #[must_use]
    pub fn with_hosted_groups(mut self, hosted: Arc<dyn HostedGroups>) -> Self {
        let context = Arc::get_mut(&mut self.context).expect("the context is shared only once serving starts");
        context.hosted = Some(hosted);
        self
    }

    /// The bound address (useful with port 0).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The group coordinator the server uses.
    pub fn coordinator(&self) -> &Arc<GroupCoordinator> {
        &self.context.groups
    }

    /// Serves until `shutdown` completes, then closes every connection (a request being
    /// handled is dropped; its client retries elsewhere or later), snapshots the idempotent
    /// producers' state, and returns.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let permits = Arc::new(Semaphore::new(self.context.config.max_connections));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = Arc::clone(&permits).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_closed) => break,
                },
            };
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let context = Arc::clone(&self.context);
                    let cancel = cancel.child_token();
                    tracker.spawn(async move {
                        serve_connection(context, stream, peer, cancel).await;
                        drop(permit);
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: the listener itself is fine.
                    tracing::warn!(%error, "accepting a Kafka connection failed");
                    tokio::task::yield_now().await;
                }
            }
        }
        cancel.cancel();
        tracker.close();
        tracker.wait().await;
        // The next start then rebuilds producer state from the snapshots alone.
        let context = &self.context;
        super::produce::blocking(|| context.producers.snapshot_all(&context.log));
        tracing::info!("Kafka listener stopped");
    }
}
