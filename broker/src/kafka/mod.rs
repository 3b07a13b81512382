//! The Kafka wire protocol in front of the [`Log`](crate::Log): any Kafka client (kcat,
//! librdkafka, the Java client, kafka-python, kafkajs) produces, consumes and runs consumer
//! groups against weir's log unchanged.
//!
//! [`KafkaServer`] accepts connections; `connection` frames requests (bounded before anything
//! is allocated) and answers them in order, one at a time per connection as Kafka brokers do;
//! `dispatch` checks the version against what is advertised and hands the decoded request to
//! one file per operation (`produce.rs`, `fetch.rs`, `group/join.rs`, ...). Group membership
//! is the protocol-free [`GroupCoordinator`](crate::coordinator::GroupCoordinator); the files
//! here only translate.
//!
//! One node, no replication: this node is the leader of every partition and the coordinator of
//! every group. No transactions, no SASL or TLS yet.
//!
//! Batches are appended as the producer sent them (see [`Log::append_checked`]) and fetches
//! serve stored bytes ([`Log::read_batches`]), so compressed batches pass through untouched.
//!
//! [`Log::append_checked`]: crate::Log::append_checked
//! [`Log::read_batches`]: crate::Log::read_batches

mod alter_configs;
mod api_versions;
mod codes;
mod config;
mod connection;
mod create_partitions;
mod create_topics;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod dispatch;
mod fetch;
mod find_coordinator;
mod group;
mod hosted_groups;
mod init_producer_id;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_fetch;
mod produce;
mod producer_ids;
mod producer_snapshot;
mod producer_state;
mod server;
mod topic_configs;

pub use self::config::KafkaConfig;
pub use self::hosted_groups::{HostedGroup, HostedGroups, HostedMember};
pub use self::server::{KafkaServer, KafkaServerError};
