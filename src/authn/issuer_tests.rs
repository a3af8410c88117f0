use super::*;
use crate::config::{ChallengeStyle, ClaimNames, KeySource};
use crate::ops::metrics::Metrics;

fn cfg(issuer: &str, tenants: &[&str]) -> IssuerConfig {
    IssuerConfig {
        issuer: issuer.to_owned(),
        multi_tenant: issuer.contains("{tenantid}"),
        tenants: tenants.iter().map(|t| t.to_string()).collect(),
        audiences: vec!["api://a".into()],
        keys: KeySource::Uri("https://idp.example/keys".into()),
        jwks_ca: None,
        algorithms: vec![JwsAlgorithm::RS256, JwsAlgorithm::ES256],
        authorization_uri: None,
        claims: ClaimNames::default(),
        challenge: ChallengeStyle::Entra,
    }
}

fn issuers(cfgs: Vec<IssuerConfig>) -> Vec<Issuer> {
    let m = Metrics::new();
    cfgs.into_iter()
        .map(|c| {
            let store = Arc::new(KeyStore::new(&c, &m));
            Issuer::new(c, store, Duration::from_secs(60), Duration::from_secs(300))
        })
        .collect()
}

fn peek(iss: &str, tid: Option<&str>) -> Peek {
    Peek {
        iss: iss.into(),
        tid: tid.map(str::to_owned),
    }
}

const T1: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const T2: &str = "11111111-2222-3333-4444-555555555555";

#[test]
fn exact_issuer_wins_then_templates_in_order() {
    let is = issuers(vec![
        cfg("https://login.microsoftonline.com/{tenantid}/v2.0", &[]),
        cfg(&format!("https://login.microsoftonline.com/{T1}/v2.0"), &[]),
    ]);
    let exact = format!("https://login.microsoftonline.com/{T1}/v2.0");
    assert_eq!(select(&is, &peek(&exact, Some(T1))), Ok(1));
    let other = format!("https://login.microsoftonline.com/{T2}/v2.0");
    assert_eq!(select(&is, &peek(&other, Some(T2))), Ok(0));
}

#[test]
fn template_needs_a_guid_tid_equal_to_the_one_in_iss() {
    let is = issuers(vec![cfg("https://sts.windows.net/{tenantid}/", &[])]);
    let iss = format!("https://sts.windows.net/{T1}/");
    assert_eq!(select(&is, &peek(&iss, Some(T1))), Ok(0));
    assert_eq!(select(&is, &peek(&iss, Some(T2))), Err(refuse::ISSUER));
    assert_eq!(select(&is, &peek(&iss, None)), Err(refuse::ISSUER));
    assert_eq!(
        select(&is, &peek("https://sts.windows.net/evil/", Some("evil"))),
        Err(refuse::ISSUER)
    );
    // Trailing or leading extra text never matches.
    let longer = format!("https://sts.windows.net/{T1}/x");
    assert_eq!(select(&is, &peek(&longer, Some(T1))), Err(refuse::ISSUER));
}

#[test]
fn tenants_allow_list_is_case_insensitive_and_enforced() {
    let is = issuers(vec![cfg("https://i/{tenantid}/v2.0", &[T1])]);
    let up = T1.to_uppercase();
    assert_eq!(
        select(&is, &peek(&format!("https://i/{up}/v2.0"), Some(&up))),
        Ok(0)
    );
    assert_eq!(
        select(&is, &peek(&format!("https://i/{T2}/v2.0"), Some(T2))),
        Err(TENANT_NOT_ALLOWED)
    );
}

#[test]
fn guid_shape() {
    assert!(is_guid(T1));
    assert!(is_guid(&T1.to_uppercase()));
    for bad in [
        "",
        "72f988bf86f141af91ab2d7cd011db47",
        "72f988bf-86f1-41af-91ab-2d7cd011db4g",
        "72f988bf-86f1-41af-91ab-2d7cd011db47-",
    ] {
        assert!(!is_guid(bad), "{bad}");
    }
}

#[test]
fn validations_pin_issuer_and_one_algorithm_each() {
    let is = issuers(vec![
        cfg("https://single/", &[]),
        cfg("https://m/{tenantid}/", &[]),
    ]);
    let v = is[0]
        .validation(JwsAlgorithm::ES256, "https://single/")
        .unwrap();
    assert_eq!(v.algorithms, vec![Algorithm::ES256]);
    assert!(
        v.iss
            .as_ref()
            .is_some_and(|s| s.len() == 1 && s.contains("https://single/"))
    );
    assert!(v.validate_nbf && v.validate_exp && v.validate_aud);
    assert!(
        ["exp", "iss", "aud"]
            .iter()
            .all(|c| v.required_spec_claims.contains(*c))
    );
    let iss = format!("https://m/{T1}/");
    let v = is[1].validation(JwsAlgorithm::RS256, &iss).unwrap();
    assert!(v.iss.as_ref().is_some_and(|s| s.contains(&iss)));
    assert!(
        is[0]
            .validation(JwsAlgorithm::PS256, "https://single/")
            .is_none()
    );
}
