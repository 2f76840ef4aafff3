//! The ZooKeeper client protocol by hand, on a blocking socket: for tests that need
//! exact frames (a session re-attached elsewhere, a connection the client abandoned,
//! the readOnly byte, malformed input) rather than a client library's behaviour.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Opcodes used by the tests.
pub const CREATE: i32 = 1;
pub const EXISTS: i32 = 3;
pub const GET_DATA: i32 = 4;
pub const SET_DATA: i32 = 5;
pub const GET_CHILDREN: i32 = 8;
pub const SYNC: i32 = 9;
pub const CHECK_WATCHES: i32 = 17;
pub const SET_WATCHES: i32 = 101;
pub const CLOSE_SESSION: i32 = -11;

/// `body` with its length prefix.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// The body of a ConnectRequest (no length prefix): protocol 0, the last zxid the
/// client has seen, `timeout_ms`, `session_id` (0: a new session) with its password,
/// and the optional readOnly byte.
pub fn connect_body(
    last_zxid: i64,
    timeout_ms: i32,
    session_id: i64,
    password: &[u8; 16],
    read_only: Option<bool>,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(45);
    body.extend_from_slice(&0i32.to_be_bytes()); // protocol version
    body.extend_from_slice(&last_zxid.to_be_bytes());
    body.extend_from_slice(&timeout_ms.to_be_bytes());
    body.extend_from_slice(&session_id.to_be_bytes());
    body.extend_from_slice(&16i32.to_be_bytes());
    body.extend_from_slice(password);
    if let Some(ro) = read_only {
        body.push(ro as u8);
    }
    body
}

/// Sends a ConnectRequest `body`; returns the socket (read timeout 10 s) and the
/// ConnectResponse payload, empty if the server closed without one.
pub fn connect(addr: SocketAddr, body: &[u8]) -> (TcpStream, Vec<u8>) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    s.write_all(&frame(body)).expect("send the ConnectRequest");
    let payload = read_frame(&mut s).unwrap_or_default();
    (s, payload)
}

/// An established session on a raw socket.
pub struct Session {
    pub stream: TcpStream,
    pub session_id: i64,
    pub password: [u8; 16],
    /// The highest zxid seen in a reply, sent again when the session re-attaches.
    pub last_zxid: i64,
}

impl Session {
    /// A new session of 30 s on `addr`.
    pub fn open(addr: SocketAddr) -> Session {
        Self::open_with_timeout(addr, 30_000)
    }

    /// A new session asking for `timeout_ms` on `addr`.
    pub fn open_with_timeout(addr: SocketAddr, timeout_ms: i32) -> Session {
        Self::attach(addr, 0, &[0; 16], 0, timeout_ms)
    }

    /// Attaches this session on `addr` over a new connection, as a client that moves
    /// does (this connection stays open).
    pub fn reattach(&self, addr: SocketAddr) -> Session {
        let s = Self::attach(addr, self.session_id, &self.password, self.last_zxid, 30_000);
        assert_eq!(s.session_id, self.session_id);
        s
    }

    /// Attaches `session_id` with `password` on `addr` (0: a new session). A server that
    /// has not applied `last_zxid` yet closes without an answer; that is retried for a
    /// while. Panics if the session is not established.
    fn attach(addr: SocketAddr, session_id: i64, password: &[u8; 16], last_zxid: i64, timeout_ms: i32) -> Session {
        let start = std::time::Instant::now();
        let body = connect_body(last_zxid, timeout_ms, session_id, password, Some(false));
        let (stream, resp) = loop {
            let (stream, resp) = connect(addr, &body);
            if !resp.is_empty() || start.elapsed() > Duration::from_secs(5) {
                break (stream, resp);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(resp.len(), 37, "a ConnectResponse from {addr}");
        let timeout = i32::from_be_bytes(resp[4..8].try_into().unwrap());
        assert!(timeout > 0, "session 0x{session_id:x} was declared expired by {addr}");
        let session_id = i64::from_be_bytes(resp[8..16].try_into().unwrap());
        let password: [u8; 16] = resp[20..36].try_into().unwrap();
        Session { stream, session_id, password, last_zxid }
    }

    /// Sends request `xid` of opcode `op` and reads one reply; `None` if the server
    /// closed the connection instead.
    pub fn call(&mut self, xid: i32, op: i32, body: &[u8]) -> Option<Reply> {
        self.stream.write_all(&request(xid, op, body)).ok()?;
        let r = reply(&mut self.stream)?;
        self.last_zxid = self.last_zxid.max(r.zxid);
        Some(r)
    }
}

/// A request frame: header (xid, opcode) and body.
pub fn request(xid: i32, op: i32, body: &[u8]) -> Vec<u8> {
    let mut r = xid.to_be_bytes().to_vec();
    r.extend_from_slice(&op.to_be_bytes());
    r.extend_from_slice(body);
    frame(&r)
}

/// A reply: its header and the body after it.
#[derive(Debug)]
pub struct Reply {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
    pub body: Vec<u8>,
}

fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut payload = vec![0u8; usize::try_from(i32::from_be_bytes(len)).ok()?];
    s.read_exact(&mut payload).ok()?;
    Some(payload)
}

/// Reads one reply frame; `None` if the connection closed (or the read timed out).
pub fn reply(s: &mut TcpStream) -> Option<Reply> {
    let payload = read_frame(s)?;
    let xid = i32::from_be_bytes(payload[0..4].try_into().ok()?);
    let zxid = i64::from_be_bytes(payload[4..12].try_into().ok()?);
    let err = i32::from_be_bytes(payload[12..16].try_into().ok()?);
    Some(Reply { xid, zxid, err, body: payload[16..].to_vec() })
}

/// True when the next read sees the end of the connection (or an error).
pub fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

/// True when the server closes `s` within its read timeout (anything sent before the
/// close is skipped).
pub fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    buffer(out, s.as_bytes());
}

fn buffer(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

/// create(path, data) of a persistent node anyone may use.
pub fn create_body(path: &str, data: &[u8]) -> Vec<u8> {
    create_body_with_perms(path, data, 0x1f)
}

/// create(path, data) of a persistent node with one ACL entry: `world:anyone` with `perms`
/// (READ 1, WRITE 2, CREATE 4, DELETE 8, ADMIN 16).
pub fn create_body_with_perms(path: &str, data: &[u8], perms: i32) -> Vec<u8> {
    let mut b = Vec::new();
    string(&mut b, path);
    buffer(&mut b, data);
    b.extend_from_slice(&1i32.to_be_bytes()); // one ACL entry
    b.extend_from_slice(&perms.to_be_bytes());
    string(&mut b, "world");
    string(&mut b, "anyone");
    b.extend_from_slice(&0i32.to_be_bytes()); // persistent
    b
}

/// create(path) of an empty ephemeral node anyone may use.
pub fn create_ephemeral_body(path: &str) -> Vec<u8> {
    let mut b = create_body(path, b"");
    let flags = b.len() - 4;
    b[flags..].copy_from_slice(&1i32.to_be_bytes());
    b
}

/// A request body that is just a path (sync).
pub fn path_only_body(path: &str) -> Vec<u8> {
    let mut b = Vec::new();
    string(&mut b, path);
    b
}

/// exists(path) or getData(path) with a watch.
pub fn watch_body(path: &str) -> Vec<u8> {
    let mut b = path_only_body(path);
    b.push(1);
    b
}

/// checkWatches(path, type): type 1 child, 2 data, 3 any.
pub fn check_watches_body(path: &str, watcher_type: i32) -> Vec<u8> {
    let mut b = path_only_body(path);
    b.extend_from_slice(&watcher_type.to_be_bytes());
    b
}

/// setWatches(relativeZxid, dataWatches, existWatches, childWatches).
pub fn set_watches_body(relative_zxid: i64, data: &[&str], exist: &[&str], child: &[&str]) -> Vec<u8> {
    let mut b = relative_zxid.to_be_bytes().to_vec();
    for list in [data, exist, child] {
        b.extend_from_slice(&(list.len() as i32).to_be_bytes());
        for path in list {
            string(&mut b, path);
        }
    }
    b
}

/// setData(path, data) at any version.
pub fn set_data_body(path: &str, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    string(&mut b, path);
    buffer(&mut b, data);
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b
}

/// getData(path) or exists(path) without a watch.
pub fn path_body(path: &str) -> Vec<u8> {
    let mut b = Vec::new();
    string(&mut b, path);
    b.push(0);
    b
}

/// The data version in the Stat that a setData reply body holds.
pub fn stat_version(reply: &Reply) -> i32 {
    i32::from_be_bytes(reply.body[32..36].try_into().unwrap())
}

/// The data of a getData reply body.
pub fn data_of(reply: &Reply) -> Vec<u8> {
    let len = i32::from_be_bytes(reply.body[0..4].try_into().unwrap());
    reply.body[4..4 + len.max(0) as usize].to_vec()
}
