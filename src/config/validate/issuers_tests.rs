//! `[[issuers]]`: each check that protects token verification refuses, naming key and line.

use super::is_guid;
use crate::config::validate::testkit::{last_line_of, ok, refused, refused_at, with};
use crate::config::{ChallengeStyle, JwsAlgorithm, KeySource};

/// A second issuer appended to the base config (which already has one).
fn issuer(body: &str) -> String {
    with(&format!("[[issuers]]\n{body}"))
}

#[test]
fn accepts_every_key() {
    let c = ok(&issuer(
        "issuer = \"https://login.microsoftonline.com/{tenantid}/v2.0\"\ntenants = [\"AAAAAAAA-bbbb-cccc-dddd-000000000000\"]\naudiences = [\"api://x\", \"11111111-2222-3333-4444-555555555555\"]\njwks_uri = \"https://login.microsoftonline.com/common/discovery/v2.0/keys\"\njwks_ca = \"ca.pem\"\nalgorithms = [\"RS256\", \"PS256\", \"ES384\", \"EdDSA\", \"RS256\"]\nauthorization_uri = \"https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize\"\nclaims = { user = \"sub\", client_app = \"client_id\", device = \"did\", groups = \"roles\" }\nchallenge = \"rfc9470\"\n",
    ));
    let i = &c.issuers[1];
    assert!(i.multi_tenant);
    assert_eq!(i.tenants, ["aaaaaaaa-bbbb-cccc-dddd-000000000000"]);
    assert_eq!(i.audiences.len(), 2);
    assert_eq!(
        i.keys,
        KeySource::Uri("https://login.microsoftonline.com/common/discovery/v2.0/keys".into())
    );
    assert_eq!(i.jwks_ca, Some("/etc/accessgate/ca.pem".into()));
    assert_eq!(
        i.algorithms,
        [
            JwsAlgorithm::RS256,
            JwsAlgorithm::PS256,
            JwsAlgorithm::ES384,
            JwsAlgorithm::EdDSA
        ]
    );
    assert_eq!(
        i.authorization_uri.as_deref(),
        Some("https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize")
    );
    assert_eq!(
        (
            i.claims.user.as_str(),
            i.claims.client_app.as_str(),
            i.claims.device.as_str(),
            i.claims.groups.as_str()
        ),
        ("sub", "client_id", "did", "roles")
    );
    assert_eq!(i.challenge, ChallengeStyle::Rfc9470);
}

#[test]
fn no_key_source_means_discovery_of_an_https_issuer() {
    let c = ok(&issuer(
        "issuer = \"https://idp.example.test/realms/corp\"\naudiences = [\"a\"]\n",
    ));
    assert_eq!(c.issuers[1].keys, KeySource::Discovery);
    let c = ok(&issuer(
        "issuer = \"http://127.0.0.1:5556/dex\"\naudiences = [\"a\"]\n",
    ));
    assert_eq!(c.issuers[1].keys, KeySource::Discovery);
    refused(
        &issuer("issuer = \"http://idp.example.test/realms/corp\"\naudiences = [\"a\"]\n"),
        "http://idp",
        "issuers[1].issuer",
        "OpenID discovery",
    );
    refused(
        &issuer("issuer = \"corp-idp\"\naudiences = [\"a\"]\n"),
        "corp-idp",
        "issuers[1].issuer",
        "OpenID discovery",
    );
}

#[test]
fn a_jwks_file_issuer_may_be_any_string() {
    let c = ok(&issuer(
        "issuer = \"demo issuer\"\naudiences = [\"a\"]\njwks_file = \"/k.json\"\n",
    ));
    assert_eq!(c.issuers[1].keys, KeySource::File("/k.json".into()));
}

#[test]
fn refuses_symmetric_and_unsigned_algorithms() {
    for alg in ["none", "HS256", "HS384", "HS512", "hs256", "None"] {
        let text = issuer(&format!(
            "issuer = \"https://b.test\"\naudiences = [\"a\"]\nalgorithms = [\"RS256\", \"{alg}\"]\n"
        ));
        refused(
            &text,
            "algorithms",
            "issuers[1].algorithms[1]",
            "symmetric (HS*) and unsigned (none) algorithms are never accepted",
        );
    }
}

#[test]
fn refuses_unknown_or_no_algorithms() {
    let line = refused(
        &issuer("issuer = \"https://b.test\"\naudiences = [\"a\"]\nalgorithms = [\"RS257\"]\n"),
        "RS257",
        "issuers[1].algorithms[0]",
        "unknown algorithm \"RS257\"",
    );
    assert!(line.contains("RS256, RS384"), "{line}");
    refused(
        &issuer("issuer = \"https://b.test\"\naudiences = [\"a\"]\nalgorithms = []\n"),
        "algorithms",
        "issuers[1].algorithms",
        "at least one algorithm",
    );
}

#[test]
fn jwks_uri_and_file_are_exclusive() {
    refused(
        &issuer(
            "issuer = \"https://b.test\"\naudiences = [\"a\"]\njwks_uri = \"https://b.test/keys\"\njwks_file = \"k.json\"\n",
        ),
        "jwks_uri",
        "issuers[1].jwks_uri",
        "mutually exclusive",
    );
}

#[test]
fn jwks_uri_must_be_tls_or_loopback() {
    refused(
        &issuer(
            "issuer = \"https://b.test\"\naudiences = [\"a\"]\njwks_uri = \"http://b.test/keys\"\n",
        ),
        "jwks_uri",
        "issuers[1].jwks_uri",
        "must be https://",
    );
    ok(&issuer(
        "issuer = \"https://b.test\"\naudiences = [\"a\"]\njwks_uri = \"http://localhost:9000/keys\"\n",
    ));
    refused(
        &issuer(
            "issuer = \"https://b.test\"\naudiences = [\"a\"]\njwks_uri = \"https://u:p@b.test/keys\"\n",
        ),
        "jwks_uri",
        "issuers[1].jwks_uri",
        "user info",
    );
}

#[test]
fn jwks_ca_only_for_fetched_keys() {
    refused(
        &issuer(
            "issuer = \"x\"\naudiences = [\"a\"]\njwks_file = \"k.json\"\njwks_ca = \"ca.pem\"\n",
        ),
        "jwks_ca",
        "issuers[1].jwks_ca",
        "only applies to fetched keys",
    );
}

#[test]
fn authorization_uri_must_be_tls_or_loopback() {
    refused(
        &issuer(
            "issuer = \"https://b.test\"\naudiences = [\"a\"]\nauthorization_uri = \"http://b.test/authorize\"\n",
        ),
        "authorization_uri",
        "issuers[1].authorization_uri",
        "must be https://",
    );
}

#[test]
fn tenants_need_a_templated_issuer_and_must_be_guids() {
    refused(
        &issuer(
            "issuer = \"https://b.test\"\naudiences = [\"a\"]\ntenants = [\"aaaaaaaa-bbbb-cccc-dddd-000000000000\"]\n",
        ),
        "tenants",
        "issuers[1].tenants",
        "only allowed when issuer contains \"{tenantid}\"",
    );
    let text = issuer(
        "issuer = \"https://login.microsoftonline.com/{tenantid}/v2.0\"\naudiences = [\"a\"]\njwks_uri = \"https://b.test/keys\"\ntenants = [\"contoso.onmicrosoft.com\"]\n",
    );
    refused(
        &text,
        "tenants",
        "issuers[1].tenants[0]",
        "is not a tenant GUID",
    );
}

#[test]
fn templated_issuer_rules() {
    refused(
        &issuer(
            "issuer = \"https://login.microsoftonline.com/{tenantid}/v2.0\"\naudiences = [\"a\"]\n",
        ),
        "{tenantid}",
        "issuers[1].issuer",
        "needs jwks_uri or jwks_file",
    );
    refused(
        &issuer(
            "issuer = \"https://x/{tenantid}/{tenantid}\"\naudiences = [\"a\"]\njwks_file = \"k\"\n",
        ),
        "{tenantid}",
        "issuers[1].issuer",
        "only once",
    );
    refused(
        &issuer("issuer = \"https://x/{tenant}/v2.0\"\naudiences = [\"a\"]\njwks_file = \"k\"\n"),
        "{tenant}",
        "issuers[1].issuer",
        "only placeholder",
    );
}

#[test]
fn audiences_are_required_and_non_empty() {
    let text = issuer("issuer = \"https://b.test\"\n");
    refused_at(
        &text,
        last_line_of(&text, "[[issuers]]"),
        "issuers[1].audiences",
        "missing (required)",
    );
    refused(
        &issuer("issuer = \"https://b.test\"\naudiences = []\n"),
        "audiences = []",
        "issuers[1].audiences",
        "at least one audience",
    );
    refused(
        &issuer("issuer = \"https://b.test\"\naudiences = [\"\"]\n"),
        "audiences = [\"\"]",
        "issuers[1].audiences[0]",
        "must not be empty",
    );
}

#[test]
fn issuer_is_required_and_unique() {
    let text = issuer("audiences = [\"a\"]\njwks_file = \"k\"\n");
    refused_at(
        &text,
        last_line_of(&text, "[[issuers]]"),
        "issuers[1].issuer",
        "missing (required)",
    );
    let text = issuer(
        "issuer = \"https://login.example.test/tenant/v2.0\"\naudiences = [\"b\"]\njwks_file = \"k\"\n",
    );
    refused_at(
        &text,
        last_line_of(&text, "issuer = "),
        "issuers[1].issuer",
        "is already issuers[0]",
    );
}

#[test]
fn claims_and_challenge_values() {
    refused(
        &issuer("issuer = \"https://b.test\"\naudiences = [\"a\"]\nclaims = { user = \"\" }\n"),
        "claims",
        "issuers[1].claims.user",
        "must not be empty",
    );
    refused(
        &issuer("issuer = \"https://b.test\"\naudiences = [\"a\"]\nchallenge = \"oidc\"\n"),
        "oidc",
        "issuers[1].challenge",
        "is not one of \"entra\", \"rfc9470\"",
    );
}

#[test]
fn guid_shape() {
    assert!(is_guid("72f988bf-86f1-41af-91ab-2d7cd011db47"));
    for bad in [
        "72F988BF-86f1-41af-91ab-2d7cd011db47",
        "72f988bf86f141af91ab2d7cd011db47",
        "72f988bf-86f1-41af-91ab-2d7cd011db4g",
        "",
        "common",
    ] {
        assert!(!is_guid(bad), "{bad}");
    }
}
