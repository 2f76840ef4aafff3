//! Clients that misbehave on the native port must not grow the server or hold it up:
//! one that never reads its replies, one that never sends a ConnectRequest, one that
//! never reads its watch events. Each test fails on a server without the bound it checks
//! (see `src/server/flow.rs` and `src/server/outbound.rs`).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::raw::{self, create_body, path_body, request, Session};
use common::Server;

const GET_DATA: i32 = 4;
const CREATE: i32 = 1;
const ADD_WATCH: i32 = 106;

/// Whether a read saw the server close the connection (not a read timeout).
fn ended(read: std::io::Result<usize>) -> bool {
    match read {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted),
    }
}

/// Creates `path` holding `data` through a fresh session.
fn create(server: &Server, path: &str, data: &[u8]) {
    let mut s = Session::open(server.addr());
    let r = s.call(1, CREATE, &create_body(path, data)).expect("create reply");
    assert_eq!(r.err, 0, "create {path}");
}

/// The RSS growth bound asserted for a client that never reads: the reply budget (1 MiB)
/// plus one reply (1 MB) plus allocator slack. Without backpressure the same client grew
/// the server by over 370 MiB.
const SLOW_READER_GROWTH_BOUND_KIB: u64 = 48 * 1024;

#[test]
fn a_client_that_never_reads_its_replies_does_not_grow_the_server() {
    let server = Server::start(&[]);
    let data = vec![b'x'; 1_000_000];
    create(&server, "/big", &data);
    // Warm up: one full read of the node, so the allocator has seen a 1 MB reply once.
    let mut warm = Session::open(server.addr());
    assert_eq!(warm.call(1, GET_DATA, &path_body("/big")).expect("getData").err, 0);
    let before = server.rss_kib();

    // 1,500 pipelined getData of the 1 MB node: 1.5 GB of replies if they were all built.
    let mut slow = Session::open(server.addr());
    let mut burst = Vec::new();
    for xid in 1..=1_500 {
        burst.extend_from_slice(&request(xid, GET_DATA, &path_body("/big")));
    }
    slow.stream.write_all(&burst).expect("send the burst");
    std::thread::sleep(Duration::from_secs(3));
    let stalled = server.rss_kib();
    assert!(
        stalled.saturating_sub(before) < SLOW_READER_GROWTH_BOUND_KIB,
        "the server grew by {} KiB for a client that reads nothing (bound {} KiB)",
        stalled.saturating_sub(before),
        SLOW_READER_GROWTH_BOUND_KIB
    );

    // Everyone else is still served while the slow client holds its share.
    let mut other = Session::open(server.addr());
    for xid in 1..=20 {
        let r = other.call(xid, GET_DATA, &path_body("/big")).expect("another client is answered");
        assert_eq!((r.xid, r.err), (xid, 0));
    }

    // Backpressure loses nothing: once the client reads, every reply arrives, in order.
    slow.stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    for xid in 1..=1_500 {
        let r = raw::reply(&mut slow.stream).expect("every reply arrives");
        assert_eq!((r.xid, r.err, raw::data_of(&r).len()), (xid, 0, data.len()));
    }
    println!("slow reader: RSS {before} KiB before, {stalled} KiB while stalled");
}

#[test]
fn connections_that_never_send_a_connect_request_are_closed() {
    let server = Server::start(&["-D", "zookeeper.nio.sessionlessCnxnTimeout=1000"]);
    let start = Instant::now();
    // Silent sockets, and one that sent half a frame.
    let mut idle: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(server.addr()).expect("connect")).collect();
    let mut partial = TcpStream::connect(server.addr()).expect("connect");
    partial.write_all(&[0, 0, 0, 44, 0, 0]).expect("half a frame");
    idle.push(partial);
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut b = [0u8; 1];
        assert!(ended(s.read(&mut b)), "the server closes a connection without a handshake");
    }
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(900), "closed after {waited:?}, before the 1 s allowance");
    assert!(waited < Duration::from_secs(8), "closed only after {waited:?}");
    // The server still takes new clients.
    let mut s = Session::open(server.addr());
    assert_eq!(s.call(1, GET_DATA, &path_body("/")).expect("reply").err, 0);
}

#[test]
fn a_client_that_leaves_its_watch_events_unread_is_disconnected() {
    let server = Server::start(&[]);
    create(&server, "/e", b"");
    // A persistent recursive watch on /e, then never another read.
    let mut watcher = Session::open(server.addr());
    let mut add_watch = raw::path_only_body("/e");
    add_watch.extend_from_slice(&1i32.to_be_bytes()); // PERSISTENT_RECURSIVE
    assert_eq!(watcher.call(1, ADD_WATCH, &add_watch).expect("addWatch").err, 0);

    // 6,000 creates with 4 KB names: about 24 MB of events, three times the 8 MiB allowance
    // even after the kernel's socket buffers took their share.
    let mut writer = Session::open(server.addr());
    let name = "n".repeat(4000);
    let (batch, batches) = (500, 12);
    for b in 0..batches {
        let mut burst = Vec::new();
        for i in 0..batch {
            let xid = b * batch + i + 1;
            burst.extend_from_slice(&request(xid, CREATE, &create_body(&format!("/e/{xid}-{name}"), b"")));
        }
        writer.stream.write_all(&burst).expect("send creates");
        for _ in 0..batch {
            assert_eq!(raw::reply(&mut writer.stream).expect("create reply").err, 0);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("slow consumer") {
        assert!(Instant::now() < deadline, "no slow-consumer close in the log:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // The connection ends (after whatever the kernel had buffered) instead of queueing forever.
    watcher.stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut sink = vec![0u8; 1 << 16];
    let mut total = 0usize;
    loop {
        match watcher.stream.read(&mut sink) {
            Ok(n) if n > 0 => total += n,
            end => {
                assert!(ended(end), "the connection of the slow consumer stays open");
                break;
            }
        }
    }
    assert!(total < 20 << 20, "{total} bytes of events reached a client that was to be cut off");
    // The writer's session is unaffected.
    assert_eq!(writer.call(1, GET_DATA, &path_body("/e")).expect("reply").err, 0);
}

/// Median of `n` sequential setData round trips on `s`.
fn set_data_p50(s: &mut Session, n: i32) -> Duration {
    const SET_DATA: i32 = 5;
    let mut times: Vec<Duration> = (0..n)
        .map(|i| {
            let t = Instant::now();
            let r = s.call(i + 1, SET_DATA, &raw::set_data_body("/w", b"v")).expect("setData reply");
            assert_eq!(r.err, 0);
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

#[test]
fn writes_go_on_while_anonymous_searches_walk_a_large_tree() {
    let server = Server::start(&[]);
    create(&server, "/s", b"");
    create(&server, "/w", b"");
    // 100,000 nodes with some data to match against.
    let mut loader = Session::open(server.addr());
    let data = vec![b'd'; 100];
    for batch in 0..100 {
        let mut burst = Vec::new();
        for i in 0..1_000 {
            let xid = batch * 1_000 + i + 1;
            burst.extend_from_slice(&request(xid, CREATE, &create_body(&format!("/s/n{xid}"), &data)));
        }
        loader.stream.write_all(&burst).expect("send creates");
        for _ in 0..1_000 {
            assert_eq!(raw::reply(&mut loader.stream).expect("create reply").err, 0);
        }
    }
    let mut writer = Session::open(server.addr());
    set_data_p50(&mut writer, 50); // warm up
    let quiet = set_data_p50(&mut writer, 200);

    let http_addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.http_port));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let searches: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut done = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // A regex no node matches: every search walks the whole tree.
                    let (status, _) = common::http(
                        http_addr,
                        "GET",
                        "/api/v1/search?q=%5Ezzz%24&data=true&regex=true&limit=5000",
                        None,
                    );
                    assert_eq!(status, 200);
                    done += 1;
                }
                done
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let busy = set_data_p50(&mut writer, 200);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let walks: i32 = searches.into_iter().map(|t| t.join().expect("search thread")).sum();
    println!("setData p50: {quiet:?} alone, {busy:?} during 4 concurrent searches ({walks} full walks of 100k nodes)");
    assert!(walks >= 4, "the searches did not run");
    // Before searches ran in slices this was several hundred milliseconds (the whole walk
    // held the tree); CPU contention with four busy searches on a small machine is allowed for.
    assert!(busy < quiet * 10 + Duration::from_millis(20), "setData p50 {busy:?} during searches, {quiet:?} without");
}

/// A gzip body of a few hundred KB that inflates to 60 MiB of a valid-looking ZooNavigator export.
fn import_bomb() -> Vec<u8> {
    use std::io::Write as _;
    let node = br#"{"h":{"path":"/bomb","data":"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"},"t":[]},"#;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(b"[").expect("gzip");
    let block = node.repeat(1 << 14);
    let mut inflated = 0;
    while inflated < (60 << 20) {
        gz.write_all(&block).expect("gzip");
        inflated += block.len();
    }
    gz.write_all(br#"{"h":{"path":"/end"},"t":[]}]"#).expect("gzip");
    gz.finish().expect("gzip")
}

/// POSTs `body` to `path` on the HTTP port; returns the status.
fn post_bytes(addr: std::net::SocketAddr, path: &str, body: &[u8], headers: &str) -> u16 {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/gzip\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(body).expect("body");
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn a_compressed_import_bomb_is_refused_without_growing_the_server() {
    let server = Server::start(&[]);
    create(&server, "/target", b"");
    let http_addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.http_port));
    common::wait_for_port(http_addr, Duration::from_secs(10));
    let bomb = import_bomb();
    assert!(bomb.len() < 512 * 1024, "the bomb is {} bytes", bomb.len());
    let before = server.rss_kib();
    let status = post_bytes(http_addr, "/api/v1/import?path=/target", &bomb, "");
    let after = server.rss_kib();
    assert_eq!(status, 413, "a 60 MiB document was not refused");
    let grown = after.saturating_sub(before);
    println!("import bomb: {} bytes, RSS {before} -> {after} KiB", bomb.len());
    assert!(grown < 64 * 1024, "the server grew by {grown} KiB on a {} byte import", bomb.len());

    // Without CREATE on the target, nothing is even decompressed: refused at once.
    let mut s = Session::open(server.addr());
    let locked = raw::create_body_with_perms("/locked", b"", 1); // world: READ only
    assert_eq!(s.call(1, CREATE, &locked).expect("create").err, 0);
    assert_eq!(post_bytes(http_addr, "/api/v1/import?path=/locked", &bomb, ""), 403);
}
