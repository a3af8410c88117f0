//! The identity assertion (`x-accessgate-assertion`): a short-lived ES256 JWT the upstream
//! verifies with the gateway's JWKS. Tests: the upstream can verify it with the published
//! keys, its claims are right, it is absent where the route does not ask for it, a
//! client-sent one never passes, rotation by reload, and bad key config refused.

use std::path::Path;

use accessgate::authn::dev::{DevSigner, DevTokenOptions};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::support::authn_gateway::EMPTY_STATE;
use crate::support::*;

const ISSUER: &str = "https://gateway.accessgate.test/assertion";
const JWKS_PATH: &str = "/.well-known/accessgate/jwks.json";
const USER: &str = "11111111-1111-4111-8111-111111111111";
const DEVICE: &str = "d1111111-1111-4111-8111-111111111111";

fn config(keys: &str) -> String {
    format!(
        r#"
[listen]
address = "127.0.0.1:0"
tls_cert = "{{certs}}/localhost.crt"
tls_key = "{{certs}}/localhost.key"

[admin]
address = "127.0.0.1:0"

[runtime]
shutdown_grace = "2s"

[log]
decisions = "off"

[[issuers]]
issuer = "https://login.accessgate.dev/demo-tenant/v2.0"
audiences = ["api://accessgate-demo"]
jwks_file = "{{certs}}/dev-jwks.json"
algorithms = ["RS256", "ES256"]

[state]
source = "file"
path = "{{certs}}/state.json"

[assertion]
issuer = "{ISSUER}"
keys = [{keys}]

[[routes]]
name = "asserted"
path_prefix = "/asserted"
upstream = "{{upstream}}"
resource = "orders-api"
assertion = true

[[routes]]
name = "open"
path_prefix = "/open"
upstream = "{{upstream}}"
auth = "none"

[[routes]]
name = "plain"
path_prefix = "/"
upstream = "{{upstream}}"
"#
    )
}

fn keys(ids: &[&str]) -> String {
    ids.iter()
        .map(|id| format!("{{ id = \"{id}\", key = \"{{certs}}/assertion-{id}.pem\" }}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_key(dir: &Path, id: &str) {
    let key = rcgen::KeyPair::generate().unwrap();
    std::fs::write(dir.join(format!("assertion-{id}.pem")), key.serialize_pem()).unwrap();
}

struct Fx {
    gw: TestGateway,
    up: Upstream,
    signer: DevSigner,
}

async fn start(ids: &[&str]) -> Fx {
    let up = Upstream::start().await;
    let certs = Certs::new();
    std::fs::write(certs.path("state.json"), EMPTY_STATE).unwrap();
    for id in ["k1", "k2"] {
        write_key(certs.dir.path(), id);
    }
    let signer = DevSigner::load(certs.dir.path()).unwrap();
    let gw = TestGateway::start_with(certs, &config(&keys(ids)), &up.url()).await;
    Fx { gw, up, signer }
}

impl Fx {
    fn token(&self) -> String {
        self.signer
            .mint(&DevTokenOptions {
                oid: Some(USER.to_owned()),
                deviceid: Some(DEVICE.to_owned()),
                ..DevTokenOptions::default()
            })
            .unwrap()
    }

    /// GET `path` with a valid token and a spoofed assertion; the headers the upstream saw.
    async fn forwarded(&self, path: &str, h2: bool) -> http::HeaderMap {
        let before = self.up.count();
        let c = client(&self.gw.ca(), h2);
        let authz = format!("Bearer {}", self.token());
        let (parts, body) = send(
            &c,
            get(
                &self.gw.url(path),
                &[
                    ("authorization", &authz),
                    (
                        "x-accessgate-assertion",
                        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.",
                    ),
                ],
            ),
        )
        .await;
        assert_eq!(parts.status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(self.up.count(), before + 1);
        self.up.requests().pop().unwrap().headers
    }

    async fn jwks(&self, h2: bool) -> JwkSet {
        let c = client(&self.gw.ca(), h2);
        // No token: the JWKS is public.
        let (parts, body) = send(&c, get(&self.gw.url(JWKS_PATH), &[])).await;
        assert_eq!(parts.status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(parts.headers["content-type"], "application/json");
        serde_json::from_slice(&body).unwrap()
    }

    async fn admin_jwks(&self) -> JwkSet {
        let (status, body) = admin_get(self.gw.admin.unwrap(), JWKS_PATH).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

fn kids(set: &JwkSet) -> Vec<String> {
    set.keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap_or_default())
        .collect()
}

/// Verify `token` the way an upstream would: kid -> key from the JWKS, ES256 only, our
/// issuer, the route's resource as audience, exp required.
fn verify(token: &str, set: &JwkSet, aud: &str) -> (String, Value) {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    let kid = header.kid.expect("kid");
    let jwk = set
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} not in the JWKS"));
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut v = Validation::new(Algorithm::ES256);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[aud]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    v.leeway = 0;
    let data = jsonwebtoken::decode::<Value>(token, &key, &v)
        .unwrap_or_else(|e| panic!("assertion does not verify: {e}"));
    (kid, data.claims)
}

#[tokio::test]
async fn upstream_verifies_the_assertion_with_the_published_jwks() {
    let mut fx = start(&["k1"]).await;
    for h2 in [false, true] {
        let set = fx.jwks(h2).await;
        assert_eq!(kids(&set), ["k1"]);
        let headers = fx.forwarded("/asserted/orders", h2).await;
        let all: Vec<_> = headers.get_all("x-accessgate-assertion").iter().collect();
        assert_eq!(all.len(), 1, "exactly one assertion, the gateway's own");
        let token = all[0].to_str().unwrap();
        let (kid, c) = verify(token, &set, "orders-api");
        assert_eq!(kid, "k1");
        let now = unix_now();
        assert_eq!(c["iss"], ISSUER);
        assert_eq!(c["sub"], USER);
        assert_eq!(c["aud"], "orders-api");
        assert_eq!(c["app"], CA_APP);
        assert_eq!(c["device"], DEVICE);
        assert_eq!(
            c["jti"].as_str(),
            headers["x-accessgate-decision-id"].to_str().ok(),
            "jti is the decision id"
        );
        let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
        assert!((now - 5..=now + 1).contains(&iat), "iat {iat}, now {now}");
        assert!(exp > iat && exp - iat <= 60, "exp {exp} iat {iat}");
        // A token for one route is no good for another resource.
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&["other-api"]);
        let key = DecodingKey::from_jwk(set.find("k1").unwrap()).unwrap();
        assert!(jsonwebtoken::decode::<Value>(token, &key, &v).is_err());
    }
    assert_eq!(kids(&fx.admin_jwks().await), ["k1"]);
    fx.gw.shutdown().await;
}

#[tokio::test]
async fn no_assertion_where_the_route_does_not_ask_and_spoofs_never_pass() {
    let mut fx = start(&["k1"]).await;
    for h2 in [false, true] {
        let headers = fx.forwarded("/plain", h2).await;
        assert!(
            headers.get("x-accessgate-assertion").is_none(),
            "{headers:?}"
        );
        // An unauthenticated route: the client's header is dropped all the same.
        let before = fx.up.count();
        let c = client(&fx.gw.ca(), h2);
        let (parts, _) = send(
            &c,
            get(
                &fx.gw.url("/open/x"),
                &[("x-accessgate-assertion", "forged")],
            ),
        )
        .await;
        assert_eq!(parts.status, 200);
        assert_eq!(fx.up.count(), before + 1);
        let r = fx.up.requests().pop().unwrap();
        assert!(r.headers.get("x-accessgate-assertion").is_none());
    }
    fx.gw.shutdown().await;
}

#[tokio::test]
async fn rotation_by_reload_swaps_the_signing_key_and_the_published_set() {
    let mut fx = start(&["k1"]).await;
    let text = |ids: &[&str]| {
        config(&keys(ids))
            .replace("{certs}", &fx.gw.certs.dir.path().display().to_string())
            .replace("{upstream}", &fx.up.url())
    };
    let apply = |ids: &[&str]| {
        let cfg = accessgate::config::parse_str(&text(ids), &fx.gw.config_path).unwrap();
        fx.gw.gw().apply_config(cfg)
    };
    // 1. Publish k2 ahead of using it; k1 still signs.
    apply(&["k1", "k2"]).unwrap();
    let set = fx.jwks(false).await;
    assert_eq!(kids(&set), ["k1", "k2"]);
    let h = fx.forwarded("/asserted", false).await;
    assert_eq!(
        verify(
            h["x-accessgate-assertion"].to_str().unwrap(),
            &set,
            "orders-api"
        )
        .0,
        "k1"
    );
    // 2. k2 signs; k1 stays published for assertions already in flight.
    apply(&["k2", "k1"]).unwrap();
    let set = fx.jwks(true).await;
    assert_eq!(kids(&set), ["k2", "k1"]);
    assert_eq!(kids(&fx.admin_jwks().await), ["k2", "k1"]);
    let h = fx.forwarded("/asserted", true).await;
    assert_eq!(
        verify(
            h["x-accessgate-assertion"].to_str().unwrap(),
            &set,
            "orders-api"
        )
        .0,
        "k2"
    );
    // 3. k1 retired.
    apply(&["k2"]).unwrap();
    assert_eq!(kids(&fx.jwks(false).await), ["k2"]);
    // A reload with a broken key is refused and the running keys stay.
    std::fs::write(fx.gw.certs.path("assertion-k1.pem"), "not a key").unwrap();
    let err = apply(&["k1", "k2"]).unwrap_err();
    assert!(err.contains("assertion.keys[0]"), "{err}");
    assert_eq!(kids(&fx.jwks(false).await), ["k2"]);
    fx.gw.shutdown().await;
}

#[test]
fn bad_assertion_key_config_is_refused() {
    let certs = Certs::new();
    let dir = certs.dir.path();
    std::fs::write(dir.join("state.json"), EMPTY_STATE).unwrap();
    write_key(dir, "k1");
    std::fs::write(
        dir.join("assertion-garbage.pem"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    // An RSA key cannot sign ES256; neither can a P-384 key.
    std::fs::copy(
        dir.join("dev-signing-rsa.pem"),
        dir.join("assertion-rsa.pem"),
    )
    .unwrap();
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    std::fs::write(dir.join("assertion-p384.pem"), p384.serialize_pem()).unwrap();
    let parse = |keys: &str| {
        let text = config(keys)
            .replace("{certs}", &dir.display().to_string())
            .replace("{upstream}", "http://127.0.0.1:9");
        accessgate::config::parse_str(&text, &dir.join("accessgate.toml"))
    };
    // Files `check` must open and refuse.
    for (id, why) in [
        ("missing", "assertion-missing.pem"),
        ("garbage", "P-256"),
        ("rsa", "P-256"),
        ("p384", "P-256"),
    ] {
        let cfg = parse(&keys(&["k1", id])).unwrap();
        let errors = accessgate::cli::check::run(&cfg).unwrap_err().join("\n");
        assert!(errors.contains("assertion.keys[1]"), "{id}: {errors}");
        assert!(errors.contains(why), "{id}: {errors}");
    }
    assert!(accessgate::cli::check::run(&parse(&keys(&["k1"])).unwrap()).is_ok());
    // Shapes the config layer refuses outright.
    let k1 = keys(&["k1"]);
    for (bad, why) in [
        (String::new(), "at least one key"),
        (format!("{k1}, {k1}"), "\"k1\" is already assertion.keys[0]"),
        (
            "{ id = \"\", key = \"x.pem\" }".to_owned(),
            "assertion.keys[0].id",
        ),
        (
            "{ id = \"k\\\"1\", key = \"x.pem\" }".to_owned(),
            "assertion.keys[0].id",
        ),
        ("{ id = \"k1\" }".to_owned(), "assertion.keys[0].key"),
        (
            "{ id = \"k1\", key = \"x.pem\", alg = \"RS256\" }".to_owned(),
            "alg",
        ),
    ] {
        let err = parse(&bad).unwrap_err().to_string();
        assert!(err.contains(why), "{bad}: {err}");
    }
    let base = config(&k1)
        .replace("{certs}", &dir.display().to_string())
        .replace("{upstream}", "http://127.0.0.1:9");
    for (from, to, why) in [
        (
            format!("issuer = \"{ISSUER}\""),
            "issuer = \"\"".to_owned(),
            "assertion.issuer",
        ),
        (
            "[assertion]".to_owned(),
            "[assertion]\nlifetime = \"5m\"".to_owned(),
            "assertion.lifetime",
        ),
        // A route asking for an assertion needs an authenticated caller...
        (
            "auth = \"none\"".to_owned(),
            "auth = \"none\"\nassertion = true".to_owned(),
            "routes[1].assertion",
        ),
    ] {
        let text = base.replace(&from, &to);
        assert_ne!(text, base);
        let err = accessgate::config::parse_str(&text, &dir.join("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{to}: {err}");
    }
    // ...and an [assertion] section to sign with.
    let start = base.find("[assertion]").unwrap();
    let end = base.find("[[routes]]").unwrap();
    let text = format!("{}{}", &base[..start], &base[end..]);
    let err = accessgate::config::parse_str(&text, &dir.join("a.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("routes[0].assertion"), "{err}");
}

#[tokio::test]
async fn a_route_that_asks_for_an_assertion_is_never_forwarded_without_one() {
    // The config layer refuses `assertion = true` without [assertion]; a Config built in
    // code can still say so. Deny by default: 500, and the upstream sees nothing.
    let up = Upstream::start().await;
    let certs = Certs::new();
    std::fs::write(certs.path("state.json"), EMPTY_STATE).unwrap();
    write_key(certs.dir.path(), "k1");
    let signer = DevSigner::load(certs.dir.path()).unwrap();
    let text = config(&keys(&["k1"]))
        .replace("{certs}", &certs.dir.path().display().to_string())
        .replace("{upstream}", &up.url());
    let mut cfg = accessgate::config::parse_str(&text, &certs.path("a.toml")).unwrap();
    cfg.assertion = None;
    let gw = accessgate::Gateway::start(cfg, accessgate::StartOptions { quiet: true })
        .await
        .unwrap();
    let fx = Fx {
        gw: TestGateway {
            addr: gw.local_addr(),
            admin: gw.admin_addr(),
            gw: Some(gw),
            config_path: certs.path("a.toml"),
            certs,
        },
        up,
        signer,
    };
    let authz = format!("Bearer {}", fx.token());
    for h2 in [false, true] {
        let c = client(&fx.gw.ca(), h2);
        let (parts, body) = send(
            &c,
            get(&fx.gw.url("/asserted"), &[("authorization", &authz)]),
        )
        .await;
        let v = assert_problem(&parts, &body, 500);
        assert_eq!(v["reason"], "assertion_unavailable", "{v}");
    }
    assert_eq!(fx.up.count(), 0, "forwarded without its assertion");
    // Without [assertion] the well-known path is not special: it is routed like any other.
    let c = client(&fx.gw.ca(), false);
    let (parts, _) = send(&c, get(&fx.gw.url(JWKS_PATH), &[])).await;
    assert_eq!(parts.status, 401, "routed to the protected catch-all route");
    let mut gw = fx.gw;
    gw.shutdown().await;
}
