//! The one HTTP client setup shared by the etcd gateway and Kubernetes API strategies: reqwest over
//! rustls with the `ring` provider (no C toolchain beyond `cc`, no OpenSSL).

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{pem::PemObject, CertificateDer};

use crate::ConfigError;

/// Builds a client. With `ca_pem`, only those roots are trusted (a cluster CA); without, the platform's
/// trust store is used. `key` names the config key in errors.
pub(crate) fn client(ca_pem: Option<&[u8]>, timeout: Duration, key: &str) -> Result<reqwest::Client, ConfigError> {
    let err = |reason: String| ConfigError::Client { key: key.to_string(), reason };
    let builder = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).no_proxy();
    let builder = match ca_pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| err(format!("bad CA PEM: {e}")))?;
                roots.add(cert).map_err(|e| err(format!("bad CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(err("CA file holds no certificate".into()));
            }
            let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| err(e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            builder.tls_backend_preconfigured(tls)
        }
        None => {
            // reqwest is built without a bundled provider; make ring the process default if none is set.
            // Failing means another provider is already installed, which is just as good.
            let _ = rustls::crypto::ring::default_provider().install_default();
            builder
        }
    };
    builder.build().map_err(|e| err(e.to_string()))
}

/// Shortens an error chain to one line for logs and typed errors.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Default cap on one HTTP response body (Kubernetes gets more, see [`crate::K8sConfig::max_body_bytes`]):
/// a registry answer for 10,000 members is about 2.5 MB, and a server (or whoever answers in its
/// place) must not make a node buffer without bound.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Reads `resp`'s body chunk by chunk, refusing it as soon as it would exceed `limit` bytes (a
/// `Content-Length` above the limit is refused before anything is read). `key` is the config key that
/// sets the limit, named in the error so an operator knows what to raise.
pub(crate) async fn read_body(mut resp: reqwest::Response, limit: usize, key: &str) -> Result<Vec<u8>, String> {
    let too_large = || format!("response body exceeds the {limit}-byte limit ({key}); refused");
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(resp.content_length().map_or(0, |n| n as usize).min(limit).min(64 * 1024));
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
        if chunk.len() > limit.saturating_sub(body.len()) {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
