//! The openraft type configuration of Roost and the byte codec used for everything
//! consensus persists (log entries, votes, snapshot metadata).
//!
//! The leader id is openraft's *standard* one (one leader per term) rather than the
//! default "advanced" one (several leaders may share a term): ZooKeeper zxids use the
//! term as their epoch, so two leaders in one term would hand out colliding zxids.

use std::io;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::tree::txn::{BatchOutcome, Txn, TxnBatch, TxnOp};

/// What the group knows about a member: where its raft transport listens.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RaftPeer {
    /// `host:port` of the peer's raft (server-to-server) listener.
    pub raft_addr: String,
}

/// The log entry payload: a [`TxnBatch`], shared, and encoded at most once.
///
/// openraft clones an entry's payload each time it reads it for a follower (each
/// replication request, each member) and our log cache hands out clones too; behind an
/// `Arc` those clones are a reference count, not a copy of every txn's path, data and ACL.
/// The batch's postcard bytes are made once (by the batcher, before the entry reaches the
/// consensus task) and then copied, not re-encoded, into the WAL record and into every
/// follower's append request (see [`encode_entry`]). A newtype because openraft requires
/// `Display` of its app data; it serializes exactly like the batch.
#[derive(Clone, Default)]
pub struct LogBatch(std::sync::Arc<SharedBatch>);

#[derive(Default)]
struct SharedBatch {
    batch: TxnBatch,
    encoded: std::sync::OnceLock<Vec<u8>>,
}

impl LogBatch {
    /// The batch's postcard encoding, made on the first call and kept.
    pub fn encoded(&self) -> io::Result<&[u8]> {
        if let Some(bytes) = self.0.encoded.get() {
            return Ok(bytes);
        }
        let bytes = encode(&self.0.batch)?;
        // Two callers may race here; both made the same bytes, and one set wins.
        Ok(self.0.encoded.get_or_init(|| bytes))
    }
}

impl std::ops::Deref for LogBatch {
    type Target = TxnBatch;

    fn deref(&self) -> &TxnBatch {
        &self.0.batch
    }
}

impl From<TxnBatch> for LogBatch {
    fn from(batch: TxnBatch) -> Self {
        LogBatch(std::sync::Arc::new(SharedBatch { batch, encoded: std::sync::OnceLock::new() }))
    }
}

impl PartialEq for LogBatch {
    fn eq(&self, other: &Self) -> bool {
        self.0.batch == other.0.batch
    }
}

impl std::fmt::Debug for LogBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.batch.fmt(f)
    }
}

impl Serialize for LogBatch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.batch.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LogBatch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        TxnBatch::deserialize(deserializer).map(LogBatch::from)
    }
}

impl std::fmt::Display for LogBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TxnBatch({} txns)", self.0.batch.txns.len())
    }
}

#[cfg(not(feature = "sim"))]
openraft::declare_raft_types!(
    /// Roost's openraft type configuration: entries carry a [`TxnBatch`] (as
    /// [`LogBatch`]), applying one yields a [`BatchOutcome`].
    pub TypeConfig:
        D = LogBatch,
        R = BatchOutcome,
        NodeId = u64,
        Node = RaftPeer,
        Term = u64,
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>,
);

/// Under the simulator (tests/sim.rs) openraft runs on tokio as everywhere, but draws its
/// random numbers (election timeouts, the first tick's phase) from a seed that the caller of
/// `Consensus::start` installs with [`SimRuntime::scope`], instead of the thread RNG.
#[cfg(feature = "sim")]
pub type SimRuntime = openraft::rt::deterministic_rng::DeterministicRng<openraft_rt_tokio::TokioRuntime>;

#[cfg(feature = "sim")]
openraft::declare_raft_types!(
    /// Roost's openraft type configuration (see above), on the seeded runtime.
    pub TypeConfig:
        D = LogBatch,
        R = BatchOutcome,
        NodeId = u64,
        Node = RaftPeer,
        Term = u64,
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>,
        AsyncRuntime = SimRuntime,
);

pub type NodeId = u64;
pub type LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>;
pub type CommittedLeaderId = <LeaderId as openraft::vote::RaftLeaderId>::Committed;
pub type LogId = openraft::LogId<CommittedLeaderId>;
pub type Vote = openraft::impls::Vote<LeaderId>;
pub type Entry = <TypeConfig as openraft::RaftTypeConfig>::Entry;
pub type Membership = openraft::Membership<NodeId, RaftPeer>;
pub type StoredMembership = openraft::StoredMembership<CommittedLeaderId, NodeId, RaftPeer>;
pub type SnapshotMeta = openraft::SnapshotMeta<CommittedLeaderId, NodeId, RaftPeer>;
/// A snapshot travels and is installed as the application's serialized state.
/// A snapshot travels and is installed as the application's serialized state; shared
/// bytes, so handing the current snapshot out again does not copy it.
pub type SnapshotData = bytes::Bytes;

/// Snapshot bytes from this size up are freed on a thread of their own (see [`snapshot_data`]).
const FREE_APART_FROM: usize = 16 << 20;

/// Wraps a serialized snapshot (built, read from disk or received) as [`SnapshotData`].
/// Whoever drops the last copy of a large one does not free it: openraft drops snapshots
/// on the consensus thread (after building one, after sending one), and unmapping a
/// gigabyte took that thread 400 ms at 10M znodes, long enough for followers to start an
/// election (bench/scale, 2026-12-06). A short-lived thread frees it instead.
pub fn snapshot_data(bytes: Vec<u8>) -> SnapshotData {
    if bytes.len() < FREE_APART_FROM {
        return bytes.into();
    }
    bytes::Bytes::from_owner(FreedApart(bytes))
}

struct FreedApart(Vec<u8>);

/// Buffers freed by a `free-snapshot` thread so far (for the tests).
static FREED_APART: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl AsRef<[u8]> for FreedApart {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for FreedApart {
    fn drop(&mut self) {
        let bytes = std::mem::take(&mut self.0);
        // If no thread can be started, the closure and the bytes are dropped right here.
        let _ = std::thread::Builder::new().name("free-snapshot".into()).spawn(move || {
            drop(bytes);
            FREED_APART.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
    }
}
pub type Snapshot = openraft::Snapshot<CommittedLeaderId, NodeId, RaftPeer, SnapshotData>;

/// Roughly how many bytes `txn` takes on the wire: its paths and data plus a fixed
/// allowance per op and ACL entry. Cheap (no encoding); used to keep log entries and
/// append requests to a sensible size.
pub fn txn_bytes(txn: &Txn) -> usize {
    fn op_bytes(op: &TxnOp) -> usize {
        const OP: usize = 32;
        const ACL: usize = 64;
        let data_len = |d: &Option<Vec<u8>>| d.as_ref().map_or(0, Vec::len);
        match op {
            TxnOp::Create { path, data, acl, .. } => OP + path.len() + data_len(data) + acl.len() * ACL,
            TxnOp::SetData { path, data, .. } => OP + path.len() + data_len(data),
            TxnOp::SetAcl { path, acl, .. } => OP + path.len() + acl.len() * ACL,
            TxnOp::Delete { path, .. } | TxnOp::DeleteContainer { path } | TxnOp::Check { path, .. } => OP + path.len(),
            TxnOp::Multi(ops) => OP + ops.iter().map(op_bytes).sum::<usize>(),
            TxnOp::CreateSession { .. } | TxnOp::CloseSession { .. } | TxnOp::ExpireSession { .. } => OP,
            TxnOp::SetConfig { members } | TxnOp::InitConfig { members } => OP + members.len(),
            TxnOp::Restore { snapshot, .. } => OP + snapshot.len(),
        }
    }
    op_bytes(&txn.op) + txn.auth.len() * 64
}

/// Roughly how many bytes a log entry takes on the wire (see [`txn_bytes`]).
pub fn entry_bytes(entry: &Entry) -> usize {
    match &entry.payload {
        openraft::EntryPayload::Normal(batch) => 32 + batch.txns.iter().map(txn_bytes).sum::<usize>(),
        openraft::EntryPayload::Blank | openraft::EntryPayload::Membership(_) => 256,
    }
}

/// Builds a log id from its parts (the term is the committed leader id here).
pub fn log_id(term: u64, index: u64) -> LogId {
    LogId::new_term_index(term, index)
}

/// The term (zxid epoch) of a log id.
pub fn term_of(log_id: &LogId) -> u64 {
    log_id.leader_id.term
}

/// Serializes a value with postcard. Errors become `io::Error` because that is what
/// openraft's storage traits speak.
pub fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// postcard's tag of `EntryPayload::Normal` (its second variant, a varint).
const NORMAL_PAYLOAD_TAG: u8 = 1;

/// Appends the postcard encoding of `entry` to `out`: byte for byte what
/// `encode(entry)` gives, but a normal entry's batch is copied from its cached encoding
/// ([`LogBatch::encoded`]) instead of being encoded again. postcard writes a struct as
/// its fields one after another and an enum as a varint tag and its content, so the log
/// id, the tag and the batch's own bytes concatenate to the whole.
pub fn encode_entry_into(entry: &Entry, out: &mut Vec<u8>) -> io::Result<()> {
    match &entry.payload {
        openraft::EntryPayload::Normal(batch) => {
            let body = batch.encoded()?;
            let mut extended = postcard::to_extend(&entry.log_id, std::mem::take(out))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            extended.reserve(1 + body.len());
            extended.push(NORMAL_PAYLOAD_TAG);
            extended.extend_from_slice(body);
            *out = extended;
        }
        openraft::EntryPayload::Blank | openraft::EntryPayload::Membership(_) => {
            let bytes = encode(entry)?;
            out.extend_from_slice(&bytes);
        }
    }
    Ok(())
}

/// [`encode_entry_into`] a new buffer: a WAL record.
pub fn encode_entry(entry: &Entry) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_entry_into(entry, &mut out)?;
    Ok(out)
}

/// Deserializes a postcard value; corrupt bytes give `InvalidData`, never a panic.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use openraft::entry::RaftEntry;

    use super::*;

    /// A large snapshot's buffer is freed by a thread of its own, whoever drops it; a small
    /// one where it is dropped. Both read back what was put in.
    #[test]
    fn large_snapshot_buffers_are_freed_apart() {
        let before = FREED_APART.load(std::sync::atomic::Ordering::Relaxed);
        let small = snapshot_data(vec![7; 1000]);
        let large = snapshot_data((0..FREE_APART_FROM + 5).map(|i| i as u8).collect());
        assert_eq!(&small[..], &[7; 1000][..]);
        assert_eq!((large.len(), large[FREE_APART_FROM + 4]), (FREE_APART_FROM + 5, (FREE_APART_FROM + 4) as u8));
        let copy = large.clone();
        drop(large);
        drop(small);
        assert_eq!(FREED_APART.load(std::sync::atomic::Ordering::Relaxed), before, "freed while a copy is alive");
        drop(copy);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while FREED_APART.load(std::sync::atomic::Ordering::Relaxed) == before && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(FREED_APART.load(std::sync::atomic::Ordering::Relaxed), before + 1);
    }

    #[test]
    fn entries_round_trip_through_postcard() {
        let batch = TxnBatch {
            txns: vec![Txn {
                session_id: 7,
                time_ms: 1,
                auth: vec![],
                op: TxnOp::Delete { path: "/a".into(), version: -1 },
            }],
        };
        let normal = Entry::new_normal(log_id(3, 9), LogBatch::from(batch));
        let back: Entry = decode(&encode(&normal).unwrap()).unwrap();
        assert_eq!(back, normal);

        let mut nodes = BTreeMap::new();
        nodes.insert(1u64, RaftPeer { raft_addr: "127.0.0.1:2888".into() });
        let membership = Membership::new(vec![[1u64].into()], nodes).unwrap();
        let m = Entry::new_membership(log_id(1, 1), membership);
        let back: Entry = decode(&encode(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }

    /// Entries of each kind, a normal one with a multi, data and ACLs (postcard's varints
    /// of several widths: a large index and term, long data).
    pub(crate) fn sample_entries() -> Vec<Entry> {
        use crate::proto::types::{Acl, CreateMode};
        let create = |path: &str, data: Vec<u8>| TxnOp::Create {
            path: path.into(),
            data: Some(data),
            acl: Acl::open_unsafe(),
            mode: CreateMode::PersistentWithTtl,
            ttl_ms: Some(1 << 36),
        };
        let txn = |session_id, op| Txn { session_id, time_ms: 1_700_000_000_123, auth: vec![], op };
        let batch = TxnBatch {
            txns: vec![
                txn(7, create("/a", vec![1; 300])),
                txn(-1, TxnOp::Multi(vec![create("/b", vec![]), TxnOp::Delete { path: "/a".into(), version: 4 }])),
                txn(1 << 40, TxnOp::SetData { path: "/c".into(), data: None, version: -1 }),
            ],
        };
        let mut nodes = BTreeMap::new();
        nodes.insert(1u64, RaftPeer { raft_addr: "127.0.0.1:2888".into() });
        let membership = Membership::new(vec![[1u64].into()], nodes).unwrap();
        vec![
            Entry::new_normal(log_id(3, 9), LogBatch::from(batch.clone())),
            Entry::new_normal(log_id(1 << 33, 1 << 50), LogBatch::from(batch)),
            Entry::new_normal(log_id(2, 10), LogBatch::from(TxnBatch { txns: vec![] })),
            Entry::new_blank(log_id(4, 11)),
            Entry::new_membership(log_id(4, 12), membership),
        ]
    }

    /// The WAL record made from a batch's cached encoding is byte for byte the entry's
    /// plain postcard encoding (so logs written before and after read the same), and the
    /// batch is encoded once however often the entry is written.
    #[test]
    fn an_entry_encoded_from_its_cached_batch_matches_its_plain_encoding() {
        for entry in sample_entries() {
            let plain = encode(&entry).unwrap();
            assert_eq!(encode_entry(&entry).unwrap(), plain, "{entry:?}");
            let mut appended = vec![9, 9];
            encode_entry_into(&entry, &mut appended).unwrap();
            assert_eq!(&appended[2..], &plain[..]);
            assert_eq!(decode::<Entry>(&plain).unwrap(), entry);
            if let openraft::EntryPayload::Normal(batch) = &entry.payload {
                let first = batch.encoded().unwrap().as_ptr();
                let copy = batch.clone();
                assert_eq!(copy.encoded().unwrap().as_ptr(), first, "encoded again");
            }
        }
    }

    #[test]
    fn snapshot_meta_and_vote_round_trip() {
        let meta = SnapshotMeta { last_log_id: Some(log_id(2, 5)), last_membership: StoredMembership::default() };
        let back: SnapshotMeta = decode(&encode(&meta).unwrap()).unwrap();
        assert_eq!(back, meta);
        let vote = Vote::new_committed(4, 1);
        let back: Vote = decode(&encode(&vote).unwrap()).unwrap();
        assert_eq!(back, vote);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode::<Entry>(&[0xff, 0xff, 0xff]).is_err());
    }
}
