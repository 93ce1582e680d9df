//! Everything needed to start a node: who it is, where it listens, which
//! cluster it belongs to, the protocol timings and the runtime's limits.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gossamer_core::{Config, IdentityDirectory};
use gossamer_wire::{Metadata, NodeName, SecretKey};

use crate::error::StartError;
use crate::hooks::Hooks;
use crate::multicast::MulticastConfig;
use crate::tls::TlsConfig;
use crate::transport::SocketOptions;

/// The preset type of the one configuration schema, defined by the core
/// (`lan`, `wan`, `local`); re-exported so `NodeConfig::new` callers need
/// not depend on gossamer-core.
pub use gossamer_core::Preset;

/// How to start a node. Build it with [`NodeConfig::new`] and adjust the
/// public fields.
///
/// ```
/// use gossamer_net::{NodeConfig, Preset};
/// let mut config = NodeConfig::new("web-1@127.0.0.1", "127.0.0.1:0".parse().unwrap(), Preset::Local).unwrap();
/// config.cluster = "prod".into();
/// config.seeds = vec!["127.0.0.1:7946".parse().unwrap()];
/// config.set_secret_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f").unwrap();
/// config.protocol.probe_interval = std::time::Duration::from_millis(300);
/// assert!(config.validate().is_ok());
/// assert!(config.set_secret_hex("not hex").is_err());
/// ```
#[derive(Clone)]
pub struct NodeConfig {
    /// Unique name within the cluster (`name@host` by convention).
    pub name: NodeName,
    /// Address of the UDP socket and the TCP listener (port 0: any free port).
    pub bind: SocketAddr,
    /// Address announced to other members; defaults to the bound address,
    /// and is required when binding an unspecified address (0.0.0.0, ::).
    pub advertise: Option<SocketAddr>,
    /// Cluster label: frames of another cluster are refused.
    pub cluster: String,
    /// Shared cluster secret: frames are sealed with it, and unsealed or
    /// wrongly sealed frames are refused.
    pub secret: Option<SecretKey>,
    /// More cluster keys, accepted on receive from the start (the keyring
    /// of memberlist/Serf). Without `secret`, the first of them is the
    /// primary (the key frames are sealed with). Empty by default. Keys
    /// rotate live with [`crate::Node::install_key`], [`crate::Node::use_key`]
    /// and [`crate::Node::remove_key`], or cluster-wide with
    /// [`crate::Node::cluster_keys`]; a node started with no key at all
    /// cannot turn encryption on live.
    pub keys: Vec<SecretKey>,
    /// Protocol timings (from a [`Preset`], then adjusted).
    pub protocol: Config,
    /// This node's metadata.
    pub metadata: Metadata,
    /// Addresses to join at start (retried by the core while alone).
    pub seeds: Vec<SocketAddr>,
    /// LAN discovery by multicast heartbeat; `None` disables it.
    pub multicast: Option<MulticastConfig>,
    /// UDP buffer sizes.
    pub sockets: SocketOptions,
    /// Cap of a push-pull frame (bytes): bigger frames are refused by their
    /// header. The default matches the core's own stream cap (32 MiB).
    pub max_stream_frame: usize,
    /// Bound on a whole push-pull exchange (connect, write, read); the TLS
    /// handshake, when [`NodeConfig::tls`] is set, is bounded by it too.
    pub stream_timeout: Duration,
    /// LZ4-compress frame bodies longer than this many bytes, datagrams and
    /// push-pull streams alike (`None`: never, the default). Compressed
    /// frames are flagged: every node reads them whatever its own setting,
    /// but nodes built before compression existed refuse them
    /// (`UnknownFlags`), so turn it on only once every member runs a
    /// version that has it. Pays off mostly for push-pull streams carrying
    /// large member lists or application state ([`crate::Hooks::local_state`]);
    /// a threshold near the MTU (e.g. 1024) leaves small probes alone.
    pub compression: Option<usize>,
    /// Mutual TLS under the push-pull stream; `None` (the default) keeps
    /// the stream plain TCP. Every node of a cluster must agree: a TLS node
    /// and a plaintext node refuse each other's streams.
    pub tls: Option<TlsConfig>,
    /// Most inbound push-pull streams open at once, and most outbound
    /// exchanges connected at once (more wait their turn, within
    /// `max_pending_push_pulls`). At the limit a newcomer evicts the stream
    /// that has proved the least (idle, in its header, in an unauthenticated
    /// body) rather than being refused, or, if that stream is a request no
    /// larger than its own accepted less than a second ago, waits for a
    /// slot (at most `stream_header_timeout`): see [`crate::stream`].
    pub max_inbound_streams: usize,
    /// Most inbound streams open at once from one source IP address (an
    /// IPv6 source counts by its /64) (4): at the limit, the newcomer evicts
    /// that address's least proved stream. Keeps one host from taking every
    /// slot.
    pub max_inbound_streams_per_ip: usize,
    /// Deadline (2 s) for an inbound stream's first bytes, its whole frame
    /// header and its share of `stream_buffer_budget` (at most
    /// `stream_timeout`, which bounds the whole frame). A peer writes its
    /// request right after connecting, so only idle or slow connections
    /// ever hit it.
    pub stream_header_timeout: Duration,
    /// Bytes of inbound frame bodies that may be buffered at once, across
    /// all streams, before the core authenticates them (64 MiB; at least
    /// `max_stream_frame`). A sealed frame is authenticated whole, so this
    /// is what bounds the memory of connections claiming large frames.
    pub stream_buffer_budget: usize,
    /// Most outbound push-pulls pending at once (in flight or waiting for a
    /// connection), on every path: joins, periodic sync, multicast-heard
    /// peers (32). Each holds a copy of this node's full state; beyond the
    /// gate they are dropped and counted (`push_pulls_dropped`), and the
    /// core retries joins on its reconnect timer. Multicast-heard peers may
    /// take at most half of it, and the last quarter is kept for joins
    /// through seeds (`seeds`, `Node::join`).
    pub max_pending_push_pulls: usize,
    /// Most distinct join addresses remembered as seeds (1,024), retried
    /// while this node is alone; more are contacted once but not kept
    /// (`seeds_dropped`). Peers heard by multicast are never seeds.
    pub max_seeds: usize,
    /// Fast retries of a join that failed while this node is alone (16): the
    /// seed is tried again after `join_retry_base`, doubling up to
    /// `join_retry_max`, with ±50% jitter, at most this many times in a row
    /// before the core's slower reconnect timer (`Config::reconnect_interval`)
    /// takes over (`join_retries` counts them; 0: no fast retries). Spreads
    /// a cold start's joiners over the seed's stream slots. 16 (about 23 s
    /// of trying) rather than 8 (about 7 s): with 8, 2,000 nodes joining one
    /// seed at once left 130-180 of them to the 10 s reconnect timer in 2
    /// runs of 4, converging in 18-31 s instead of 11-14 (BENCHMARKS.md).
    pub join_retry_attempts: u32,
    /// First delay of a fast join retry (50 ms; positive).
    pub join_retry_base: Duration,
    /// Longest delay between two fast join retries (2 s; at least
    /// `join_retry_base`).
    pub join_retry_max: Duration,
    /// Most datagrams handled per wakeup before outputs are flushed.
    pub batch: usize,
    /// Capacity of each event channel (membership, heal, application data);
    /// slow subscribers and hooks skip events beyond it.
    pub event_capacity: usize,
    /// Default bound of [`crate::Node::leave`].
    pub leave_timeout: Duration,
    /// Application callbacks.
    pub hooks: Vec<Arc<dyn Hooks>>,
    /// Partition detection, autoheal and autoclean ([`gossamer_heal`]);
    /// `None` (the default) runs plain SWIM. When set, the core's
    /// `dead_retention` follows the heal layer's `autoclean`. Off by default
    /// so existing deployments keep their behaviour; the CLI/agent may turn
    /// it on from its configuration later.
    pub heal: Option<gossamer_heal::HealConfig>,
    /// Where the node's member records live. `None` (the default): a
    /// directory of its own. Nodes of one process that know the same
    /// members (a process hosting many nodes, a test harness) can be given
    /// clones of one [`IdentityDirectory`], so that each member's record
    /// (name, address, metadata, incarnation, status) is stored once for
    /// all of them rather than once per node: N records instead of N² for N
    /// nodes that all know each other. Nothing else changes: each node
    /// keeps its own view (status, timers, suspicion) and decides alone.
    /// One thing is shared beyond the records: a member's slot in each
    /// table is its name's id in the directory, so a flood of made-up
    /// names at one node (bounded by its member caps, issue #11) raises the
    /// ids every sharing node may be handed until those names are
    /// forgotten, and with them the length of its slot vector (8 bytes an
    /// id). Nodes that must not affect each other's memory at all should
    /// keep their own directories.
    pub directory: Option<IdentityDirectory>,
}

impl fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeConfig")
            .field("name", &self.name)
            .field("bind", &self.bind)
            .field("advertise", &self.advertise)
            .field("cluster", &self.cluster)
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .field("keys", &self.keys.iter().map(SecretKey::fingerprint).collect::<Vec<_>>())
            .field("protocol", &self.protocol)
            .field("metadata", &self.metadata)
            .field("seeds", &self.seeds)
            .field("multicast", &self.multicast)
            .field("max_stream_frame", &self.max_stream_frame)
            .field("stream_timeout", &self.stream_timeout)
            .field("tls", &self.tls)
            .field("compression", &self.compression)
            .field("hooks", &self.hooks.len())
            .field("heal", &self.heal)
            .field("shared_directory", &self.directory.is_some())
            .finish_non_exhaustive()
    }
}

impl NodeConfig {
    /// A node named `name` bound on `bind`, with `preset` timings, an empty
    /// cluster label, no secret, no seeds and no multicast.
    pub fn new(name: &str, bind: SocketAddr, preset: Preset) -> Result<Self, StartError> {
        let name = NodeName::new(name).map_err(|e| StartError::Config { field: "name", reason: e.to_string() })?;
        // One source of the limits' defaults: the `[runtime]` schema's.
        let limits = crate::limits::RuntimeLimits::default();
        Ok(Self {
            name,
            bind,
            advertise: None,
            cluster: String::new(),
            secret: None,
            keys: Vec::new(),
            protocol: preset.config(),
            metadata: Metadata::new(),
            seeds: Vec::new(),
            multicast: None,
            sockets: SocketOptions { recv_buffer: limits.udp_recv_buffer, send_buffer: limits.udp_send_buffer },
            max_stream_frame: limits.max_stream_frame,
            stream_timeout: limits.stream_timeout,
            compression: None,
            tls: None,
            max_inbound_streams: limits.max_inbound_streams,
            max_inbound_streams_per_ip: limits.max_inbound_streams_per_ip,
            stream_header_timeout: limits.stream_header_timeout,
            stream_buffer_budget: limits.stream_buffer_budget,
            max_pending_push_pulls: limits.max_pending_push_pulls,
            max_seeds: limits.max_seeds,
            join_retry_attempts: limits.join_retry_attempts,
            join_retry_base: limits.join_retry_base,
            join_retry_max: limits.join_retry_max,
            batch: limits.batch,
            event_capacity: limits.event_capacity,
            leave_timeout: Duration::from_secs(5),
            hooks: Vec::new(),
            heal: None,
            directory: None,
        })
    }

    /// Sets the cluster secret from 64 hex digits.
    pub fn set_secret_hex(&mut self, hex: &str) -> Result<(), StartError> {
        self.secret =
            Some(hex.parse().map_err(|e: gossamer_wire::ConfigError| StartError::Config {
                field: "secret",
                reason: e.to_string(),
            })?);
        Ok(())
    }

    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<(), StartError> {
        let bad = |field: &'static str, reason: &str| Err(StartError::Config { field, reason: reason.into() });
        self.protocol.validate()?;
        // Named as the setting it comes from, not as the codec that refused it.
        gossamer_wire::ClusterLabel::new(&self.cluster)
            .map_err(|e| StartError::Config { field: "cluster", reason: e.to_string() })?;
        if self.bind.ip().is_unspecified() && self.advertise.is_none() {
            return bad("advertise", "required when binding an unspecified address");
        }
        if let Some(adv) = self.advertise {
            if adv.ip().is_unspecified() {
                return bad("advertise", "must be a reachable address, not 0.0.0.0 or ::");
            }
        }
        if self.max_stream_frame < 4096 {
            return bad("max_stream_frame", "must be at least 4096 bytes");
        }
        if self.stream_timeout.is_zero() {
            return bad("stream_timeout", "must be positive");
        }
        if self.keys.len() + usize::from(self.secret.is_some()) > gossamer_wire::MAX_KEYS {
            return bad("keys", "more keys than a keyring holds (gossamer_wire::MAX_KEYS)");
        }
        if self.max_inbound_streams == 0 {
            return bad("max_inbound_streams", "must be at least 1");
        }
        if self.max_inbound_streams_per_ip == 0 {
            return bad("max_inbound_streams_per_ip", "must be at least 1");
        }
        if self.stream_header_timeout.is_zero() {
            return bad("stream_header_timeout", "must be positive");
        }
        if self.stream_buffer_budget < self.max_stream_frame {
            return bad("stream_buffer_budget", "must be at least max_stream_frame");
        }
        if self.max_pending_push_pulls < 2 {
            return bad("max_pending_push_pulls", "must be at least 2");
        }
        if self.join_retry_base.is_zero() {
            return bad("join_retry_base", "must be positive");
        }
        if self.join_retry_max < self.join_retry_base {
            return bad("join_retry_max", "must be at least join_retry_base");
        }
        if self.batch == 0 {
            return bad("batch", "must be at least 1");
        }
        if self.event_capacity == 0 {
            return bad("event_capacity", "must be at least 1");
        }
        if let Some(heal) = &self.heal {
            heal.validate().map_err(|e| StartError::Config { field: "heal", reason: e.to_string() })?;
        }
        if let Some(mcast) = &self.multicast {
            if let Err((field, reason)) = mcast.validate() {
                return Err(StartError::Config { field, reason });
            }
            // Without an explicit interface, the advertised address must be
            // of the group's family (it names the interface).
            let own = self.advertise.unwrap_or(self.bind);
            let implied = !own.ip().is_unspecified() && own.is_ipv4() == mcast.group.is_ipv4();
            if mcast.interface.is_none() && !implied {
                return bad(
                    "multicast.interface",
                    "required unless the node advertises an address of the group's family (IPv4 or IPv6)",
                );
            }
        }
        Ok(())
    }
}
