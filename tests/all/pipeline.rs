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

#[test]
fn twenty_sigkills_at_random_moments_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Two tasks at one record per ms each: ~2,000 records/s, so the 20 kills (each up to 1.5 s
    // into a run) all land mid-stream and the last run finishes the rest.
    let total = 50_000;
    let manifest = pipeline_manifest(dir.path(), total, PARTITIONS, 1);
    let text = std::fs::read_to_string(&manifest).expect("manifest").replacen("tasks.max: 1", "tasks.max: 2", 1);
    std::fs::write(&manifest, text).expect("manifest");
    let out = dir.path().join("out/orders.txt");
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |elapsed| elapsed.as_nanos() as u64)
        | 1;
    eprintln!("twenty_sigkills_at_random_moments_lose_nothing: seed {seed}");
    let mut killed_at = Vec::new();
    for _ in 0..20 {
        // xorshift: a kill up to 1.5 s after the worker is up and running its connectors.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let after = Duration::from_millis(seed % 1_500);
        let weir = WeirProcess::start(dir.path(), std::slice::from_ref(&manifest), &[]);
        wait_until("the worker to run its connectors", Duration::from_secs(120), || {
            (weir.stdout_text().contains("weir: running"), ())
        });
        #[allow(clippy::disallowed_methods, reason = "a synchronous test driving processes: no executor here")]
        std::thread::sleep(after);
        weir.kill9();
        killed_at.push(sink_ids(&out).len());
    }
    let weir = WeirProcess::start(dir.path(), &[manifest], &[]);
    wait_until("every id delivered after 20 SIGKILLs", Duration::from_secs(300), || {
        let ids = sink_ids(&out);
        (distinct(&ids).0 >= total as usize, ids.len())
    });
    let (status, stdout, stderr) = weir.terminate(Duration::from_secs(30));
    assert!(status.success(), "weir exited with {status}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let ids = sink_ids(&out);
    let (unique, duplicates) = distinct(&ids);
    assert_eq!(unique, total as usize, "0 lost");
    assert!(ids.iter().all(|id| *id < total));
    eprintln!(
        "twenty_sigkills_at_random_moments_lose_nothing: sink lines after each kill {killed_at:?}; \
         {duplicates} duplicates of {total} ({} lines)",
        ids.len()
    );
}
