//! Errors of the runtime: why a node did not start, why a stream exchange
//! failed, and the one error every handle method can return.

use std::io;
use std::net::SocketAddr;

use gossamer_wire::DecodeError;

/// Why [`crate::Node::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The protocol settings were refused by the core.
    #[error(transparent)]
    Protocol(#[from] gossamer_core::ConfigError),
    /// A codec setting (label, secret, frame cap) was refused.
    #[error("codec: {0}")]
    Codec(#[from] gossamer_wire::ConfigError),
    /// A runtime setting was refused; names the field.
    #[error("invalid config `{field}`: {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A socket could not be bound.
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        /// Which socket.
        what: &'static str,
        /// The address tried.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The multicast socket could not be set up.
    #[error("multicast: {0}")]
    Multicast(io::Error),
    /// The OS random source failed.
    #[error("cannot seed the random generator from the OS: {0}")]
    Entropy(String),
    /// The stream's TLS settings were refused (unreadable file, bad PEM,
    /// key not matching the certificate, unusable CA).
    #[error("tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// A live member of the cluster already holds this node's name at
    /// another address (memberlist's name conflict): the established
    /// member keeps it, this node did not start. Pick another name, or stop
    /// the other node (or wait until the cluster has declared a crashed
    /// previous run of this node dead) and start again.
    #[error(
        "name `{}` is taken: a live member holds it at {} (this node advertised {}); \
         pick another name or stop that member",
        .0.name, .0.claimed, .0.existing
    )]
    NameConflict(Box<gossamer_core::NameConflict>),
}

/// Why a push-pull stream exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Connect, read or write failed.
    #[error("stream i/o: {0}")]
    Io(#[from] io::Error),
    /// The exchange did not finish in time.
    #[error("stream timed out")]
    Timeout,
    /// The frame header was refused (foreign, wrong version, over the cap).
    #[error("frame refused: {0}")]
    Refused(#[from] DecodeError),
    /// The peer closed before sending a whole frame.
    #[error("peer closed the stream early")]
    Closed,
    /// The TLS handshake failed: the peer's certificate does not chain to
    /// the cluster's CA, it sent none, or it does not speak TLS at all.
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
    /// An inbound stream did not deliver its first bytes and whole header
    /// (and get its share of the byte budget) within the header deadline.
    #[error("no whole frame header in time")]
    HeaderTimeout,
    /// An inbound stream was cut off to make room for a newcomer (see
    /// [`crate::stream`]).
    #[error("evicted to make room for another stream")]
    Evicted,
    /// No room for an inbound frame body in the byte budget shared by all
    /// inbound streams, within the header deadline.
    #[error("no room for a body of {wanted} bytes in the stream byte budget of {budget}")]
    Budget {
        /// Bytes the body needs.
        wanted: usize,
        /// The budget.
        budget: usize,
    },
}

/// The node is no longer running (it was shut down, left, or its task ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the node is not running")]
pub struct NodeStopped;

/// Why [`crate::Node::broadcast`], [`crate::Node::query`] or
/// [`crate::Node::respond`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The node is no longer running.
    #[error(transparent)]
    Stopped(#[from] NodeStopped),
    /// The core refused the item: invalid key or name, too large for its
    /// share of a packet, a bad timeout, an unknown or expired query, or
    /// this node is leaving.
    #[error("refused: {0}")]
    Refused(#[from] gossamer_core::UserError),
}
