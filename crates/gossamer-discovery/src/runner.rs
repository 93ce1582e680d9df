//! The tokio task set that polls every strategy on its own interval. A failure is logged with the
//! strategy's name and retried after a capped exponential backoff; it never stops the other strategies
//! and never clears the last good answer. Each *changed* peer set is sent on an mpsc channel for the
//! runtime to join.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::{Discovery, Peer};

/// Capped exponential backoff: `initial`, `2*initial`, `4*initial`, ... up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Upper bound.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(60) }
    }
}

impl Backoff {
    /// The delay after `failures` consecutive failures (`failures >= 1`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = gossamer_discovery::Backoff { initial: Duration::from_millis(100), max: Duration::from_millis(500) };
    /// let ms: Vec<u128> = (1..=5).map(|n| b.delay(n).as_millis()).collect();
    /// assert_eq!(ms, [100, 200, 400, 500, 500]);
    /// ```
    pub fn delay(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(31);
        self.initial.saturating_mul(1u32 << shift).min(self.max)
    }
}

/// One strategy's new peer set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryUpdate {
    /// The strategy's [`Discovery::name`].
    pub strategy: String,
    /// Everything the strategy currently reports, sorted.
    pub peers: Vec<Peer>,
    /// Peers not in this strategy's previous answer (on the first answer: all of them).
    pub added: Vec<Peer>,
    /// Peers that were in the previous answer and no longer are.
    pub removed: Vec<Peer>,
}

/// What the runner knows about one strategy (for status pages and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategyStatus {
    /// The strategy's name.
    pub name: String,
    /// The last successful answer (kept across failures).
    pub peers: Option<Vec<Peer>>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The last error, as text, until the next success.
    pub last_error: Option<String>,
    /// Successful rounds so far.
    pub successes: u64,
}

/// Polls strategies; see the crate docs for an example.
pub struct DiscoveryRunner {
    strategies: Vec<Arc<dyn Discovery>>,
    backoff: Backoff,
    capacity: usize,
}

impl DiscoveryRunner {
    /// A runner over `strategies` with the default backoff (1 s doubling to 60 s).
    pub fn new(strategies: Vec<Box<dyn Discovery>>) -> Self {
        DiscoveryRunner {
            strategies: strategies.into_iter().map(Arc::from).collect(),
            backoff: Backoff::default(),
            capacity: 64,
        }
    }

    /// Builds the configured strategies ([`crate::build`]) with the configured backoff.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cfg = gossamer_discovery::DiscoveryConfig::from_toml(
    ///     "strategy = \"static\"\n[static]\nseeds = [\"gossamer@127.0.0.1:7946\"]",
    /// )
    /// .unwrap();
    /// let (runner, mut updates) = gossamer_discovery::DiscoveryRunner::from_config(&cfg).unwrap().spawn();
    /// let update = updates.recv().await.unwrap();
    /// assert_eq!(update.added[0].name.as_deref(), Some("gossamer@127.0.0.1"));
    /// runner.shutdown().await;
    /// # }
    /// ```
    pub fn from_config(config: &crate::DiscoveryConfig) -> Result<Self, crate::ConfigError> {
        Ok(Self::new(crate::build(config)?).with_backoff(config.backoff()))
    }

    /// Sets the retry policy.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Starts one task per strategy on the current tokio runtime. Updates arrive on the receiver; the
    /// handle stops the tasks (and deregisters) on [`RunnerHandle::shutdown`].
    pub fn spawn(self) -> (RunnerHandle, mpsc::Receiver<DiscoveryUpdate>) {
        let (tx, rx) = mpsc::channel(self.capacity);
        let (stop_tx, stop_rx) = watch::channel(false);
        let status = Arc::new(Mutex::new(
            self.strategies
                .iter()
                .map(|s| StrategyStatus {
                    name: s.name().to_string(),
                    peers: None,
                    consecutive_failures: 0,
                    last_error: None,
                    successes: 0,
                })
                .collect::<Vec<_>>(),
        ));
        let tasks = self
            .strategies
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let worker =
                    Worker { index: i, strategy: s, backoff: self.backoff, tx: tx.clone(), status: status.clone() };
                tokio::spawn(worker.run(stop_rx.clone()))
            })
            .collect();
        (RunnerHandle { stop: stop_tx, tasks, status }, rx)
    }
}

/// Controls a running [`DiscoveryRunner`].
pub struct RunnerHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    status: Arc<Mutex<Vec<StrategyStatus>>>,
}

impl RunnerHandle {
    /// A snapshot of every strategy's state.
    pub fn status(&self) -> Vec<StrategyStatus> {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The union of every strategy's last good answer, sorted and deduplicated.
    pub fn current_peers(&self) -> Vec<Peer> {
        let mut all: Vec<Peer> = self.status().into_iter().filter_map(|s| s.peers).flatten().collect();
        all.sort();
        all.dedup();
        all
    }

    /// Stops polling, deregisters every strategy that registered, and waits for the tasks.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            if let Err(e) = t.await {
                warn!(error = %e, "discovery task ended abnormally");
            }
        }
    }
}

struct Worker {
    index: usize,
    strategy: Arc<dyn Discovery>,
    backoff: Backoff,
    tx: mpsc::Sender<DiscoveryUpdate>,
    status: Arc<Mutex<Vec<StrategyStatus>>>,
}

/// Bounds deregistration on shutdown so a dead registry cannot hang the node's exit.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(5);

impl Worker {
    fn with_status(&self, f: impl FnOnce(&mut StrategyStatus)) {
        let mut all = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = all.get_mut(self.index) {
            f(s);
        }
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let name = self.strategy.name().to_string();
        let mut registered = false;
        let mut failures = 0u32;
        let mut last: Option<Vec<Peer>> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            let round = async {
                if !registered {
                    self.strategy.register().await?;
                    registered = true;
                }
                self.strategy.discover().await
            };
            let result = tokio::select! {
                r = round => r,
                _ = stop.changed() => break,
            };
            let delay = match result {
                Ok(mut peers) => {
                    peers.sort();
                    peers.dedup();
                    failures = 0;
                    if last.as_ref() != Some(&peers) {
                        let prev = last.take().unwrap_or_default();
                        let added: Vec<Peer> = peers.iter().filter(|p| !prev.contains(p)).cloned().collect();
                        let removed: Vec<Peer> = prev.iter().filter(|p| !peers.contains(p)).cloned().collect();
                        info!(strategy = %name, count = peers.len(), added = added.len(), removed = removed.len(), "discovered peers");
                        let update = DiscoveryUpdate { strategy: name.clone(), peers: peers.clone(), added, removed };
                        if self.tx.send(update).await.is_err() {
                            debug!(strategy = %name, "update receiver dropped");
                        }
                        last = Some(peers.clone());
                    }
                    self.with_status(|s| {
                        s.peers = Some(peers);
                        s.consecutive_failures = 0;
                        s.last_error = None;
                        s.successes += 1;
                    });
                    match self.strategy.poll_interval() {
                        Some(d) => d,
                        None => {
                            // One-shot strategy: idle until shutdown, then deregister below.
                            let _ = stop.wait_for(|s| *s).await;
                            break;
                        }
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let delay = self.backoff.delay(failures);
                    warn!(strategy = %name, error = %e, attempt = failures, retry_in_ms = delay.as_millis() as u64, "discovery failed; will retry");
                    let text = e.to_string();
                    self.with_status(|s| {
                        s.consecutive_failures = failures;
                        s.last_error = Some(text);
                    });
                    delay
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.changed() => break,
            }
        }
        if registered {
            match tokio::time::timeout(DEREGISTER_TIMEOUT, self.strategy.deregister()).await {
                Ok(Ok(())) => debug!(strategy = %name, "deregistered"),
                Ok(Err(e)) => warn!(strategy = %name, error = %e, "deregister failed"),
                Err(_) => warn!(strategy = %name, "deregister timed out"),
            }
        }
    }
}
