//! The listener's `fetch_max_bytes` bounds a fetch response, whatever the client asks for: a
//! consumer asking for 50 MB of a 24 MiB partition gets at most 8 MiB (and a whole batch) per
//! answer, so one fetch cannot make the broker hold its whole log in memory.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use weir_broker::kafka::KafkaConfig;
use weir_broker::{Log, LogConfig, Record, TopicConfig};

use crate::support::Broker;

const VERSION: i16 = 4;
const MIB: usize = 1024 * 1024;

fn fetch(stream: &mut TcpStream, offset: i64) -> FetchResponse {
    let request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(100)
        .with_min_bytes(1)
        .with_max_bytes(50_000_000)
        .with_topics(vec![
            FetchTopic::default().with_topic(TopicName(StrBytes::from_static_str("big"))).with_partitions(vec![
                FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(50_000_000),
            ]),
        ]);
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Fetch as i16)
        .with_request_api_version(VERSION)
        .with_correlation_id(1)
        .encode(&mut body, ApiKey::Fetch.request_header_version(VERSION))
        .expect("header");
    request.encode(&mut body, VERSION).expect("request");
    stream.write_all(&(body.len() as u32).to_be_bytes()).expect("write");
    stream.write_all(&body).expect("write");
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("a response");
    let mut frame = vec![0u8; u32::from_be_bytes(size) as usize];
    stream.read_exact(&mut frame).expect("the body");
    let mut frame = Bytes::from(frame);
    ResponseHeader::decode(&mut frame, ApiKey::Fetch.response_header_version(VERSION)).expect("header");
    FetchResponse::decode(&mut frame, VERSION).expect("response")
}

#[test]
fn a_fetch_response_stays_within_the_listeners_limit() {
    assert_eq!(KafkaConfig::default().fetch_max_bytes, 8 * MIB);
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = Log::open(dir.path(), LogConfig::default()).expect("log");
        log.ensure_topic("big", TopicConfig::default()).expect("topic");
        for index in 0..24u8 {
            let record = Record { value: Some(Bytes::from(vec![index; MIB])), ..Record::default() };
            log.append("big", 0, &[record]).expect("append");
        }
    }
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let mut stream = TcpStream::connect(broker.addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut offset = 0;
    let mut answers = 0;
    while offset < 24 {
        let response = fetch(&mut stream, offset);
        let partition = &response.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0);
        let records = partition.records.as_ref().expect("records");
        assert!(!records.is_empty(), "at least one batch at offset {offset}");
        assert!(records.len() <= 8 * MIB + MIB, "{} bytes in one answer", records.len());
        // Whole 1 MiB batches: count them by their base offsets.
        let mut batches = records.clone();
        while batches.len() >= 12 {
            let length = i32::from_be_bytes([batches[8], batches[9], batches[10], batches[11]]) as usize;
            offset += 1;
            let _ = batches.split_to(12 + length);
        }
        answers += 1;
    }
    assert!(answers >= 3, "24 MiB came in {answers} answers");
}
