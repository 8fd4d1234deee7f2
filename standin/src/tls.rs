//! The optional TLS listener: a throw-away CA and a leaf certificate for `127.0.0.1`
//! and `localhost`, made at start (ECDSA P-256, `rcgen`), served with rustls and its
//! aws-lc-rs provider (the TLS stack the function's SDK client uses). Benchmark tooling
//! (docs/PERFORMANCE.md, "The first call over TLS"): the CA is written out as PEM for
//! the client under test (`AWS_CA_BUNDLE`); its key never leaves the process.

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::State;

/// A CA made for this process and a server configuration with a leaf it signed.
pub struct TlsIdentity {
    ca_pem: String,
    config: Arc<rustls::ServerConfig>,
}

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl TlsIdentity {
    pub fn generate() -> std::io::Result<Self> {
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(other)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name
            .push(DnType::CommonName, "transfer-standin throw-away CA");
        let ca_key = KeyPair::generate().map_err(other)?;
        let ca_cert = ca.self_signed(&ca_key).map_err(other)?;
        let issuer = Issuer::new(ca, ca_key);

        let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .map_err(other)?;
        leaf.distinguished_name
            .push(DnType::CommonName, "transfer-standin");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.use_authority_key_identifier_extension = true;
        let leaf_key = KeyPair::generate().map_err(other)?;
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(other)?;

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(other)?
            .with_no_client_auth()
            // The chain a real endpoint sends: the leaf, then its issuer.
            .with_single_cert(vec![leaf_cert.der().clone(), ca_cert.der().clone()], key)
            .map_err(other)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            ca_pem: ca_cert.pem(),
            config: Arc::new(config),
        })
    }

    /// The CA certificate (PEM): what a client must trust to reach the TLS listener.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

pub(crate) async fn listen(
    addr: SocketAddr,
    identity: &TlsIdentity,
    state: Arc<State>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let acceptor = TlsAcceptor::from(identity.config.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (state, acceptor) = (state.clone(), acceptor.clone());
            tokio::spawn(async move {
                if let Ok(stream) = acceptor.accept(stream).await {
                    crate::serve(state, stream).await;
                }
            });
        }
    });
    Ok((addr, task))
}
