//! The small blocking HTTP/1.1 client behind `roost backup` and `roost restore`: one
//! request per connection (`Connection: close`), a body sent with `Content-Length`, a
//! response body framed by `Content-Length`, chunked encoding or the end of the
//! connection. Every read and write has a timeout. Plain HTTP only.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long connecting, and each read or write, may take.
const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Headers a response may have.
const MAX_HEADERS: usize = 64;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad server URL {url:?}: {why}")]
    BadUrl { url: String, why: &'static str },
    #[error("cannot reach {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("talking to {addr}: {source}")]
    Io { addr: String, source: io::Error },
    #[error("{addr} sent a malformed HTTP response: {why}")]
    Malformed { addr: String, why: String },
}

/// Where a server's HTTP port is: `http://host:port[/base]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    host: String,
    port: u16,
    /// `""` or `/base` (the port's `http.basePath`).
    base: String,
}

impl Server {
    pub fn parse(url: &str) -> Result<Server, ClientError> {
        let bad = |why| ClientError::BadUrl { url: url.to_owned(), why };
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => return Err(bad("https is not supported by this client; use the plain HTTP port")),
            Some(_) => return Err(bad("only http:// URLs are supported")),
            None => url,
        };
        let (authority, base) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().map_err(|_| bad("the port is not a number"))?),
            None => (authority, 8080),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Server { host: host.to_owned(), port, base: base.to_owned() })
    }

    /// `host:port`, for messages and the `Host` header.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A request body: its length and where its bytes come from.
pub struct Body<'a> {
    pub len: u64,
    pub reader: &'a mut dyn Read,
    /// Called with the bytes sent so far, after each piece.
    pub progress: &'a mut dyn FnMut(u64),
}

/// A response whose body has not been read yet.
pub struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    body: Box<dyn Read>,
    addr: String,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body, framed as the response says.
    pub fn body(&mut self) -> &mut dyn Read {
        &mut self.body
    }

    /// The whole body as text, at most `limit` bytes of it.
    pub fn text(mut self, limit: u64) -> Result<String, ClientError> {
        let mut buf = Vec::new();
        let addr = self.addr.clone();
        (&mut self.body).take(limit).read_to_end(&mut buf).map_err(|source| ClientError::Io { addr, source })?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// Sends one request to `server` (`path` below its base path) and reads the response head.
pub fn send(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Body<'_>>,
) -> Result<Response, ClientError> {
    let addr = server.authority();
    let io_err = |source| ClientError::Io { addr: addr.clone(), source };
    let stream = connect(server)?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io_err)?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io_err)?;
    let mut head = format!("{method} {}{path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n", server.base);
    for (name, value) in headers {
        if name.contains(['\r', '\n']) || value.contains(['\r', '\n']) {
            return Err(ClientError::BadUrl { url: addr.clone(), why: "a header holds a line break" });
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = &body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len));
    }
    head.push_str("\r\n");
    let mut writer = io::BufWriter::with_capacity(256 * 1024, &stream);
    writer.write_all(head.as_bytes()).map_err(io_err)?;
    if let Some(body) = body {
        send_body(&mut writer, body).map_err(io_err)?;
    }
    writer.flush().map_err(io_err)?;
    drop(writer);
    read_response(stream, addr)
}

fn connect(server: &Server) -> Result<TcpStream, ClientError> {
    let addr = server.authority();
    let connect_err = |source| ClientError::Connect { addr: addr.clone(), source };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name resolves to no address");
    for sock in (server.host.as_str(), server.port).to_socket_addrs().map_err(connect_err)? {
        match TcpStream::connect_timeout(&sock, IO_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(connect_err(last))
}

fn send_body(out: &mut impl Write, body: Body<'_>) -> io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut sent = 0u64;
    while sent < body.len {
        let want = buf.len().min((body.len - sent) as usize);
        let n = body.reader.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the body ended before its announced length"));
        }
        out.write_all(&buf[..n])?;
        sent += n as u64;
        (body.progress)(sent);
    }
    Ok(())
}

fn read_response(stream: TcpStream, addr: String) -> Result<Response, ClientError> {
    let malformed = |why: String| ClientError::Malformed { addr: addr.clone(), why };
    let mut reader = BufReader::with_capacity(256 * 1024, stream);
    let mut head = Vec::new();
    // Read up to the blank line that ends the head.
    while !head.ends_with(b"\r\n\r\n") {
        let n = reader
            .by_ref()
            .take(1)
            .read_to_end(&mut head)
            .map_err(|source| ClientError::Io { addr: addr.clone(), source })?;
        if n == 0 {
            return Err(malformed("the connection closed before the response head ended".into()));
        }
        if head.len() > MAX_HEAD {
            return Err(malformed(format!("the response head is longer than {MAX_HEAD} bytes")));
        }
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut slots);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(malformed("incomplete response head".into())),
        Err(e) => return Err(malformed(e.to_string())),
    }
    let status = parsed.code.ok_or_else(|| malformed("no status code".into()))?;
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).trim().to_owned()))
        .collect();
    let find = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let body: Box<dyn Read> = if find("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        Box::new(Chunked { inner: reader, left: 0, done: false })
    } else if let Some(len) = find("content-length") {
        let len: u64 = len.parse().map_err(|_| malformed(format!("bad Content-Length {len:?}")))?;
        Box::new(Exact { inner: reader.take(len), left: len })
    } else {
        Box::new(reader)
    };
    Ok(Response { status, headers, body, addr })
}

/// A `Content-Length` body: ending early is an error, not a short file.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the connection closed before the body ended"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A chunked body (`Transfer-Encoding: chunked`), trailers skipped.
struct Chunked<R> {
    inner: R,
    /// Bytes left in the current chunk.
    left: u64,
    done: bool,
}

impl<R: BufRead> Chunked<R> {
    fn line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        (&mut self.inner).take(1024).read_until(b'\n', &mut line)?;
        if !line.ends_with(b"\n") {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bad chunk framing"));
        }
        Ok(String::from_utf8_lossy(&line).trim().to_owned())
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let size_line = self.line()?;
            let size = size_line.split(';').next().unwrap_or("").trim();
            self.left = u64::from_str_radix(size, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad chunk size {size:?}")))?;
            if self.left == 0 {
                while !self.line()?.is_empty() {}
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the connection closed inside a chunk"));
        }
        self.left -= n as u64;
        if self.left == 0 && !self.line()?.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "a chunk does not end with CRLF"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let s = Server::parse("http://10.0.0.1:8081/zk/").unwrap();
        assert_eq!((s.host.as_str(), s.port, s.base.as_str()), ("10.0.0.1", 8081, "/zk"));
        let s = Server::parse("localhost").unwrap();
        assert_eq!((s.host.as_str(), s.port, s.base.as_str()), ("localhost", 8080, ""));
        assert_eq!(Server::parse("http://[::1]:9").unwrap().authority(), "[::1]:9");
        assert!(Server::parse("https://h:1").is_err());
        assert!(Server::parse("http://h:x").is_err());
        assert!(Server::parse("ftp://h").is_err());
    }

    #[test]
    fn chunked_bodies_decode_and_bad_framing_fails() {
        let wire = b"4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\nTrailer: 1\r\n\r\n";
        let mut body = Chunked { inner: &wire[..], left: 0, done: false };
        let mut out = String::new();
        body.read_to_string(&mut out).unwrap();
        assert_eq!(out, "abcdefg");
        let mut bad = Chunked { inner: &b"zz\r\n"[..], left: 0, done: false };
        assert!(bad.read_to_string(&mut String::new()).is_err());
        let mut short = Exact { inner: &b"abc"[..], left: 5 };
        assert!(short.read_to_end(&mut Vec::new()).is_err());
    }
}
