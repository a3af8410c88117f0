//! The gateway the end-to-end authentication tests run against, and the assertions they
//! share: one helper per kind of answer (401 `invalid_token`, 401 bare challenge, 400
//! `invalid_request`, forwarded), each over HTTP/1.1 and HTTP/2.

use accessgate::authn::dev::{DEMO_AUDIENCE, DEMO_ISSUER, DevAlg, DevSigner, DevTokenOptions};
use serde_json::{Value, json};

use super::authn::b64;
use super::*;

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const OTHER_TENANT: &str = "0b3c1e2d-0000-4000-8000-00000000dead";
pub const AUDIENCE: &str = "api://corp-api";
pub const USER: &str = "5c2a9f7e-1b3d-4e8f-9a0b-c1d2e3f4a5b6";
pub const APP: &str = "0c1307d4-29d6-4389-a11c-5cbe7f65d7fa";

pub fn v2_issuer() -> String {
    format!("https://login.microsoftonline.com/{TENANT}/v2.0")
}

pub fn v1_issuer() -> String {
    format!("https://sts.windows.net/{TENANT}/")
}

pub const EMPTY_STATE: &str =
    r#"{"users":[],"devices":[],"appProtectionPolicies":[],"appRegistrations":[]}"#;

/// Three issuers on the dev signing keys: Entra v2 and v1 (RS256 only) and the demo issuer
/// (RS256 and ES256). Routes: `/open` (no auth), `/strip` (`forward_token = false`) and `/`
/// (auth required). `max_header_bytes` is raised so the gateway's own 16 KiB token limit,
/// not hyper's 431, is what refuses a 64 KiB token.
pub fn gateway_config() -> String {
    let (v2, v1) = (v2_issuer(), v1_issuer());
    format!(
        r#"
[listen]
address = "127.0.0.1:0"
tls_cert = "{{certs}}/localhost.crt"
tls_key = "{{certs}}/localhost.key"
header_read_timeout = "5s"
idle_timeout = "10s"
max_header_bytes = 131072

[admin]
address = "127.0.0.1:0"

[runtime]
shutdown_grace = "2s"

[log]
decisions = "off"

[tokens]
clock_skew = "60s"

[[issuers]]
issuer = "{v2}"
audiences = ["{AUDIENCE}"]
jwks_file = "{{certs}}/dev-jwks.json"
algorithms = ["RS256"]

[[issuers]]
issuer = "{v1}"
audiences = ["{AUDIENCE}"]
jwks_file = "{{certs}}/dev-jwks.json"
algorithms = ["RS256"]

[[issuers]]
issuer = "{DEMO_ISSUER}"
audiences = ["{DEMO_AUDIENCE}"]
jwks_file = "{{certs}}/dev-jwks.json"
algorithms = ["RS256", "ES256"]

[state]
source = "file"
path = "{{certs}}/state.json"

[[routes]]
name = "open"
path_prefix = "/open"
upstream = "{{upstream}}"
auth = "none"

[[routes]]
name = "strip"
path_prefix = "/strip"
upstream = "{{upstream}}"
forward_token = false

[[routes]]
name = "api"
path_prefix = "/"
upstream = "{{upstream}}"
auth = "required"
"#
    )
}

/// A running gateway, its upstream, the dev signer its JWKS trusts, and both clients.
pub struct Fx {
    pub gw: TestGateway,
    pub up: Upstream,
    pub signer: DevSigner,
    h1: TestClient,
    h2: TestClient,
}

impl Fx {
    pub async fn start() -> Self {
        let up = Upstream::start().await;
        let certs = Certs::new();
        std::fs::write(certs.path("state.json"), EMPTY_STATE).unwrap();
        let signer = DevSigner::load(certs.dir.path()).unwrap();
        let gw = TestGateway::start_with(certs, &gateway_config(), &up.url()).await;
        let (h1, h2) = (client(&gw.ca(), false), client(&gw.ca(), true));
        Self {
            gw,
            up,
            signer,
            h1,
            h2,
        }
    }

    /// Options for a valid Entra v2 token (RS256) for [`USER`].
    pub fn v2(&self) -> DevTokenOptions {
        DevTokenOptions {
            issuer: v2_issuer(),
            audience: AUDIENCE.to_owned(),
            oid: Some(USER.to_owned()),
            tid: Some(TENANT.to_owned()),
            azp: Some(APP.to_owned()),
            ..DevTokenOptions::default()
        }
    }

    /// The claims of [`Self::v2`] as a JSON object, times relative to now.
    pub fn claims(&self) -> Value {
        Value::Object(self.v2().claims(unix_now()))
    }

    pub fn rs_header(&self) -> Value {
        json!({"alg": "RS256", "typ": "JWT", "kid": self.signer.kid(DevAlg::RS256)})
    }

    /// A valid v2 token whose claim `k` is replaced by `v` (re-signed, so only `k` is wrong).
    pub fn with_claim(&self, k: &str, v: Value) -> String {
        let mut c = self.claims();
        c[k] = v;
        self.signer
            .sign(DevAlg::RS256, &self.rs_header(), &c)
            .unwrap()
    }

    pub fn good(&self) -> String {
        self.signer.mint(&self.v2()).unwrap()
    }

    pub fn rejections(&self, reason: &str) -> f64 {
        let text = String::from_utf8(self.gw.gw().metrics().encode()).unwrap();
        metric_in(
            &text,
            "accessgate_token_rejections_total",
            &[("reason", reason)],
        )
    }

    pub async fn call(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        h2: bool,
    ) -> (http::response::Parts, bytes::Bytes) {
        let c = if h2 { &self.h2 } else { &self.h1 };
        let (parts, body) = send(c, get(&self.gw.url(path), headers)).await;
        let want = if h2 {
            http::Version::HTTP_2
        } else {
            http::Version::HTTP_11
        };
        assert_eq!(parts.version, want);
        (parts, body)
    }

    /// Send `Authorization: <authz>` to `/` over HTTP/1.1 and HTTP/2; expect 401
    /// `invalid_token` both times, a description that echoes nothing of `authz`, the
    /// counter for `reason` up by two, and an upstream that saw nothing.
    pub async fn expect_invalid_token(&self, authz: &str, reason: &str) {
        let before = self.rejections(reason);
        let before_up = self.up.count();
        for h2 in [false, true] {
            let (parts, body) = self.call("/", &[("authorization", authz)], h2).await;
            let v = assert_problem(&parts, &body, 401);
            assert_eq!(v["reason"], "invalid_token", "h2={h2}: {v}");
            let c = challenge_of(&parts);
            assert_eq!(c.names(), ["realm", "error", "error_description"], "{c:?}");
            assert_eq!(c.get("error"), Some("invalid_token"));
            let d = c.get("error_description").unwrap();
            assert!(!d.is_empty() && d.len() <= 64, "description {d:?}");
            assert_echoes_nothing(d, authz);
            assert_echoes_nothing(v["detail"].as_str().unwrap(), authz);
            assert_echoes_nothing(v["title"].as_str().unwrap(), authz);
        }
        assert_eq!(
            self.rejections(reason) - before,
            2.0,
            "accessgate_token_rejections_total{{reason=\"{reason}\"}}"
        );
        assert_eq!(
            self.up.count(),
            before_up,
            "a refused request reached the upstream"
        );
    }

    /// As [`Self::expect_invalid_token`] for requests without bearer credentials: 401 with
    /// exactly `Bearer realm="accessgate"`, counted as `missing`.
    pub async fn expect_bare_challenge(&self, path: &str, headers: &[(&str, &str)]) {
        let before = self.rejections("missing");
        let before_up = self.up.count();
        for h2 in [false, true] {
            let (parts, body) = self.call(path, headers, h2).await;
            let v = assert_problem(&parts, &body, 401);
            assert_eq!(v["reason"], "missing_token", "{v}");
            let all: Vec<_> = parts.headers.get_all("www-authenticate").iter().collect();
            assert_eq!(all.len(), 1, "{all:?}");
            assert_eq!(all[0], "Bearer realm=\"accessgate\"");
        }
        assert_eq!(self.rejections("missing") - before, 2.0);
        assert_eq!(
            self.up.count(),
            before_up,
            "a refused request reached the upstream"
        );
    }

    /// 400 `invalid_request` over both protocols, counted as `invalid_request`.
    pub async fn expect_invalid_request(&self, headers: &[(&str, &str)]) {
        let before = self.rejections("invalid_request");
        let before_up = self.up.count();
        for h2 in [false, true] {
            let (parts, body) = self.call("/", headers, h2).await;
            let v = assert_problem(&parts, &body, 400);
            assert_eq!(v["reason"], "invalid_request", "{v}");
            let c = challenge_of(&parts);
            assert_eq!(c.names(), ["realm", "error", "error_description"], "{c:?}");
            assert_eq!(c.get("error"), Some("invalid_request"));
            let d = c.get("error_description").unwrap();
            for (_, value) in headers {
                assert_echoes_nothing(d, value);
            }
        }
        assert_eq!(self.rejections("invalid_request") - before, 2.0);
        assert_eq!(
            self.up.count(),
            before_up,
            "a refused request reached the upstream"
        );
    }

    /// Expect `Authorization: <authz>` on `path` to be forwarded over both protocols: 200
    /// from the upstream, one request each, naming `user` (and `app` when given).
    pub async fn expect_accepted(
        &self,
        path: &str,
        authz: &str,
        user: &str,
        app: Option<&str>,
    ) -> Vec<Recorded> {
        let mut seen = Vec::new();
        for h2 in [false, true] {
            let before = self.up.count();
            let (parts, body) = self.call(path, &[("authorization", authz)], h2).await;
            assert_eq!(
                parts.status,
                200,
                "h2={h2}: {}",
                String::from_utf8_lossy(&body)
            );
            assert_eq!(parts.headers.get("x-upstream").unwrap(), "echo");
            assert!(parts.headers.get("www-authenticate").is_none());
            assert_eq!(
                self.up.count(),
                before + 1,
                "upstream must see exactly one request"
            );
            let r = self.up.requests().pop().unwrap();
            assert_eq!(r.headers.get("x-accessgate-user").unwrap(), user);
            if let Some(app) = app {
                assert_eq!(r.headers.get("x-accessgate-app").unwrap(), app);
            }
            seen.push(r);
        }
        seen
    }
}

/// No 8-byte window of `secret` appears in `text` (descriptions are fixed strings).
pub fn assert_echoes_nothing(text: &str, secret: &str) {
    let mut windows: Vec<&[u8]> = secret.as_bytes().windows(8).collect();
    windows.sort_unstable();
    windows.dedup();
    for w in windows {
        assert!(
            !text.as_bytes().windows(8).any(|t| t == w),
            "{text:?} echoes {:?} of the credentials",
            String::from_utf8_lossy(w)
        );
    }
}

/// `header.payload.signature` with the given (unsigned) signature part.
pub fn unsigned(header: &Value, claims: &Value, sig: &str) -> String {
    format!(
        "{}.{}.{sig}",
        b64(&serde_json::to_vec(header).unwrap()),
        b64(&serde_json::to_vec(claims).unwrap())
    )
}

/// The gateway's RSA public key in the forms an HS256 confusion attack would try as the
/// HMAC secret: SPKI PEM, SPKI DER, PKCS#1 DER, and the JWK's `n`.
pub fn rsa_public_key_forms(fx: &Fx) -> Vec<(&'static str, Vec<u8>)> {
    use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
    use aws_lc_rs::signature::KeyPair as _;
    use base64::Engine as _;
    let pem =
        std::fs::read_to_string(fx.gw.certs.path(accessgate::authn::dev::RSA_KEY_FILE)).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).unwrap();
    let spki: PublicKeyX509Der<'static> = pair.public_key().as_der().unwrap();
    let spki = spki.as_ref().to_vec();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&spki);
    let mut spki_pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        spki_pem.push_str(std::str::from_utf8(chunk).unwrap());
        spki_pem.push('\n');
    }
    spki_pem.push_str("-----END PUBLIC KEY-----\n");
    let n = fx.signer.jwks()["keys"][0]["n"]
        .as_str()
        .unwrap()
        .to_owned();
    vec![
        ("spki pem", spki_pem.into_bytes()),
        ("spki der", spki),
        ("pkcs1 der", pair.public_key().as_ref().to_vec()),
        ("jwk n", n.into_bytes()),
    ]
}
