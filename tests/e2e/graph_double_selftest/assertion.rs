//! The certificate credential: PS256, x5t#S256, jti replay, signature.

use super::*;

#[tokio::test]
async fn client_assertion_is_checked_and_recorded() {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
    use base64::Engine as _;
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let pkcs8 = rsa.as_der().unwrap();
    let key = rcgen::KeyPair::try_from(pkcs8.as_ref()).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["graph-client".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cfg = DoubleConfig {
        client_secret: None,
        certificate: Some(CertCredential {
            der: cert.der().to_vec(),
            public_key_pem: Some(key.public_key_pem()),
        }),
        ..DoubleConfig::default()
    };
    let client_id = cfg.client_id.clone();
    let d = GraphDouble::start(Tenant::default(), cfg).await;
    let c = client();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.der());
    let x5t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    let enc = jsonwebtoken::EncodingKey::from_rsa_pem(key.serialize_pem().as_bytes()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sign = |alg: jsonwebtoken::Algorithm, x5t: &str, jti: &str| {
        let mut header = jsonwebtoken::Header::new(alg);
        header.x5t_s256 = Some(x5t.to_string());
        let claims = serde_json::json!({"aud": d.token_url(), "iss": client_id, "sub": client_id,
            "jti": jti, "nbf": now, "exp": now + 600});
        jsonwebtoken::encode(&header, &claims, &enc).unwrap()
    };
    let form = |jwt: &str| {
        format!(
            "grant_type=client_credentials&client_id={client_id}&scope={}&client_assertion_type={}&client_assertion={jwt}",
            percent_encoding::utf8_percent_encode(
                &format!("{}/.default", d.url()),
                percent_encoding::NON_ALPHANUMERIC
            ),
            percent_encoding::utf8_percent_encode(
                ASSERTION_TYPE,
                percent_encoding::NON_ALPHANUMERIC
            ),
        )
    };
    let good = sign(jsonwebtoken::Algorithm::PS256, &x5t, "jti-1");
    let r = token_with(&c, &d, &form(&good)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Replay of the same jti, a wrong thumbprint, RS256, a secret: all refused.
    assert_eq!(token_with(&c, &d, &form(&good)).await.status, 400);
    let wrong_cert = sign(jsonwebtoken::Algorithm::PS256, "AAAA", "jti-2");
    assert_eq!(token_with(&c, &d, &form(&wrong_cert)).await.status, 400);
    let rs256 = sign(jsonwebtoken::Algorithm::RS256, &x5t, "jti-3");
    assert_eq!(token_with(&c, &d, &form(&rs256)).await.status, 400);
    // A valid header and new claims under the signature of other claims.
    let (head, _) = good.split_once('.').unwrap();
    let other_claims = serde_json::json!({"aud": d.token_url(), "iss": client_id, "sub": client_id,
        "jti": "jti-4", "nbf": now, "exp": now + 600});
    let sig = good.rsplit_once('.').unwrap().1;
    let forged = format!(
        "{head}.{}.{sig}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(other_claims.to_string())
    );
    let r = token_with(&c, &d, &form(&forged)).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("signature"), "{}", r.text);
    assert_eq!(
        token_with(&c, &d, &secret_form(&d, "double-secret~value"))
            .await
            .status,
        400
    );

    let recs = d.handle().token_requests();
    assert_eq!(recs[0].assertion_header.as_ref().unwrap()["alg"], "PS256");
    assert_eq!(
        recs[0].assertion_header.as_ref().unwrap()["x5t#S256"],
        x5t.as_str()
    );
    assert_eq!(recs[0].assertion_claims.as_ref().unwrap()["jti"], "jti-1");
    assert!(recs[1].refused.as_deref().unwrap().contains("replay"));
    assert!(recs.iter().skip(1).all(|r| r.refused.is_some()));
}
