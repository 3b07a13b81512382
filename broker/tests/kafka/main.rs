//! weir's log through the Kafka protocol, driven by Kafka clients that no one here wrote:
//! kcat (librdkafka), confluent-kafka and kafka-python (Python), kafkajs (node) and Apache
//! Kafka's own Java client (kafka-clients 4.3), each run as a real process against a server
//! started in this process on a free loopback port. The client scripts live in the
//! repository's `tests/kafka/`. `tests/run.sh` installs the clients; a missing one fails
//! its test with the command that installs it.

mod fetch_limit;
mod groups;
mod hostile;
mod java;
mod kafkajs;
mod kcat;
mod producer_restart;
mod python;
mod support;
