//! Crash test: a child process (this test binary, re-run on an ignored test) appends batches in a
//! loop and prints every acknowledged index; the parent SIGKILLs it at a random moment, reopens
//! the log and checks that every acknowledged entry is present and intact, repeatedly on the
//! same directory (so recovery of a killed log is itself crash-tested).
//!
//! SIGKILL loses the process, not the page cache, so this exercises the write/ack ordering and
//! torn-write repair of a partially completed `write`; power loss is simulated by the byte-level
//! torn-tail tests in `tests`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rand::Rng;

use super::{Wal, WalOptions};

const CHILD_ENV: &str = "ROOST_WAL_CRASH_CHILD_DIR";
/// Set for a child that also purges, as the log store does: detached segments removed on
/// another thread while appends go on.
const PURGE_ENV: &str = "ROOST_WAL_CRASH_CHILD_PURGES";
const CHILD_TEST: &str = "storage::wal::crash_tests::crash_child";
/// Entries a purging child keeps behind its last append.
const KEEP: u64 = 200;
// Preallocation steps smaller than a segment, so kills also land in extensions and seals.
const OPTS: WalOptions = WalOptions { segment_size: 64 * 1024, preallocate: 16 * 1024 };

/// Mostly small entries; every 50th is ~3.6 MiB so the kill often lands inside a `write`, leaving
/// a genuinely torn tail (a killed process can leave a short write to the page cache).
fn crash_payload(index: u64) -> Vec<u8> {
    let reps = if index % 50 == 25 { 300_000 } else { 1 + (index % 5) as usize };
    format!("e{index:010};").repeat(reps).into_bytes()
}

/// Only does work when started by the parent test (which passes `--ignored` and the env var).
#[test]
#[ignore = "child process of kill9_during_appends_loses_no_acknowledged_entry"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let purges = std::env::var_os(PURGE_ENV).is_some();
    let mut wal = Wal::open(std::path::Path::new(&dir), OPTS).unwrap();
    let mut next = wal.last_index().map_or(1, |l| l + 1);
    let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let (purge_tx, purge_rx) = mpsc::sync_channel::<super::DetachedSegments>(1);
    let purge_out = out.clone();
    std::thread::spawn(move || {
        for detached in purge_rx {
            let first = detached.first_index();
            detached.remove().unwrap();
            let mut out = purge_out.lock().unwrap();
            writeln!(out, "purged {first}").unwrap();
            out.flush().unwrap();
        }
    });
    loop {
        let last = next + next % 11; // batches of 1..=11 entries
        let owned: Vec<Vec<u8>> = (next..=last).map(crash_payload).collect();
        let entries: Vec<(u64, &[u8])> = (next..=last).zip(owned.iter().map(Vec::as_slice)).collect();
        wal.append(&entries).unwrap();
        {
            let mut out = out.lock().unwrap();
            writeln!(out, "ack {last}").unwrap();
            out.flush().unwrap();
        }
        next = last + 1;
        if purges && last % 7 == 0 && last > KEEP {
            if let Some(detached) = wal.detach_to(last - KEEP).unwrap() {
                // A busy remover: skip this purge, as the log store's purger folds them.
                let _ = purge_tx.try_send(detached);
            }
        }
    }
}

#[test]
fn kill9_during_appends_loses_no_acknowledged_entry() {
    kill9_rounds(false);
}

/// The same with purges on another thread: a purge cut short by the kill leaves a log that
/// opens, starts no later than the last purge that finished and has every acknowledged entry
/// after it.
#[test]
fn kill9_during_background_purges_leaves_a_log_that_opens() {
    kill9_rounds(true);
}

fn kill9_rounds(purges: bool) {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rng();
    let mut acked_total = 0;
    let mut last_start = 0;
    for round in 0..8 {
        let mut command = Command::new(&exe);
        command
            .args(["--exact", CHILD_TEST, "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path());
        if purges {
            command.env(PURGE_ENV, "1");
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let (purged_tx, purged_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("ack ").and_then(|n| n.parse::<u64>().ok()) {
                    if tx.send(n).is_err() {
                        break;
                    }
                }
                if let Some(n) = line.strip_prefix("purged ").and_then(|n| n.parse::<u64>().ok()) {
                    let _ = purged_tx.send(n);
                }
            }
        });
        // Kill only once the child is really appending, at a random point afterwards.
        let first = rx.recv_timeout(Duration::from_secs(60)).expect("child never acknowledged an append");
        std::thread::sleep(Duration::from_millis(rng.random_range(5..150)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let acked = rx.try_iter().fold(first, u64::max);
        let purged = purged_rx.try_iter().max();
        let wal = Wal::open(dir.path(), OPTS).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let last = wal.last_index().unwrap();
        assert!(last >= acked, "round {round}: acknowledged {acked} but log ends at {last}");
        let start = wal.first_index().unwrap();
        if purges {
            assert!(start >= purged.unwrap_or(1), "round {round}: purged to {purged:?} but log starts at {start}");
            assert!(start <= acked.saturating_sub(KEEP) + 1, "round {round}: log starts at {start}, acked {acked}");
        } else {
            assert_eq!(start, 1);
        }
        let entries = wal.read_range(start, last + 1).unwrap();
        assert_eq!(entries.len() as u64, last + 1 - start);
        for (index, p) in entries {
            assert!(p == crash_payload(index), "round {round}: entry {index} damaged");
        }
        acked_total = acked;
        last_start = start;
    }
    assert!(acked_total > 5);
    assert!(!purges || last_start > 1, "no purge ever reached the disk");
}
