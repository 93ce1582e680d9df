//! Error types: one for a failed discovery round (retried by the runner), one for bad configuration
//! (fatal at start-up, always naming the offending key or environment variable).

use std::path::PathBuf;

/// Why one `discover()` / `register()` / `deregister()` call failed.
///
/// These are never fatal: the [`DiscoveryRunner`](crate::DiscoveryRunner) logs them with the strategy's
/// name and retries with exponential backoff.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// A seed or hosts-file entry could not be parsed or resolved.
    #[error("bad peer address {input:?}: {reason}")]
    BadAddress {
        /// The text as written.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A file (hosts file, service-account token, CA) could not be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file's path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The queried DNS name does not exist (NXDOMAIN).
    #[error("DNS name {name} does not exist (NXDOMAIN)")]
    NxDomain {
        /// The name that was queried.
        name: String,
    },
    /// A DNS lookup failed for another reason (timeout, refused, malformed answer...).
    #[error("DNS lookup of {name} ({record_type}) failed: {reason}")]
    Dns {
        /// The name that was queried.
        name: String,
        /// The record type queried.
        record_type: &'static str,
        /// The resolver's error, as text.
        reason: String,
    },
    /// An HTTP service (etcd gateway, Kubernetes API) could not be reached or answered badly.
    #[error("{service} at {server}: {reason}")]
    Http {
        /// Which kind of service ("etcd", "kubernetes", "rancher-metadata").
        service: &'static str,
        /// The server URL that failed.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// Every configured etcd server failed; each failure is listed.
    #[error("all etcd servers failed: {}", .0.join("; "))]
    AllServersFailed(Vec<String>),
    /// The same-host registry directory (`local` strategy) cannot be used.
    #[error("local registry {dir}: {reason}")]
    Registry {
        /// The registry directory.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Registration was requested but the strategy lacks this node's identity.
    #[error("cannot register: {0}")]
    NotRegistrable(String),
}

/// A configuration error. The message always names the TOML key (`discovery.dns.port`) or the environment
/// variable (`GOSSAMER_DNS_POLL_INTERVAL_MS`) at fault, so an operator can fix it without reading code.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value could not be parsed.
    #[error("{key}: invalid value {value:?}: {reason}")]
    Invalid {
        /// The key or environment variable.
        key: String,
        /// The offending value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A strategy is enabled but a key it needs is missing.
    #[error("{key} is required when {strategy} discovery is enabled")]
    Missing {
        /// The missing key.
        key: String,
        /// The strategy that needs it.
        strategy: &'static str,
    },
    /// The TOML text itself is malformed or has unknown keys.
    #[error("discovery config: {0}")]
    Toml(String),
    /// A TLS/HTTP client could not be built (for example an unparsable CA bundle).
    #[error("{key}: {reason}")]
    Client {
        /// The key whose value caused the failure.
        key: String,
        /// What went wrong.
        reason: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, value: impl Into<String>, reason: impl ToString) -> Self {
        ConfigError::Invalid { key: key.into(), value: value.into(), reason: reason.to_string() }
    }
}
