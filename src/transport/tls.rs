//! `tls`: rustls server configuration (TLS 1.2/1.3, ALPN h2 + http/1.1, optional mTLS).
//!
//! One crypto provider (aws-lc-rs) serves rustls, the outbound HTTPS client and
//! jsonwebtoken. The built `ServerConfig` sits behind an `ArcSwap` owned by the listener, so
//! a certificate reload changes what new handshakes see without touching open connections.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ListenConfig;

/// ALPN protocols offered, in preference order.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why TLS material could not be loaded.
#[derive(Debug)]
pub struct TlsError(pub String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// The process-wide crypto provider (aws-lc-rs).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Install aws-lc-rs as rustls' process default, so every rustls user in the process
/// (including outbound HTTPS clients) agrees on one provider. Idempotent.
pub fn install_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Read a PEM certificate chain (leaf first).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError(format!("{}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "{}: no PEM certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

/// Read a PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError(format!("{}: {e}", path.display())))
}

/// Build the listener's rustls config from `[listen]`.
pub fn server_config(listen: &ListenConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let certs = load_certs(&listen.tls_cert)?;
    let key = load_key(&listen.tls_key)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError(format!("TLS versions: {e}")))?;
    let builder = match &listen.client_ca {
        Some(ca_path) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in load_certs(ca_path)? {
                roots
                    .add(ca)
                    .map_err(|e| TlsError(format!("{}: {e}", ca_path.display())))?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| TlsError(format!("{}: {e}", ca_path.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(certs, key).map_err(|e| {
        TlsError(format!(
            "{} / {}: {e}",
            listen.tls_cert.display(),
            listen.tls_key.display()
        ))
    })?;
    cfg.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    // Stateless resumption: clients reconnecting skip the full handshake (and its
    // signature), which matters for mobile clients hopping networks.
    if let Ok(t) = rustls::crypto::aws_lc_rs::Ticketer::new() {
        cfg.ticketer = t;
    }
    cfg.session_storage = rustls::server::ServerSessionMemoryCache::new(16 * 1024);
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Write a self-signed localhost certificate and key made with `alg`.
    fn write_pair(dir: &Path, alg: &'static rcgen::SignatureAlgorithm) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let name = format!("{:?}", alg).replace(|c: char| !c.is_ascii_alphanumeric(), "");
        let c = dir.join(format!("{name}.crt"));
        let k = dir.join(format!("{name}.key"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    fn listen(cert: PathBuf, key: PathBuf) -> ListenConfig {
        ListenConfig {
            address: "127.0.0.1:0".parse().unwrap(),
            tls_cert: cert,
            tls_key: key,
            client_ca: None,
            handshake_timeout: std::time::Duration::from_secs(1),
            header_read_timeout: std::time::Duration::from_secs(1),
            idle_timeout: std::time::Duration::from_secs(1),
            max_connections: 1,
            max_header_bytes: 16384,
            trusted_proxies: Vec::new(),
            h2_max_concurrent_streams: 1,
        }
    }

    #[test]
    fn rsa_ecdsa_and_ed25519_keys_load_with_alpn() {
        let dir = tempfile::tempdir().unwrap();
        for alg in [
            &rcgen::PKCS_RSA_SHA256,
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_ED25519,
        ] {
            let (c, k) = write_pair(dir.path(), alg);
            let cfg = server_config(&listen(c, k)).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            assert_eq!(
                cfg.alpn_protocols,
                vec![b"h2".to_vec(), b"http/1.1".to_vec()]
            );
        }
    }

    #[test]
    fn mismatched_or_missing_material_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let (c1, _) = write_pair(dir.path(), &rcgen::PKCS_ECDSA_P256_SHA256);
        let (_, k2) = write_pair(dir.path(), &rcgen::PKCS_ED25519);
        let err = server_config(&listen(c1.clone(), k2))
            .unwrap_err()
            .to_string();
        assert!(err.contains(".crt"), "{err}");
        let err = server_config(&listen(dir.path().join("nope.crt"), c1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope.crt"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = load_certs(&empty).unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
    }
}
