use super::*;

fn temp_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("accessgate-dev-{name}-{}", std::process::id()))
}

#[test]
fn generated_keys_round_trip_through_files() {
    let dir = temp_dir("keys");
    let files = generate_signing_keys(&dir).unwrap();
    assert_eq!(files.len(), 3);
    let jwks: Value = serde_json::from_slice(&std::fs::read(dir.join(JWKS_FILE)).unwrap()).unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys[0]["kid"], RSA_KID);
    assert_eq!(keys[1]["kid"], EC_KID);
    assert!(keys.iter().all(|k| k["use"] == "sig"));
    // The published JWKS parses into exactly the two keys.
    let parsed = crate::authn::keys::parse_jwks(&serde_json::to_vec(&jwks).unwrap()).unwrap();
    assert_eq!(parsed.keys.len(), 2);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join(RSA_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private key readable by others");
    }
    let signer = DevSigner::load(&dir).unwrap();
    assert_eq!(signer.jwks(), jwks, "loaded keys are the generated ones");
    let t = mint(&DevTokenOptions::default(), &dir).unwrap();
    assert_eq!(t.split('.').count(), 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn minted_tokens_verify_with_the_published_keys() {
    let s = DevSigner::generate("r", "e").unwrap();
    let jwks = s.jwks();
    for (alg, idx) in [(DevAlg::RS256, 0), (DevAlg::ES256, 1)] {
        let t = s
            .mint(&DevTokenOptions {
                alg,
                ..Default::default()
            })
            .unwrap();
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(jwks["keys"][idx].clone()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut v = jsonwebtoken::Validation::new(crate::authn::issuer::jwt_algorithm(
            crate::config::JwsAlgorithm::parse(alg.as_str()).unwrap(),
        ));
        v.set_audience(&[DEMO_AUDIENCE]);
        let data = jsonwebtoken::decode::<Value>(&t, &key, &v).unwrap();
        assert_eq!(data.header.kid.as_deref(), Some(s.kid(alg)));
        assert_eq!(data.claims["iss"], DEMO_ISSUER);
    }
}

#[test]
fn options_build_the_claims_and_extra_wins() {
    let mut o = DevTokenOptions {
        tid: Some("t".into()),
        groups: vec!["g".into()],
        xms_cc: vec!["cp1".into()],
        iat: Some(100),
        nbf: Some(90),
        jti: Some("j".into()),
        expires_in: Duration::from_secs(60),
        ..Default::default()
    };
    o.extra.insert("exp".into(), json!("not a number"));
    let c = o.claims(1000);
    assert_eq!(c["iat"], 100);
    assert_eq!(c["auth_time"], 100);
    assert_eq!(c["nbf"], 90);
    assert_eq!(c["exp"], "not a number");
    assert_eq!(c["tid"], "t");
    assert_eq!(c["groups"], json!(["g"]));
    assert_eq!(c["jti"], "j");
    assert!(!c.contains_key("deviceid"));
    assert_ne!(
        DevTokenOptions::default().claims(0)["jti"],
        DevTokenOptions::default().claims(0)["jti"]
    );
}

#[test]
fn missing_keys_dir_is_an_error() {
    let e = DevSigner::load(Path::new("/nonexistent/accessgate-keys")).unwrap_err();
    assert!(e.0.contains(RSA_KEY_FILE), "{e}");
}
