//! Test support: run the real `roost` binary as a child process on free ports
//! with its own data directory, and kill it when the test ends.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Ports handed out so far by this test process.
static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// A port that was free a moment ago, never the same one twice in a test process.
///
/// It comes from below Linux's ephemeral range (32768 and up), not from binding port 0:
/// an ephemeral port can be taken by any outgoing connection of any process (clients
/// reconnecting, peers redialing) between this call and the server's bind, or while a
/// killed server is down, and a peer redialing a down member's ephemeral port can even
/// connect to itself. Either made a (re)start fail now and then with EADDRINUSE.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    const LOW: u64 = 21_000;
    const HIGH: u64 = 32_000;
    for _ in 0..10_000 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let port = (LOW + h.finish() % (HIGH - LOW)) as u16;
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if given.contains(&port) {
            continue;
        }
        let free = TcpListener::bind(("0.0.0.0", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free {
            given.push(port);
            return port;
        }
    }
    panic!("no free port in {LOW}..{HIGH}");
}

/// One roost server process.
pub struct Server {
    pub port: u16,
    pub http_port: u16,
    pub data_dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a standalone server in a fresh temporary data directory.
    pub fn start(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().to_path_buf();
        let mut s = Server {
            port: free_port(),
            http_port: free_port(),
            data_dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
            _tmp: Some(tmp),
        };
        s.spawn();
        s
    }

    /// Starts (again) on the same port and data directory.
    pub fn spawn(&mut self) {
        let child = self.command().spawn().expect("spawn roost");
        self.child = Some(child);
        wait_for_port(self.addr(), Duration::from_secs(30));
        // The port answers from the moment it is bound; a server that fails later in its
        // start (another port taken, say) must fail the test here, with its log.
        if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            panic!("roost exited while starting ({status}):\n{}", self.log());
        }
    }

    /// Starts on the same data directory and waits for the process to exit on its own
    /// (a server that refuses to start); returns whether it exited within `timeout`
    /// with a failure status.
    pub fn start_expecting_failure(&mut self, timeout: Duration) -> bool {
        let mut child = self.command().spawn().expect("spawn roost");
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = child.try_wait() {
                return !status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    fn command(&self) -> Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.join("server.log"))
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_roost"));
        cmd.arg("--client-port")
            .arg(self.port.to_string())
            .arg("--http-port")
            .arg(self.http_port.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        cmd
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The server process's resident set size in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let pid = self.pid().expect("server running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line")
    }

    /// SIGKILL: no shutdown code runs, like a power cut for the process.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            print_log_tail("server", &self.log());
        }
    }
}

/// Prints the last lines of a server's log to stderr, to tell why a test failed.
pub fn print_log_tail(name: &str, log: &str) {
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(40)..];
    eprintln!("=== {name} server.log (last {} lines) ===\n{}", tail.len(), tail.join("\n"));
}

/// Waits until something accepts connections on `addr`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server on {addr} did not come up within {timeout:?}");
}

/// Sends a four-letter word and returns the whole reply.
pub fn four_letter_word(addr: SocketAddr, word: &str) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(word.as_bytes()).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// One HTTP/1.1 request (`Connection: close`) with an optional JSON body; returns the
/// status code and the response body.
pub fn http(addr: SocketAddr, method: &str, path: &str, json: Option<&str>) -> (u16, String) {
    http_with_headers(addr, method, path, json, &[])
}

/// [`http`] with extra request headers.
pub fn http_with_headers(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let (status, _, body) = http_exchange(addr, method, path, json, headers);
    (status, body)
}

/// [`http_with_headers`] that also returns the response headers (lower-case names, in order).
pub fn http_exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, String) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect to the HTTP port");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
    let body = json.unwrap_or("");
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).expect("send the HTTP request");
    let mut response = String::new();
    s.read_to_string(&mut response).expect("read the HTTP response");
    let status = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response.as_str(), ""));
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

pub mod cluster;
pub mod proxy;
pub mod raw;

/// Create options for a persistent znode anyone may use.
pub fn open() -> zookeeper_client::CreateOptions<'static> {
    zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all())
}

/// A `zookeeper-client` session of 10 s on `connect` (a ZooKeeper connect string).
pub async fn client(connect: &str) -> zookeeper_client::Client {
    zookeeper_client::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(connect)
        .await
        .expect("connect")
}

/// The body of a ConnectRequest for a new session (no length prefix): protocol 0, last
/// zxid 0, `timeout_ms`, session 0, a zero 16-byte password, and the optional readOnly byte.
pub fn connect_request_body(timeout_ms: i32, read_only: Option<bool>) -> Vec<u8> {
    raw::connect_body(0, timeout_ms, 0, &[0; 16], read_only)
}
