//! # gossamer-testkit
//!
//! Fixtures the test suites of several gossamer crates share, so each real
//! service stand-in exists once: a live authoritative DNS server
//! ([`dns::TestDns`], hickory-server in process), a real etcd process
//! ([`etcd::start`], Debian's `etcd-server`) and a minimal HTTP/1.1 server
//! with canned JSON answers for APIs that cannot run here ([`http::FakeApi`]:
//! Kubernetes, Rancher metadata), all listening on 127.0.0.1 with ephemeral
//! ports; and two network namespaces joined by a veth pair
//! ([`netns::VethPair`]) for multicast and real link cuts. Each stops or is
//! removed when dropped. Not published: a dev-dependency only.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let api = gossamer_testkit::http::FakeApi::start().await;
//! api.route("/ping", 200, r#"{"ok":true}"#);
//! assert!(api.url.starts_with("http://127.0.0.1:"));
//! # }
//! ```
//!
//! Fixtures panic on setup failure: they are for tests, where a panic with a
//! clear message is the right report.

pub mod dns;
pub mod etcd;
pub mod http;
pub mod netns;
pub mod skip;
