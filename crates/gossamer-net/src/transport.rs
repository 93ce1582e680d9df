//! Binding the protocol sockets: a UDP socket for datagrams and a TCP
//! listener on the same port for push-pull, both through socket2 so that
//! address reuse and buffer sizes are set before binding.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};

use crate::error::StartError;

/// How many times an ephemeral port is retried when the UDP port it got is
/// taken on TCP.
const EPHEMERAL_ATTEMPTS: usize = 16;

/// Socket options of the protocol sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    /// SO_RCVBUF of the UDP socket (bytes; the kernel may clamp it).
    pub recv_buffer: usize,
    /// SO_SNDBUF of the UDP socket.
    pub send_buffer: usize,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self { recv_buffer: 2 << 20, send_buffer: 2 << 20 }
    }
}

/// Binds the UDP socket and the TCP listener on `addr`. Port 0 picks one
/// free port for both.
pub fn bind_pair(addr: SocketAddr, opts: SocketOptions) -> Result<(UdpSocket, TcpListener), StartError> {
    let attempts = if addr.port() == 0 { EPHEMERAL_ATTEMPTS } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = bind_udp(addr, opts).map_err(|source| StartError::Bind { what: "udp", addr, source })?;
        let port = udp.local_addr().map_err(|source| StartError::Bind { what: "udp", addr, source })?.port();
        let tcp_addr = with_port(addr, port);
        match bind_tcp(tcp_addr) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(source) => last = Some(StartError::Bind { what: "tcp", addr: tcp_addr, source }),
        }
    }
    Err(last.expect("at least one attempt"))
}

/// `addr` with another port. Unlike `SocketAddr::new(addr.ip(), port)` it
/// keeps an IPv6 address's scope id (and flow info): a link-local address
/// (`fe80::1%eth0`) cannot be bound or reached without its scope.
pub fn with_port(mut addr: SocketAddr, port: u16) -> SocketAddr {
    addr.set_port(port);
    addr
}

fn new_socket(addr: SocketAddr, ty: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
    if addr.is_ipv6() {
        // Keep the IPv6 socket to IPv6 so a node can bind both families.
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A non-blocking UDP socket with SO_REUSEADDR and the given buffer sizes.
pub fn bind_udp(addr: SocketAddr, opts: SocketOptions) -> io::Result<UdpSocket> {
    let socket = new_socket(addr, Type::DGRAM, Protocol::UDP)?;
    // Buffer sizes are advice: the kernel clamps them to its limits, which
    // is not worth failing over.
    if let Err(e) = socket.set_recv_buffer_size(opts.recv_buffer) {
        tracing::debug!(error = %e, "cannot set SO_RCVBUF");
    }
    if let Err(e) = socket.set_send_buffer_size(opts.send_buffer) {
        tracing::debug!(error = %e, "cannot set SO_SNDBUF");
    }
    socket.bind(&SockAddr::from(addr))?;
    UdpSocket::from_std(socket.into())
}

/// Connections the kernel queues for a listener before it accepts them
/// (it clamps this to `net.core.somaxconn`, 4,096 on current Linux), as
/// Go's listeners ask, memberlist's included.
///
/// Why this many: a node accepts no more while its inbound slots and the
/// connections held for one are all taken (see `stream`), and a burst of
/// joins then queues here. Past the backlog the kernel drops the
/// handshake's last segment, and the joiner's TCP retransmits it with
/// backoff (1 s, 2 s, 4 s...) while its join looks merely slow: with 128,
/// 2,000 nodes joining one seed on one core left hundreds of them stalled
/// for seconds with the seed idle.
const LISTEN_BACKLOG: i32 = 4096;

/// A non-blocking TCP listener with SO_REUSEADDR (a restarted node gets its
/// port back despite connections in TIME_WAIT).
pub fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = new_socket(addr, Type::STREAM, Protocol::TCP)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A burst of joins queues in the kernel while the node accepts no
    /// more: with the old backlog of 128, the connections past it stalled
    /// in TCP's handshake retransmissions (1 s, 2 s, 4 s...), and this
    /// test timed out on them.
    #[tokio::test]
    async fn a_burst_of_connections_queues_without_being_accepted() {
        const BURST: usize = 400;
        let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if somaxconn < BURST {
            gossamer_testkit::skip::skip(
                "a_burst_of_connections_queues_without_being_accepted",
                &format!("net.core.somaxconn is {somaxconn}: the kernel caps any backlog below the burst"),
            );
            return;
        }
        let listener = bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut connects = tokio::task::JoinSet::new();
        for _ in 0..BURST {
            connects.spawn(tokio::net::TcpStream::connect(addr));
        }
        // Generous against a loaded machine, and well under the 1 s of a
        // handshake retransmission.
        let mut streams = Vec::with_capacity(BURST);
        let all = async {
            while let Some(connected) = connects.join_next().await {
                streams.push(connected.unwrap().expect("every connection is queued"));
            }
        };
        tokio::time::timeout(Duration::from_millis(900), all)
            .await
            .expect("every connection completes its handshake while none is accepted");
        for _ in 0..BURST {
            tokio::time::timeout(Duration::from_secs(5), listener.accept())
                .await
                .expect("each queued connection is there to accept")
                .unwrap();
        }
    }

    #[tokio::test]
    async fn ephemeral_pair_shares_one_port() {
        let (udp, tcp) = bind_pair("127.0.0.1:0".parse().unwrap(), SocketOptions::default()).unwrap();
        let port = udp.local_addr().unwrap().port();
        assert_ne!(port, 0);
        assert_eq!(tcp.local_addr().unwrap().port(), port);
    }

    #[tokio::test]
    async fn ipv6_pair_binds_on_loopback() {
        // Some CI sandboxes have no IPv6 at all; that is not this code's fault.
        match bind_pair("[::1]:0".parse().unwrap(), SocketOptions::default()) {
            Ok((udp, _tcp)) => assert!(udp.local_addr().unwrap().is_ipv6()),
            Err(e) => eprintln!("skipping: no IPv6 loopback here ({e})"),
        }
    }

    #[test]
    fn with_port_keeps_the_ipv6_scope() {
        let link_local = SocketAddr::V6(std::net::SocketAddrV6::new("fe80::1".parse().unwrap(), 0, 0, 3));
        match with_port(link_local, 7946) {
            SocketAddr::V6(a) => assert_eq!((a.port(), a.scope_id()), (7946, 3)),
            other => panic!("{other}"),
        }
        assert_eq!(with_port("127.0.0.1:0".parse().unwrap(), 9), "127.0.0.1:9".parse().unwrap());
    }

    #[tokio::test]
    async fn taken_port_is_a_bind_error() {
        let (udp, _tcp) = bind_pair("127.0.0.1:0".parse().unwrap(), SocketOptions::default()).unwrap();
        let taken = udp.local_addr().unwrap();
        // SO_REUSEADDR lets UDP share; the TCP listener is what refuses.
        let err = bind_pair(taken, SocketOptions::default()).unwrap_err();
        assert!(matches!(err, StartError::Bind { what: "tcp", .. }), "{err}");
    }
}
