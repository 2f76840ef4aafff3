//! A minimal ZooKeeper client connection: handshake, request encoding, frame reading.
//!
//! Deliberately not a full client: the benchmark must add as little of its own cost as
//! possible and must behave identically against every server, so it only knows the few
//! records the workloads send (getData, setData, create, delete, exists, ping,
//! closeSession) and leaves reply bodies unparsed except for watch events. Encoding uses
//! the server's own jute primitives (`roost::proto`), which are tested against real
//! ZooKeeper clients.
//!
//! A connection is plain TCP or TLS ([`Transport`]); either way the workloads see one
//! reader half and one writer half ([`ReadHalf`], [`WriteHalf`]), so every workload runs
//! unchanged over both.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use roost::proto::types::{xid, OpCode};
use roost::proto::{parse_frame, write_frame, DecodeError, FrameError, Reader, Writer};
use roost_tls::rustls::pki_types::ServerName;
use roost_tls::rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Largest reply frame accepted by default (ZooKeeper's default `jute.maxbuffer` plus
/// headroom); [`FrameReader::set_limit`] raises it for the huge getChildren replies.
const MAX_FRAME: usize = 4 << 20;

/// Why a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("server closed the connection")]
    Closed,
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("bad reply: {0}")]
    Decode(#[from] DecodeError),
    #[error("session refused (negotiated timeout {0})")]
    Refused(i32),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("reply xid {got} does not match the oldest outstanding request {want}")]
    OutOfOrder { got: i32, want: i32 },
    #[error("TLS handshake: {0}")]
    Tls(io::Error),
}

/// How connections are made: plain TCP, or TLS over TCP with one client config for all.
#[derive(Clone, Default)]
pub struct Transport {
    tls: Option<TlsConnector>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_tls() { "Transport(tls)" } else { "Transport(tcp)" })
    }
}

impl Transport {
    pub fn plain() -> Transport {
        Transport { tls: None }
    }

    pub fn tls(config: Arc<ClientConfig>) -> Transport {
        Transport { tls: Some(TlsConnector::from(config)) }
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// TCP connect (no Nagle) and, for TLS, the full TLS handshake. The server name sent to
    /// the verifier is the dialled IP; the client config decides whether it is checked.
    pub async fn open(&self, addr: SocketAddr) -> Result<Stream, ClientError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let Some(tls) = &self.tls else {
            let (rd, wr) = tcp.into_split();
            return Ok(Stream { reader: ReadHalf::Tcp(rd), writer: WriteHalf::Tcp(wr), tls: None });
        };
        let stream = tls.connect(ServerName::from(addr.ip()), tcp).await.map_err(ClientError::Tls)?;
        let (_, session) = stream.get_ref();
        let desc = format!(
            "{} {}",
            session.protocol_version().and_then(|v| v.as_str()).unwrap_or("?"),
            session.negotiated_cipher_suite().and_then(|c| c.suite().as_str()).unwrap_or("?")
        );
        let (rd, wr) = tokio::io::split(stream);
        Ok(Stream { reader: ReadHalf::Tls(rd), writer: WriteHalf::Tls(wr), tls: Some(desc) })
    }
}

/// An open connection, before the ZooKeeper handshake.
pub struct Stream {
    pub reader: ReadHalf,
    pub writer: WriteHalf,
    /// Negotiated TLS version and cipher suite ("TLSv1_3 TLS13_AES_256_GCM_SHA384"); `None` for TCP.
    pub tls: Option<String>,
}

type TlsConn = TlsStream<TcpStream>;

/// The receiving half of a connection.
pub enum ReadHalf {
    Tcp(OwnedReadHalf),
    Tls(tokio::io::ReadHalf<TlsConn>),
}

/// The sending half of a connection. Use [`WriteHalf::send`]: TLS may keep written bytes in
/// its record buffer until flushed.
pub enum WriteHalf {
    Tcp(OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<TlsConn>),
}

impl AsyncRead for ReadHalf {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Tcp(r) => Pin::new(r).poll_read(cx, buf),
            ReadHalf::Tls(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(w) => Pin::new(w).poll_write(cx, buf),
            WriteHalf::Tls(w) => Pin::new(w).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(w) => Pin::new(w).poll_flush(cx),
            WriteHalf::Tls(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(w) => Pin::new(w).poll_shutdown(cx),
            WriteHalf::Tls(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}

impl WriteHalf {
    /// Writes all of `buf` and, for TLS, flushes the record buffer to the socket (a no-op
    /// flush is skipped for TCP, which has no buffer of its own).
    pub async fn send(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_all(buf).await?;
        if let WriteHalf::Tls(w) = self {
            w.flush().await?;
        }
        Ok(())
    }
}

/// One request the workloads can send. Paths and data are borrowed: the generator
/// owns them and the encoder copies them straight into the output buffer.
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    GetData {
        path: &'a str,
        watch: bool,
    },
    SetData {
        path: &'a str,
        data: &'a [u8],
    },
    Create {
        path: &'a str,
        data: &'a [u8],
    },
    Delete {
        path: &'a str,
    },
    Exists {
        path: &'a str,
        watch: bool,
    },
    GetChildren {
        path: &'a str,
        watch: bool,
    },
    /// ZooKeeper 3.6's addWatch; `mode` 0 is persistent, 1 persistent-recursive.
    AddWatch {
        path: &'a str,
        mode: i32,
    },
    Ping,
    CloseSession,
}

impl Op<'_> {
    fn opcode(&self) -> OpCode {
        match self {
            Op::GetData { .. } => OpCode::GetData,
            Op::SetData { .. } => OpCode::SetData,
            Op::Create { .. } => OpCode::Create,
            Op::Delete { .. } => OpCode::Delete,
            Op::Exists { .. } => OpCode::Exists,
            Op::GetChildren { .. } => OpCode::GetChildren,
            Op::AddWatch { .. } => OpCode::AddWatch,
            Op::Ping => OpCode::Ping,
            Op::CloseSession => OpCode::CloseSession,
        }
    }
}

/// Appends one request frame for `op` with transaction id `xid` to `out`.
pub fn encode_request(out: &mut Vec<u8>, xid_value: i32, op: &Op<'_>) {
    let xid_value = if matches!(op, Op::Ping) { xid::PING } else { xid_value };
    write_frame(out, |w| {
        w.write_i32(xid_value);
        w.write_i32(op.opcode() as i32);
        match *op {
            Op::GetData { path, watch } | Op::Exists { path, watch } | Op::GetChildren { path, watch } => {
                w.write_str(path);
                w.write_bool(watch);
            }
            Op::AddWatch { path, mode } => {
                w.write_str(path);
                w.write_i32(mode);
            }
            Op::SetData { path, data } => {
                w.write_str(path);
                w.write_buffer(Some(data));
                w.write_i32(-1); // any version
            }
            Op::Create { path, data } => {
                w.write_str(path);
                w.write_buffer(Some(data));
                write_open_acl(w);
                w.write_i32(0); // persistent
            }
            Op::Delete { path } => {
                w.write_str(path);
                w.write_i32(-1);
            }
            Op::Ping | Op::CloseSession => {}
        }
    });
}

/// `[31, world:anyone]` (OPEN_ACL_UNSAFE), what every benchmark znode gets.
fn write_open_acl(w: &mut Writer<'_>) {
    w.write_i32(1);
    w.write_i32(roost::proto::types::perms::ALL);
    w.write_str("world");
    w.write_str("anyone");
}

/// The handshake: protocol 0, a new session, 16 zero password bytes, not read-only.
pub fn encode_connect(out: &mut Vec<u8>, timeout_ms: i32) {
    write_frame(out, |w| {
        w.write_i32(0);
        w.write_i64(0);
        w.write_i32(timeout_ms);
        w.write_i64(0);
        w.write_buffer(Some(&[0u8; 16]));
        w.write_bool(false);
    });
}

/// The part of a reply the benchmark looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHead {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
}

impl ReplyHead {
    pub fn parse(payload: &[u8]) -> Result<ReplyHead, DecodeError> {
        let mut r = Reader::new(payload);
        Ok(ReplyHead { xid: r.read_i32()?, zxid: r.read_i64()?, err: r.read_i32()? })
    }

    pub fn is_notification(&self) -> bool {
        self.xid == xid::NOTIFICATION
    }

    pub fn is_ping(&self) -> bool {
        self.xid == xid::PING
    }
}

/// Reads length-prefixed frames from the socket, buffering partial ones.
pub struct FrameReader {
    rd: ReadHalf,
    buf: Vec<u8>,
    pos: usize,
    limit: usize,
}

impl FrameReader {
    fn new(rd: ReadHalf) -> Self {
        FrameReader { rd, buf: Vec::with_capacity(64 * 1024), pos: 0, limit: MAX_FRAME }
    }

    /// Accepts frames up to `limit` bytes from now on.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// The next frame's payload (without its length prefix). Cancel-safe: bytes are only
    /// ever appended to the buffer by a completed read.
    pub async fn next_frame(&mut self) -> Result<&[u8], ClientError> {
        loop {
            let found = parse_frame(&self.buf[self.pos..], self.limit)?.map(|(used, p)| (used, p.len()));
            if let Some((used, len)) = found {
                let start = self.pos + used - len;
                self.pos += used;
                return Ok(&self.buf[start..start + len]);
            }
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            if self.buf.capacity() - self.buf.len() < 16 * 1024 {
                self.buf.reserve(64 * 1024);
            }
            if self.rd.read_buf(&mut self.buf).await? == 0 {
                return Err(ClientError::Closed);
            }
        }
    }
}

/// An established session, before it is split into reader and writer halves.
pub struct Conn {
    pub reader: FrameReader,
    pub writer: WriteHalf,
    pub session_id: i64,
    pub timeout_ms: i32,
    /// See [`Stream::tls`].
    pub tls: Option<String>,
}

impl Conn {
    /// Connects (TCP or TLS, per `transport`) and completes the handshake within `limit`.
    pub async fn connect(
        addr: SocketAddr,
        transport: &Transport,
        timeout_ms: i32,
        limit: Duration,
    ) -> Result<Conn, ClientError> {
        tokio::time::timeout(limit, async { Self::handshake(transport.open(addr).await?, timeout_ms).await })
            .await
            .map_err(|_| ClientError::Timeout(limit))?
    }

    /// The ZooKeeper handshake (ConnectRequest, ConnectResponse) on an open connection.
    pub async fn handshake(stream: Stream, timeout_ms: i32) -> Result<Conn, ClientError> {
        let Stream { reader: rd, mut writer, tls } = stream;
        let mut out = Vec::with_capacity(64);
        encode_connect(&mut out, timeout_ms);
        writer.send(&out).await?;
        let mut reader = FrameReader::new(rd);
        let payload = reader.next_frame().await?;
        let mut r = Reader::new(payload);
        let _protocol = r.read_i32()?;
        let negotiated = r.read_i32()?;
        let session_id = r.read_i64()?;
        if negotiated <= 0 {
            return Err(ClientError::Refused(negotiated));
        }
        Ok(Conn { reader, writer, session_id, timeout_ms: negotiated, tls })
    }

    /// Sends one request and waits for its reply, skipping pings and notifications.
    pub async fn call(&mut self, xid_value: i32, op: &Op<'_>) -> Result<ReplyHead, ClientError> {
        Ok(self.call_raw(xid_value, op).await?.0)
    }

    /// Sends one request and returns its reply's header and body (what follows the header),
    /// skipping pings and notifications.
    pub async fn call_raw(&mut self, xid_value: i32, op: &Op<'_>) -> Result<(ReplyHead, Vec<u8>), ClientError> {
        let mut out = Vec::with_capacity(128);
        encode_request(&mut out, xid_value, op);
        self.writer.send(&out).await?;
        loop {
            let frame = self.reader.next_frame().await?;
            let head = ReplyHead::parse(frame)?;
            if !head.is_notification() && !head.is_ping() {
                return Ok((head, frame.get(16..).unwrap_or_default().to_vec()));
            }
        }
    }

    /// Sends a ping and waits up to `limit` for its reply (notifications are skipped).
    pub async fn ping(&mut self, limit: Duration) -> Result<(), ClientError> {
        let mut out = Vec::with_capacity(16);
        encode_request(&mut out, 0, &Op::Ping);
        self.writer.send(&out).await?;
        tokio::time::timeout(limit, async {
            loop {
                if ReplyHead::parse(self.reader.next_frame().await?)?.is_ping() {
                    return Ok(());
                }
            }
        })
        .await
        .map_err(|_| ClientError::Timeout(limit))?
    }

    /// Sends every op pipelined (at most `window` outstanding) and returns the error code
    /// of each reply in order. Used for setup, where speed matters but latency does not.
    pub async fn pipeline<'a>(
        &mut self,
        ops: impl IntoIterator<Item = Op<'a>>,
        window: usize,
    ) -> Result<Vec<i32>, ClientError> {
        let mut ops = ops.into_iter().peekable();
        let mut codes = Vec::new();
        let (mut sent, mut out) = (0i32, Vec::with_capacity(64 * 1024));
        loop {
            while (sent as usize) - codes.len() < window.max(1) {
                let Some(op) = ops.next() else { break };
                sent += 1;
                encode_request(&mut out, sent, &op);
            }
            if !out.is_empty() {
                self.writer.send(&out).await?;
                out.clear();
            }
            if codes.len() == sent as usize {
                return Ok(codes);
            }
            let head = ReplyHead::parse(self.reader.next_frame().await?)?;
            if head.is_notification() || head.is_ping() {
                continue;
            }
            let want = codes.len() as i32 + 1;
            if head.xid != want {
                return Err(ClientError::OutOfOrder { got: head.xid, want });
            }
            codes.push(head.err);
        }
    }

    /// Best-effort closeSession, so finished sessions do not linger until they expire and
    /// skew the next workload.
    pub async fn close(mut self) {
        let mut out = Vec::with_capacity(16);
        encode_request(&mut out, i32::MAX, &Op::CloseSession);
        if self.writer.send(&out).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), self.reader.next_frame()).await;
        }
        // TLS: a close_notify, so the server sees an orderly end rather than a truncation.
        if let WriteHalf::Tls(w) = &mut self.writer {
            let _ = tokio::time::timeout(Duration::from_secs(1), w.shutdown()).await;
        }
    }
}

/// The `(type, path)` of a watch notification payload.
pub fn parse_event(payload: &[u8]) -> Result<(i32, String), DecodeError> {
    let mut r = Reader::new(payload);
    let _head = ReplyHead::parse(r.take(16)?)?;
    let kind = r.read_i32()?;
    let _state = r.read_i32()?;
    let path = r.read_ustring()?.unwrap_or_default();
    Ok((kind, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_request_is_the_45_byte_record_servers_expect() {
        let mut out = Vec::new();
        encode_connect(&mut out, 30_000);
        assert_eq!(&out[..4], &45i32.to_be_bytes());
        let req = roost::proto::ConnectRequest::decode(&out[4..]).unwrap();
        assert_eq!(req.timeout_ms, 30_000);
        assert_eq!(req.session_id, 0);
        assert_eq!(req.password, vec![0u8; 16]);
        assert_eq!(req.read_only, Some(false));
    }

    #[test]
    fn requests_decode_with_the_servers_codec() {
        use roost::proto::{decode_request, Request, RequestHeader};
        let data = [7u8; 10];
        let cases = [
            Op::GetData { path: "/a", watch: true },
            Op::SetData { path: "/a", data: &data },
            Op::Create { path: "/a/b", data: &data },
            Op::Delete { path: "/a/b" },
            Op::Exists { path: "/a", watch: false },
        ];
        for (i, op) in cases.iter().enumerate() {
            let mut out = Vec::new();
            encode_request(&mut out, i as i32 + 1, op);
            let (head, body) = RequestHeader::parse(&out[4..]).unwrap();
            assert_eq!(head.xid, i as i32 + 1);
            let req = decode_request(head.op, body).unwrap();
            match (op, req) {
                (Op::GetData { .. }, Request::GetData { path, watch }) => assert!(path == "/a" && watch),
                (Op::SetData { .. }, Request::SetData { data: d, version, .. }) => {
                    assert_eq!((d.as_deref(), version), (Some(&data[..]), -1))
                }
                (Op::Create { .. }, Request::Create { path, acl, .. }) => {
                    assert_eq!(path, "/a/b");
                    assert_eq!(acl, roost::proto::types::Acl::open_unsafe());
                }
                (Op::Delete { .. }, Request::Delete { version, .. }) => assert_eq!(version, -1),
                (Op::Exists { .. }, Request::Exists { watch, .. }) => assert!(!watch),
                (op, req) => panic!("{op:?} decoded as {req:?}"),
            }
        }
    }

    #[test]
    fn ping_always_uses_the_ping_xid() {
        let mut out = Vec::new();
        encode_request(&mut out, 42, &Op::Ping);
        let (head, _) = roost::proto::RequestHeader::parse(&out[4..]).unwrap();
        assert_eq!((head.xid, head.op), (xid::PING, OpCode::Ping as i32));
    }

    /// A TLS server built from the same fixtures `bench/compare --tls` uses (v1 certificates, JKS
    /// stores): the bench's TLS transport completes the TLS and ZooKeeper handshakes with it.
    #[tokio::test]
    async fn tls_transport_completes_the_zookeeper_handshake() {
        use roost_tls::{StoreSpec, TlsSettings};
        let fx = |n: &str| format!("{}/../crates/tls/tests/fixtures/{n}", env!("CARGO_MANIFEST_DIR"));
        let jks = |n: &str| StoreSpec::new(fx(n), Some("apassword"));
        let server =
            roost_tls::server_config(&TlsSettings::new(jks("keystore.jks"), Some(jks("truststore.jks")))).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let srv = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = tokio_rustls::TlsAcceptor::from(server).accept(tcp).await.unwrap();
            let mut len = [0u8; 4];
            tls.read_exact(&mut len).await.unwrap();
            let mut req = vec![0u8; i32::from_be_bytes(len) as usize];
            tls.read_exact(&mut req).await.unwrap();
            let mut out = Vec::new();
            write_frame(&mut out, |w| {
                w.write_i32(0);
                w.write_i32(4000);
                w.write_i64(42);
                w.write_buffer(Some(&[0u8; 16]));
            });
            tls.write_all(&out).await.unwrap();
            tls.flush().await.unwrap();
            req
        });
        let pem = |n: &str| StoreSpec::new(fx(n), None);
        let client = roost_tls::client_config(&TlsSettings::new(pem("client-keystore.pem"), Some(pem("ca.pem"))), None);
        let conn =
            Conn::connect(addr, &Transport::tls(client.unwrap()), 30_000, Duration::from_secs(10)).await.unwrap();
        assert_eq!((conn.session_id, conn.timeout_ms), (42, 4000));
        assert!(conn.tls.as_deref().is_some_and(|t| t.starts_with("TLSv1_")), "{:?}", conn.tls);
        let req = srv.await.unwrap();
        assert_eq!(roost::proto::ConnectRequest::decode(&req).unwrap().timeout_ms, 30_000);
    }

    #[test]
    fn notification_payload_parses() {
        let mut out = Vec::new();
        roost::proto::write_frame(&mut out, |w| {
            w.write_i32(-1);
            w.write_i64(-1);
            w.write_i32(0);
            w.write_i32(3);
            w.write_i32(3);
            w.write_str("/bench/watch");
        });
        let head = ReplyHead::parse(&out[4..]).unwrap();
        assert!(head.is_notification());
        assert_eq!(parse_event(&out[4..]).unwrap(), (3, "/bench/watch".to_string()));
    }
}
