//! Shared fixtures for the end-to-end discovery tests: an in-process authoritative DNS server
//! ([`dns`]), a real etcd process ([`etcd`]) and a minimal HTTP server standing in for the
//! Kubernetes API ([`k8s_api`]). All listen on 127.0.0.1 with ephemeral ports. Copied (trimmed) from
//! `gossamer-discovery`'s test fixtures, since one crate's tests cannot import another's.
#![allow(dead_code)]

pub mod dns;
pub mod etcd;
pub mod k8s_api;
