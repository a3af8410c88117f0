use super::*;

const ISS: &str = "https://i/";

fn parse(json: &str) -> Result<Principal, TokenRefusal> {
    parse_with(json, &ClaimNames::default())
}

fn parse_with(json: &str, names: &ClaimNames) -> Result<Principal, TokenRefusal> {
    let iss: Arc<str> = Arc::from(ISS);
    principal(json.as_bytes(), names, 3, &iss, || "hashid".to_owned())
}

#[test]
fn entra_v2_claims() {
    let p = parse(
        r#"{"iss":"https://i/","exp":2000000000,"nbf":1000,"iat":1500.9,"auth_time":1400,
            "oid":"o","sub":"s","tid":"ABC","azp":"app","appid":"old","deviceid":"d",
            "groups":["g"],"amr":["pwd","mfa"],"acrs":["c1"],"xms_cc":["cp1","cp2"],
            "scp":" a  b ","roles":["r"],"jti":"j","unknown":{"deep":[1,2,{"x":null}]}}"#,
    )
    .unwrap();
    assert_eq!(p.issuer_index, 3);
    assert_eq!(p.issuer.as_ref(), ISS);
    assert_eq!(p.user, "o");
    assert_eq!(p.tenant.as_deref(), Some("abc"));
    assert_eq!(p.client_app.as_deref(), Some("app"));
    assert_eq!(p.device.as_deref(), Some("d"));
    assert_eq!(p.groups, ["g"]);
    assert_eq!(p.amr, ["pwd", "mfa"]);
    assert_eq!(p.acrs, ["c1"]);
    assert!(p.cae_capable);
    assert_eq!(p.scopes, ["a", "b"]);
    assert_eq!(p.roles, ["r"]);
    assert_eq!(
        (p.exp, p.nbf, p.iat, p.auth_time),
        (2_000_000_000, Some(1000), Some(1500), Some(1400))
    );
    assert_eq!(p.token_id, "j");
    assert!(!p.groups_incomplete);
}

#[test]
fn fallbacks_sub_and_appid_and_hash_id() {
    let p = parse(r#"{"iss":"https://i/","exp":2,"sub":"s","appid":"a1","xms_cc":"cp1"}"#).unwrap();
    assert_eq!(p.user, "s");
    assert_eq!(p.client_app.as_deref(), Some("a1"));
    assert!(p.cae_capable);
    assert_eq!(p.token_id, "hashid");
    let p = parse(r#"{"iss":"https://i/","exp":2,"sub":"s","xms_cc":["cp2"],"jti":""}"#).unwrap();
    assert!(!p.cae_capable);
    assert_eq!(p.token_id, "hashid");
}

#[test]
fn overage_markers() {
    let p = parse(r#"{"iss":"https://i/","exp":2,"sub":"s","_claim_names":{"groups":"src1"}}"#)
        .unwrap();
    assert!(p.groups_incomplete);
    let p = parse(
        r#"{"iss":"https://i/","exp":2,"sub":"s","groups":["g"],"_claim_names":{"other":"x"}}"#,
    )
    .unwrap();
    assert!(!p.groups_incomplete);
    // No groups claim at all: membership is not known either.
    let p =
        parse(r#"{"iss":"https://i/","exp":2,"sub":"s","_claim_names":{"other":"x"}}"#).unwrap();
    assert!(p.groups_incomplete);
    let p = parse(r#"{"iss":"https://i/","exp":2,"sub":"s","hasgroups":true}"#).unwrap();
    assert!(p.groups_incomplete);
}

#[test]
fn configured_names_cannot_shadow_registered_claims() {
    let names = ClaimNames {
        user: "exp".into(),
        client_app: "client_id".into(),
        device: "did".into(),
        groups: "memberOf".into(),
    };
    let p = parse_with(
        r#"{"iss":"https://i/","exp":5,"sub":"s","client_id":"c","did":"d","memberOf":["m"],"groups":[1]}"#,
        &names,
    )
    .unwrap();
    assert_eq!(p.exp, 5);
    assert_eq!(p.user, "s");
    assert_eq!(p.client_app.as_deref(), Some("c"));
    assert_eq!(p.device.as_deref(), Some("d"));
    assert_eq!(p.groups, ["m"]);
}

#[test]
fn mistyped_missing_or_duplicate_claims_refuse() {
    for bad in [
        r#"{"iss":"https://i/","sub":"s"}"#,
        r#"{"iss":"https://i/","exp":"2","sub":"s"}"#,
        r#"{"iss":"https://i/","exp":-1,"sub":"s"}"#,
        r#"{"iss":"https://i/","exp":2,"nbf":"1","sub":"s"}"#,
        r#"{"iss":"https://i/","exp":2,"sub":"s","exp":3}"#,
        r#"{"iss":"https://i/","exp":2,"oid":"a","oid":"b"}"#,
        r#"{"iss":"https://i/","exp":2,"sub":7}"#,
        r#"{"iss":"https://i/","exp":2,"sub":"s","groups":"g"}"#,
        r#"{"iss":"https://i/","exp":2,"sub":"s","groups":[1]}"#,
        r#"{"iss":"https://i/","exp":2,"sub":"s","amr":"pwd"}"#,
        r#"{"iss":"https://i/","exp":2,"sub":"s","hasgroups":"true"}"#,
        r#"{"iss":"https://i/","exp":2,"sub":"s","_claim_names":["groups"]}"#,
        r#"{"iss":"https://i/","exp":2}"#,
        r#"{"iss":"https://i/","exp":2,"sub":""}"#,
        r#"["https://i/",2,"s"]"#,
        r#"{"iss":"https://i/","exp":1e300,"sub":"s"}"#,
    ] {
        assert_eq!(parse(bad).unwrap_err(), refuse::CLAIMS, "{bad}");
    }
}

#[test]
fn iss_must_be_the_selected_issuer() {
    assert_eq!(
        parse(r#"{"iss":"https://other/","exp":2,"sub":"s"}"#).unwrap_err(),
        refuse::ISSUER
    );
}

#[test]
fn short_hash_id_is_16_hex_chars() {
    let mut d = [0u8; 32];
    d[0] = 0xab;
    d[7] = 0x01;
    assert_eq!(short_hash_id(&d), "ab00000000000001");
}
