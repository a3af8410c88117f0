//! Finding 7: `dev-certs` material is valid for a short window (90 days from now, not
//! before a little in the past for clock skew), and `dev-certs` says so.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::ServerCertVerifier;
use rustls::{CertificateError, Error};
use rustls_pki_types::{ServerName, UnixTime};

const DAY: u64 = 24 * 3600;

fn verify_at(dir: &std::path::Path, cert: &str, at: UnixTime) -> Result<(), Error> {
    accessgate::transport::tls::install_provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in accessgate::transport::tls::load_certs(&dir.join("ca.crt")).unwrap() {
        roots.add(c).unwrap();
    }
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        accessgate::transport::tls::provider(),
    )
    .build()
    .unwrap();
    let chain = accessgate::transport::tls::load_certs(&dir.join(cert)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    verifier
        .verify_server_cert(&chain[0], &[], &name, &[], at)
        .map(|_| ())
}

fn at(now: u64, plus: i64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(now.saturating_add_signed(plus)))
}

#[test]
fn dev_certificates_are_valid_for_90_days_from_now() {
    let dir = tempfile::tempdir().unwrap();
    accessgate::cli::devcerts::generate_tls(dir.path()).unwrap();
    let now = UnixTime::now().as_secs();
    // Valid now, a minute ago (clock skew between machines) and in 89 days.
    for plus in [0, -60, 89 * DAY as i64] {
        verify_at(dir.path(), "localhost.crt", at(now, plus))
            .unwrap_or_else(|e| panic!("not valid at now{plus:+}s: {e:?}"));
    }
    match verify_at(dir.path(), "localhost.crt", at(now, 91 * DAY as i64)) {
        Err(Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        )) => {}
        other => panic!("still valid 91 days from now: {other:?}"),
    }
    match verify_at(dir.path(), "localhost.crt", at(now, -2 * DAY as i64)) {
        Err(Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        )) => {}
        other => panic!("already valid two days ago: {other:?}"),
    }
}

#[test]
fn dev_certs_prints_the_validity_window() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_accessgate"))
        .args(["dev-certs", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let until = (now + time::Duration::days(90)).date();
    let line = text
        .lines()
        .find(|l| l.contains("valid from"))
        .unwrap_or_else(|| panic!("no validity line in:\n{text}"));
    assert!(line.contains(&until.to_string()), "{line}");
    assert!(line.contains("90 days"), "{line}");
}
