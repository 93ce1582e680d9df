//! The built-in strategies, one module each.

mod dns;
mod etcd;
mod hosts;
mod k8s;
mod local;
mod manual;
mod rancher;
mod static_seeds;

pub use dns::DnsDiscovery;
pub use etcd::EtcdDiscovery;
pub use hosts::{parse_hosts, HostsDiscovery};
pub use k8s::{K8sApiDiscovery, K8sDnsDiscovery};
pub use local::LocalDiscovery;
pub use manual::ManualDiscovery;
pub use rancher::RancherDiscovery;
pub use static_seeds::StaticDiscovery;

/// Internals `config::build` needs to assemble the Kubernetes strategies.
pub(crate) mod k8s_internals {
    pub(crate) use super::k8s::{Naming, TokenSource};
}
