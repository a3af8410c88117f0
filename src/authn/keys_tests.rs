use super::*;
use serde_json::json;

fn rsa_jwk(kid: &str, bits: usize) -> serde_json::Value {
    // A syntactically valid modulus of `bits` bits (never used to verify here).
    let mut n = vec![0xffu8; bits / 8];
    n[0] = 0xc5;
    json!({"kty": "RSA", "kid": kid, "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB"})
}

fn ec_jwk(kid: &str, crv: &str, len: usize) -> serde_json::Value {
    let c = URL_SAFE_NO_PAD.encode(vec![7u8; len]);
    json!({"kty": "EC", "kid": kid, "crv": crv, "x": c, "y": c})
}

fn parse(v: serde_json::Value) -> Result<ParsedJwks, String> {
    parse_jwks(&serde_json::to_vec(&v).unwrap())
}

#[test]
fn usable_keys_are_kept_and_odd_ones_skipped() {
    let mut enc = rsa_jwk("enc", 2048);
    enc["use"] = json!("enc");
    let mut ops = rsa_jwk("ops", 2048);
    ops["key_ops"] = json!(["encrypt"]);
    let parsed = parse(json!({"keys": [
        rsa_jwk("r1", 2048),
        ec_jwk("e1", "P-256", 32),
        ec_jwk("e2", "P-384", 48),
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": URL_SAFE_NO_PAD.encode([1u8; 32])},
        enc,
        ops,
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "RSA", "kid": 5},
        {"kty": "PQ", "kid": "future"},
        rsa_jwk("short", 1024),
        ec_jwk("badlen", "P-256", 31),
        ec_jwk("curve", "P-521", 66),
        {"kty": "RSA", "kid": "r1", "n": URL_SAFE_NO_PAD.encode([0xc5u8; 256]), "e": "AQAB"},
        {"kty": "EC", "kid": "mismatch", "alg": "RS256", "crv": "P-256",
         "x": URL_SAFE_NO_PAD.encode([7u8; 32]), "y": URL_SAFE_NO_PAD.encode([7u8; 32])},
        {"kty": "RSA", "kid": "hs", "alg": "HS256", "n": URL_SAFE_NO_PAD.encode([0xc5u8; 256]), "e": "AQAB"},
    ]}))
    .unwrap();
    let kids: Vec<_> = parsed.keys.iter().map(|k| k.kid.clone().unwrap()).collect();
    assert_eq!(kids, ["r1", "e1", "e2", "ed"]);
    assert_eq!(parsed.skipped.len(), 11, "{:?}", parsed.skipped);
    let kinds: Vec<_> = parsed.keys.iter().map(|k| k.kind).collect();
    assert_eq!(
        kinds,
        [
            KeyKind::Rsa,
            KeyKind::EcP256,
            KeyKind::EcP384,
            KeyKind::Ed25519
        ]
    );
}

#[test]
fn no_usable_key_is_an_error() {
    assert!(parse(json!({"keys": []})).is_err());
    assert!(parse(json!({"keys": [{"kty": "oct", "k": "AA"}]})).is_err());
    assert!(parse(json!({"nokeys": true})).is_err());
    assert!(parse_jwks(b"<html>").is_err());
}

#[test]
fn key_accepts_only_its_family_and_jwk_alg() {
    let parsed = parse(json!({"keys": [rsa_jwk("r", 2048), ec_jwk("e", "P-256", 32)]})).unwrap();
    let (r, e) = (&parsed.keys[0], &parsed.keys[1]);
    assert!(r.accepts(JwsAlgorithm::RS256) && r.accepts(JwsAlgorithm::PS512));
    assert!(!r.accepts(JwsAlgorithm::ES256) && !r.accepts(JwsAlgorithm::EdDSA));
    assert!(e.accepts(JwsAlgorithm::ES256));
    assert!(!e.accepts(JwsAlgorithm::ES384) && !e.accepts(JwsAlgorithm::RS256));
    let mut pinned = rsa_jwk("p", 2048);
    pinned["alg"] = json!("RS256");
    let parsed = parse(json!({"keys": [pinned]})).unwrap();
    assert!(parsed.keys[0].accepts(JwsAlgorithm::RS256));
    assert!(!parsed.keys[0].accepts(JwsAlgorithm::PS256));
}

#[test]
fn lookup_by_kid_and_single_key_without_kid() {
    let one = parse(json!({"keys": [rsa_jwk("a", 2048)]})).unwrap();
    let set = KeySet {
        keys: one.keys.into_iter().map(Arc::new).collect(),
        generation: 1,
    };
    assert!(matches!(set.find(Some("a")), Lookup::Found(_)));
    assert!(matches!(set.find(Some("b")), Lookup::Absent));
    assert!(matches!(set.find(None), Lookup::Found(_)));
    let two = parse(json!({"keys": [rsa_jwk("a", 2048), rsa_jwk("b", 4096)]})).unwrap();
    let set = KeySet {
        keys: two.keys.into_iter().map(Arc::new).collect(),
        generation: 1,
    };
    assert!(matches!(set.find(None), Lookup::Ambiguous));
    assert!(matches!(KeySet::default().find(None), Lookup::Absent));
    assert!(!KeySet::default().is_loaded());
}

#[test]
fn fingerprint_distinguishes_kid_and_material() {
    let a = parse(json!({"keys": [rsa_jwk("a", 2048), rsa_jwk("b", 2048), rsa_jwk("a", 3072)]}));
    // Duplicate kid "a": the first is kept.
    let a = a.unwrap();
    assert_eq!(a.keys.len(), 2);
    assert_ne!(a.keys[0].fingerprint, a.keys[1].fingerprint);
    let again = parse(json!({"keys": [rsa_jwk("a", 2048)]})).unwrap();
    assert_eq!(again.keys[0].fingerprint, a.keys[0].fingerprint);
    assert_eq!(bit_len(&[0x00, 0x01]), 1);
    assert_eq!(bit_len(&[0x80, 0x00]), 16);
    assert_eq!(bit_len(&[]), 0);
}
