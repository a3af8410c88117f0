//! One listening socket per worker on the same address (`[runtime] scheduler = "per_core"`).
//!
//! On Linux each socket is bound with `SO_REUSEPORT`, so the kernel spreads new
//! connections over the workers' accept queues by a hash of the 4-tuple and a connection
//! is accepted, served and proxied on one thread. Linux lets only sockets of the same
//! effective user join a port group, so another user's process cannot take a share.
//! Elsewhere the workers share one socket (each accept loop polls a clone of it).

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// The accept backlog of each socket (what tokio's `TcpListener::bind` uses).
const BACKLOG: i32 = 1024;

/// Bind `count` (at least one) non-blocking listeners to `addr`. The first gets the
/// configured address (port 0 included); the others join the port it was given.
pub fn bind(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    let first = bind_one(addr)?;
    let port = first.local_addr()?.port();
    let mut out = Vec::with_capacity(count.max(1));
    out.push(first);
    for _ in 1..count {
        let next = if cfg!(target_os = "linux") {
            bind_one(SocketAddr::new(addr.ip(), port))?
        } else {
            out[0].try_clone()?
        };
        out.push(next);
    }
    Ok(out)
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As tokio's bind: a restart can reuse the port while old connections sit in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    #[cfg(target_os = "linux")]
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_listeners_share_the_first_ones_port() {
        let ls = bind(SocketAddr::from(([127, 0, 0, 1], 0)), 3).unwrap();
        assert_eq!(ls.len(), 3);
        let port = ls[0].local_addr().unwrap().port();
        assert_ne!(port, 0);
        for l in &ls {
            assert_eq!(l.local_addr().unwrap().port(), port);
        }
        // Zero or one asked: one listener.
        assert_eq!(
            bind(SocketAddr::from(([127, 0, 0, 1], 0)), 0)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_port_held_without_reuseport_is_refused() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let err = bind(addr, 2).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
