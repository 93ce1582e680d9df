//! The runtime's limits as one serde schema ([`RuntimeLimits`]), so that
//! every front end (the agent's `[runtime]` table and its
//! `GOSSAMER_RUNTIME_<KEY>` variables) sets them through the same keys,
//! types and defaults as [`NodeConfig`], without declaring them again
//! (issues #15 and #17). Durations are humantime text (`"2s"`, `"500ms"`).

use std::time::Duration;

use gossamer_core::{field_names, overlay, set_from_text, ConfigError, Overrides};
use serde::{Deserialize, Serialize};

use crate::config::NodeConfig;
use crate::transport::SocketOptions;

/// The bounds the runtime puts on streams, outbound exchanges, seeds, join
/// retries, batches, channels and UDP buffers: the fields of [`NodeConfig`] an
/// operator tunes against a hostile or a very large network, as one table.
/// [`Default`] is what [`NodeConfig::new`] starts from; every key is
/// checked by [`NodeConfig::validate`] once applied ([`RuntimeLimits::apply_to`]),
/// and the error names the key. Each field is documented on the
/// [`NodeConfig`] field of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeLimits {
    /// [`NodeConfig::max_stream_frame`] (32 MiB).
    pub max_stream_frame: usize,
    /// [`NodeConfig::stream_timeout`] (10 s).
    #[serde(with = "humantime_serde")]
    pub stream_timeout: Duration,
    /// [`NodeConfig::max_inbound_streams`] (32).
    pub max_inbound_streams: usize,
    /// [`NodeConfig::max_inbound_streams_per_ip`] (4).
    pub max_inbound_streams_per_ip: usize,
    /// [`NodeConfig::stream_header_timeout`] (2 s).
    #[serde(with = "humantime_serde")]
    pub stream_header_timeout: Duration,
    /// [`NodeConfig::stream_buffer_budget`] (64 MiB).
    pub stream_buffer_budget: usize,
    /// [`NodeConfig::max_pending_push_pulls`] (32).
    pub max_pending_push_pulls: usize,
    /// [`NodeConfig::max_seeds`] (1,024).
    pub max_seeds: usize,
    /// [`NodeConfig::join_retry_attempts`] (16).
    pub join_retry_attempts: u32,
    /// [`NodeConfig::join_retry_base`] (50 ms).
    #[serde(with = "humantime_serde")]
    pub join_retry_base: Duration,
    /// [`NodeConfig::join_retry_max`] (2 s).
    #[serde(with = "humantime_serde")]
    pub join_retry_max: Duration,
    /// [`NodeConfig::batch`] (64).
    pub batch: usize,
    /// [`NodeConfig::event_capacity`] (1,024).
    pub event_capacity: usize,
    /// SO_RCVBUF of the UDP socket, [`SocketOptions::recv_buffer`] (2 MiB).
    pub udp_recv_buffer: usize,
    /// SO_SNDBUF of the UDP socket, [`SocketOptions::send_buffer`] (2 MiB).
    pub udp_send_buffer: usize,
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        let sockets = SocketOptions::default();
        Self {
            max_stream_frame: gossamer_wire::DEFAULT_MAX_STREAM_FRAME,
            stream_timeout: Duration::from_secs(10),
            max_inbound_streams: 32,
            max_inbound_streams_per_ip: 4,
            stream_header_timeout: Duration::from_secs(2),
            stream_buffer_budget: 64 << 20,
            max_pending_push_pulls: 32,
            max_seeds: 1024,
            join_retry_attempts: 16,
            join_retry_base: Duration::from_millis(50),
            join_retry_max: Duration::from_secs(2),
            batch: 64,
            event_capacity: 1024,
            udp_recv_buffer: sockets.recv_buffer,
            udp_send_buffer: sockets.send_buffer,
        }
    }
}

impl RuntimeLimits {
    /// Every key of the table, from the schema itself (for generated
    /// environment variables and help text).
    pub fn keys() -> &'static [&'static str] {
        field_names::<RuntimeLimits>()
    }

    /// Sets one key from text (an environment variable's value), typed by
    /// the schema: a number, or a duration such as `"2s"`. The error names
    /// the key. Values are range-checked later, by [`NodeConfig::validate`].
    pub fn set(&mut self, key: &str, text: &str) -> Result<(), ConfigError> {
        let mut overrides = Overrides::new();
        set_from_text(self, &mut overrides, key, text)?;
        *self = overlay(self, &overrides)?;
        Ok(())
    }

    /// The limits `config` runs with.
    pub fn of(config: &NodeConfig) -> Self {
        Self {
            max_stream_frame: config.max_stream_frame,
            stream_timeout: config.stream_timeout,
            max_inbound_streams: config.max_inbound_streams,
            max_inbound_streams_per_ip: config.max_inbound_streams_per_ip,
            stream_header_timeout: config.stream_header_timeout,
            stream_buffer_budget: config.stream_buffer_budget,
            max_pending_push_pulls: config.max_pending_push_pulls,
            max_seeds: config.max_seeds,
            join_retry_attempts: config.join_retry_attempts,
            join_retry_base: config.join_retry_base,
            join_retry_max: config.join_retry_max,
            batch: config.batch,
            event_capacity: config.event_capacity,
            udp_recv_buffer: config.sockets.recv_buffer,
            udp_send_buffer: config.sockets.send_buffer,
        }
    }

    /// Writes every limit into `config` (then call [`NodeConfig::validate`]).
    pub fn apply_to(&self, config: &mut NodeConfig) {
        config.max_stream_frame = self.max_stream_frame;
        config.stream_timeout = self.stream_timeout;
        config.max_inbound_streams = self.max_inbound_streams;
        config.max_inbound_streams_per_ip = self.max_inbound_streams_per_ip;
        config.stream_header_timeout = self.stream_header_timeout;
        config.stream_buffer_budget = self.stream_buffer_budget;
        config.max_pending_push_pulls = self.max_pending_push_pulls;
        config.max_seeds = self.max_seeds;
        config.join_retry_attempts = self.join_retry_attempts;
        config.join_retry_base = self.join_retry_base;
        config.join_retry_max = self.join_retry_max;
        config.batch = self.batch;
        config.event_capacity = self.event_capacity;
        config.sockets.recv_buffer = self.udp_recv_buffer;
        config.sockets.send_buffer = self.udp_send_buffer;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Preset;

    fn config() -> NodeConfig {
        NodeConfig::new("a@127.0.0.1", "127.0.0.1:0".parse().unwrap(), Preset::Local).unwrap()
    }

    #[test]
    fn defaults_are_what_a_node_config_starts_with() {
        assert_eq!(RuntimeLimits::of(&config()), RuntimeLimits::default());
        let keys = RuntimeLimits::keys();
        assert_eq!(keys.len(), 15, "{keys:?}");
        assert!(keys.contains(&"stream_buffer_budget") && keys.contains(&"stream_header_timeout"));
    }

    #[test]
    fn a_key_set_from_text_round_trips_into_the_node_config() {
        let mut limits = RuntimeLimits::default();
        limits.set("max_inbound_streams", "7").unwrap();
        limits.set("stream_header_timeout", "750ms").unwrap();
        limits.set("max_seeds", " 16 ").unwrap();
        let mut c = config();
        limits.apply_to(&mut c);
        assert_eq!((c.max_inbound_streams, c.stream_header_timeout, c.max_seeds), (7, Duration::from_millis(750), 16));
        assert_eq!(RuntimeLimits::of(&c), limits);
        c.validate().unwrap();
    }

    #[test]
    fn bad_text_and_bad_values_name_the_key() {
        let mut limits = RuntimeLimits::default();
        let e = limits.set("max_inbound_streams", "lots").unwrap_err();
        assert_eq!(e.field, "max_inbound_streams", "{e}");
        let e = limits.set("stream_timeout", "soon").unwrap_err();
        assert_eq!(e.field, "stream_timeout", "{e}");
        let e = limits.set("max_streams", "3").unwrap_err();
        assert!(e.to_string().contains("max_streams"), "{e}");
        assert_eq!(limits, RuntimeLimits::default(), "a refused value changes nothing");
        let mut c = config();
        RuntimeLimits { max_inbound_streams_per_ip: 0, ..Default::default() }.apply_to(&mut c);
        match c.validate() {
            Err(crate::StartError::Config { field, .. }) => assert_eq!(field, "max_inbound_streams_per_ip"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_table_parses_with_humantime_durations_and_refuses_unknown_keys() {
        let limits: RuntimeLimits =
            serde_json::from_str(r#"{"stream_timeout": "3s", "stream_buffer_budget": 1048576}"#).unwrap();
        assert_eq!(limits.stream_timeout, Duration::from_secs(3));
        assert_eq!(limits.stream_buffer_budget, 1 << 20);
        assert_eq!(limits.max_seeds, 1024, "keys not given keep their default");
        assert!(serde_json::from_str::<RuntimeLimits>(r#"{"max_seed": 3}"#).is_err());
    }
}
