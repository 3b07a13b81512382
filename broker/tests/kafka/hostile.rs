//! Bad input is contained: oversized or malformed frames close that connection and nothing
//! else; a silent client holds no more than its socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use proptest::prelude::*;

use crate::support::Broker;

/// An ApiVersions v0 request: the server is still answering.
fn api_versions_round_trip(broker: &Broker) {
    let mut stream = TcpStream::connect(broker.addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    // size, api key 18, version 0, correlation id 7, client id null
    let request: [u8; 14] = [0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 7, 0xff, 0xff];
    stream.write_all(&request).expect("write");
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("a response");
    let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).expect("the body");
    assert_eq!(&body[..4], &7i32.to_be_bytes(), "correlation id");
    assert_eq!(&body[4..6], &0i16.to_be_bytes(), "no error");
}

/// Whether the server closed the connection after `bytes` (reads until EOF or a response).
fn closes_after(broker: &Broker, bytes: &[u8]) -> bool {
    let mut stream = TcpStream::connect(broker.addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    if stream.write_all(bytes).is_err() {
        return true;
    }
    let mut buf = [0u8; 64];
    matches!(stream.read(&mut buf), Ok(0) | Err(_))
}

#[test]
fn oversized_frames_and_unknown_apis_close_only_their_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    // A silent client stays connected while others are served.
    let _silent = TcpStream::connect(broker.addr).expect("connect");
    // A 2 GiB frame is refused from its size prefix alone.
    assert!(closes_after(&broker, &[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]));
    assert!(closes_after(&broker, &[0xff, 0xff, 0xff, 0xff]));
    // An unknown API key, and a Produce version this server does not accept.
    assert!(closes_after(&broker, &[0, 0, 0, 8, 0x7f, 0x00, 0, 0, 0, 0, 0, 1]));
    assert!(closes_after(&broker, &[0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff]));
    api_versions_round_trip(&broker);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random request bodies behind a valid header never take the server down: each either
    /// gets an answer or closes its own connection, and the server keeps answering others.
    #[test]
    fn random_request_bodies_never_take_the_server_down(
        api_key in prop::sample::select(vec![0i16, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 32, 60]),
        version in 0i16..14,
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        static BROKER: std::sync::OnceLock<(tempfile::TempDir, Broker)> = std::sync::OnceLock::new();
        let (_, broker) = BROKER.get_or_init(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let broker = Broker::start(dir.path(), "127.0.0.1:0");
            (dir, broker)
        });
        let mut frame = Vec::new();
        let size = (8 + 2 + body.len()) as u32;
        frame.extend_from_slice(&size.to_be_bytes());
        frame.extend_from_slice(&api_key.to_be_bytes());
        frame.extend_from_slice(&version.to_be_bytes());
        frame.extend_from_slice(&1i32.to_be_bytes());
        frame.extend_from_slice(&[0xff, 0xff]);
        frame.extend_from_slice(&body);
        let mut stream = TcpStream::connect(broker.addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let _ = stream.write_all(&frame);
        let mut buf = [0u8; 256];
        let _ = stream.read(&mut buf);
        drop(stream);
        api_versions_round_trip(broker);
    }
}
