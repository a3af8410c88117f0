//! `accessgate dev-certs`: a DEV ONLY certificate authority, a server certificate for
//! localhost / 127.0.0.1 / ::1, and a client certificate for trying mutual TLS.
//! Never use these in production: the CA key sits next to the certificates.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// How long DEV certificates are valid. Short on purpose: a DEV CA that a browser or a
/// system store was told to trust stops being a risk on its own (rcgen's default window,
/// 1975 to 4096, never would).
pub const VALID_DAYS: i64 = 90;

/// How far `not_before` lies in the past, so a machine whose clock runs a little behind
/// the one that made the certificates still accepts them.
pub const BACKDATE: time::Duration = time::Duration::hours(1);

/// The validity window of certificates made at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: time::OffsetDateTime,
    pub not_after: time::OffsetDateTime,
}

impl Validity {
    /// `now - BACKDATE` to `now + VALID_DAYS`, to the second.
    pub fn from(now: time::OffsetDateTime) -> Self {
        let now = now.replace_nanosecond(0).unwrap_or(now);
        Self {
            not_before: now - BACKDATE,
            not_after: now + time::Duration::days(VALID_DAYS),
        }
    }

    fn apply(&self, params: &mut CertificateParams) {
        params.not_before = self.not_before;
        params.not_after = self.not_after;
    }
}

impl std::fmt::Display for Validity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fmt = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| t.unix_timestamp().to_string())
        };
        write!(
            f,
            "valid from {} until {} ({VALID_DAYS} days)",
            fmt(self.not_before),
            fmt(self.not_after)
        )
    }
}

/// Write `ca.crt`, `ca.key`, `localhost.crt`, `localhost.key`, `client.crt`, `client.key`
/// into `out` (created if missing), valid from now (see [`Validity`]). Returns the files
/// written.
pub fn generate_tls(out: &Path) -> Result<Vec<PathBuf>, String> {
    generate_tls_valid(out, Validity::from(time::OffsetDateTime::now_utc()))
}

/// As [`generate_tls`], for a given validity window.
pub fn generate_tls_valid(out: &Path, valid: Validity) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let err = |e: rcgen::Error| format!("certificate generation: {e}");

    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_key_pem = ca_key.serialize_pem();
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    valid.apply(&mut ca);
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
    valid.apply(&mut server);
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost (accessgate DEV ONLY)");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let server_cert = server.signed_by(&server_key, &ca).map_err(err)?;

    let client_key = KeyPair::generate().map_err(err)?;
    let mut client = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    valid.apply(&mut client);
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
    generate_all_valid(out, Validity::from(time::OffsetDateTime::now_utc()))
}

/// As [`generate_all`], with certificates valid for `valid`.
pub fn generate_all_valid(out: &Path, valid: Validity) -> Result<Vec<PathBuf>, String> {
    let mut files = generate_tls_valid(out, valid)?;
    files.extend(
        crate::authn::dev::generate_signing_keys(out)
            .map_err(|e| format!("signing keys in {}: {e}", out.display()))?,
    );
    let assertion = out.join("dev-assertion-ec.pem");
    crate::snapshot::assertion::write_dev_key(&assertion)?;
    files.push(assertion);
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
- the certificates are valid for 90 days from when they were made (an hour earlier, for
  clock skew): run `accessgate dev-certs` again when they expire
- `dev-signing-rsa.pem`, `dev-signing-ec.pem`: token-signing keys used by `accessgate dev-token`
- `dev-jwks.json`: the public keys for those, which the demo config trusts
- `dev-assertion-ec.pem`: a P-256 key for `[assertion] keys` (the identity assertion the
  gateway signs for upstreams)
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
