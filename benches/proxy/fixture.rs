//! What the scenarios run on, written under `target/bench/`: DEV certificates and signing
//! keys, policy state files, gateway configs (20 policies), and the bench tokens.
//!
//! The benchmark caller is one user on one iOS device using an approved app with app
//! protection: every applicable policy is satisfied, so the gateway must answer 200. The
//! harness checks that before it measures anything (a fast 403 is not a result).

use std::fmt::Write as _;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use accessgate::authn::dev::{DevSigner, DevTokenOptions};
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub const ISSUER: &str =
    "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0";
pub const AUDIENCE: &str = "api://corp-api";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The benchmark caller: user, approved client app, device, group.
const USER: &str = "b0000000-0000-4000-8000-00000000beef";
const APP: &str = "0c1307d4-29d6-4389-a11c-5cbe7f65d7fa";
const DEVICE: &str = "d0000000-0000-4000-8000-00000000beef";
const GROUP: &str = "6b1f0c2e-0000-4000-8000-00000000b001";
const BREAK_GLASS: &str = "6b1f0c2e-0000-4000-8000-0000000000ff";
const ADMINS: &str = "6b1f0c2e-0000-4000-8000-0000000000ad";
const CONTRACTORS: &str = "6b1f0c2e-0000-4000-8000-0000000000c0";
const OTHER_APPS: [&str; 3] = [
    "11111111-1111-4111-8111-111111111111",
    "22222222-2222-4222-8222-222222222222",
    "33333333-3333-4333-8333-333333333333",
];
/// The path every scenario requests (matched by the `corp-api` route).
pub const PATH: &str = "/api/v1/ping";

/// Files shared by every scenario.
pub struct Fixture {
    pub dir: PathBuf,
    pub certs: PathBuf,
    pub signer: DevSigner,
}

/// `target/bench` (or `$CARGO_TARGET_DIR/bench`).
pub fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    target.join("bench")
}

impl Fixture {
    /// Fresh DEV TLS material and signing keys (cheap; never reused across runs).
    pub fn prepare() -> Result<Self, String> {
        let dir = bench_dir();
        let certs = dir.join("certs");
        std::fs::create_dir_all(&certs).map_err(|e| format!("{}: {e}", certs.display()))?;
        accessgate::cli::devcerts::generate_all(&certs)?;
        let signer = DevSigner::load(&certs).map_err(|e| e.to_string())?;
        Ok(Self { dir, certs, signer })
    }

    pub fn ca(&self) -> PathBuf {
        self.certs.join("ca.crt")
    }

    /// The RSA signing key's public half as a PEM `PUBLIC KEY` (HAProxy's `jwt_verify`).
    pub fn rsa_public_pem(&self) -> Result<String, String> {
        use rustls_pki_types::PrivatePkcs8KeyDer;
        use rustls_pki_types::pem::PemObject as _;
        let path = self.certs.join(accessgate::authn::dev::RSA_KEY_FILE);
        let der = PrivatePkcs8KeyDer::from_pem_file(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let spki = pair
            .public_key()
            .as_der()
            .map_err(|_| "RSA public key encoding failed".to_owned())?;
        let b64 = STANDARD.encode(spki.as_ref());
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        Ok(pem)
    }

    /// The claims of the benchmark caller's token.
    fn token_options(lifetime: Duration) -> DevTokenOptions {
        DevTokenOptions {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            subject: "bench-user".to_owned(),
            oid: Some(USER.to_owned()),
            tid: Some(TENANT.to_owned()),
            azp: Some(APP.to_owned()),
            deviceid: Some(DEVICE.to_owned()),
            amr: vec!["pwd".to_owned(), "mfa".to_owned()],
            scp: Some("user_impersonation".to_owned()),
            expires_in: lifetime,
            ..DevTokenOptions::default()
        }
    }

    pub fn token(&self, lifetime: Duration) -> Result<String, String> {
        self.signer
            .mint(&Self::token_options(lifetime))
            .map_err(|e| e.to_string())
    }

    /// `n` distinct tokens (each has its own random `jti`), minted on every core: RSA
    /// signing is the slow part (about 1 ms each), so this runs before anything is pinned.
    pub fn token_pool(&self, n: usize, lifetime: Duration) -> Result<Vec<String>, String> {
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        let per = n.div_ceil(threads);
        let certs = self.certs.clone();
        let parts: Vec<Result<Vec<String>, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let certs = certs.clone();
                    s.spawn(move || {
                        let signer = DevSigner::load(&certs).map_err(|e| e.to_string())?;
                        let opts = Self::token_options(lifetime);
                        let count = per.min(n.saturating_sub(t * per));
                        (0..count)
                            .map(|_| signer.mint(&opts).map_err(|e| e.to_string()))
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("minting thread panicked".into()))
                })
                .collect()
        });
        let mut out = Vec::with_capacity(n);
        for p in parts {
            out.extend(p?);
        }
        Ok(out)
    }
}

/// Write a `state.json` with the benchmark caller plus `filler` users and registrations
/// and `devices` devices in total. Streams to disk: the 1M-device file is ~130 MB and
/// never held in memory.
pub fn write_state(path: &Path, filler: usize, devices: usize) -> Result<(), String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())?;
    let file = std::fs::File::create(path).map_err(err)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let user = |id: &str, group: &str| {
        format!(
            r#"{{"id":"{id}","accountEnabled":true,"licensed":true,"groups":["{group}"],"revokeSessionsAfter":"2020-01-01T00:00:00Z"}}"#
        )
    };
    write!(w, "{{\"users\":[{}", user(USER, GROUP)).map_err(err)?;
    for i in 0..filler {
        let g = if i % 10 == 0 { CONTRACTORS } else { GROUP };
        write!(w, ",{}", user(&filler_id("a000", i), g)).map_err(err)?;
    }
    write!(
        w,
        r#"],"devices":[{{"azureADDeviceId":"{DEVICE}","complianceState":"compliant","operatingSystem":"iOS","osVersion":"17.4","noncompliantSince":null}}"#
    )
    .map_err(err)?;
    const OS: [(&str, &str); 4] = [
        ("iOS", "17.4"),
        ("Android", "14"),
        ("Windows", "10.0.22631"),
        ("macOS", "14.4"),
    ];
    const COMPLIANCE: [&str; 5] = [
        "compliant",
        "compliant",
        "inGracePeriod",
        "noncompliant",
        "unknown",
    ];
    for i in 1..devices {
        let (os, ver) = OS[i % OS.len()];
        let state = COMPLIANCE[i % COMPLIANCE.len()];
        let since = if state == "noncompliant" {
            "\"2026-01-01T00:00:00Z\""
        } else {
            "null"
        };
        write!(
            w,
            r#",{{"azureADDeviceId":"{}","complianceState":"{state}","operatingSystem":"{os}","osVersion":"{ver}","noncompliantSince":{since}}}"#,
            filler_id("d000", i)
        )
        .map_err(err)?;
    }
    write!(
        w,
        r#"],"appProtectionPolicies":[{{"id":"bench-ios","displayName":"iOS app protection","platform":"ios","apps":["{APP}","{}"],"includeGroups":["{GROUP}"],"excludeGroups":["{BREAK_GLASS}"],"periodOfflineBeforeAccessCheck":"PT24H","pinRequired":true,"minimumRequiredOsVersion":"16.0","minimumRequiredAppVersion":"5.0.0"}},{{"id":"bench-android","displayName":"Android app protection","platform":"android","apps":["{APP}"],"includeGroups":["{GROUP}"],"excludeGroups":[],"periodOfflineBeforeAccessCheck":"PT12H","pinRequired":true,"minimumRequiredOsVersion":"12"}}]"#,
        OTHER_APPS[1]
    )
    .map_err(err)?;
    let reg = |user: &str, device: &str| {
        format!(
            r#"{{"userId":"{user}","appId":"{APP}","azureADDeviceId":"{device}","platform":"ios","applicationVersion":"5.2.0","platformVersion":"17.4","flaggedReasons":[],"lastSyncDateTime":"{now}","complianceState":"compliant","noncompliantSince":null,"remediation":"pending"}}"#
        )
    };
    write!(w, r#","appRegistrations":[{}"#, reg(USER, DEVICE)).map_err(err)?;
    for i in 0..filler {
        write!(
            w,
            ",{}",
            reg(&filler_id("a000", i), &filler_id("d000", i + 1))
        )
        .map_err(err)?;
    }
    w.write_all(b"]}\n").map_err(err)?;
    w.flush().map_err(err)
}

fn filler_id(tag: &str, i: usize) -> String {
    format!("{i:08x}-{tag}-4000-8000-{i:012x}")
}

/// How a gateway config differs between scenarios.
#[derive(Debug, Clone)]
pub struct GatewayVariant<'a> {
    pub name: &'a str,
    /// `auth = "required"` + the 20 policies apply; false = `auth = "none"`.
    pub auth: bool,
    pub cache_capacity: u64,
    pub state: &'a Path,
    pub worker_threads: usize,
    /// `[runtime] scheduler`, when one is asked for (`BENCH_SCHEDULER`).
    pub scheduler: Option<&'a str>,
    pub upstream: std::net::SocketAddr,
    /// The shipped defaults: no `worker_threads` line, and the decision log on (to a file
    /// under `target/bench/`, as an operator keeps it) instead of off.
    pub shipped: bool,
}

/// Write `target/bench/gw-<name>.toml`, check it with the gateway's own validator, and
/// return its path.
pub fn write_gateway_config(fx: &Fixture, v: &GatewayVariant<'_>) -> Result<PathBuf, String> {
    let text = gateway_config(fx, v);
    let path = fx.dir.join(format!("gw-{}.toml", v.name));
    std::fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    accessgate::config::parse_str(&text, &path)
        .map_err(|e| format!("bench config {} is invalid: {e}", path.display()))?;
    Ok(path)
}

fn gateway_config(fx: &Fixture, v: &GatewayVariant<'_>) -> String {
    let certs = fx.certs.display();
    let up = format!("http://{}", v.upstream);
    let auth = if v.auth { "required" } else { "none" };
    let mut s = format!(
        r#"# Written by benches/proxy.rs for scenario {name}. DEV ONLY material.
[listen]
address = "127.0.0.1:0"
tls_cert = "{certs}/localhost.crt"
tls_key = "{certs}/localhost.key"
idle_timeout = "600s"
max_connections = 30000

[runtime]
worker_threads = {wt}
shutdown_grace = "1s"

[admin]
address = "127.0.0.1:0"

[[issuers]]
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
jwks_file = "{certs}/dev-jwks.json"
algorithms = ["RS256"]
authorization_uri = "https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/authorize"

[tokens]
cache_capacity = {cap}

[state]
source = "file"
path = "{state}"
refresh = "10s"
max_staleness = "1h"

[[routes]]
name = "corp-api"
path_prefix = "/"
upstream = "{up}"
resource = "corp-api"
auth = "{auth}"
"#,
        name = v.name,
        wt = v.worker_threads,
        cap = v.cache_capacity,
        state = v.state.display(),
    );
    for r in ["hr-api", "finance-api", "payroll", "crm", "wiki"] {
        let _ = write!(
            s,
            "\n[[routes]]\nname = \"{r}\"\npath_prefix = \"/{r}\"\nupstream = \"{up}\"\nresource = \"{r}\"\n"
        );
    }
    s.push_str(&policies());
    let _ = write!(
        s,
        "\n[approved_apps]\nids = [\"{APP}\", \"{}\"]\n\n[log]\nlevel = \"warn\"\ndecisions = \"off\"\n",
        OTHER_APPS[1]
    );
    if let (Some(sched), false) = (v.scheduler, v.shipped) {
        s = s.replace(
            "[runtime]\n",
            &format!("[runtime]\nscheduler = \"{sched}\"\n"),
        );
    }
    if v.shipped {
        let log = fx.dir.join(format!("decisions-{}.log", v.name));
        s = s
            .replace(&format!("worker_threads = {}\n", v.worker_threads), "")
            .replace(
                "decisions = \"off\"",
                &format!("decisions = {:?}", log.display().to_string()),
            );
    }
    s
}

/// 20 policies: 5 apply to the benchmark caller (3 enforced, all satisfied; 2 report-only)
/// and 15 do not (other resources, platforms, client apps, groups, locations, disabled).
fn policies() -> String {
    let [legacy, partner, partner2] = OTHER_APPS;
    format!(
        r#"
# --- applicable to the benchmark caller ---
[[policies]]
name = "mobile-requires-app-protection"
resources = ["corp-api"]
include_users = ["all"]
exclude_groups = ["{BREAK_GLASS}"]
platforms = ["ios", "android"]
locations = {{ exclude = ["10.0.0.0/8"] }}
grant = {{ operator = "all", controls = ["approved_app", "app_protection", "compliant_device"] }}
session = {{ sign_in_frequency = "8h" }}
remediation = {{ enabled = true, window = "15m" }}

[[policies]]
name = "all-apps-require-compliant-device"
resources = ["all"]
include_groups = ["{GROUP}"]
exclude_groups = ["{BREAK_GLASS}"]
grant = {{ controls = ["compliant_device"] }}

[[policies]]
name = "corp-api-approved-or-protected-app"
resources = ["corp-api"]
include_users = ["all"]
grant = {{ operator = "any", controls = ["approved_app", "app_protection"] }}

[[policies]]
name = "report-only-require-mfa"
mode = "report_only"
resources = ["all"]
include_users = ["all"]
grant = {{ controls = ["mfa"] }}

[[policies]]
name = "report-only-block-outside-office"
mode = "report_only"
resources = ["corp-api"]
include_users = ["all"]
locations = {{ exclude = ["10.0.0.0/8"] }}
grant = {{ block = true }}

# --- not applicable: other resources ---
[[policies]]
name = "hr-api-mfa"
resources = ["hr-api"]
include_users = ["all"]
grant = {{ controls = ["mfa"] }}

[[policies]]
name = "finance-api-compliant-and-mfa"
resources = ["finance-api"]
include_users = ["all"]
grant = {{ operator = "all", controls = ["compliant_device", "mfa"] }}

[[policies]]
name = "finance-api-block-contractors"
resources = ["finance-api"]
include_groups = ["{CONTRACTORS}"]
grant = {{ block = true }}

[[policies]]
name = "payroll-app-protection"
resources = ["payroll"]
include_users = ["all"]
grant = {{ controls = ["app_protection"] }}

[[policies]]
name = "crm-approved-app"
resources = ["crm"]
include_users = ["all"]
grant = {{ controls = ["approved_app"] }}

[[policies]]
name = "wiki-block-linux"
resources = ["wiki"]
include_users = ["all"]
platforms = ["linux"]
grant = {{ block = true }}

# --- not applicable: other platforms ---
[[policies]]
name = "windows-requires-compliance"
resources = ["all"]
include_users = ["all"]
platforms = ["windows"]
grant = {{ controls = ["compliant_device"] }}

[[policies]]
name = "macos-requires-compliance"
resources = ["all"]
include_users = ["all"]
platforms = ["macos"]
grant = {{ controls = ["compliant_device"] }}

[[policies]]
name = "android-requires-app-protection"
resources = ["corp-api"]
include_users = ["all"]
platforms = ["android"]
grant = {{ operator = "all", controls = ["approved_app", "app_protection"] }}

[[policies]]
name = "block-linux"
resources = ["all"]
include_users = ["all"]
platforms = ["linux"]
grant = {{ block = true }}

# --- not applicable: other client apps, groups, locations; disabled ---
[[policies]]
name = "block-legacy-client"
resources = ["all"]
include_users = ["all"]
client_apps = ["{legacy}"]
grant = {{ block = true }}

[[policies]]
name = "partner-apps-need-mfa"
resources = ["corp-api"]
include_users = ["all"]
client_apps = ["{partner}", "{partner2}"]
grant = {{ controls = ["mfa"] }}

[[policies]]
name = "admins-step-up"
resources = ["corp-api"]
include_groups = ["{ADMINS}"]
grant = {{ controls = ["mfa"], auth_context = "c1" }}

[[policies]]
name = "block-untrusted-network"
resources = ["all"]
include_users = ["all"]
locations = {{ include = ["203.0.113.0/24"] }}
grant = {{ block = true }}

[[policies]]
name = "disabled-block-everyone"
mode = "disabled"
resources = ["all"]
include_users = ["all"]
grant = {{ block = true }}
"#
    )
}
