use super::*;
use crate::config::parse_str;

const CONFIG: &str = r#"
[listen]
address = "127.0.0.1:0"
tls_cert = "cert.pem"
tls_key = "key.pem"
[[issuers]]
issuer = "https://login.example/t/v2.0"
audiences = ["api"]
jwks_file = "jwks.json"
[[issuers]]
issuer = "https://login.microsoftonline.com/{tenantid}/v2.0"
audiences = ["api"]
jwks_file = "jwks.json"
tenants = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
[state]
source = "file"
path = "state.json"
[[routes]]
name = "api"
path_prefix = "/"
upstream = "http://127.0.0.1:9"
"#;

fn issuers() -> Vec<IssuerConfig> {
    parse_str(CONFIG, std::path::Path::new("/tmp/offline-test.toml"))
        .expect("valid config")
        .issuers
}

#[test]
fn claims_are_read_as_the_gateway_reads_them() {
    let p = principal_from_payload(
        &issuers(),
        br#"{"iss":"https://login.example/t/v2.0","oid":"u-1","azp":"app","exp":20,"acrs":["c1"]}"#,
    )
    .expect("principal");
    assert_eq!((p.issuer_index, p.user.as_str()), (0, "u-1"));
    assert_eq!(p.client_app.as_deref(), Some("app"));
    assert_eq!(p.acrs, vec!["c1"]);
    assert_eq!(p.token_id, "what-if");
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let payload = format!(
        r#"{{"iss":"https://login.microsoftonline.com/{tenant}/v2.0","tid":"{tenant}","sub":"s","exp":1}}"#
    );
    let p = principal_from_payload(&issuers(), payload.as_bytes()).expect("template issuer");
    assert_eq!(p.issuer_index, 1);
}

#[test]
fn what_the_gateway_refuses_for_its_claims_is_refused() {
    let other_tenant = "0b3c1e2d-0000-4000-8000-00000000dead";
    let cases: [(String, &str); 5] = [
        (r#"{"oid":"u","exp":1}"#.into(), "no iss"),
        (
            r#"{"iss":"https://elsewhere.example/","oid":"u","exp":1}"#.into(),
            "unknown issuer",
        ),
        (
            format!(
                r#"{{"iss":"https://login.microsoftonline.com/{other_tenant}/v2.0","tid":"{other_tenant}","sub":"s","exp":1}}"#
            ),
            "tenant not allowed",
        ),
        (
            r#"{"iss":"https://login.example/t/v2.0","oid":"u"}"#.into(),
            "no exp",
        ),
        (
            r#"{"iss":"https://login.example/t/v2.0","oid":"u","exp":1,"acrs":"c1"}"#.into(),
            "acrs not a list",
        ),
    ];
    for (payload, why) in cases {
        assert!(
            principal_from_payload(&issuers(), payload.as_bytes()).is_err(),
            "{why}: accepted"
        );
    }
}
