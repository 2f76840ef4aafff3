//! A fault-injecting TCP proxy for one direction of one peer link: it listens on a
//! local port and forwards every connection to a target address. `cut` drops the
//! connections it carries and refuses new ones (accepted and closed at once) until
//! `heal`. Used between ensemble members to partition the network.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

struct State {
    cut: AtomicBool,
    stop: AtomicBool,
    target: Mutex<Option<SocketAddr>>,
    /// Both sockets of every live forwarded connection.
    conns: Mutex<Vec<(TcpStream, TcpStream)>>,
}

impl State {
    fn drop_all(&self) {
        for (a, b) in self.conns.lock().unwrap().drain(..) {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
    }
}

pub struct Proxy {
    pub port: u16,
    state: Arc<State>,
}

impl Proxy {
    /// Listens on 127.0.0.1:<free port>; connections are refused until [`Proxy::forward_to`].
    /// (Binding before the members' ports are picked keeps those picks off the proxy ports.)
    pub fn bind() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(State {
            cut: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            target: Mutex::new(None),
            conns: Mutex::new(Vec::new()),
        });
        let st = state.clone();
        thread::spawn(move || accept_loop(listener, st));
        Proxy { port, state }
    }

    /// Forwards to `target` from now on.
    pub fn forward_to(&self, target: SocketAddr) {
        *self.state.target.lock().unwrap() = Some(target);
    }

    /// Drops the forwarded connections and refuses new ones.
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        self.state.drop_all();
    }

    /// Forwards new connections again.
    pub fn heal(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }

    pub fn is_cut(&self) -> bool {
        self.state.cut.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.state.drop_all();
    }
}

fn accept_loop(listener: TcpListener, state: Arc<State>) {
    while !state.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let target = *state.target.lock().unwrap();
                let Some(target) = target.filter(|_| !state.cut.load(Ordering::SeqCst)) else {
                    drop(client);
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_millis(500)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) =
                    (client.try_clone(), server.try_clone(), client.try_clone(), server.try_clone())
                else {
                    continue;
                };
                {
                    let mut conns = state.conns.lock().unwrap();
                    // Re-check under the lock so a concurrent `cut` cannot miss this one.
                    if state.cut.load(Ordering::SeqCst) {
                        continue;
                    }
                    conns.push((c3, s3));
                }
                thread::spawn(move || pump(client, server));
                thread::spawn(move || pump(s2, c2));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(10)),
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Copies `from` to `to` until either side fails, then closes both.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
