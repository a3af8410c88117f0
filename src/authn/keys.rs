//! Verification keys: parsing a JWKS document into an immutable [`KeySet`].
//!
//! A JWKS is parsed key by key: a key with an unsupported `kty`, a `use` other than `sig`,
//! a symmetric key, a too-short RSA modulus or a malformed member is skipped with a note,
//! never fatal to the others (IdPs add new key types over time). A document with no usable
//! key at all is an error, so a broken fetch never replaces good keys with nothing.

use std::sync::Arc;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use crate::config::JwsAlgorithm;

/// More keys than this in one JWKS is not a real IdP; the rest are ignored.
pub const MAX_KEYS: usize = 100;

/// Key ids longer than this are never looked up, fetched for, or negatively cached.
pub const MAX_KID_LEN: usize = 256;

/// The key's type, which fixes the algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

/// One verification key.
#[derive(Debug)]
pub struct Key {
    pub kid: Option<String>,
    pub kind: KeyKind,
    /// The JWK's `alg`, when it names one: the key then verifies only that algorithm.
    pub alg: Option<JwsAlgorithm>,
    pub decoding: DecodingKey,
    /// SHA-256 over type, kid and public material: "the same key" across refreshes.
    pub fingerprint: [u8; 32],
}

impl Key {
    /// Whether a token signed with `alg` may be verified by this key (alg/key-type
    /// confusion is refused here, before any cryptography).
    pub fn accepts(&self, alg: JwsAlgorithm) -> bool {
        if self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        match alg {
            JwsAlgorithm::RS256
            | JwsAlgorithm::RS384
            | JwsAlgorithm::RS512
            | JwsAlgorithm::PS256
            | JwsAlgorithm::PS384
            | JwsAlgorithm::PS512 => self.kind == KeyKind::Rsa,
            JwsAlgorithm::ES256 => self.kind == KeyKind::EcP256,
            JwsAlgorithm::ES384 => self.kind == KeyKind::EcP384,
            JwsAlgorithm::EdDSA => self.kind == KeyKind::Ed25519,
        }
    }
}

/// An immutable set of keys, published behind an `ArcSwap`.
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<Arc<Key>>,
    /// 0 = never loaded; bumped on every publish.
    pub generation: u64,
}

/// Result of looking a token's `kid` up.
#[derive(Debug)]
pub enum Lookup<'a> {
    Found(&'a Arc<Key>),
    /// Not in this set; a refetch might bring it.
    Absent,
    /// No `kid` and the set does not have exactly one key: ambiguous, refuse.
    Ambiguous,
}

impl KeySet {
    pub fn is_loaded(&self) -> bool {
        self.generation > 0
    }

    /// Find the key for a token's `kid`. Without a `kid`, only a one-key set may serve it.
    pub fn find(&self, kid: Option<&str>) -> Lookup<'_> {
        match kid {
            Some(kid) => match self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
                Some(k) => Lookup::Found(k),
                None => Lookup::Absent,
            },
            None => match self.keys.as_slice() {
                [only] => Lookup::Found(only),
                [] => Lookup::Absent,
                _ => Lookup::Ambiguous,
            },
        }
    }

    /// Whether this exact key (same allocation) is still in the set: a cached token stays
    /// valid only while the key that verified it does.
    pub fn contains(&self, key: &Arc<Key>) -> bool {
        self.keys.iter().any(|k| Arc::ptr_eq(k, key))
    }
}

/// Parsed JWKS: the usable keys and notes on the skipped ones.
#[derive(Debug, Default)]
pub struct ParsedJwks {
    pub keys: Vec<Key>,
    pub skipped: Vec<String>,
}

#[derive(Deserialize)]
struct JwksDoc {
    keys: Vec<serde_json::Value>,
}

/// The JWK members read; all optional so one odd key cannot fail the document.
#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// Parse a JWKS document (`{"keys": [...]}`).
pub fn parse_jwks(bytes: &[u8]) -> Result<ParsedJwks, String> {
    let doc: JwksDoc =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut out = ParsedJwks::default();
    for (i, v) in doc.keys.into_iter().enumerate() {
        if out.keys.len() >= MAX_KEYS {
            out.skipped
                .push(format!("keys after the first {MAX_KEYS} ignored"));
            break;
        }
        let label = v
            .get("kid")
            .and_then(|k| k.as_str())
            .map(|k| format!("key {i} (kid {k:?})"))
            .unwrap_or_else(|| format!("key {i}"));
        match serde_json::from_value::<RawJwk>(v)
            .map_err(|e| format!("malformed: {e}"))
            .and_then(key_from_jwk)
        {
            Ok(Some(key)) => {
                if key.kid.is_some() && out.keys.iter().any(|k| k.kid == key.kid) {
                    out.skipped
                        .push(format!("{label}: duplicate kid, first one kept"));
                } else {
                    out.keys.push(key);
                }
            }
            Ok(None) => out.skipped.push(format!("{label}: not a signature key")),
            Err(e) => out.skipped.push(format!("{label}: {e}")),
        }
    }
    if out.keys.is_empty() {
        return Err(format!(
            "no usable signing key in JWKS ({} skipped{})",
            out.skipped.len(),
            out.skipped
                .first()
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        ));
    }
    Ok(out)
}

/// `Ok(None)`: a key that is not for signatures (`use` != `sig`, `key_ops` without
/// `verify`), ignored by design.
fn key_from_jwk(j: RawJwk) -> Result<Option<Key>, String> {
    if j.use_.as_deref().is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    if j.key_ops
        .as_ref()
        .is_some_and(|ops| !ops.iter().any(|o| o == "verify"))
    {
        return Ok(None);
    }
    if j.kid.as_ref().is_some_and(|k| k.len() > MAX_KID_LEN) {
        return Err("kid too long".into());
    }
    let alg = match j.alg.as_deref() {
        None => None,
        Some(a) => Some(JwsAlgorithm::parse(a).ok_or_else(|| format!("unsupported alg {a:?}"))?),
    };
    let kty = j.kty.as_deref().ok_or("no kty")?;
    let (kind, decoding, material): (KeyKind, DecodingKey, Vec<u8>) = match kty {
        "RSA" => {
            let n = b64(j.n.as_deref(), "n")?;
            let e = b64(j.e.as_deref(), "e")?;
            let bits = bit_len(&n);
            if !(2048..=8192).contains(&bits) {
                return Err(format!("RSA modulus of {bits} bits (2048..=8192 accepted)"));
            }
            if bit_len(&e) < 2 || bit_len(&e) > 33 {
                return Err("RSA exponent out of range".into());
            }
            let key = DecodingKey::from_rsa_raw_components(&n, &e);
            let mut m = n;
            m.extend_from_slice(&e);
            (KeyKind::Rsa, key, m)
        }
        "EC" => {
            let (kind, len) = match j.crv.as_deref() {
                Some("P-256") => (KeyKind::EcP256, 32),
                Some("P-384") => (KeyKind::EcP384, 48),
                other => return Err(format!("unsupported EC curve {other:?}")),
            };
            let x = b64(j.x.as_deref(), "x")?;
            let y = b64(j.y.as_deref(), "y")?;
            if x.len() != len || y.len() != len {
                return Err("EC coordinates of the wrong length".into());
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (kind, DecodingKey::from_ec_der(&point), point)
        }
        "OKP" => {
            if j.crv.as_deref() != Some("Ed25519") {
                return Err(format!("unsupported OKP curve {:?}", j.crv));
            }
            let x = b64(j.x.as_deref(), "x")?;
            if x.len() != 32 {
                return Err("Ed25519 key of the wrong length".into());
            }
            (KeyKind::Ed25519, DecodingKey::from_ed_der(&x), x)
        }
        // "oct" (HMAC secrets) and anything newer: never used to verify.
        other => return Err(format!("unsupported kty {other:?}")),
    };
    let key = Key {
        fingerprint: fingerprint(kind, j.kid.as_deref(), &material),
        kid: j.kid,
        kind,
        alg,
        decoding,
    };
    if let Some(a) = alg
        && !key.accepts(a)
    {
        return Err(format!("alg {} does not fit kty {kty}", a.as_str()));
    }
    Ok(Some(key))
}

fn b64(v: Option<&str>, name: &str) -> Result<Vec<u8>, String> {
    let v = v.ok_or_else(|| format!("no {name}"))?;
    URL_SAFE_NO_PAD
        .decode(v)
        .map_err(|_| format!("{name} is not base64url"))
}

/// Bit length of a big-endian unsigned integer.
fn bit_len(be: &[u8]) -> usize {
    match be.iter().position(|&b| b != 0) {
        Some(i) => (be.len() - i - 1) * 8 + (8 - be[i].leading_zeros() as usize),
        None => 0,
    }
}

fn fingerprint(kind: KeyKind, kid: Option<&str>, material: &[u8]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&[kind as u8]);
    if let Some(k) = kid {
        ctx.update(&[1]);
        ctx.update(&(k.len() as u64).to_be_bytes());
        ctx.update(k.as_bytes());
    } else {
        ctx.update(&[0]);
    }
    ctx.update(material);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
