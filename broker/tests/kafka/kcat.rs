//! kcat (librdkafka): metadata, produce with every codec, consume from the beginning.

use std::process::Command;
use std::time::Duration;

use crate::support::{Broker, require, run};

fn kcat(broker: &Broker, args: &[&str], stdin: Option<&[u8]>) -> String {
    let mut command = Command::new("kcat");
    command.arg("-b").arg(broker.bootstrap()).args(args);
    String::from_utf8(run(command, Duration::from_secs(60), stdin).stdout).expect("utf-8")
}

#[test]
fn kcat_produces_with_every_codec_and_consumes_what_it_produced() {
    require("kcat", &["-V"], "apt-get install kcat");
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("kcat-{codec}");
        let lines: Vec<String> =
            (0..200).map(|index| format!("{codec} record {index} {}", "x".repeat(index % 50))).collect();
        let input = lines.join("\n") + "\n";
        kcat(&broker, &["-P", "-t", &topic, "-z", codec, "-X", "enable.idempotence=true"], Some(input.as_bytes()));
        let output = kcat(&broker, &["-C", "-t", &topic, "-o", "beginning", "-e", "-q", "-f", "%o %s\n"], None);
        let consumed: Vec<&str> = output.lines().collect();
        assert_eq!(consumed.len(), lines.len(), "{codec}: {output}");
        for (index, (line, expected)) in consumed.iter().zip(&lines).enumerate() {
            assert_eq!(*line, format!("{index} {expected}"), "{codec}");
        }
    }
    let metadata = kcat(&broker, &["-L"], None);
    assert!(metadata.contains("topic \"kcat-zstd\" with 1 partitions"), "{metadata}");
    assert!(metadata.contains(&format!("broker 0 at {}", broker.bootstrap())), "{metadata}");
}
