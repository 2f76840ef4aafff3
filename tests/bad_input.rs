//! Bad input from the network gets ZooKeeper's answer and never hurts the server:
//! raw frames on a socket, checked against what Apache ZooKeeper does.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::raw::{self, closed, frame, request};
use common::{connect_request_body, four_letter_word, Server};

/// Opens a session by hand and returns the socket after the 41-byte handshake reply.
fn session(server: &Server) -> TcpStream {
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let connect = connect_request_body(10_000, Some(false));
    s.write_all(&frame(&connect)).unwrap();
    let mut reply = [0u8; 41];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[..4], &37i32.to_be_bytes(), "37-byte ConnectResponse");
    s
}

/// Reads one reply frame and returns (xid, err).
fn reply(s: &mut TcpStream) -> (i32, i32) {
    let r = raw::reply(s).expect("a reply");
    (r.xid, r.err)
}

#[test]
fn unparseable_body_gets_marshalling_error_and_the_connection_stays() {
    let server = Server::start(&[]);
    let mut s = session(&server);
    // getData (4) whose path length claims more bytes than the frame holds.
    s.write_all(&request(1, 4, &[0, 0, 0x10, 0])).unwrap();
    assert_eq!(reply(&mut s), (1, -5));
    // The connection still serves: exists("/") with a proper body.
    let mut body = 1i32.to_be_bytes().to_vec();
    body.push(b'/');
    body.push(0);
    s.write_all(&request(2, 3, &body)).unwrap();
    assert_eq!(reply(&mut s), (2, 0));
}

#[test]
fn unknown_opcode_gets_unimplemented_then_close() {
    let server = Server::start(&[]);
    let mut s = session(&server);
    s.write_all(&request(7, 999, &[])).unwrap();
    assert_eq!(reply(&mut s), (7, -6));
    assert!(closed(&mut s));
    // A top-level check (13) is only valid inside a multi.
    let mut s = session(&server);
    s.write_all(&request(8, 13, &[0, 0, 0, 1, b'/', 0, 0, 0, 0])).unwrap();
    assert_eq!(reply(&mut s), (8, -6));
    assert!(closed(&mut s));
}

#[test]
fn frames_over_jute_maxbuffer_close_the_connection() {
    let server = Server::start(&["-D", "jute.maxbuffer=4096"]);
    let mut s = session(&server);
    s.write_all(&(100_000i32).to_be_bytes()).unwrap();
    assert!(closed(&mut s));
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(closed(&mut s));
    assert_eq!(
        four_letter_word(server.addr(), "srvr").lines().find(|l| l.starts_with("Mode")),
        Some("Mode: standalone")
    );
}

#[test]
fn random_garbage_never_brings_the_server_down() {
    let server = Server::start(&[]);
    let mut seed = 0x2545F4914F6CDD1Du64;
    for round in 0..200 {
        let mut s = if round % 2 == 0 { session(&server) } else { TcpStream::connect(server.addr()).unwrap() };
        let mut junk = Vec::new();
        for _ in 0..(64 + round) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            junk.push(seed as u8);
        }
        let _ = s.write_all(&frame(&junk));
        let _ = s.write_all(&junk);
    }
    assert!(four_letter_word(server.addr(), "srvr").contains("Mode: standalone"));
}

#[test]
fn max_client_cnxns_limits_connections_per_address() {
    let server = Server::start(&["-D", "maxClientCnxns=3"]);
    let kept: Vec<TcpStream> = (0..3).map(|_| session(&server)).collect();
    let mut extra = TcpStream::connect(server.addr()).unwrap();
    extra.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(closed(&mut extra), "a fourth connection from the same address must be refused");
    drop(kept);
    std::thread::sleep(Duration::from_millis(300));
    let _again = session(&server);
}

#[test]
fn empty_containers_are_reaped() {
    let server = Server::start(&["-D", "znode.container.checkIntervalMs=200"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use zookeeper_client as zk;
        let c = zk::Client::connect(&server.connect_string()).await.unwrap();
        let container = zk::CreateMode::Container.with_acls(zk::Acls::anyone_all());
        let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        c.create("/box", b"", &container).await.unwrap();
        c.create("/box/item", b"", &open).await.unwrap();
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(c.check_stat("/box").await.unwrap().is_some(), "a container with a child must stay");
        c.delete("/box/item", None).await.unwrap();
        let mut gone = false;
        for _ in 0..50 {
            if c.check_stat("/box").await.unwrap().is_none() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(gone, "an emptied container must be reaped");
    });
}
