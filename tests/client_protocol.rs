//! Replies that clients other than kazoo depend on, checked frame by frame against what
//! Apache ZooKeeper 3.8 sends: the Java client, Curator, go-zookeeper and aiozk each broke
//! on one of these (see docs/COMPATIBILITY.md).

mod common;

use common::raw::{self, Session, CHECK_WATCHES, CREATE, EXISTS, GET_CHILDREN, SET_DATA, SET_WATCHES};
use common::Server;
use std::time::{Duration, Instant};

/// A notification frame: xid -1, then (type, state, path) in the body.
fn notification_type(reply: &raw::Reply) -> i32 {
    assert_eq!(reply.xid, -1, "a watch notification");
    i32::from_be_bytes(reply.body[0..4].try_into().unwrap())
}

const NODE_DATA_CHANGED: i32 = 3;

#[test]
fn set_watches_is_answered_with_the_xid_of_the_request() {
    let server = Server::start(&[]);
    let mut s = Session::open(server.addr());
    let created = s.call(1, CREATE, &raw::create_body("/w", b"v0")).expect("create");
    assert_eq!(created.err, 0);

    // go-zookeeper and aiozk send setWatches with an ordinary xid and match the reply by it.
    let body = raw::set_watches_body(created.zxid, &["/w"], &[], &[]);
    let r = s.call(7, SET_WATCHES, &body).expect("setWatches reply");
    assert_eq!((r.xid, r.err), (7, 0), "setWatches is answered with its own xid");

    // The Java client sends -8 and expects -8 back.
    let r = s.call(-8, SET_WATCHES, &body).expect("setWatches reply");
    assert_eq!((r.xid, r.err), (-8, 0));

    // The watch it set is live: a change fires it.
    let mut other = Session::open(server.addr());
    assert_eq!(other.call(1, SET_DATA, &raw::set_data_body("/w", b"v1")).expect("setData").err, 0);
    let event = raw::reply(&mut s.stream).expect("the data watch fires");
    assert_eq!(notification_type(&event), NODE_DATA_CHANGED);
}

#[test]
fn set_watches_sends_missed_events_before_its_reply() {
    let server = Server::start(&[]);
    let mut s = Session::open(server.addr());
    let created = s.call(1, CREATE, &raw::create_body("/seen", b"v0")).expect("create");
    // Changed after the zxid the client says it has seen: the event is owed.
    assert_eq!(s.call(2, SET_DATA, &raw::set_data_body("/seen", b"v1")).expect("setData").err, 0);
    let body = raw::set_watches_body(created.zxid, &["/seen"], &[], &[]);
    s.stream.write_all_request(11, SET_WATCHES, &body);
    let event = raw::reply(&mut s.stream).expect("the catch-up event");
    assert_eq!(notification_type(&event), NODE_DATA_CHANGED);
    let r = raw::reply(&mut s.stream).expect("the setWatches reply");
    assert_eq!((r.xid, r.err), (11, 0));
}

#[test]
fn exists_answers_the_stat_of_a_node_the_caller_cannot_read_and_leaves_a_watch() {
    let server = Server::start(&[]);
    let mut s = Session::open(server.addr());
    // Everything but READ, for anyone.
    let perms = 0x1f & !1;
    let created = s.call(1, CREATE, &raw::create_body_with_perms("/locked", b"secret", perms)).expect("create");
    assert_eq!(created.err, 0);

    // getData needs READ ...
    let r = s.call(2, raw::GET_DATA, &raw::path_body("/locked")).expect("getData");
    assert_eq!(r.err, -102, "NoAuth for getData");
    // ... exists does not (ZooKeeper's FinalRequestProcessor checks no ACL for it).
    let r = s.call(3, EXISTS, &raw::watch_body("/locked")).expect("exists");
    assert_eq!(r.err, 0, "exists answers with the stat");
    assert_eq!(r.body.len(), 68, "a Stat");
    let czxid = i64::from_be_bytes(r.body[0..8].try_into().unwrap());
    assert_eq!(czxid, created.zxid);
    // ... and leaves its data watch.
    let r = s.call(4, CHECK_WATCHES, &raw::check_watches_body("/locked", 2)).expect("checkWatches");
    assert_eq!(r.err, 0, "the data watch is registered");
}

#[test]
fn exists_of_a_missing_node_is_no_node_and_still_watches() {
    let server = Server::start(&[]);
    let mut s = Session::open(server.addr());
    let r = s.call(1, EXISTS, &raw::watch_body("/later")).expect("exists");
    assert_eq!(r.err, -101);
    let r = s.call(2, CHECK_WATCHES, &raw::check_watches_body("/later", 2)).expect("checkWatches");
    assert_eq!(r.err, 0, "NodeCreated needs the watch");
}

#[test]
fn a_standalone_server_expires_a_silent_session_with_its_ephemerals() {
    let server = Server::start(&["-D", "tickTime=500"]);
    let mut owner = Session::open_with_timeout(server.addr(), 1_000);
    let r = owner.call(1, CREATE, &raw::create_ephemeral_body("/held")).expect("create");
    assert_eq!(r.err, 0);
    drop(owner); // the connection goes; the session lives on until its timeout
    let mut other = Session::open(server.addr());
    let r = other.call(1, EXISTS, &raw::path_body("/held")).expect("exists");
    assert_eq!(r.err, 0, "a lost connection does not end the session at once");
    let start = Instant::now();
    let mut xid = 2;
    loop {
        let r = other.call(xid, EXISTS, &raw::path_body("/held")).expect("exists");
        if r.err == -101 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the session of 1 s was not expired within 10 s");
        xid += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends a request without waiting for its reply.
trait WriteRequest {
    fn write_all_request(&mut self, xid: i32, op: i32, body: &[u8]);
}

impl WriteRequest for std::net::TcpStream {
    fn write_all_request(&mut self, xid: i32, op: i32, body: &[u8]) {
        use std::io::Write;
        self.write_all(&raw::request(xid, op, body)).expect("send");
    }
}

/// The names of a getChildren (opcode 8) reply body.
fn child_names(reply: &raw::Reply) -> Vec<String> {
    let b = &reply.body;
    let count = i32::from_be_bytes(b[0..4].try_into().unwrap());
    let mut at = 4;
    (0..count)
        .map(|_| {
            let len = i32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
            let name = String::from_utf8(b[at + 4..at + 4 + len].to_vec()).unwrap();
            at += 4 + len;
            name
        })
        .collect()
}

#[test]
fn get_children_lists_names_in_apache_zookeepers_order() {
    let server = Server::start(&[]);
    let mut s = Session::open(server.addr());
    let mut xid = 0;
    let mut create = |s: &mut Session, path: &str| {
        xid += 1;
        assert_eq!(s.call(xid, CREATE, &raw::create_body(path, b"")).expect("create").err, 0);
    };
    // zk-shell's tests print children in reply order and expect ZooKeeper's; these are the
    // orders Apache ZooKeeper 3.8.0 answers for these creation orders.
    create(&mut s, "/order");
    for name in ["one", "two", "valid", "invalid"] {
        create(&mut s, &format!("/order/{name}"));
    }
    let r = s.call(100, GET_CHILDREN, &raw::path_body("/order")).expect("getChildren");
    assert_eq!(r.err, 0);
    assert_eq!(child_names(&r), ["valid", "invalid", "two", "one"]);
}

/// The Java client and kazoo register a watcher when the reply that set it arrives, and
/// drop an event for which nothing is registered: a data event that overtakes the reply of
/// the getData or exists that set its watch is lost for good (Curator's NodeCache then
/// misses the change). ZooKeeper answers every read before it applies the next write
/// (CommitProcessor waits for reads in flight), so the reply is always first.
#[test]
fn a_watch_event_never_overtakes_the_reply_that_set_its_watch() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let server = Server::start(&[]);
    let value = vec![b'v'; 64 * 1024];
    let mut reader = Session::open(server.addr());
    assert_eq!(reader.call(1, CREATE, &raw::create_body("/race", &value)).expect("create").err, 0);

    // A writer that keeps an apply waiting behind every read of the node.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writer = Session::open(server.addr());
    let writer = {
        let (stop, value) = (stop.clone(), value.clone());
        std::thread::spawn(move || {
            const IN_FLIGHT: i32 = 8;
            for xid in 1..=IN_FLIGHT {
                writer.stream.write_all_request(xid, SET_DATA, &raw::set_data_body("/race", &value));
            }
            let mut xid = IN_FLIGHT;
            while !stop.load(Ordering::Relaxed) {
                let r = raw::reply(&mut writer.stream).expect("setData reply");
                assert_eq!(r.err, 0);
                xid += 1;
                writer.stream.write_all_request(xid, SET_DATA, &raw::set_data_body("/race", &value));
            }
        })
    };

    // No watch is set when each read goes out (the previous one has fired), so an event
    // before the read's reply can only be for the watch that reply sets.
    let (mut overtaken, mut rounds) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut xid = 100;
    while Instant::now() < deadline && rounds < 3000 {
        xid += 1;
        let op = if xid % 2 == 0 { raw::GET_DATA } else { EXISTS };
        reader.stream.write_all_request(xid, op, &raw::watch_body("/race"));
        let mut fired = false;
        loop {
            let r = raw::reply(&mut reader.stream).expect("a reply or an event");
            if r.xid == -1 {
                assert_eq!(notification_type(&r), NODE_DATA_CHANGED);
                overtaken += 1;
                fired = true;
                continue;
            }
            assert_eq!((r.xid, r.err), (xid, 0));
            break;
        }
        if !fired {
            let event = raw::reply(&mut reader.stream).expect("the watch fires on the next write");
            assert_eq!(notification_type(&event), NODE_DATA_CHANGED);
        }
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    assert!(rounds > 100, "only {rounds} rounds ran");
    assert_eq!(overtaken, 0, "{overtaken} of {rounds} watch events arrived before the reply that set the watch");
}
