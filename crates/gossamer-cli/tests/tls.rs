//! Agents configured with a `[tls]` table: they sync through mutual TLS,
//! and an agent without TLS is refused with a warning in the log.

mod common;

use std::path::Path;

use common::*;

/// A CA and two node certificates signed by it, as PEM files in `dir`.
fn write_pki(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    std::fs::write(dir.join("ca.crt"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
    let issuer = Issuer::from_params(&ca, &ca_key);
    for node in ["a", "b"] {
        let key = KeyPair::generate().unwrap();
        let cert =
            CertificateParams::new(vec![format!("{node}.gossamer.test")]).unwrap().signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{node}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{node}.key")), key.serialize_pem()).unwrap();
    }
}

#[test]
fn agents_with_tls_sync_and_a_plaintext_agent_is_refused() {
    let dir = test_dir("tls");
    write_pki(&dir);
    let tls = |node: &str| {
        let p = |f: String| dir.join(f).display().to_string();
        format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n",
            p(format!("{node}.crt")),
            p(format!("{node}.key")),
            p("ca.crt".into())
        )
    };
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let a = Agent::spawn(&dir, "a@127.0.0.1", loopback(pa), &[], &tls("a"));
    let b = Agent::spawn(&dir, "b@127.0.0.1", loopback(pb), &[loopback(pa)], &tls("b"));
    eventually("the TLS agents find each other", &[&a, &b], || a.alive_count() == 2 && b.alive_count() == 2);

    let c = Agent::spawn(&dir, "c@127.0.0.1", loopback(pc), &[loopback(pa)], "");
    eventually("a refuses the plaintext agent and says so", &[&a, &c], || {
        a.log().contains("TLS handshake failed") && c.members().is_some()
    });
    assert_eq!(a.alive_count(), 2, "the plaintext agent was not merged");
    assert_eq!(c.alive_count(), 1, "and learned nothing");
    drop((a, b, c));
    let _ = std::fs::remove_dir_all(&dir);
}
