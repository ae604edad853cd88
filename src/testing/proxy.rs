//! A TCP proxy a test controls, to put between Porter and a server it
//! depends on (PostgreSQL, Redis) and play an outage without touching the
//! server itself: [`TcpProxy::cut`] drops every live connection and turns
//! new ones away, as a restart or a network cut would; [`TcpProxy::restore`]
//! lets connections through again.
//!
//! It runs on plain threads, not on the test's runtime, so that it keeps
//! forwarding whatever the test's async code is doing.

use std::{
    io,
    net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    thread,
};

/// A proxy listening on `127.0.0.1` (on a port of its own), forwarding to
/// one target. Stops when dropped.
pub struct TcpProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Between `cut` and `restore`: new connections are closed at once.
    cut: bool,
    /// The proxy is dropped: the accepting thread ends.
    stopped: bool,
    /// Both sockets of every live connection, to shut them at `cut`.
    live: Vec<TcpStream>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A copying thread that panicked leaves nothing half-done here.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TcpProxy {
    /// Starts a proxy to `target` (`"127.0.0.1:5432"`, say).
    pub fn start(target: impl ToSocketAddrs) -> io::Result<Self> {
        let target = target
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no target address"))?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accepting = Arc::clone(&shared);
        thread::Builder::new()
            .name("tcp-proxy".into())
            .spawn(move || accept(&listener, target, &accepting))?;
        Ok(Self { address, shared })
    }

    /// The address to connect to instead of the target.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Drops every live connection and closes new ones as soon as they are
    /// accepted, until [`restore`](Self::restore).
    pub fn cut(&self) {
        let mut state = self.shared.state();
        state.cut = true;
        for socket in state.live.drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.shared.state().cut = false;
    }

    /// `url` (`scheme://user@host:port/path`) with its host and port
    /// replaced by this proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_owned();
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        let user_info = authority
            .rsplit_once('@')
            .map(|(user_info, _)| format!("{user_info}@"))
            .unwrap_or_default();
        format!("{scheme}://{user_info}{}{path}", self.address)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.shared.state().stopped = true;
        // Wakes the accepting thread so that it sees `stopped`.
        let _ = TcpStream::connect(self.address);
    }
}

fn accept(listener: &TcpListener, target: SocketAddr, shared: &Shared) {
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let mut state = shared.state();
        if state.stopped {
            return;
        }
        if state.cut {
            // Dropping the socket closes it: the client sees the server
            // hang up before it said anything.
            continue;
        }
        let Ok(server) = TcpStream::connect(target) else {
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (Ok(client_copy), Ok(server_copy)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        let (Ok(client_kept), Ok(server_kept)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        // Registered before the lock is released, so a `cut` cannot miss it.
        state.live.extend([client_kept, server_kept]);
        drop(state);
        forward(client, server_copy);
        forward(server, client_copy);
    }
}

/// Copies `from` to `to` on a thread of its own, until either side closes.
fn forward(mut from: TcpStream, mut to: TcpStream) {
    let _ = thread::Builder::new()
        .name("tcp-proxy-copy".into())
        .spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || {
                    let mut stream = stream;
                    let mut buffer = [0u8; 64];
                    while let Ok(n @ 1..) = stream.read(&mut buffer) {
                        if stream.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        address
    }

    fn echoes(stream: &mut TcpStream) -> bool {
        stream.write_all(b"ping").is_ok() && {
            let mut answer = [0u8; 4];
            stream.read_exact(&mut answer).is_ok() && &answer == b"ping"
        }
    }

    #[test]
    fn a_cut_drops_live_connections_and_turns_new_ones_away_until_restored() {
        let proxy = TcpProxy::start(echo_server()).expect("proxy");
        let mut before = TcpStream::connect(proxy.address()).expect("connect");
        assert!(echoes(&mut before));

        proxy.cut();
        assert!(!echoes(&mut before), "a live connection is dropped");
        let mut during = TcpStream::connect(proxy.address()).expect("accepted, then closed");
        assert!(!echoes(&mut during), "a new connection is closed");

        proxy.restore();
        let mut after = TcpStream::connect(proxy.address()).expect("connect");
        assert!(echoes(&mut after));
    }

    #[test]
    fn urls_are_pointed_at_the_proxy() {
        let proxy = TcpProxy::start("127.0.0.1:9").expect("proxy");
        let port = proxy.address().port();
        assert_eq!(
            proxy.url_for("postgres://postgres@127.0.0.1:5432/porter_x"),
            format!("postgres://postgres@127.0.0.1:{port}/porter_x")
        );
        assert_eq!(
            proxy.url_for("redis://127.0.0.1:6379"),
            format!("redis://127.0.0.1:{port}")
        );
    }
}
