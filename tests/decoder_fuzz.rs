//! A short, bounded fuzz run of the client-port decoder: real client frames, mutated the
//! ways broken and hostile clients mutate them (flipped bits, cut or grown bodies, length
//! fields set to extremes), fed to the decoders and then to a running server. Nothing may
//! panic, and the server must still serve a well-behaved client afterwards. Seeded, so a
//! failure is reproducible: the seed is in the panic message.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::raw::{self, create_body, path_body, request, set_data_body, set_watches_body, watch_body, Session};
use common::Server;

/// (opcode, body) of requests real clients send.
fn seed_requests() -> Vec<(i32, Vec<u8>)> {
    let mut multi = Vec::new();
    for (op, body) in [(1i32, create_body("/m/a", b"x")), (5, set_data_body("/m/a", b"y")), (2, path_body("/m/a"))] {
        multi.extend_from_slice(&op.to_be_bytes()); // MultiHeader: type, done, err
        multi.push(0);
        multi.extend_from_slice(&(-1i32).to_be_bytes());
        multi.extend_from_slice(&body);
    }
    multi.extend_from_slice(&(-1i32).to_be_bytes());
    multi.push(1);
    multi.extend_from_slice(&(-1i32).to_be_bytes());
    let mut auth = 0i32.to_be_bytes().to_vec();
    auth.extend_from_slice(&6i32.to_be_bytes());
    auth.extend_from_slice(b"digest");
    auth.extend_from_slice(&12i32.to_be_bytes());
    auth.extend_from_slice(b"alice:secret");
    let mut add_watch = raw::path_only_body("/a");
    add_watch.extend_from_slice(&1i32.to_be_bytes());
    vec![
        (1, create_body("/a", b"hello")),
        (15, create_body("/a", b"hello")),
        (2, path_body("/a")),
        (3, watch_body("/a")),
        (4, watch_body("/a")),
        (5, set_data_body("/a", b"data")),
        (6, raw::path_only_body("/a")),
        (8, watch_body("/")),
        (12, watch_body("/")),
        (9, raw::path_only_body("/a")),
        (14, multi),
        (100, auth),
        (101, set_watches_body(7, &["/a"], &["/b"], &["/c"])),
        (106, add_watch),
        (17, raw::check_watches_body("/a", 3)),
        (11, Vec::new()),
    ]
}

/// One mutation of `body`.
fn mutate(rng: &mut StdRng, body: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    for _ in 0..rng.random_range(1..4) {
        match rng.random_range(0..6) {
            0 if !b.is_empty() => {
                let i = rng.random_range(0..b.len());
                b[i] ^= 1 << rng.random_range(0..8);
            }
            1 if !b.is_empty() => {
                let n = rng.random_range(0..b.len());
                b.truncate(n);
            }
            2 => {
                let extra: Vec<u8> = (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
                let at = rng.random_range(0..=b.len());
                b.splice(at..at, extra);
            }
            3 if b.len() >= 4 => {
                // A length or count field set to an extreme.
                let at = rng.random_range(0..=b.len() - 4);
                let v: i32 = [0, -1, -2, 1, i32::MAX, i32::MIN, 0x7fff_fff0, 1 << 20][rng.random_range(0..8)];
                b[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
            4 if b.len() >= 2 => {
                let from = rng.random_range(0..b.len());
                let to = rng.random_range(from..b.len());
                let copy = b[from..=to].to_vec();
                b.extend_from_slice(&copy);
            }
            _ => b.reverse(),
        }
    }
    b
}

#[test]
fn mutated_frames_never_panic_the_decoders() {
    let seed: u64 = std::env::var("ROOST_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_2026);
    let mut rng = StdRng::seed_from_u64(seed);
    let seeds = seed_requests();
    let connect = raw::connect_body(5, 30_000, 0x1234, &[7; 16], Some(true));
    for i in 0..200_000u32 {
        let (op, body) = &seeds[rng.random_range(0..seeds.len())];
        let op = if rng.random_ratio(1, 20) { rng.random_range(-20..120) } else { *op };
        let bad = mutate(&mut rng, body);
        let ok = std::panic::catch_unwind(|| {
            let _ = roost::proto::decode_request(op, &bad);
            let _ = roost::proto::ConnectRequest::decode(&bad);
            let _ = roost::proto::parse_frame(&bad, 1 << 20);
        });
        assert!(ok.is_ok(), "a decoder panicked at iteration {i} (seed {seed}) on op {op}, body {bad:?}");
        let bad_connect = mutate(&mut rng, &connect);
        let ok = std::panic::catch_unwind(|| roost::proto::ConnectRequest::decode(&bad_connect));
        assert!(ok.is_ok(), "ConnectRequest::decode panicked (seed {seed}) on {bad_connect:?}");
    }
}

#[test]
fn a_server_fed_mutated_frames_keeps_serving() {
    let server = Server::start(&[]);
    let mut rng = StdRng::seed_from_u64(0xbad_f4a3);
    let seeds = seed_requests();
    let connect = raw::connect_body(0, 30_000, 0, &[0; 16], Some(false));
    for round in 0..200 {
        let mut s = TcpStream::connect(server.addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        s.set_write_timeout(Some(Duration::from_secs(5))).expect("timeout");
        if round % 4 == 0 {
            // A broken handshake.
            let _ = s.write_all(&raw::frame(&mutate(&mut rng, &connect)));
        } else {
            let _ = s.write_all(&raw::frame(&connect));
            let mut burst = Vec::new();
            for xid in 1..=20 {
                let (op, body) = &seeds[rng.random_range(0..seeds.len())];
                let frame = request(xid, *op, &mutate(&mut rng, body));
                // Sometimes the length prefix itself lies.
                burst.extend_from_slice(&if rng.random_ratio(1, 10) { mutate(&mut rng, &frame) } else { frame });
            }
            let _ = s.write_all(&burst);
        }
        let mut sink = [0u8; 4096];
        let _ = s.read(&mut sink);
    }
    // Still serving, with its tree intact.
    let mut client = Session::open(server.addr());
    let r = client.call(1, 4, &path_body("/")).expect("the server answers after the fuzzing");
    assert_eq!(r.err, 0);
}
