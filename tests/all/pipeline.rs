//! The datagen → log → file-sink pipeline through the real `weir` binary: delivery, order,
//! crash safety and resume.

use std::collections::HashMap;
use std::time::Duration;

use weir_broker::partition_for_key;

use crate::support::{WeirProcess, distinct, pipeline_manifest, sink_ids, wait_until};

const PARTITIONS: u32 = 4;

#[test]
fn quickstart_delivers_every_record_once_in_partition_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = pipeline_manifest(dir.path(), 100_000, PARTITIONS, 0);
    let weir = WeirProcess::start(dir.path(), &[manifest], &[]);
    let out = dir.path().join("out/orders.txt");
    wait_until("100,000 records in the sink file", Duration::from_secs(300), || {
        let count = sink_ids(&out).len();
        (count >= 100_000, count)
    });
    let (status, stdout, stderr) = weir.terminate(Duration::from_secs(30));
    assert!(status.success(), "weir exited with {status}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("orders-gen in"), "no progress line in stdout:\n{stdout}");

    let ids = sink_ids(&out);
    let (unique, duplicates) = distinct(&ids);
    assert_eq!(unique, 100_000, "distinct ids");
    assert_eq!(duplicates, 0, "a clean run delivers each record once");
    assert_eq!(ids.iter().max(), Some(&99_999));
    // Within each partition (the key is the id), the sink sees ids in increasing order.
    let mut last: HashMap<u32, u64> = HashMap::new();
    for id in ids {
        let partition = partition_for_key(id.to_string().as_bytes(), PARTITIONS);
        if let Some(previous) = last.insert(partition, id) {
            assert!(id > previous, "partition {partition}: id {id} after {previous}");
        }
    }
    assert_eq!(last.len(), PARTITIONS as usize, "every partition got records");
}

#[test]
fn sigkill_mid_stream_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let total = 60_000;
    // Killed at three points of the stream, then run to the end.
    let manifest = pipeline_manifest(dir.path(), total, PARTITIONS, 0);
    let out = dir.path().join("out/orders.txt");
    let mut kills = 0;
    for threshold in [5_000usize, 20_000, 40_000] {
        let weir = WeirProcess::start(dir.path(), std::slice::from_ref(&manifest), &[]);
        let seen = wait_until("the sink to pass the kill threshold", Duration::from_secs(300), || {
            let count = sink_ids(&out).len();
            (count >= threshold, count)
        });
        weir.kill9();
        kills += 1;
        if seen >= total as usize {
            break;
        }
    }
    let weir = WeirProcess::start(dir.path(), &[manifest], &[]);
    let ids = wait_until("every id delivered after the restarts", Duration::from_secs(300), || {
        let ids = sink_ids(&out);
        let (unique, _) = distinct(&ids);
        (unique >= total as usize, ids)
    });
    let (status, stdout, stderr) = weir.terminate(Duration::from_secs(30));
    assert!(status.success(), "weir exited with {status}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let (unique, duplicates) = distinct(&ids);
    assert_eq!(unique, total as usize, "0 lost");
    assert!(ids.iter().all(|id| *id < total), "no id beyond iterations");
    eprintln!("sigkill_mid_stream_loses_nothing: {kills} SIGKILLs, {duplicates} duplicates of {total}");
}

#[test]
fn clean_stop_and_restart_resumes_without_redoing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let total = 40_000;
    let manifest = pipeline_manifest(dir.path(), total, PARTITIONS, 0);
    let out = dir.path().join("out/orders.txt");
    let weir = WeirProcess::start(dir.path(), std::slice::from_ref(&manifest), &[]);
    wait_until("some records in the sink", Duration::from_secs(300), || {
        let count = sink_ids(&out).len();
        (count >= 1_000, count)
    });
    let (status, stdout, stderr) = weir.terminate(Duration::from_secs(30));
    assert!(status.success(), "weir exited with {status}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("weir: stopped"), "{stdout}");
    let before = sink_ids(&out);
    assert_eq!(distinct(&before).1, 0, "no duplicates before the restart");

    let weir = WeirProcess::start(dir.path(), &[manifest], &[]);
    let ids = wait_until("every id after the restart", Duration::from_secs(300), || {
        let ids = sink_ids(&out);
        (distinct(&ids).0 >= total as usize, ids)
    });
    let (status, stdout, stderr) = weir.terminate(Duration::from_secs(30));
    assert!(status.success(), "weir exited with {status}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let (unique, duplicates) = distinct(&ids);
    assert_eq!(unique, total as usize);
    assert_eq!(duplicates, 0, "a clean stop commits everything; the restart redoes nothing");
    assert_eq!(&ids[..before.len()], &before[..], "the restart appends after what was written");
}
