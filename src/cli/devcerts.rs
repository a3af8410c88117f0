//! `accessgate dev-certs`: a DEV ONLY certificate authority, a server certificate for
//! localhost / 127.0.0.1 / ::1, and a client certificate for trying mutual TLS.
//! Never use these in production: the CA key sits next to the certificates.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// Write `ca.crt`, `ca.key`, `localhost.crt`, `localhost.key`, `client.crt`, `client.key`
/// into `out` (created if missing). Returns the files written.
pub fn generate_tls(out: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let err = |e: rcgen::Error| format!("certificate generation: {e}");

    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_key_pem = ca_key.serialize_pem();
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "accessgate DEV ONLY CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca, ca_key).map_err(err)?;

    let server_key = KeyPair::generate().map_err(err)?;
    let mut server = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .map_err(err)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost (accessgate DEV ONLY)");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let server_cert = server.signed_by(&server_key, &ca).map_err(err)?;

    let client_key = KeyPair::generate().map_err(err)?;
    let mut client = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    client
        .distinguished_name
        .push(DnType::CommonName, "accessgate dev client (DEV ONLY)");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let client_cert = client.signed_by(&client_key, &ca).map_err(err)?;

    let files = [
        ("ca.crt", ca.pem()),
        ("ca.key", ca_key_pem),
        ("localhost.crt", server_cert.pem()),
        ("localhost.key", server_key.serialize_pem()),
        ("client.crt", client_cert.pem()),
        ("client.key", client_key.serialize_pem()),
    ];
    let mut written = Vec::new();
    for (name, pem) in files {
        let p = out.join(name);
        std::fs::write(&p, pem).map_err(|e| format!("{}: {e}", p.display()))?;
        written.push(p);
    }
    Ok(written)
}

/// Everything `accessgate dev-certs` writes: TLS material plus token-signing keys and the
/// matching JWKS, and a README saying DEV ONLY.
pub fn generate_all(out: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = generate_tls(out)?;
    files.extend(
        crate::authn::dev::generate_signing_keys(out)
            .map_err(|e| format!("signing keys in {}: {e}", out.display()))?,
    );
    let readme = out.join("README.md");
    std::fs::write(&readme, DEV_README).map_err(|e| format!("{}: {e}", readme.display()))?;
    files.push(readme);
    Ok(files)
}

const DEV_README: &str = "# DEV ONLY certificates and keys

Made by `accessgate dev-certs --out certs`. They exist so that the demo, the tests and a
new user's first run work offline. The private keys are public (they are in this
repository): never use any of this in production.

- `ca.crt` / `ca.key`: a development certificate authority (pass `--cacert certs/ca.crt` to curl)
- `localhost.crt` / `localhost.key`: server certificate for localhost, 127.0.0.1 and ::1
- `client.crt` / `client.key`: a client certificate for trying `[listen] client_ca`
- `dev-signing-rsa.pem`, `dev-signing-ec.pem`: token-signing keys used by `accessgate dev-token`
- `dev-jwks.json`: the public keys for those, which the demo config trusts
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_material_loads_into_rustls() {
        let dir = std::env::temp_dir().join(format!("accessgate-devcerts-{}", std::process::id()));
        let files = generate_tls(&dir).unwrap();
        assert_eq!(files.len(), 6);
        let certs = crate::transport::tls::load_certs(&dir.join("localhost.crt")).unwrap();
        assert_eq!(certs.len(), 1);
        crate::transport::tls::load_key(&dir.join("localhost.key")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for c in crate::transport::tls::load_certs(&dir.join("ca.crt")).unwrap() {
            roots.add(c).unwrap();
        }
        assert_eq!(roots.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
