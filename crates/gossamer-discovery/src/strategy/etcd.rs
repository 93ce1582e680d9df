//! `etcd`: a lease-backed registry, as EMQX's etcd autocluster. Each node puts `<prefix>/nodes/<name>`
//! (value: JSON `{"name", "addr"}`) under a lease of `node_ttl` that a background task keeps alive; peers
//! are the keys under `<prefix>/nodes/`. A node that dies stops its keepalive, so its key vanishes when
//! the lease expires; a node that leaves cleanly deletes its key.
//!
//! It talks to etcd's v3 JSON gateway over plain HTTP(S) (`/v3/kv/put`, `/v3/kv/range`,
//! `/v3/lease/grant`, `/v3/lease/keepalive`, `/v3/kv/deleterange`, `/v3/lease/revoke`), so no gRPC stack
//! is needed. Several servers may be given; each call tries them in turn, starting with the last one
//! that answered.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::http::{client, describe, read_body, DEFAULT_MAX_BODY_BYTES};
use crate::{async_trait, ConfigError, Discovery, DiscoveryError, Peer};

/// What a node stores under its key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct NodeRecord {
    name: String,
    addr: SocketAddr,
}

/// Shared between the strategy and its keepalive task.
struct Inner {
    http: reqwest::Client,
    servers: Vec<String>,
    /// Index of the server that answered last; calls start there.
    preferred: AtomicUsize,
    prefix: String,
    ttl_secs: i64,
    me: Option<NodeRecord>,
    /// The lease currently holding our key, if registered.
    lease: Mutex<Option<i64>>,
    /// Largest response body read (`discovery.etcd.max_body_bytes`).
    max_body: usize,
}

/// The etcd registry strategy.
pub struct EtcdDiscovery {
    inner: Arc<Inner>,
    interval: Duration,
    keepalive: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for EtcdDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdDiscovery")
            .field("servers", &self.inner.servers)
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl Drop for EtcdDiscovery {
    fn drop(&mut self) {
        // A dropped strategy stops refreshing its lease: the key expires after `node_ttl`, exactly as
        // when the process dies.
        if let Some(h) = self.keepalive.lock().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
    }
}

fn prefix_end(key: &[u8]) -> Vec<u8> {
    // etcd's "all keys with this prefix": increment the last byte that is not 0xff.
    let mut end = key.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// grpc-gateway renders int64 as strings; accept both.
fn as_i64(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

impl EtcdDiscovery {
    /// A strategy using `servers` (base URLs such as `http://127.0.0.1:2379`). `me` is this node's name and
    /// gossip address; without it the strategy only discovers and `register` fails.
    pub fn new(
        servers: Vec<String>,
        prefix: &str,
        node_ttl: Duration,
        interval: Duration,
        timeout: Duration,
        me: Option<(String, SocketAddr)>,
    ) -> Result<Self, ConfigError> {
        Self::with_ca(servers, prefix, node_ttl, interval, timeout, me, None)
    }

    /// As [`EtcdDiscovery::new`], trusting only the PEM roots in `ca_pem` for `https://` servers.
    pub fn with_ca(
        servers: Vec<String>,
        prefix: &str,
        node_ttl: Duration,
        interval: Duration,
        timeout: Duration,
        me: Option<(String, SocketAddr)>,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, ConfigError> {
        if servers.is_empty() {
            return Err(ConfigError::Missing { key: "discovery.etcd.server".into(), strategy: "etcd" });
        }
        let servers = servers.into_iter().map(|s| s.trim_end_matches('/').to_string()).collect();
        let inner = Inner {
            http: client(ca_pem, timeout, "discovery.etcd.ca_file")?,
            servers,
            preferred: AtomicUsize::new(0),
            prefix: prefix.trim_end_matches('/').to_string(),
            ttl_secs: node_ttl.as_secs_f64().ceil().max(1.0) as i64,
            me: me.map(|(name, addr)| NodeRecord { name, addr }),
            lease: Mutex::new(None),
            max_body: DEFAULT_MAX_BODY_BYTES,
        };
        Ok(EtcdDiscovery { inner: Arc::new(inner), interval, keepalive: std::sync::Mutex::new(None) })
    }

    /// Refuses etcd answers longer than `bytes` (default [`crate::DEFAULT_MAX_BODY_BYTES`]), so a server,
    /// or whatever answers in its place, cannot make the node buffer without bound. Call before
    /// [`Discovery::register`] (the keepalive task shares the setting from then on).
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.max_body = bytes,
            None => warn!("etcd max_body_bytes set after registration; ignored"),
        }
        self
    }

    /// The key this node registers under.
    pub fn key_for(&self, name: &str) -> String {
        format!("{}/nodes/{name}", self.inner.prefix)
    }

    /// The lease currently held, if registered (exposed for tests and diagnostics).
    pub async fn lease_id(&self) -> Option<i64> {
        *self.inner.lease.lock().await
    }
}

impl Inner {
    /// POSTs `body` to `path` on each server in turn until one answers 2xx with JSON.
    async fn call(&self, path: &str, body: Value) -> Result<Value, DiscoveryError> {
        let n = self.servers.len();
        let start = self.preferred.load(Ordering::Relaxed) % n;
        let mut failures = Vec::new();
        for i in 0..n {
            let idx = (start + i) % n;
            let server = &self.servers[idx];
            match self.call_one(server, path, &body).await {
                Ok(v) => {
                    self.preferred.store(idx, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(reason) => {
                    debug!(server, path, %reason, "etcd call failed; trying next server");
                    failures.push(format!("{server}{path}: {reason}"));
                }
            }
        }
        if n == 1 {
            let reason = failures.pop().unwrap_or_default();
            return Err(DiscoveryError::Http { service: "etcd", server: self.servers[0].clone(), reason });
        }
        Err(DiscoveryError::AllServersFailed(failures))
    }

    async fn call_one(&self, server: &str, path: &str, body: &Value) -> Result<Value, String> {
        let resp = self.http.post(format!("{server}{path}")).json(body).send().await.map_err(|e| describe(&e))?;
        let status = resp.status();
        let body = read_body(resp, self.max_body, "discovery.etcd.max_body_bytes").await?;
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            let t: String = text.chars().take(300).collect();
            return Err(format!("HTTP {status}: {t}"));
        }
        // keepalive is a streamed RPC: the gateway answers one JSON object per line; take the first.
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("{}");
        serde_json::from_str(first).map_err(|e| format!("malformed JSON from etcd: {e}"))
    }

    fn my_key(&self) -> Option<String> {
        self.me.as_ref().map(|m| format!("{}/nodes/{}", self.prefix, m.name))
    }

    /// Grants a fresh lease and puts our key under it.
    async fn register(&self) -> Result<i64, DiscoveryError> {
        let me = self.me.as_ref().ok_or_else(|| {
            DiscoveryError::NotRegistrable(
                "etcd registration needs discovery.node_name and discovery.advertise_addr".into(),
            )
        })?;
        let grant = self.call("/v3/lease/grant", json!({ "TTL": self.ttl_secs })).await?;
        let id = as_i64(grant.get("ID")).ok_or_else(|| DiscoveryError::Http {
            service: "etcd",
            server: self.servers.join(","),
            reason: format!("lease grant answer has no ID: {grant}"),
        })?;
        let value = serde_json::to_vec(me).unwrap_or_default();
        let key = self.my_key().unwrap_or_default();
        self.call(
            "/v3/kv/put",
            json!({ "key": B64.encode(&key), "value": B64.encode(value), "lease": id.to_string() }),
        )
        .await?;
        *self.lease.lock().await = Some(id);
        info!(key, lease = id, ttl_s = self.ttl_secs, "registered in etcd");
        Ok(id)
    }

    /// Refreshes the lease; re-registers when etcd says it is gone (expired while we were cut off).
    async fn keepalive_once(&self) -> Result<(), DiscoveryError> {
        let lease = *self.lease.lock().await;
        let Some(id) = lease else { return self.register().await.map(|_| ()) };
        let answer = self.call("/v3/lease/keepalive", json!({ "ID": id.to_string() })).await?;
        let ttl = as_i64(answer.get("result").and_then(|r| r.get("TTL"))).unwrap_or(0);
        if ttl <= 0 {
            warn!(lease = id, "etcd lease expired; registering again");
            self.register().await?;
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<NodeRecord>, DiscoveryError> {
        let prefix = format!("{}/nodes/", self.prefix);
        let answer = self
            .call(
                "/v3/kv/range",
                json!({ "key": B64.encode(&prefix), "range_end": B64.encode(prefix_end(prefix.as_bytes())) }),
            )
            .await?;
        let mut out = Vec::new();
        for kv in answer.get("kvs").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
            let key = kv.get("key").and_then(Value::as_str).and_then(|k| B64.decode(k).ok());
            let value = kv.get("value").and_then(Value::as_str).and_then(|v| B64.decode(v).ok());
            match value.as_deref().map(serde_json::from_slice::<NodeRecord>) {
                Some(Ok(rec)) => out.push(rec),
                _ => {
                    warn!(key = ?key.map(|k| String::from_utf8_lossy(&k).into_owned()), "ignoring malformed etcd node entry")
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Discovery for EtcdDiscovery {
    fn name(&self) -> &str {
        "etcd"
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }

    async fn discover(&self) -> Result<Vec<Peer>, DiscoveryError> {
        let me = self.inner.me.as_ref().map(|m| m.name.as_str());
        let mut peers: Vec<Peer> = self
            .inner
            .list()
            .await?
            .into_iter()
            .filter(|r| Some(r.name.as_str()) != me)
            .map(|r| Peer::named(r.name, r.addr))
            .collect();
        peers.sort();
        Ok(peers)
    }

    async fn register(&self) -> Result<(), DiscoveryError> {
        self.inner.register().await?;
        let inner = self.inner.clone();
        // Refresh at a third of the TTL so two missed refreshes still keep the key.
        let period = Duration::from_millis((self.inner.ttl_secs as u64 * 1000 / 3).max(300));
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = inner.keepalive_once().await {
                    warn!(strategy = "etcd", error = %e, "lease keepalive failed");
                }
            }
        });
        if let Some(old) = self.keepalive.lock().unwrap_or_else(|p| p.into_inner()).replace(task) {
            old.abort();
        }
        Ok(())
    }

    async fn deregister(&self) -> Result<(), DiscoveryError> {
        if let Some(h) = self.keepalive.lock().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
        let Some(key) = self.inner.my_key() else { return Ok(()) };
        self.inner.call("/v3/kv/deleterange", json!({ "key": B64.encode(&key) })).await?;
        if let Some(id) = self.inner.lease.lock().await.take() {
            // Best effort: the key is already gone; an unrevoked lease just expires.
            if let Err(e) = self.inner.call("/v3/lease/revoke", json!({ "ID": id.to_string() })).await {
                debug!(error = %e, "lease revoke failed");
            }
        }
        info!(key, "deregistered from etcd");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end(b"a/nodes/"), b"a/nodes0".to_vec());
        assert_eq!(prefix_end(&[b'a', 0xff]), vec![b'b']);
        assert_eq!(prefix_end(&[0xff]), vec![0]);
    }

    #[test]
    fn int64_as_string_or_number() {
        assert_eq!(as_i64(Some(&json!("42"))), Some(42));
        assert_eq!(as_i64(Some(&json!(7))), Some(7));
        assert_eq!(as_i64(Some(&json!("x"))), None);
        assert_eq!(as_i64(None), None);
    }
}
