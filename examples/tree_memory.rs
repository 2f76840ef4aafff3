//! Resident memory of the bare data tree, without a server around it:
//! `cargo run --release --example tree_memory -- [znodes] [value bytes]`.
//!
//! Fills a tree the way `roost-bench fill` does (one parent, names like `s12-3456`,
//! OPEN_ACL_UNSAFE, persistent) and prints the process's RSS before and after, so
//! changes to the tree's layout can be judged apart from buffers, caches and the
//! allocator's behaviour under a server's many threads.

use roost::proto::types::{Acl, CreateMode};
use roost::tree::txn::{Txn, TxnOp};
use roost::tree::DataTree;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn create(path: String, data: Vec<u8>) -> Txn {
    let op =
        TxnOp::Create { path, data: Some(data), acl: Acl::open_unsafe(), mode: CreateMode::Persistent, ttl_ms: None };
    Txn { session_id: 0, time_ms: 1, auth: Vec::new(), op }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let mut tree = DataTree::new();
    tree.apply(1, &create("/fill".into(), Vec::new()));
    let before = rss_kib();
    let started = std::time::Instant::now();
    for i in 0..count {
        let path = format!("/fill/s{}-{}", i % 32, i / 32);
        let (outcome, _) = tree.apply(1, &create(path, vec![b'v'; size]));
        if let Err(e) = outcome.result {
            eprintln!("create {i} failed: {e:?}");
            std::process::exit(1);
        }
    }
    let filled = started.elapsed();
    let after = rss_kib();
    let started = std::time::Instant::now();
    let bytes = tree.serialize();
    let serialized = started.elapsed();
    let started = std::time::Instant::now();
    let restored = DataTree::deserialize(&bytes).map(|t| t.node_count());
    let loaded = started.elapsed();
    println!(
        "{count} znodes of {size} B: {} KiB resident for the tree ({:.0} B/znode); fill {:.2?}, serialize {:.2?} ({} MB), load {:.2?} ({:?} nodes)",
        after - before,
        (after - before) as f64 * 1024.0 / count as f64,
        filled,
        serialized,
        bytes.len() >> 20,
        loaded,
        restored.ok()
    );
}
