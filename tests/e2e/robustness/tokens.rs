//! (1) The `Authorization` header and JWT decoding: arbitrary header values, and
//! mutations of a valid token (bytes flipped, inserted or deleted in each part, parts
//! swapped, header re-encoded with extra members, hostile values re-signed with the
//! trusted key). Nothing but the original token is ever accepted.

use accessgate::authn::dev::{DevAlg, DevSigner};
use accessgate::authn::{Authenticator, RefusalReason};
use accessgate::ops::metrics::Metrics;
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Value, json};

use super::{authn_common, json_value, run};

const ISSUER: &str = "https://login.example/tenant-a/v2.0";

/// An Authenticator from a parsed config whose issuer trusts a `jwks_file` (RSA and EC
/// keys, RS256 and ES256 allowed), and one valid token it accepts.
struct AuthFx {
    rt: tokio::runtime::Runtime,
    a: Authenticator,
    signer: DevSigner,
    header: Value,
    claims: Value,
    token: String,
    _dir: tempfile::TempDir,
}

impl AuthFx {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let signer = DevSigner::generate("kid-rsa-1", "kid-ec-1").unwrap();
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, serde_json::to_vec(&signer.jwks()).unwrap()).unwrap();
        let issuer = format!(
            "issuer = \"{ISSUER}\"\naudiences = [\"{}\"]\njwks_file = \"{}\"\nalgorithms = [\"RS256\", \"ES256\"]\n",
            authn_common::AUDIENCE,
            jwks.display()
        );
        let cfg = authn_common::config(&issuer, authn_common::TOKENS_DEFAULT);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let a = rt.block_on(async { Authenticator::new(&cfg, &Metrics::new(), None) });
        assert!(a.is_ready(), "{:?}", a.startup_errors());
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": "kid-rsa-1"});
        let o = authn_common::opts(ISSUER, DevAlg::RS256);
        let claims = Value::Object(o.claims(authn_common::now()));
        // RSASSA-PKCS1-v1_5 is deterministic: re-signing these bytes gives this token, so a
        // mutation that changes nothing is recognised by comparing bytes.
        let token = signer.sign(DevAlg::RS256, &header, &claims).unwrap();
        assert_eq!(token, signer.sign(DevAlg::RS256, &header, &claims).unwrap());
        let fx = Self {
            rt,
            a,
            signer,
            header,
            claims,
            token,
            _dir: dir,
        };
        assert!(fx.accepts(fx.token.as_bytes()), "control token refused");
        fx
    }

    fn headers(value: &[u8]) -> Option<HeaderMap> {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_bytes(value).ok()?,
        );
        Some(h)
    }

    /// `Authorization: Bearer <token>` accepted by `check`.
    fn accepts(&self, token: &[u8]) -> bool {
        let value = [b"Bearer ".as_slice(), token].concat();
        let h = Self::headers(&value).unwrap();
        self.rt.block_on(self.a.check(&h)).is_ok()
    }
}

/// Bytes a mutation may put in a token: mostly token-alphabet bytes, sometimes any byte.
fn token_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => select(b"AQgw09az_-.=+/~".to_vec()),
        1 => any::<u8>(),
    ]
}

#[derive(Debug, Clone)]
enum ByteMut {
    Flip(usize, Index, u8),
    Insert(usize, Index, u8),
    Delete(usize, Index),
}

/// One mutation of the valid token. `Resign` changes a header or claim to a value that
/// must be refused and signs again with the trusted key; the others do not re-sign.
#[derive(Debug, Clone)]
enum TokenMut {
    Bytes(Vec<ByteMut>),
    Swap(usize, usize),
    HeaderExtra(Vec<(String, Value)>, Vec<ByteMut>),
    Resign(bool, &'static str, Value),
}

/// Header and claim values that must be refused even when correctly signed.
fn hostile_resign() -> impl Strategy<Value = TokenMut> {
    let now = authn_common::now();
    let header =
        |f: &'static str, v: Vec<Value>| select(v).prop_map(move |v| TokenMut::Resign(true, f, v));
    let claim =
        |f: &'static str, v: Vec<Value>| select(v).prop_map(move |v| TokenMut::Resign(false, f, v));
    prop_oneof![
        header(
            "alg",
            vec![
                json!(256),
                json!(["RS256"]),
                Value::Null,
                json!("rs256"),
                json!("RS256 "),
                json!("none"),
                json!("HS256"),
                json!({}),
                json!("ES256"),
                json!("PS256")
            ]
        ),
        header(
            "kid",
            vec![
                json!(1),
                json!(["kid-rsa-1"]),
                Value::Null,
                json!(""),
                json!("KID-RSA-1"),
                json!("kid-ec-1"),
                json!({})
            ]
        ),
        header(
            "crit",
            vec![json!(["exp"]), json!([]), json!("x"), json!(["b64"])]
        ),
        claim(
            "exp",
            vec![
                json!((now + 600).to_string()),
                Value::Null,
                json!(true),
                json!([now + 600]),
                json!({}),
                json!(0),
                json!(-1),
                json!(now - 3600)
            ]
        ),
        claim(
            "nbf",
            vec![
                json!(now + 3600),
                json!("0"),
                json!(true),
                json!([0]),
                json!({})
            ]
        ),
        claim(
            "iss",
            vec![
                json!(1),
                json!([ISSUER]),
                json!(""),
                json!(ISSUER.to_uppercase()),
                json!(format!("{ISSUER}/")),
                Value::Null
            ]
        ),
        claim(
            "aud",
            vec![
                json!(1),
                json!([]),
                json!({}),
                Value::Null,
                json!("API://corp-api"),
                json!([1])
            ]
        ),
        claim("oid", vec![json!(42), json!(["x"]), json!({})]),
    ]
}

fn byte_muts() -> impl Strategy<Value = Vec<ByteMut>> {
    let one = prop_oneof![
        (0..3usize, any::<Index>(), token_byte()).prop_map(|(p, i, b)| ByteMut::Flip(p, i, b)),
        (0..3usize, any::<Index>(), token_byte()).prop_map(|(p, i, b)| ByteMut::Insert(p, i, b)),
        (0..3usize, any::<Index>()).prop_map(|(p, i)| ByteMut::Delete(p, i)),
    ];
    prop::collection::vec(one, 1..4)
}

fn token_mut() -> impl Strategy<Value = TokenMut> {
    prop_oneof![
        4 => byte_muts().prop_map(TokenMut::Bytes),
        1 => (0..3usize, 0..3usize).prop_filter("distinct", |(a, b)| a != b).prop_map(|(a, b)| TokenMut::Swap(a, b)),
        2 => (prop::collection::vec(("[a-z]{1,6}", json_value()), 1..4), prop::collection::vec(byte_muts(), 0..2))
            .prop_map(|(f, b)| TokenMut::HeaderExtra(f, b.into_iter().flatten().collect())),
        3 => hostile_resign(),
    ]
}

fn apply_bytes(parts: &mut [Vec<u8>], muts: &[ByteMut]) {
    for m in muts {
        match *m {
            ByteMut::Flip(p, i, b) if !parts[p].is_empty() => {
                let at = i.index(parts[p].len());
                parts[p][at] = b;
            }
            ByteMut::Flip(..) => {}
            ByteMut::Insert(p, i, b) => {
                let at = i.index(parts[p].len() + 1);
                parts[p].insert(at, b);
            }
            ByteMut::Delete(p, i) if !parts[p].is_empty() => {
                let at = i.index(parts[p].len());
                parts[p].remove(at);
            }
            ByteMut::Delete(..) => {}
        }
    }
}

impl AuthFx {
    fn mutate(&self, m: &TokenMut) -> Vec<u8> {
        let split =
            |t: &str| -> Vec<Vec<u8>> { t.split('.').map(|p| p.as_bytes().to_vec()).collect() };
        let mut parts = split(&self.token);
        match m {
            TokenMut::Bytes(b) => apply_bytes(&mut parts, b),
            TokenMut::Swap(a, b) => parts.swap(*a, *b),
            TokenMut::HeaderExtra(fields, b) => {
                let mut h = self.header.clone();
                for (k, v) in fields {
                    h[k.as_str()] = v.clone();
                }
                parts[0] = authn_common::b64(&serde_json::to_vec(&h).unwrap()).into_bytes();
                apply_bytes(&mut parts, b);
            }
            TokenMut::Resign(in_header, field, v) => {
                let (mut h, mut c) = (self.header.clone(), self.claims.clone());
                let target = if *in_header { &mut h } else { &mut c };
                target[*field] = v.clone();
                parts = split(&self.signer.sign(DevAlg::RS256, &h, &c).unwrap());
            }
        }
        parts.join(&b'.')
    }
}

#[test]
fn mutated_tokens_are_always_refused() {
    let fx = AuthFx::new();
    // Which refusal reasons the mutations reached, to show they get past the syntax checks.
    let reasons = std::cell::RefCell::new(std::collections::BTreeSet::new());
    run(400, token_mut(), |m| {
        let t = fx.mutate(&m);
        // The same token (or the same with whitespace the header syntax allows around it).
        if t.trim_ascii() == fx.token.as_bytes() {
            return Ok(());
        }
        let value = [b"Bearer ".as_slice(), &t].concat();
        // Bytes no HTTP implementation would deliver in a header value.
        let Some(h) = AuthFx::headers(&value) else {
            return Ok(());
        };
        match fx.rt.block_on(fx.a.check(&h)) {
            Err(r) => {
                reasons.borrow_mut().insert(r.reason.as_str());
            }
            Ok(p) => prop_assert!(
                false,
                "mutated token accepted for {}: {:?}",
                p.user,
                String::from_utf8_lossy(&t)
            ),
        }
        Ok(())
    });
    let reasons = reasons.into_inner();
    for deep in ["malformed", "signature", "algorithm", "claims"] {
        assert!(
            reasons.contains(deep),
            "no mutation was refused as {deep}: {reasons:?}"
        );
    }
}

/// Any header value: refused (nobody forges an RS256 signature by chance), never a panic;
/// the description stays short and never repeats the header.
#[test]
fn arbitrary_authorization_headers_are_refused() {
    let fx = AuthFx::new();
    let value = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        "[A-Za-z0-9_.+/=~-]{0,400}".prop_map(|s| format!("Bearer {s}").into_bytes()),
        "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,60}"
            .prop_map(|s| format!("bearer {s}").into_bytes()),
        "(Bearer|bearer|BEARER|Basic|Negotiate|)[ \t]{0,3}\\PC{0,40}".prop_map(String::into_bytes),
    ];
    run(400, value, |value| {
        let Some(h) = AuthFx::headers(&value) else {
            return Ok(());
        };
        match fx.rt.block_on(fx.a.check(&h)) {
            Ok(p) => prop_assert!(false, "accepted {value:?} as {}", p.user),
            // No bearer credentials: the bare challenge, which carries no description.
            Err(r) if r.reason == RefusalReason::Missing => {}
            Err(r) => {
                prop_assert!(!r.description.is_empty() && r.description.len() <= 64);
                let v = String::from_utf8_lossy(&value);
                let echoed = v
                    .as_bytes()
                    .windows(8)
                    .any(|w| r.description.as_bytes().windows(8).any(|d| d == w));
                prop_assert!(!echoed, "{:?} echoes {v:?}", r.description);
            }
        }
        // The response-facing path too (it counts the refusal).
        prop_assert!(fx.rt.block_on(fx.a.authenticate(&h)).is_err());
        Ok(())
    });
}
