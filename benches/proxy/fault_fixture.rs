//! What the fault soak serves and signs with, made before the run: certificate
//! generations (each its own DEV CA + `localhost` pair), signing-key generations (fresh
//! RSA keys with their own kids), the tokens of every class for every key generation, the
//! state document in its two shapes, the JWKS for a set of key generations, and the
//! gateway config (with a harmless route that changes on every reload).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use accessgate::authn::dev::{DevSigner, DevTokenOptions};
use bytes::Bytes;
use http::HeaderValue;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::{Value, json};

use super::expect::KeySet;
use super::load::GenTokens;
use crate::fixture::{AUDIENCE, ISSUER};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const APP: &str = "0c1307d4-29d6-4389-a11c-5cbe7f65d7fa";
pub const USER_GOOD: &str = "50000000-0000-4000-8000-00000000000a";
pub const USER_FLIP: &str = "50000000-0000-4000-8000-00000000000b";
pub const USER_BLOCKED: &str = "50000000-0000-4000-8000-00000000000c";
const DEV_GOOD: &str = "5d000000-0000-4000-8000-00000000000a";
const DEV_FLIP: &str = "5d000000-0000-4000-8000-00000000000b";
const DEV_BLOCKED: &str = "5d000000-0000-4000-8000-00000000000c";
const GROUP: &str = "5a000000-0000-4000-8000-000000000001";
const BLOCKED_GROUP: &str = "5a000000-0000-4000-8000-0000000000b0";

/// One certificate generation.
pub struct CertGen {
    pub ca: CertificateDer<'static>,
    pub cert_der: Vec<u8>,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

/// `n` certificate generations under `dir/certs-<g>`.
pub fn cert_gens(dir: &Path, n: usize) -> Result<Vec<CertGen>, String> {
    (0..n)
        .map(|g| {
            let d = dir.join(format!("certs-{g}"));
            accessgate::cli::devcerts::generate_tls(&d)?;
            let ca = CertificateDer::from_pem_file(d.join("ca.crt"))
                .map_err(|e| format!("{}: {e}", d.display()))?;
            let cert = CertificateDer::from_pem_file(d.join("localhost.crt"))
                .map_err(|e| format!("{}: {e}", d.display()))?;
            Ok(CertGen {
                ca,
                cert_der: cert.as_ref().to_vec(),
                cert_pem: d.join("localhost.crt"),
                key_pem: d.join("localhost.key"),
            })
        })
        .collect()
}

/// `n` signing-key generations (RSA key generation is slow: on every core).
pub fn signers(n: usize) -> Result<Vec<DevSigner>, String> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|g| {
                s.spawn(move || {
                    DevSigner::generate(&format!("soak-rsa-{g}"), &format!("soak-ec-{g}"))
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("key generation panicked".into()))
            })
            .collect()
    })
}

fn options(user: &str, device: &str, lifetime: Duration) -> DevTokenOptions {
    DevTokenOptions {
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        subject: format!("soak-{user}"),
        oid: Some(user.to_owned()),
        tid: Some(TENANT.to_owned()),
        azp: Some(APP.to_owned()),
        deviceid: Some(device.to_owned()),
        amr: vec!["pwd".to_owned(), "mfa".to_owned()],
        expires_in: lifetime,
        ..DevTokenOptions::default()
    }
}

fn bearer(t: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(&format!("Bearer {t}")).map_err(|e| e.to_string())
}

/// The same token with one character in the middle of its signature changed.
fn forge(token: &str) -> Result<String, String> {
    let sig_start = token.rfind('.').ok_or("token without signature")? + 1;
    let i = sig_start + (token.len() - sig_start) / 2;
    let mut bytes = token.as_bytes().to_vec();
    let b = bytes.get_mut(i).ok_or("empty signature")?;
    *b = if *b == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// Every class's token, signed by `signer`.
pub fn tokens(signer: &DevSigner, lifetime: Duration) -> Result<GenTokens, String> {
    let mint = |o: &DevTokenOptions| signer.mint(o).map_err(|e| e.to_string());
    let good = mint(&options(USER_GOOD, DEV_GOOD, lifetime))?;
    let mut expired = options(USER_GOOD, DEV_GOOD, lifetime);
    let now = accessgate::clock::unix_now();
    expired.iat = Some(now - 7200);
    expired.extra.insert("exp".into(), json!(now - 3600));
    Ok(GenTokens {
        forged: bearer(&forge(&good)?)?,
        good: bearer(&good)?,
        flip: bearer(&mint(&options(USER_FLIP, DEV_FLIP, lifetime))?)?,
        blocked: bearer(&mint(&options(USER_BLOCKED, DEV_BLOCKED, lifetime))?)?,
        expired: bearer(&mint(&expired)?)?,
    })
}

/// The JWKS publishing the key generations in `set`.
pub fn jwks(signers: &[DevSigner], set: KeySet) -> Bytes {
    let mut keys = Vec::new();
    for (g, s) in signers.iter().enumerate() {
        if g < 64
            && set & (1 << g) != 0
            && let Some(ks) = s.jwks()["keys"].as_array()
        {
            keys.extend(ks.iter().cloned());
        }
    }
    Bytes::from(json!({ "keys": keys }).to_string())
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "2026-01-01T00:00:00Z".to_owned())
}

/// The state: three users on iOS devices; the flip user's device compliant or not.
pub fn state(flip_noncompliant: bool) -> Bytes {
    let now = accessgate::clock::unix_now();
    let user = |id: &str, groups: Value| {
        json!({"id": id, "accountEnabled": true, "licensed": true, "groups": groups,
               "revokeSessionsAfter": "2020-01-01T00:00:00Z"})
    };
    let device = |id: &str, noncompliant: bool| {
        json!({"azureADDeviceId": id,
               "complianceState": if noncompliant { "noncompliant" } else { "compliant" },
               "operatingSystem": "iOS", "osVersion": "17.4",
               "noncompliantSince": if noncompliant { Value::from(rfc3339(now - 10)) } else { Value::Null },
               "remediation": "pending"})
    };
    let doc = json!({
        "users": [user(USER_GOOD, json!([GROUP])), user(USER_FLIP, json!([GROUP])),
                  user(USER_BLOCKED, json!([GROUP, BLOCKED_GROUP]))],
        "devices": [device(DEV_GOOD, false), device(DEV_FLIP, flip_noncompliant),
                    device(DEV_BLOCKED, false)],
        "appProtectionPolicies": [],
        "appRegistrations": [],
    });
    Bytes::from(doc.to_string())
}

/// Where the config and the live TLS files are.
pub struct Live {
    pub config: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Live {
    pub fn new(dir: &Path) -> Result<Self, String> {
        let dir = dir.join("live");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let dir = std::path::absolute(&dir).map_err(|e| e.to_string())?;
        Ok(Self {
            config: dir.join("gateway.toml"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        })
    }

    /// Replace `to` by a copy of `from`, atomically (write aside, rename).
    fn replace(from: &Path, to: &Path) -> Result<(), String> {
        let tmp = to.with_extension("swap");
        std::fs::copy(from, &tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, to).map_err(|e| format!("{}: {e}", to.display()))
    }

    /// Put certificate generation `g` in place: key, then certificate, each by rename.
    pub fn install_cert(&self, g: &CertGen) -> Result<(), String> {
        Self::replace(&g.key_pem, &self.key)?;
        Self::replace(&g.cert_pem, &self.cert)
    }

    /// Write the config (atomically); `marker` is the harmless change between reloads.
    pub fn write_config(
        &self,
        upstream: std::net::SocketAddr,
        jwks: std::net::SocketAddr,
        state: std::net::SocketAddr,
        marker: usize,
    ) -> Result<(), String> {
        let mut s = format!(
            r#"# Written by benches/proxy/fault_soak.rs. DEV ONLY material.
[listen]
address = "127.0.0.1:0"
tls_cert = "{cert}"
tls_key = "{key}"
idle_timeout = "60s"

[runtime]
worker_threads = 1
shutdown_grace = "1s"

[admin]
address = "127.0.0.1:0"

[[issuers]]
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
jwks_uri = "http://{jwks}/keys"
algorithms = ["RS256"]

[tokens]
jwks_refresh = "2s"
jwks_min_refetch = "1s"

[state]
source = "http"
url = "http://{state}/state.json"
refresh = "1s"
max_staleness = "60s"

[[routes]]
name = "corp-api"
path_prefix = "/"
upstream = "http://{upstream}"
resource = "corp-api"
auth = "required"
"#,
            cert = self.cert.display(),
            key = self.key.display(),
        );
        let _ = write!(
            s,
            r#"
# The harmless change: a route no request takes, renamed on every reload.
[[routes]]
name = "reload-marker"
path_prefix = "/reload-marker-{marker}"
upstream = "http://{upstream}"
resource = "reload-marker"
auth = "required"

[[policies]]
name = "compliant-device"
resources = ["corp-api"]
include_groups = ["{GROUP}"]
grant = {{ controls = ["compliant_device"] }}
remediation = {{ enabled = true, window = "15m" }}

[[policies]]
name = "block-group"
resources = ["all"]
include_groups = ["{BLOCKED_GROUP}"]
grant = {{ block = true }}

[log]
level = "warn"
decisions = "off"
"#
        );
        accessgate::config::parse_str(&s, &self.config)
            .map_err(|e| format!("fault soak config is invalid: {e}"))?;
        let tmp = self.config.with_extension("toml.tmp");
        std::fs::write(&tmp, &s).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.config).map_err(|e| format!("{}: {e}", self.config.display()))
    }
}

/// The hash `accessgate_config_info` will show once the config file is live.
pub fn config_hash(path: &Path) -> Result<String, String> {
    accessgate::config::load(path)
        .map(|c| accessgate::gateway::config_hash(&c))
        .map_err(|e| e.to_string())
}
