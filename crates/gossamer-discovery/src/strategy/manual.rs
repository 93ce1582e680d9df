//! `manual`: nothing automatic; the operator joins nodes with `gossamer cluster join`.

use std::time::Duration;

use crate::{async_trait, Discovery, DiscoveryError, Peer};

/// The default strategy: discovers nobody, once.
#[derive(Debug, Default, Clone, Copy)]
pub struct ManualDiscovery;

#[async_trait]
impl Discovery for ManualDiscovery {
    fn name(&self) -> &str {
        "manual"
    }
    fn poll_interval(&self) -> Option<Duration> {
        None
    }
    async fn discover(&self) -> Result<Vec<Peer>, DiscoveryError> {
        Ok(Vec::new())
    }
}
