use super::*;

fn enc(json: &str) -> String {
    URL_SAFE_NO_PAD.encode(json)
}

#[test]
fn split_needs_exactly_three_non_empty_parts() {
    assert!(split("a.b.c").is_ok());
    for bad in [
        "a.b",
        "a.b.",
        ".b.c",
        "a..c",
        "a.b.c.d",
        "a.b.c.d.e",
        "abc",
        "",
    ] {
        assert_eq!(split(bad).unwrap_err(), refuse::MALFORMED, "{bad:?}");
    }
}

#[test]
fn header_gives_alg_and_kid_and_ignores_key_urls() {
    let h = parse_header(&enc(
        r#"{"alg":"RS256","kid":"k1","typ":"JWT","jku":"https://evil/","x5u":"https://evil/","jwk":{"kty":"RSA"},"x5c":["AA"]}"#,
    ))
    .unwrap();
    assert_eq!(h.alg, JwsAlgorithm::RS256);
    assert_eq!(h.kid.as_deref(), Some("k1"));
    let h = parse_header(&enc(r#"{"alg":"ES256"}"#)).unwrap();
    assert_eq!(h.kid, None);
    // Escaped strings are decoded, not compared raw.
    let h = parse_header(&enc(r#"{"alg":"RS256","kid":"k\u0031"}"#)).unwrap();
    assert_eq!(h.kid.as_deref(), Some("k1"));
}

#[test]
fn none_and_hmac_are_refused_whatever_the_case() {
    for alg in ["none", "NONE", "nOnE"] {
        assert_eq!(
            parse_header(&enc(&format!(r#"{{"alg":"{alg}"}}"#))).unwrap_err(),
            NONE_ALG
        );
    }
    for alg in ["HS256", "HS384", "HS512", "hs256"] {
        assert_eq!(
            parse_header(&enc(&format!(r#"{{"alg":"{alg}"}}"#))).unwrap_err(),
            HMAC_ALG
        );
    }
    for alg in ["RS1", "ES512", "rs256", "", "\u{e9}x"] {
        assert_eq!(classify_alg(alg).unwrap_err(), UNSUPPORTED_ALG, "{alg:?}");
    }
}

#[test]
fn crit_in_any_form_is_refused() {
    for crit in [r#"["exp"]"#, "[]", "null", r#""b64""#] {
        let h = enc(&format!(r#"{{"alg":"RS256","crit":{crit}}}"#));
        assert_eq!(parse_header(&h).unwrap_err(), CRIT, "{crit}");
    }
}

#[test]
fn malformed_headers_are_refused() {
    for h in [
        r#"["RS256"]"#,
        r#""RS256""#,
        r#"{"kid":"k"}"#,
        r#"{"alg":256}"#,
        r#"{"alg":"RS256","alg":"ES256"}"#,
        r#"{"alg":"RS256","kid":"a","kid":"b"}"#,
        r#"{"alg":"RS256"} trailing"#,
        r#"{"alg":"RS256""#,
    ] {
        assert_eq!(parse_header(&enc(h)).unwrap_err(), BAD_HEADER, "{h}");
    }
    assert_eq!(parse_header("e30=").unwrap_err(), refuse::MALFORMED);
    assert_eq!(parse_header("e3+9").unwrap_err(), refuse::MALFORMED);
}

#[test]
fn peek_reads_iss_and_tid_only() {
    let p = peek(br#"{"iss":"https://i/","tid":"t","iss_other":1,"nested":{"iss":"x"}}"#).unwrap();
    assert_eq!(p.iss, "https://i/");
    assert_eq!(p.tid.as_deref(), Some("t"));
    assert_eq!(peek(br#"{"tid":"t"}"#).unwrap_err(), refuse::ISSUER);
    for bad in [
        &br#"{"iss":["a","b"]}"#[..],
        br#"{"iss":1}"#,
        br#"{"iss":"a","iss":"b"}"#,
        br#"["iss"]"#,
        br#"{"iss":"a","tid":7}"#,
        b"not json",
    ] {
        assert_eq!(peek(bad).unwrap_err(), refuse::CLAIMS);
    }
}
