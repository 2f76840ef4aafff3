//! Behaviour tests for `Wal`: what the consensus layer relies on (durable appends, exact reads,
//! truncation, purge surviving restarts) and what recovery must and must not accept.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

/// Deterministic payload of varying length for `index`.
pub(super) fn payload(index: u64) -> Vec<u8> {
    format!("entry-{index};").repeat(1 + (index % 7) as usize).into_bytes()
}

pub(super) fn append_batch(wal: &mut Wal, from: u64, to_inclusive: u64) {
    let owned: Vec<(u64, Vec<u8>)> = (from..=to_inclusive).map(|i| (i, payload(i))).collect();
    let entries: Vec<(u64, &[u8])> = owned.iter().map(|(i, p)| (*i, p.as_slice())).collect();
    wal.append(&entries).unwrap();
}

fn append_each(wal: &mut Wal, from: u64, to_inclusive: u64) {
    for i in from..=to_inclusive {
        append_batch(wal, i, i);
    }
}

pub(super) fn assert_contents(wal: &Wal, first: u64, last: u64) {
    assert_eq!((wal.first_index(), wal.last_index()), (Some(first), Some(last)));
    let all = wal.read_range(0, u64::MAX).unwrap();
    assert_eq!(all.len() as u64, last - first + 1);
    for (k, (index, p)) in all.iter().enumerate() {
        assert_eq!(*index, first + k as u64);
        assert_eq!(p, &payload(*index), "payload of {index}");
    }
    assert_eq!(wal.read(first).unwrap(), Some(payload(first)));
    assert_eq!(wal.read(last).unwrap(), Some(payload(last)));
    assert_eq!(wal.read(last + 1).unwrap(), None);
    if first > 0 {
        assert_eq!(wal.read(first - 1).unwrap(), None);
    }
}

/// Default segment size, no preallocation: these tests reason about the bytes records leave.
fn plain() -> WalOptions {
    WalOptions { preallocate: 0, ..WalOptions::default() }
}

fn small(segment_size: u64) -> WalOptions {
    WalOptions { segment_size, preallocate: 0 }
}

fn seg_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    v.sort();
    v
}

fn corrupt_kind(r: Result<Wal, WalError>) -> (PathBuf, u64, CorruptKind) {
    match r {
        Err(WalError::Corrupt { segment, offset, kind }) => (segment, offset, kind),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn append_read_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), plain()).unwrap();
    assert_eq!((wal.first_index(), wal.last_index()), (None, None));
    assert_eq!(wal.read(1).unwrap(), None);
    assert!(wal.read_range(0, 10).unwrap().is_empty());
    append_batch(&mut wal, 1, 10);
    assert_contents(&wal, 1, 10);
    let sub = wal.read_range(3, 6).unwrap();
    assert_eq!(sub.iter().map(|e| e.0).collect::<Vec<_>>(), vec![3, 4, 5]);
    assert!(matches!(wal.append(&[(12, b"x")]), Err(WalError::NonContiguous { expected: 11, got: 12 })));
    assert!(matches!(wal.append(&[(11, b"x"), (13, b"y")]), Err(WalError::NonContiguous { expected: 12, got: 13 })));
    assert_eq!(wal.last_index(), Some(10), "a rejected batch writes nothing");
    let bytes = wal.disk_bytes();
    assert!(bytes > 10 * encoder::HEADER_LEN as u64);
    drop(wal);

    let mut wal = Wal::open(dir.path(), plain()).unwrap();
    assert_contents(&wal, 1, 10);
    assert_eq!(wal.disk_bytes(), bytes);
    append_each(&mut wal, 11, 20);
    drop(wal);
    let wal = Wal::open(dir.path(), plain()).unwrap();
    assert_contents(&wal, 1, 20);
    assert_eq!(seg_files(dir.path()), vec!["00000000000000000001.seg"]);
}

#[test]
fn index_zero_and_empty_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), plain()).unwrap();
    wal.append(&[(0, b""), (1, b"one"), (2, b"")]).unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), plain()).unwrap();
    assert_eq!((wal.first_index(), wal.last_index()), (Some(0), Some(2)));
    assert_eq!(wal.read(0).unwrap(), Some(Vec::new()));
    assert_eq!(wal.read(1).unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(wal.read_range(0, 3).unwrap().len(), 3);
}

#[test]
fn many_appends_across_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small(512)).unwrap();
    let mut next = 1;
    let mut batch = 1;
    while next <= 600 {
        let to = (next + batch - 1).min(600);
        append_batch(&mut wal, next, to);
        next = to + 1;
        batch = batch % 17 + 1;
    }
    assert!(wal.segment_count() > 20, "rotated into {} segments", wal.segment_count());
    assert_eq!(wal.segment_count(), seg_files(dir.path()).len());
    assert_contents(&wal, 1, 600);
    // Every segment respects the size limit (no single record here exceeds it).
    for seg in &wal.segments {
        assert!(seg.len <= 512, "{} is {} bytes", seg.path.display(), seg.len);
        assert_eq!(seg.path.file_name().unwrap().to_str().unwrap(), format!("{:020}.seg", seg.first_index));
    }
    let total: u64 = wal.segments.iter().map(|s| fs::metadata(&s.path).unwrap().len()).sum();
    assert_eq!(wal.disk_bytes(), total);
    drop(wal);
    let wal = Wal::open(dir.path(), small(512)).unwrap();
    assert_contents(&wal, 1, 600);
    // Ranges that straddle segment boundaries come back whole.
    for (from, to) in [(1, 2), (37, 300), (299, 601), (590, 1000)] {
        let got = wal.read_range(from, to).unwrap();
        assert_eq!(got.first().map(|e| e.0), Some(from));
        assert_eq!(got.len() as u64, to.min(601) - from);
    }
}

#[test]
fn oversized_record_gets_its_own_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small(100)).unwrap();
    let big = vec![7u8; 1000];
    wal.append(&[(1, b"a"), (2, &big), (3, b"c")]).unwrap();
    assert_eq!(wal.segment_count(), 3);
    drop(wal);
    let wal = Wal::open(dir.path(), small(100)).unwrap();
    assert_eq!(wal.read(2).unwrap(), Some(big));
}

#[test]
fn truncate_from_then_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small(400)).unwrap();
    append_each(&mut wal, 1, 100);
    let segs_before = wal.segment_count();
    // Inside a segment.
    wal.truncate_from(77).unwrap();
    assert_contents(&wal, 1, 76);
    assert!(wal.segment_count() < segs_before);
    assert_eq!(wal.segment_count(), seg_files(dir.path()).len());
    // Appending after a conflict continues at the cut with new payloads.
    wal.append(&[(77, b"new-77"), (78, b"new-78")]).unwrap();
    assert_eq!(wal.read(77).unwrap().as_deref(), Some(&b"new-77"[..]));
    // Exactly at a segment boundary: the whole segment goes.
    let boundary = wal.segments[2].first_index;
    wal.truncate_from(boundary).unwrap();
    assert_eq!(wal.segment_count(), 2);
    assert_contents(&wal, 1, boundary - 1);
    // No-ops.
    wal.truncate_from(boundary + 50).unwrap();
    assert_eq!(wal.last_index(), Some(boundary - 1));
    drop(wal);
    let mut wal = Wal::open(dir.path(), small(400)).unwrap();
    assert_contents(&wal, 1, boundary - 1);
    append_each(&mut wal, boundary, 120);
    assert_contents(&wal, 1, 120);
    // Truncating everything empties the log; a new start is then allowed.
    wal.truncate_from(0).unwrap();
    assert_eq!((wal.first_index(), wal.last_index()), (None, None));
    assert!(seg_files(dir.path()).is_empty());
    append_batch(&mut wal, 500, 510);
    drop(wal);
    let wal = Wal::open(dir.path(), small(400)).unwrap();
    assert_contents(&wal, 500, 510);
}

#[test]
fn purge_to_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small(400)).unwrap();
    append_each(&mut wal, 1, 200);
    let segs = wal.segment_count();
    wal.purge_to(123).unwrap();
    assert_contents(&wal, 124, 200);
    assert!(wal.segment_count() < segs);
    // The surviving first segment may still hold purged records, but none below the marker
    // are visible and whole purged segments are gone from disk.
    assert!(wal.segments[0].first_index <= 124 && wal.segments[0].next_index() > 124);
    assert_eq!(seg_files(dir.path()).len(), wal.segment_count());
    wal.purge_to(50).unwrap(); // older purge point: no-op
    assert_eq!(wal.first_index(), Some(124));
    drop(wal);

    let mut wal = Wal::open(dir.path(), small(400)).unwrap();
    assert_contents(&wal, 124, 200);
    // Truncating into the purged region empties the log.
    wal.truncate_from(100).unwrap();
    assert_eq!(wal.first_index(), None);
    append_batch(&mut wal, 124, 130);
    // Purge past the end (snapshot installed): empty, any next start.
    wal.purge_to(1000).unwrap();
    assert_eq!((wal.first_index(), wal.last_index()), (None, None));
    assert!(seg_files(dir.path()).is_empty());
    drop(wal);
    let mut wal = Wal::open(dir.path(), small(400)).unwrap();
    assert_eq!(wal.first_index(), None);
    append_batch(&mut wal, 1001, 1010);
    drop(wal);
    let mut wal = Wal::open(dir.path(), small(400)).unwrap();
    assert_contents(&wal, 1001, 1010);
    // Restarting below the purge point on an empty log lowers the marker durably.
    wal.purge_to(2000).unwrap();
    append_batch(&mut wal, 5, 9);
    drop(wal);
    let wal = Wal::open(dir.path(), small(400)).unwrap();
    assert_contents(&wal, 5, 9);
}

#[test]
fn interrupted_purge_is_finished_on_open_without_reading_purged_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small(300)).unwrap();
    append_each(&mut wal, 1, 100);
    let second = wal.segments[1].first_index;
    let doomed = wal.segments[0].path.clone();
    drop(wal);
    // Crash after the marker was written but before the segment was deleted; the purged
    // segment is even damaged - it must not matter.
    atomic::write_atomic(&dir.path().join(MARKER_FILE), &second.to_le_bytes()).unwrap();
    fs::write(&doomed, b"garbage").unwrap();
    let wal = Wal::open(dir.path(), small(300)).unwrap();
    assert_contents(&wal, second, 100);
    assert!(!doomed.exists());
}

/// Appends 1..=5 one by one, then `last` as one batch; returns the dir, the segment path and
/// the file offset where the last batch starts.
fn log_with_last_batch(last: &[u64]) -> (tempfile::TempDir, PathBuf, u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), plain()).unwrap();
    append_each(&mut wal, 1, 5);
    let start = wal.disk_bytes();
    append_batch(&mut wal, last[0], last[last.len() - 1]);
    let path = wal.segments[0].path.clone();
    (dir, path, start)
}

#[test]
fn torn_tail_at_every_byte_recovers_exactly_the_complete_records() {
    let (base_dir, base_seg, last_start) = log_with_last_batch(&[6]);
    let full = fs::read(&base_seg).unwrap();
    let noise: Vec<u8> = (0..97u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    for cut in last_start as usize..full.len() {
        for variant in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let seg = dir.path().join(base_seg.file_name().unwrap());
            let mut bytes = full[..cut].to_vec();
            match variant {
                0 => {}
                1 => bytes.resize(full.len() + 4096, 0),
                _ => bytes.extend_from_slice(&noise),
            }
            fs::write(&seg, &bytes).unwrap();
            let mut wal = Wal::open(dir.path(), plain()).unwrap_or_else(|e| panic!("cut {cut} variant {variant}: {e}"));
            assert_contents(&wal, 1, 5);
            // Nothing but zeros after the last complete record is preallocated room, kept;
            // anything else there is a torn tail, cut off.
            let room = variant == 1 && cut == last_start as usize;
            let expected_len = if room { bytes.len() as u64 } else { last_start };
            assert_eq!(fs::metadata(&seg).unwrap().len(), expected_len, "tail cut off on disk");
            append_batch(&mut wal, 6, 7);
            drop(wal);
            let wal = Wal::open(dir.path(), plain()).unwrap();
            assert_contents(&wal, 1, 7);
        }
    }
    drop(base_dir);
}

#[test]
fn torn_multi_record_batch_keeps_the_complete_prefix() {
    let (_base, base_seg, last_start) = log_with_last_batch(&[6, 7, 8]);
    let full = fs::read(&base_seg).unwrap();
    let mut boundaries = vec![last_start];
    let mut off = last_start;
    for i in 6..=8 {
        off += encoder::record_size(payload(i).len());
        boundaries.push(off);
    }
    for cut in last_start..full.len() as u64 {
        let dir = tempfile::tempdir().unwrap();
        let seg = dir.path().join(base_seg.file_name().unwrap());
        let mut bytes = full[..cut as usize].to_vec();
        bytes.resize(full.len(), 0);
        fs::write(&seg, &bytes).unwrap();
        let wal = Wal::open(dir.path(), plain()).unwrap();
        let complete = boundaries.iter().filter(|&&b| b <= cut).count() as u64 - 1;
        assert_contents(&wal, 1, 5 + complete);
    }
}

#[test]
fn hole_inside_the_unacknowledged_last_batch_is_a_torn_tail() {
    // Pages of one unsynced write can reach the disk out of order: record 7 lost, 8 and 9 intact.
    let (dir, seg, _) = log_with_last_batch(&[6, 7, 8, 9]);
    let wal = Wal::open(dir.path(), plain()).unwrap();
    let (a, b) = (wal.segments[0].offsets[6] as usize, wal.segments[0].offsets[7] as usize);
    drop(wal);
    let mut bytes = fs::read(&seg).unwrap();
    bytes[a..b].fill(0);
    fs::write(&seg, &bytes).unwrap();
    let wal = Wal::open(dir.path(), plain()).unwrap();
    assert_contents(&wal, 1, 6);
}

#[test]
fn corrupt_middle_record_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), plain()).unwrap();
    append_each(&mut wal, 1, 10);
    let rec3 = wal.segments[0].offsets[2];
    let seg = wal.segments[0].path.clone();
    drop(wal);
    let good = fs::read(&seg).unwrap();
    // A payload byte, a header (crc / len / index) byte: all are caught.
    for delta in [encoder::HEADER_LEN as u64 + 3, 0, 5, 9] {
        let mut bytes = good.clone();
        bytes[(rec3 + delta) as usize] ^= 0x20;
        fs::write(&seg, &bytes).unwrap();
        let (segment, offset, kind) = corrupt_kind(Wal::open(dir.path(), plain()));
        assert_eq!((segment, offset), (seg.clone(), rec3), "delta {delta}");
        assert!(matches!(kind, CorruptKind::DamagedBeforeValid { next_index: 4, .. }), "{kind:?}");
    }
    // The message names the file and offset.
    let msg = Wal::open(dir.path(), plain()).unwrap_err().to_string();
    assert!(msg.contains(&seg.display().to_string()) && msg.contains(&rec3.to_string()), "{msg}");
    // Nothing was cut: fixing the byte makes the log whole again.
    fs::write(&seg, &good).unwrap();
    assert_contents(&Wal::open(dir.path(), plain()).unwrap(), 1, 10);
}

#[test]
fn damage_in_a_sealed_segment_refuses_to_open_even_at_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small(300)).unwrap();
    append_each(&mut wal, 1, 60);
    let seg = wal.segments[1].path.clone();
    drop(wal);
    let len = fs::metadata(&seg).unwrap().len();
    fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 1).unwrap();
    let (segment, _, kind) = corrupt_kind(Wal::open(dir.path(), small(300)));
    assert_eq!(segment, seg);
    assert!(matches!(kind, CorruptKind::DamagedRecord { fault: RecordFault::Truncated }));
}

#[test]
fn missing_segment_is_an_index_gap() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small(300)).unwrap();
    append_each(&mut wal, 1, 60);
    let (gone, after) = (wal.segments[1].path.clone(), wal.segments[2].clone_id());
    drop(wal);
    fs::remove_file(&gone).unwrap();
    let (segment, _, kind) = corrupt_kind(Wal::open(dir.path(), small(300)));
    assert_eq!(segment, after.1);
    assert!(matches!(kind, CorruptKind::Gap { found, .. } if found == after.0));
}

#[test]
fn wrong_index_inside_a_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), plain()).unwrap();
    append_each(&mut wal, 1, 3);
    let seg = wal.segments[0].path.clone();
    drop(wal);
    // A valid record carrying the wrong index at the tail (not a torn write: refuse).
    let mut bytes = fs::read(&seg).unwrap();
    encoder::encode_into(&mut bytes, 9, 0, b"stray");
    fs::write(&seg, &bytes).unwrap();
    let (_, _, kind) = corrupt_kind(Wal::open(dir.path(), plain()));
    assert_eq!(kind, CorruptKind::IndexMismatch { expected: 4, found: 9 });
}

#[test]
fn empty_last_segment_from_a_crash_during_rotation_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small(300)).unwrap();
    append_each(&mut wal, 1, 30);
    let next = wal.last_index().unwrap() + 1;
    drop(wal);
    let stray = segment_path(dir.path(), next);
    fs::write(&stray, b"").unwrap();
    let mut wal = Wal::open(dir.path(), small(300)).unwrap();
    assert!(!stray.exists());
    assert_contents(&wal, 1, 30);
    append_each(&mut wal, 31, 40);
    assert_contents(&wal, 1, 40);
}

#[test]
fn bit_rot_after_open_is_reported_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), plain()).unwrap();
    append_batch(&mut wal, 1, 5);
    let (seg, off) = (wal.segments[0].path.clone(), wal.segments[0].offsets[3]);
    let mut bytes = fs::read(&seg).unwrap();
    bytes[off as usize + encoder::HEADER_LEN] ^= 1;
    fs::write(&seg, &bytes).unwrap();
    assert!(matches!(wal.read(4), Err(WalError::Corrupt { kind: CorruptKind::ReadBack { index: 4 }, .. })));
    assert!(wal.read_range(1, 10).is_err(), "a damaged entry is never silently skipped");
    assert_eq!(wal.read(3).unwrap(), Some(payload(3)));
}

impl Segment {
    fn clone_id(&self) -> (u64, PathBuf) {
        (self.first_index, self.path.clone())
    }
}

#[test]
fn wal_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Wal>();
    assert_send_sync::<WalError>();
}

fn prealloc(segment_size: u64, preallocate: u64) -> WalOptions {
    WalOptions { segment_size, preallocate }
}

#[test]
fn preallocated_zeros_after_the_last_record_are_room_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let opts = prealloc(1 << 20, 64 * 1024);
    let mut wal = Wal::open(dir.path(), opts).unwrap();
    append_each(&mut wal, 1, 40);
    let seg = dir.path().join(&seg_files(dir.path())[0]);
    assert_eq!(fs::metadata(&seg).unwrap().len(), 64 * 1024, "the file is extended ahead of the records");
    let valid = wal.disk_bytes();
    drop(wal);
    let mut wal = Wal::open(dir.path(), opts).unwrap();
    assert_eq!(wal.last_index(), Some(40));
    assert_eq!(wal.disk_bytes(), valid);
    assert_eq!(fs::metadata(&seg).unwrap().len(), 64 * 1024, "reopening keeps the preallocated space");
    append_batch(&mut wal, 41, 60);
    drop(wal);
    let wal = Wal::open(dir.path(), opts).unwrap();
    assert_contents(&wal, 1, 60);
}

#[test]
fn a_segment_that_stops_being_the_last_is_cut_to_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let opts = prealloc(2048, 1024);
    let mut wal = Wal::open(dir.path(), opts).unwrap();
    append_each(&mut wal, 1, 300);
    assert!(wal.segment_count() > 3);
    let (last, sealed) = wal.segments.split_last().unwrap();
    for seg in sealed {
        assert_eq!(fs::metadata(&seg.path).unwrap().len(), seg.len, "{} keeps no zeros", seg.path.display());
    }
    assert!(fs::metadata(&last.path).unwrap().len() >= last.len);
    drop(wal);
    let wal = Wal::open(dir.path(), opts).unwrap();
    assert_contents(&wal, 1, 300);
}

#[test]
fn a_torn_record_inside_preallocated_space_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let opts = prealloc(1 << 20, 64 * 1024);
    let mut wal = Wal::open(dir.path(), opts).unwrap();
    append_each(&mut wal, 1, 10);
    let valid = wal.disk_bytes();
    drop(wal);
    // Half of record 11 reached the disk before the crash; zeros follow.
    let mut rec = Vec::new();
    encoder::encode_into(&mut rec, 11, 0, &payload(11));
    let seg = dir.path().join(&seg_files(dir.path())[0]);
    let file = fs::OpenOptions::new().write(true).open(&seg).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &rec[..rec.len() / 2], valid).unwrap();
    drop(file);
    let mut wal = Wal::open(dir.path(), opts).unwrap();
    assert_eq!(wal.last_index(), Some(10));
    assert_eq!(fs::metadata(&seg).unwrap().len(), valid, "the torn tail is cut off on disk");
    append_batch(&mut wal, 11, 12);
    drop(wal);
    let wal = Wal::open(dir.path(), opts).unwrap();
    assert_contents(&wal, 1, 12);
}

/// `detach_to` then `DetachedSegments::remove` ends where `purge_to` ends; before the removal
/// the files are untouched (a crash then opens the whole log), and a crash after the marker
/// but before every file is gone is finished on open.
#[test]
fn detached_purge_reaches_the_disk_only_when_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small(300)).unwrap();
    append_each(&mut wal, 1, 100);
    let files = seg_files(dir.path());
    let detached = wal.detach_to(60).unwrap().expect("segments below 61");
    assert_eq!(wal.first_index(), Some(61));
    assert_contents(&wal, 61, 100);
    // Appends go on (also into a new segment) while the purge is not on disk.
    append_each(&mut wal, 101, 140);
    assert!(seg_files(dir.path()).starts_with(&files), "a file was deleted before remove()");
    {
        let crashed = Wal::open(dir.path(), small(300)).unwrap();
        assert_contents(&crashed, 1, 140);
    }
    // A later purge folds into the pending one.
    let mut detached = detached;
    detached.merge(wal.detach_to(80).unwrap().expect("more segments below 81"));
    assert_eq!(detached.first_index(), 81);
    // Crash after the marker and one deletion.
    let doomed = detached.paths.clone();
    write_marker(dir.path(), 81).unwrap();
    fs::remove_file(&doomed[0]).unwrap();
    {
        let crashed = Wal::open(dir.path(), small(300)).unwrap();
        assert_contents(&crashed, 81, 140);
        assert!(doomed.iter().all(|p| !p.exists()), "open did not finish the purge");
    }
    // Finishing the purge after the reopen already did is harmless.
    detached.remove().unwrap();
    assert_eq!(seg_files(dir.path()).len(), wal.segment_count());
    drop(wal);
    let wal = Wal::open(dir.path(), small(300)).unwrap();
    assert_contents(&wal, 81, 140);
}

/// A purge that would leave the log empty is done in full by `detach_to`.
#[test]
fn detach_past_the_end_purges_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small(300)).unwrap();
    append_each(&mut wal, 1, 50);
    assert!(wal.purge_empties(50) && !wal.purge_empties(49));
    assert!(wal.detach_to(70).unwrap().is_none());
    assert!(seg_files(dir.path()).is_empty());
    append_batch(&mut wal, 71, 80);
    drop(wal);
    let wal = Wal::open(dir.path(), small(300)).unwrap();
    assert_contents(&wal, 71, 80);
}
