//! Optional mutual TLS under the push-pull stream (the analog of EMQX's
//! `inet_tls` distribution): the full-state exchange runs inside a TLS
//! session in which both nodes present a certificate and verify the other
//! against the cluster's CA. The frame codec still runs on top (label check,
//! and sealing when a secret is set), so TLS adds peer authentication by
//! certificate and transport encryption without changing the wire format.
//!
//! **Peer names.** Nodes reach each other by the IP address gossip told them,
//! not by a host name, and addresses change (DHCP, containers, NAT). A
//! cluster is a closed group: holding a certificate issued by the cluster's
//! CA is what makes a peer a member. So by default the chain is verified
//! against the CA (signature, validity period, key usage) and the
//! certificate's subject names are *not* compared with the address dialed.
//! This is what EMQX's shipped `ssl_dist.conf` (`apps/emqx/etc/`) does as
//! well: `{verify, verify_peer}` against `cacertfile` on both sides,
//! `fail_if_no_peer_cert` on the server, and `{server_name_indication,
//! disable}` on the client because node names are often IPs or names the
//! certificates do not carry; the chain is still verified. Deployments that
//! put each node's IP in its certificate can opt into
//! [`TlsConfig::verify_peer_ip`], which also requires an IP SAN equal to the
//! address dialed.
//!
//! TLS protects the stream only; datagrams (probes, gossip) are protected by
//! the cluster secret ([`crate::NodeConfig::secret`]). A closed cluster sets
//! both.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

/// ALPN id of the push-pull stream: a TLS client of another protocol using
/// certificates of the same CA (an HTTPS client, say) is refused by it.
const ALPN: &[u8] = b"gossamer-pushpull/1";

/// Where a PEM document comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum PemSource {
    /// Read from this file when the node starts.
    File(PathBuf),
    /// These bytes (PEM text).
    Pem(Vec<u8>),
}

impl fmt::Debug for PemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemSource::File(path) => f.debug_tuple("File").field(path).finish(),
            // Never print a private key, not even to a debug log.
            PemSource::Pem(bytes) => write!(f, "Pem(<{} bytes>)", bytes.len()),
        }
    }
}

impl PemSource {
    fn read(&self, what: &'static str) -> Result<Vec<u8>, TlsError> {
        match self {
            PemSource::File(path) => {
                std::fs::read(path).map_err(|source| TlsError::Read { what, path: path.clone(), source })
            }
            PemSource::Pem(bytes) => Ok(bytes.clone()),
        }
    }
}

/// TLS settings of the push-pull stream: this node's certificate chain and
/// key, and the CA its peers' certificates must chain to.
///
/// ```
/// use gossamer_net::{NodeConfig, Preset, TlsConfig};
/// let mut config = NodeConfig::new("a@10.0.0.7", "10.0.0.7:7946".parse().unwrap(), Preset::Lan).unwrap();
/// config.tls = Some(TlsConfig::from_files("/etc/gossamer/node.crt", "/etc/gossamer/node.key", "/etc/gossamer/ca.crt"));
/// // Files are read, and refused with a typed error, by `Node::start`.
/// assert!(config.tls.as_ref().unwrap().load_check().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// This node's certificate, then any intermediates (PEM). The same
    /// certificate serves both roles (a node accepts and dials streams): if
    /// it has an extended key usage extension, it must list both serverAuth
    /// and clientAuth.
    pub cert_chain: PemSource,
    /// The private key of the first certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    pub private_key: PemSource,
    /// The cluster's CA certificate(s) (PEM): a peer's certificate must
    /// chain to one of them, in both directions.
    pub ca: PemSource,
    /// Also require the server's certificate to hold an IP SAN equal to the
    /// address dialed (off by default, see the module docs).
    pub verify_peer_ip: bool,
}

impl TlsConfig {
    /// Certificate chain, key and CA read from files at start.
    pub fn from_files(cert_chain: impl Into<PathBuf>, private_key: impl Into<PathBuf>, ca: impl Into<PathBuf>) -> Self {
        Self {
            cert_chain: PemSource::File(cert_chain.into()),
            private_key: PemSource::File(private_key.into()),
            ca: PemSource::File(ca.into()),
            verify_peer_ip: false,
        }
    }

    /// Certificate chain, key and CA given as PEM text.
    pub fn from_pem(cert_chain: impl Into<Vec<u8>>, private_key: impl Into<Vec<u8>>, ca: impl Into<Vec<u8>>) -> Self {
        Self {
            cert_chain: PemSource::Pem(cert_chain.into()),
            private_key: PemSource::Pem(private_key.into()),
            ca: PemSource::Pem(ca.into()),
            verify_peer_ip: false,
        }
    }

    /// Reads and checks everything [`crate::Node::start`] will (files
    /// readable, PEM valid, key matching the certificate, CA usable),
    /// without starting anything.
    pub fn load_check(&self) -> Result<(), TlsError> {
        self.load().map(|_| ())
    }

    /// Builds the acceptor and connector of the stream.
    pub(crate) fn load(&self) -> Result<StreamTls, TlsError> {
        let chain = certs(&self.cert_chain.read("cert")?, "cert")?;
        let key_pem = self.private_key.read("key")?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| TlsError::Pem { what: "key", reason: format!("no usable private key: {e}") })?;
        let mut roots = RootCertStore::empty();
        for ca in certs(&self.ca.read("ca")?, "ca")? {
            roots.add(ca).map_err(|source| TlsError::Rustls { what: "ca", source })?;
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        let client_verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError::Pem { what: "ca", reason: e.to_string() })?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Rustls { what: "provider", source })?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|source| key_error(source, "cert"))?;
        server.alpn_protocols = vec![ALPN.to_vec()];

        let server_verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| TlsError::Pem { what: "ca", reason: e.to_string() })?;
        let verifier = Arc::new(ClusterCaVerifier { inner: server_verifier, verify_ip: self.verify_peer_ip });
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Rustls { what: "provider", source })?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(chain, key)
            .map_err(|source| key_error(source, "cert"))?;
        client.alpn_protocols = vec![ALPN.to_vec()];
        Ok(StreamTls { acceptor: TlsAcceptor::from(Arc::new(server)), connector: TlsConnector::from(Arc::new(client)) })
    }
}

fn certs(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem { what, reason: format!("bad PEM: {e}") })?;
    if certs.is_empty() {
        return Err(TlsError::Pem { what, reason: "no CERTIFICATE in the PEM".into() });
    }
    Ok(certs)
}

fn key_error(source: rustls::Error, what: &'static str) -> TlsError {
    match source {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch,
        source => TlsError::Rustls { what, source },
    }
}

/// Why the TLS settings were refused at start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("tls.{what}: cannot read {path}: {source}")]
    Read {
        /// `cert`, `key` or `ca`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The PEM held nothing usable.
    #[error("tls.{what}: {reason}")]
    Pem {
        /// `cert`, `key` or `ca`.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The private key is not the first certificate's.
    #[error("tls.key does not match the first certificate of tls.cert")]
    KeyMismatch,
    /// rustls refused a certificate, key or CA.
    #[error("tls.{what}: refused by rustls: {source}")]
    Rustls {
        /// What was being loaded.
        what: &'static str,
        /// rustls's reason.
        source: rustls::Error,
    },
}

impl TlsError {
    /// Which setting is at fault: `cert`, `key`, `ca` (or `provider`).
    pub fn setting(&self) -> &'static str {
        match self {
            TlsError::Read { what, .. } | TlsError::Pem { what, .. } | TlsError::Rustls { what, .. } => what,
            TlsError::KeyMismatch => "key",
        }
    }
}

/// The loaded TLS side of the stream: one acceptor, one connector.
#[derive(Clone)]
pub(crate) struct StreamTls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

impl StreamTls {
    /// Server side of the handshake on an accepted connection.
    pub(crate) async fn accept(&self, tcp: TcpStream) -> io::Result<server::TlsStream<TcpStream>> {
        self.acceptor.accept(tcp).await
    }

    /// Client side of the handshake towards `to`.
    pub(crate) async fn connect(&self, to: SocketAddr, tcp: TcpStream) -> io::Result<client::TlsStream<TcpStream>> {
        self.connector.connect(ServerName::IpAddress(to.ip().into()), tcp).await
    }
}

/// The server-certificate check of a cluster: the chain must verify against
/// the CA (fully, by webpki); a subject name not matching the address dialed
/// is accepted unless `verify_ip` is set. webpki checks the name only after
/// the chain has verified, so ignoring its name error never accepts an
/// untrusted chain.
#[derive(Debug)]
struct ClusterCaVerifier {
    inner: Arc<WebPkiServerVerifier>,
    verify_ip: bool,
}

impl ServerCertVerifier for ClusterCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.verify_ip => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Whether the bytes a plaintext node read look like a TLS ClientHello
/// (handshake record, version 3.x): a TLS peer talking to a node without TLS.
pub(crate) fn looks_like_tls(first: &[u8; 2]) -> bool {
    first == &[0x16, 0x03]
}
