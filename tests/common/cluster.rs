//! A multi-process ensemble on loopback: one `roost --config zoo.cfg` process per
//! member, each with its own data directory, `myid` and ports, started highest id first
//! (as kazoo's harness does).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::collections::HashMap;

use super::proxy::Proxy;
use super::{free_port, wait_for_port};

/// One member process.
pub struct Member {
    pub id: u64,
    pub client_port: u16,
    /// Its HTTP port (`admin.serverPort`: REST API, navigator, AdminServer commands).
    pub http_port: u16,
    pub dir: PathBuf,
    /// Its line in a dynamic configuration, with the client address (for reconfig).
    pub server_line: String,
    child: Option<Child>,
    stopped: bool,
}

impl Member {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client_port))
    }

    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http_port))
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

/// How to set up an ensemble.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The last `observers` members are observers.
    pub observers: usize,
    /// `readonlymode.enabled=true` on every member.
    pub read_only: bool,
    /// Every member reaches every peer through its own [`Proxy`] (one per direction of
    /// each link), so a test can cut links. Each member's zoo.cfg names its own real
    /// quorum port and the proxies' ports for its peers.
    pub proxied: bool,
    /// Only the first `running` members form the ensemble (their zoo.cfg lists only them)
    /// and are started; the others get a zoo.cfg listing all members, as a server about to
    /// join by reconfig has. `None`: all of them.
    pub running: Option<usize>,
    /// Extra lines for every zoo.cfg.
    pub extra: &'static str,
    /// Write every member's configuration and data directory but start none of them (the
    /// test prepares the data directories, then calls [`Cluster::restart`] for each).
    pub deferred: bool,
}

/// The ensemble.
pub struct Cluster {
    pub members: Vec<Member>,
    /// `(from, to)` member indexes -> the proxy `from` dials to reach `to`.
    pub links: HashMap<(usize, usize), Proxy>,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    /// Writes the configuration of an `n`-member ensemble and starts every member.
    pub fn start(n: usize) -> Cluster {
        Self::start_with(n, 0)
    }

    /// Like [`Cluster::start`], with the last `observers` members configured as observers.
    pub fn start_with(n: usize, observers: usize) -> Cluster {
        Self::start_opts(n, Options { observers, ..Options::default() })
    }

    /// `n` members of which the first `running` form the ensemble (see [`Options::running`]);
    /// `extra` lines go into every zoo.cfg.
    pub fn start_partial(n: usize, running: usize, extra: &'static str) -> Cluster {
        Self::start_opts(n, Options { running: Some(running), extra, ..Options::default() })
    }

    /// Starts an `n`-member ensemble set up as `opts` says.
    pub fn start_opts(n: usize, opts: Options) -> Cluster {
        let observers = opts.observers;
        let running = opts.running.unwrap_or(n);
        let extra = opts.extra;
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut links = HashMap::new();
        if opts.proxied {
            for from in 0..n {
                for to in (0..n).filter(|&to| to != from) {
                    links.insert((from, to), Proxy::bind());
                }
            }
        }
        let ports: Vec<(u16, u16, u16)> = (0..n).map(|_| (free_port(), free_port(), free_port())).collect();
        for ((_, to), proxy) in &links {
            proxy.forward_to(SocketAddr::from(([127, 0, 0, 1], ports[*to].1)));
        }
        // The server lines as member `me` sees them.
        let servers = |me: usize| -> Vec<String> {
            ports
                .iter()
                .enumerate()
                .map(|(i, (_, q, e))| {
                    let role = if i >= n - observers { ":observer" } else { "" };
                    let q = links.get(&(me, i)).map_or(*q, |p: &Proxy| p.port);
                    format!("server.{}=127.0.0.1:{q}:{e}{role}", i + 1)
                })
                .collect()
        };
        let mut members = Vec::new();
        for (i, (client_port, q, e)) in ports.iter().enumerate() {
            let id = i as u64 + 1;
            let http_port = free_port();
            let dir = tmp.path().join(format!("n{id}"));
            std::fs::create_dir_all(dir.join("data")).unwrap();
            std::fs::write(dir.join("data").join("myid"), format!("{id}\n")).unwrap();
            let peer_type = if i >= n - observers { "observer" } else { "participant" };
            let all = servers(i);
            let listed = if i < running { &all[..running] } else { &all[..] };
            let cfg = format!(
                "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client_port}\n\
                 admin.serverPort={}\n4lw.commands.whitelist=*\npeerType={peer_type}\nreadonlymode.enabled={}\n{}\n{extra}\n",
                dir.join("data").display(),
                http_port,
                opts.read_only,
                listed.join("\n")
            );
            std::fs::write(dir.join("zoo.cfg"), cfg).unwrap();
            let server_line = format!("server.{id}=127.0.0.1:{q}:{e}:{peer_type};127.0.0.1:{client_port}");
            members.push(Member {
                id,
                client_port: *client_port,
                http_port,
                dir,
                server_line,
                child: None,
                stopped: false,
            });
        }
        let mut cluster = Cluster { members, links, _tmp: tmp };
        if opts.deferred {
            return cluster;
        }
        for i in (0..running).rev() {
            cluster.spawn(i);
        }
        for m in &cluster.members[..running] {
            wait_for_port(m.addr(), Duration::from_secs(30));
        }
        cluster
    }

    /// (Re)starts member `i` on its configuration and data.
    pub fn spawn(&mut self, i: usize) {
        let m = &mut self.members[i];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(m.dir.join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_roost"))
            .arg("--config")
            .arg(m.dir.join("zoo.cfg"))
            .env("ROOST_LOG", "info,roost::server::client=debug,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn roost");
        m.child = Some(child);
        m.stopped = false;
    }

    /// Starts member `i` and waits for its client port.
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
        wait_for_port(self.members[i].addr(), Duration::from_secs(30));
    }

    pub fn kill9(&mut self, i: usize) {
        let m = &mut self.members[i];
        if m.stopped {
            self.signal(i, "CONT");
        }
        let m = &mut self.members[i];
        if let Some(mut c) = m.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the process to exit (SIGKILL after `timeout`); returns
    /// whether it exited on its own.
    pub fn terminate(&mut self, i: usize, timeout: Duration) -> bool {
        if self.members[i].stopped {
            self.signal(i, "CONT");
        }
        self.signal(i, "TERM");
        let m = &mut self.members[i];
        m.stopped = false;
        let Some(mut c) = m.child.take() else { return true };
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(_)) = c.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    fn signal(&mut self, i: usize, sig: &str) {
        if let Some(pid) = self.members[i].pid() {
            let ok = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().unwrap();
            assert!(ok.success(), "kill -{sig} {pid}");
        }
    }

    /// SIGSTOP: the process freezes with its sockets open.
    pub fn stop(&mut self, i: usize) {
        self.signal(i, "STOP");
        self.members[i].stopped = true;
    }

    pub fn resume(&mut self, i: usize) {
        self.signal(i, "CONT");
        self.members[i].stopped = false;
    }

    /// All members' client addresses, for a client that may move between them.
    pub fn connect_string(&self) -> String {
        self.members.iter().map(|m| m.connect_string()).collect::<Vec<_>>().join(",")
    }

    /// `Mode:` from `srvr` (empty if the member does not answer).
    pub fn mode(&self, i: usize) -> String {
        if !self.members[i].is_running() || self.members[i].stopped {
            return String::new();
        }
        let srvr = four_letter_word_timeout(self.members[i].addr(), "srvr");
        srvr.lines().find_map(|l| l.strip_prefix("Mode: ")).unwrap_or("").trim().to_string()
    }

    /// The member that reports `Mode: leader`, waiting up to `timeout` for exactly one.
    pub fn wait_leader(&self, timeout: Duration) -> usize {
        let start = Instant::now();
        loop {
            let leaders: Vec<usize> = (0..self.members.len()).filter(|&i| self.mode(i) == "leader").collect();
            if leaders.len() == 1 {
                return leaders[0];
            }
            assert!(start.elapsed() < timeout, "no single leader within {timeout:?}: {leaders:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `hash` 4lw (tree digest and last zxid) of member `i`.
    pub fn digest(&self, i: usize) -> String {
        four_letter_word_timeout(self.members[i].addr(), "hash").trim().to_string()
    }

    /// The last applied zxid of member `i` (from `hash`), if it answers.
    pub fn zxid(&self, i: usize) -> Option<u64> {
        let hash = self.digest(i);
        let hex = hash.split("zxid: 0x").nth(1)?.split_whitespace().next()?;
        u64::from_str_radix(hex, 16).ok()
    }

    /// Waits until every running member reports the same digest and zxid; returns it.
    pub fn wait_converged(&self, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let digests: Vec<String> = (0..self.members.len())
                .filter(|&i| self.members[i].is_running() && !self.members[i].stopped)
                .map(|i| self.digest(i))
                .collect();
            if !digests.is_empty() && digests.iter().all(|d| d == &digests[0] && d.starts_with("digest:")) {
                return digests[0].clone();
            }
            assert!(start.elapsed() < timeout, "members did not converge: {digests:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Cuts every link to and from member `i` (its client port stays reachable).
    pub fn isolate(&self, i: usize) {
        for ((from, to), proxy) in &self.links {
            if *from == i || *to == i {
                proxy.cut();
            }
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        for proxy in self.links.values() {
            proxy.heal();
        }
    }

    /// The `isro` answer of member `i` (empty if it does not answer).
    pub fn isro(&self, i: usize) -> String {
        four_letter_word_timeout(self.members[i].addr(), "isro")
    }

    pub fn logs(&self) -> String {
        self.members.iter().map(|m| format!("=== member {} ===\n{}", m.id, m.log())).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill9(i);
        }
        // A failing test shows what the members were doing: the tail of each log, and
        // the whole directory kept when ROOST_KEEP_FAILED names a place for it.
        if std::thread::panicking() {
            for m in &self.members {
                super::print_log_tail(&format!("member {}", m.id), &m.log());
            }
            if let Some(keep) = std::env::var_os("ROOST_KEEP_FAILED") {
                let dest = PathBuf::from(keep).join(format!("cluster-{}", std::process::id()));
                let ok =
                    Command::new("cp").arg("-a").arg(self._tmp.path()).arg(&dest).status().is_ok_and(|s| s.success());
                eprintln!("cluster data {} to {}", if ok { "copied" } else { "NOT copied" }, dest.display());
            }
        }
    }
}

/// A 4lw that gives up instead of hanging on a frozen member.
pub fn four_letter_word_timeout(addr: SocketAddr, word: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(word.as_bytes()).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
