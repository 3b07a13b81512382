//! Idempotent-producer state survives restarts: a raw Kafka-protocol client (requests built
//! with `kafka-protocol`, sent over a plain socket) retries batches and skips sequences across
//! a clean restart, across a restart from a crash image of the data directory (files copied
//! while the broker runs, so the last appends are newer than the last snapshot), and with the
//! snapshot removed, and gets Kafka's answers every time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest,
    ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

use crate::support::Broker;

const TOPIC: &str = "idempotent";
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;

/// One connection speaking the Kafka protocol, one request at a time.
struct RawClient {
    stream: TcpStream,
    correlation_id: i32,
}

impl RawClient {
    fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
        RawClient { stream, correlation_id: 0 }
    }

    fn call<Response: Decodable>(&mut self, api_key: ApiKey, version: i16, request: &impl Encodable) -> Response {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("raw-producer")));
        let mut body = BytesMut::new();
        header.encode(&mut body, api_key.request_header_version(version)).expect("encode header");
        request.encode(&mut body, version).expect("encode request");
        self.stream.write_all(&(body.len() as u32).to_be_bytes()).expect("write size");
        self.stream.write_all(&body).expect("write request");
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).expect("response size");
        let mut response = vec![0u8; u32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut response).expect("response body");
        let mut response = Bytes::from(response);
        let header = ResponseHeader::decode(&mut response, api_key.response_header_version(version)).expect("header");
        assert_eq!(header.correlation_id, self.correlation_id, "responses come in order");
        Response::decode(&mut response, version).expect("decode response")
    }

    fn create_topic(&mut self) {
        let topic = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_num_partitions(1)
            .with_replication_factor(1);
        let request = CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(10_000);
        let response: CreateTopicsResponse = self.call(ApiKey::CreateTopics, 5, &request);
        assert_eq!(response.topics[0].error_code, 0, "topic created");
    }

    fn init_producer_id(&mut self) -> (i64, i16) {
        let request = InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000);
        let response: InitProducerIdResponse = self.call(ApiKey::InitProducerId, 4, &request);
        assert_eq!(response.error_code, 0, "InitProducerId answered");
        (response.producer_id.0, response.producer_epoch)
    }

    /// Produces one batch of `count` records from `sequence` on; the error code and base offset.
    fn produce(&mut self, producer: (i64, i16), sequence: i32, count: i32) -> (i16, i64) {
        let records: Vec<Record> = (0..count)
            .map(|index| Record {
                transactional: false,
                delete_horizon: false,
                control: false,
                partition_leader_epoch: -1,
                producer_id: producer.0,
                producer_epoch: producer.1,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(index),
                sequence: sequence + index,
                timestamp: 1_700_000_000_000,
                key: None,
                value: Some(Bytes::from(format!("record-{}", sequence + index))),
                headers: Default::default(),
            })
            .collect();
        let mut batch = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut batch,
            &records,
            &RecordEncodeOptions { version: 2, compression: Compression::Lz4 },
        )
        .expect("encode batch");
        let data = PartitionProduceData::default().with_index(0).with_records(Some(batch.freeze()));
        let topic = TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partition_data(vec![data]);
        let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![topic]);
        let response: ProduceResponse = self.call(ApiKey::Produce, 9, &request);
        let partition = &response.responses[0].partition_responses[0];
        (partition.error_code, partition.base_offset)
    }
}

/// Copies a directory tree (a crash image when the source is a running broker's directory:
/// every acknowledged append was fsynced, nothing more is promised).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

#[test]
fn producer_state_survives_clean_restarts_crashes_and_a_lost_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crash = tempfile::tempdir().expect("tempdir");

    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let mut client = RawClient::connect(broker.addr);
    client.create_topic();
    let producer = client.init_producer_id();
    assert_eq!(client.produce(producer, 0, 3), (0, 0));
    assert_eq!(client.produce(producer, 3, 2), (0, 3));
    drop(client);
    broker.stop();

    // A clean restart: the state comes from the snapshot written at shutdown.
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let mut client = RawClient::connect(broker.addr);
    assert_eq!(client.produce(producer, 3, 2), (0, 3), "a retried batch is answered as a duplicate");
    assert_eq!(client.produce(producer, 7, 1).0, OUT_OF_ORDER_SEQUENCE_NUMBER, "a gap is refused");
    assert_eq!(client.produce(producer, 5, 2), (0, 5), "the next sequence is appended after the old ones");
    let other = client.init_producer_id();
    assert!(other.0 > producer.0, "a new id ({}) is above every id handed out before ({})", other.0, producer.0);
    // While running: the last append is newer than the last snapshot.
    copy_tree(dir.path(), crash.path());
    drop(client);
    broker.stop();

    // A restart from the crash image replays the batch headers after the snapshot.
    let broker = Broker::start(crash.path(), "127.0.0.1:0");
    let mut client = RawClient::connect(broker.addr);
    assert_eq!(client.produce(producer, 5, 2), (0, 5), "the batch after the snapshot is a duplicate too");
    assert_eq!(client.produce(producer, 9, 1).0, OUT_OF_ORDER_SEQUENCE_NUMBER);
    let third = client.init_producer_id();
    assert!(third.0 > other.0, "ids from the crash image ({}) skip those handed out ({})", third.0, other.0);
    drop(client);
    broker.stop();

    // Without any snapshot, the whole partition is replayed.
    std::fs::remove_file(dir.path().join(format!("topics/{TOPIC}-0/producers.snapshot.json")))
        .expect("snapshot exists");
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let mut client = RawClient::connect(broker.addr);
    assert_eq!(client.produce(producer, 5, 2), (0, 5), "rebuilt from the log alone");
    assert_eq!(client.produce(producer, 0, 3), (0, 0), "every remembered batch, the oldest too");
    assert_eq!(client.produce(producer, 7, 1), (0, 7), "and it goes on where it stopped");
    drop(client);
    broker.stop();
}
