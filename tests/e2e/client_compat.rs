//! Client compatibility of the challenges: every `WWW-Authenticate` the gateway sends
//! parses with the simple `name="value"` code real clients use, and the claims challenge is
//! read (a) by a faithful Rust mirror of MSAL.NET's `WwwAuthenticateParameters` parser, and
//! (b) by the real Azure SDK for Python (`azure-core`'s `BearerTokenCredentialPolicy`),
//! which must retry once with the decoded claims and get through.
//!
//! (b) needs a Python with `azure-core` and `requests`: set `ACCESSGATE_PYTHON` to its
//! interpreter (`.ci/run` builds one in `target/compat-venv`). Without it the test says it
//! was skipped — unless `ACCESSGATE_REQUIRE_COMPAT=1`, when it fails instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::*;

/// A mirror of how MSAL.NET turns a `WWW-Authenticate` header into parameters and a claims
/// challenge. Sources (AzureAD/microsoft-authentication-library-for-dotnet):
/// - `src/client/Microsoft.Identity.Client/WwwAuthenticateParameters.cs`:
///   `CreateFromAuthenticationHeaders(headers, scheme)`, `GetClaimChallengeFromResponseHeaders`,
///   `CreateFromWwwAuthenticationHeaderValue`, `GetParsedAuthValueElements`,
///   `CreateWwwAuthenticateParameters`, `GetJsonFragment`;
/// - `src/client/Microsoft.Identity.Client/AuthenticationHeaderParser.cs`: `CreateKeyValuePair`;
/// - `src/client/Microsoft.Identity.Client/Utils/CoreHelpers.cs`: `SplitWithQuotes`.
///
/// Only the header-to-`Parameter` step is simplified: System.Net.Http's
/// `AuthenticationHeaderValue` gives the scheme token and the text after it; the gateway
/// sends one challenge per header, so that is "up to the first space" and "the rest".
mod msal_net {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

    /// `s_knownAuthenticationSchemes` (`Bearer`, `PoP`), compared ignoring case.
    const KNOWN_SCHEMES: [&str; 2] = ["Bearer", "PoP"];

    #[derive(Debug, Default)]
    pub struct WwwAuthenticateParameters {
        /// `RawParameters`: a dictionary with `StringComparer.OrdinalIgnoreCase` keys.
        pub raw: Vec<(String, String)>,
        pub authority: Option<String>,
        pub claims: Option<String>,
        pub error: Option<String>,
    }

    impl WwwAuthenticateParameters {
        pub fn get(&self, key: &str) -> Option<&str> {
            self.raw
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.as_str())
        }
    }

    /// `CoreHelpers.SplitWithQuotes`: split on `delimiter` outside double quotes, dropping
    /// blank items; quotes are kept.
    fn split_with_quotes(input: &str, delimiter: char) -> Vec<&str> {
        if input.trim().is_empty() {
            return Vec::new();
        }
        let mut items = Vec::new();
        let mut start = 0;
        let mut inside = false;
        for (i, c) in input.char_indices() {
            if c == delimiter && !inside {
                let item = &input[start..i];
                if !item.trim().is_empty() {
                    items.push(item);
                }
                start = i + c.len_utf8();
            } else if c == '"' {
                inside = !inside;
            }
        }
        let item = &input[start..];
        if !item.trim().is_empty() {
            items.push(item);
        }
        items
    }

    /// `AuthenticationHeaderParser.CreateKeyValuePair`.
    fn create_key_value_pair(param: &str, scheme: &str) -> (String, String) {
        let segments: Vec<&str> = split_with_quotes(param, '=')
            .into_iter()
            .map(|s| s.trim().trim_matches('"'))
            .collect();
        if segments.len() < 2 {
            return (scheme.to_owned(), param.to_owned());
        }
        (segments[0].to_owned(), segments[1].to_owned())
    }

    /// `GetParsedAuthValueElements`.
    fn parsed_auth_value_elements(value: &str) -> Vec<&str> {
        let mut split = split_with_quotes(value, ' ');
        if split
            .first()
            .is_some_and(|s| KNOWN_SCHEMES.iter().any(|k| k.eq_ignore_ascii_case(s)))
        {
            split.remove(0);
        }
        split
            .into_iter()
            .map(|v| v.trim_end_matches([',', ' ']))
            .collect()
    }

    /// `GetJsonFragment`: base64-decode only what `Convert.FromBase64String` accepts
    /// (standard alphabet, length a multiple of 4, `=` padding; it does not check the unused
    /// trailing bits), else keep the input as is.
    fn json_fragment(input: &str) -> String {
        if input.is_empty()
            || !input.len().is_multiple_of(4)
            || input.chars().any(char::is_whitespace)
        {
            return input.to_owned();
        }
        let engine = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new()
                .with_decode_allow_trailing_bits(true)
                .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
        );
        match engine.decode(input) {
            // `Encoding.UTF8.GetString` replaces invalid sequences.
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(_) => input.to_owned(),
        }
    }

    /// `CreateFromAuthenticationHeaders(headers, scheme)` for one header value: `Err` where
    /// MSAL.NET throws `MsalClientException(UnableToParseAuthenticationHeader)` (e.g. a
    /// duplicate key makes `ToDictionary` throw).
    pub fn create_from_header(
        header: &str,
        scheme: &str,
    ) -> Result<WwwAuthenticateParameters, String> {
        let (header_scheme, parameter) = header.split_once(' ').unwrap_or((header, ""));
        if !header_scheme.eq_ignore_ascii_case(scheme) {
            return Ok(WwwAuthenticateParameters::default());
        }
        let mut raw: Vec<(String, String)> = Vec::new();
        if !parameter.trim().is_empty() {
            for element in parsed_auth_value_elements(parameter) {
                let (k, v) = create_key_value_pair(element.trim(), scheme);
                if raw.iter().any(|(x, _)| x.eq_ignore_ascii_case(&k)) {
                    return Err(format!("duplicate key {k:?}"));
                }
                raw.push((k, v));
            }
        }
        let mut p = WwwAuthenticateParameters {
            raw,
            ..Default::default()
        };
        let strip = |v: &str| v.replace("/v2.0", "").replace("/oauth2/authorize", "");
        p.authority = p
            .get("authorization_uri")
            .map(strip)
            .filter(|a| !a.is_empty())
            .or_else(|| p.get("authorization").map(strip).filter(|a| !a.is_empty()))
            .or_else(|| {
                p.get("authority")
                    .map(|v| v.trim_end_matches('/').to_owned())
            });
        p.claims = p.get("claims").map(json_fragment);
        p.error = p.get("error").map(str::to_owned);
        Ok(p)
    }

    /// `GetClaimChallengeFromResponseHeaders(headers)` (scheme `Bearer`).
    pub fn claim_challenge(header: &str) -> Result<Option<String>, String> {
        let p = create_from_header(header, "Bearer")?;
        Ok(match (&p.claims, &p.error) {
            (Some(c), Some(e)) if e.eq_ignore_ascii_case("insufficient_claims") => Some(c.clone()),
            _ => None,
        })
    }
}

const POLICIES: &str = r#"
[[policies]]
name = "approved-only"
resources = ["corp-api"]
include_users = ["all"]
grant = { controls = ["approved_app"] }

[[policies]]
name = "needs-c1"
resources = ["ctx-api"]
include_users = ["all"]
grant = { controls = ["mfa"], auth_context = "c1" }
"#;

/// A gateway where `u-rev`'s sessions were revoked at the returned moment.
async fn revoked_gateway() -> (CaGateway, i64) {
    let revoked = unix_now() - 600;
    let st = json!({"users": [
        {"id": "u-rev", "accountEnabled": true, "licensed": true, "revokeSessionsAfter": ts(revoked)},
        {"id": "u-ok", "accountEnabled": true, "licensed": true},
    ]});
    let mut spec = CaSpec::new(POLICIES, st);
    spec.routes = vec![("/ctx", "ctx-api"), ("/", "corp-api")];
    (CaGateway::start(spec).await, revoked)
}

fn header(parts: &http::response::Parts) -> String {
    parts.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn msal_net_reads_the_claims_challenges() {
    let (ca, revoked) = revoked_gateway().await;
    let cp1 = |o: &mut accessgate::authn::dev::DevTokenOptions| {
        o.xms_cc = vec!["cp1".into()];
        o.iat = Some(unix_now() - 3600);
    };

    // CAE sign-out of a revoked session.
    let old = ca.token("u-rev", cp1);
    let (parts, _) = ca
        .expect_refusal("/", Some(&old), true, &[], 401, "session_revoked")
        .await;
    let h = header(&parts);
    let p = msal_net::create_from_header(&h, "Bearer").unwrap();
    assert_eq!(p.error.as_deref(), Some("insufficient_claims"));
    assert_eq!(p.get("realm"), Some("accessgate"));
    assert_eq!(
        p.authority.as_deref(),
        Some("https://login.accessgate.dev/demo-tenant")
    );
    assert_eq!(
        msal_net::claim_challenge(&h).unwrap(),
        Some(nbf_claims(revoked))
    );

    // Step-up to an authentication context.
    let (parts, _) = ca
        .expect_refusal(
            "/ctx",
            Some(&ca.token("u-ok", cp1)),
            false,
            &[],
            401,
            "auth_context_required",
        )
        .await;
    let claims = msal_net::claim_challenge(&header(&parts)).unwrap().unwrap();
    assert_eq!(claims, acrs_claims("c1"));
    let v: Value = serde_json::from_str(&claims).unwrap();
    assert_eq!(
        v,
        json!({"access_token": {"acrs": {"essential": true, "value": "c1"}}})
    );

    // A client without cp1: parses (spaces inside the quoted description are fine), no
    // claims challenge to act on.
    let plain = ca.token("u-rev", |o| o.iat = Some(unix_now() - 3600));
    let (parts, _) = ca
        .expect_refusal("/", Some(&plain), true, &[], 401, "session_revoked")
        .await;
    let h = header(&parts);
    let p = msal_net::create_from_header(&h, "Bearer").unwrap();
    assert_eq!(p.error.as_deref(), Some("invalid_token"));
    assert!(p.get("error_description").is_some_and(|d| !d.is_empty()));
    assert_eq!(msal_net::claim_challenge(&h).unwrap(), None);

    // No token: the bare challenge.
    let (parts, _) = ca
        .expect_refusal("/", None, false, &[], 401, "missing_token")
        .await;
    let p = msal_net::create_from_header(&header(&parts), "Bearer").unwrap();
    assert_eq!(p.get("realm"), Some("accessgate"));
    assert_eq!(p.error, None);
}

/// The mirror is strict where MSAL.NET is: these are the mistakes a gateway could make,
/// and MSAL.NET would not recover the claims from any of them.
#[test]
fn msal_net_mirror_rejects_what_msal_net_rejects() {
    use base64::Engine as _;
    let json = nbf_claims(1_767_225_600);
    let std_b64 = base64::engine::general_purpose::STANDARD.encode(&json);
    let good = format!("Bearer realm=\"r\", error=\"insufficient_claims\", claims=\"{std_b64}\"");
    assert_eq!(
        msal_net::claim_challenge(&good).unwrap(),
        Some(json.clone())
    );
    // URL-safe base64 without padding is passed through undecoded.
    let url_b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&json);
    assert!(!url_b64.len().is_multiple_of(4), "this JSON needs padding");
    let unpadded = good.replace(&std_b64, &url_b64);
    assert_eq!(msal_net::claim_challenge(&unpadded).unwrap(), Some(url_b64));
    // An unquoted value loses its `=` padding to the key/value split.
    let unquoted = good.replace(&format!("\"{std_b64}\""), &std_b64);
    assert_ne!(msal_net::claim_challenge(&unquoted).unwrap(), Some(json));
    // A repeated parameter makes MSAL.NET throw.
    assert!(msal_net::claim_challenge(&format!("{good}, error=\"x\"")).is_err());
}

/// Run `python script args..` with a bound on time; returns (exit ok, stdout, stderr).
async fn run_python(python: &str, script: &Path, args: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(python)
        .arg(script)
        .args(args)
        .env("NO_PROXY", "*")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run ACCESSGATE_PYTHON={python}: {e}"));
    let what = script.display().to_string();
    let status = support::wait_exit(&mut child, Duration::from_secs(120), &what).await;
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    (status.success(), read(&out_path), read(&err_path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_core_bearer_policy_retries_with_the_decoded_claims() {
    let Some(python) = std::env::var_os("ACCESSGATE_PYTHON") else {
        if std::env::var("ACCESSGATE_REQUIRE_COMPAT").as_deref() == Ok("1") {
            panic!(
                "ACCESSGATE_REQUIRE_COMPAT=1 but ACCESSGATE_PYTHON is not set: the azure-core \
                 client compatibility test cannot run"
            );
        }
        println!(
            "skipped: set ACCESSGATE_PYTHON to a Python with azure-core and requests to run the \
             azure-core client compatibility test (see .ci/run)"
        );
        return;
    };
    let python = python.into_string().unwrap();
    let (ca, revoked) = revoked_gateway().await;
    let cp1 = |iat: i64| {
        move |o: &mut accessgate::authn::dev::DevTokenOptions| {
            o.xms_cc = vec!["cp1".into()];
            o.iat = Some(iat);
        }
    };
    let old = ca.token("u-rev", cp1(revoked - 3000));
    let fresh = ca.token("u-rev", cp1(unix_now()));

    // What the gateway asks of the old token.
    let (parts, _) = ca
        .expect_refusal("/compat", Some(&old), true, &[], 401, "session_revoked")
        .await;
    let challenge = assert_claims_challenge(&parts, &nbf_claims(revoked));
    let expected = decode_claims(challenge.get("claims").unwrap());

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/azure_core_claims.py");
    let url = ca.gw.url("/compat");
    let ca_path = ca.gw.ca().display().to_string();
    let before = ca.up.count();
    let (ok, stdout, stderr) = run_python(&python, &script, &[&url, &ca_path, &old, &fresh]).await;
    assert!(
        ok,
        "azure-core client failed:\nstdout: {stdout}\nstderr: {stderr}"
    );
    // The claims azure-core decoded and handed to the credential are the challenge's.
    assert_eq!(stdout.trim(), expected, "stderr: {stderr}");
    let got: Value = serde_json::from_str(stdout.trim()).unwrap();
    let want: Value = serde_json::from_str(&expected).unwrap();
    assert_eq!(got, want);
    // Exactly the retried request reached the upstream, with the fresh token.
    assert_eq!(ca.up.count(), before + 1);
    let r = ca.up.requests().pop().unwrap();
    assert_eq!(r.uri.path(), "/compat");
    assert_eq!(
        r.headers["authorization"],
        format!("Bearer {fresh}").as_str()
    );
    assert_eq!(r.headers["x-accessgate-user"], "u-rev");
}

fn user(id: &str) -> Value {
    json!({"id": id, "accountEnabled": true, "licensed": true})
}

fn policy(name: &str, resource: &str, grant: &str) -> String {
    format!(
        "\n[[policies]]\nname = \"{name}\"\nresources = [\"{resource}\"]\ninclude_users = [\"all\"]\ngrant = {grant}\n"
    )
}

#[tokio::test]
async fn every_challenge_parses_with_a_simple_client_parser() {
    let mut policies = policy("needs-mfa", "mfa-api", r#"{ controls = ["mfa"] }"#);
    policies.push_str(&policy(
        "needs-c1",
        "ctx-api",
        r#"{ controls = ["mfa"], auth_context = "c1" }"#,
    ));
    policies.push_str(&policy(
        "needs-app",
        "corp-api",
        r#"{ controls = ["approved_app"] }"#,
    ));
    let revoked = unix_now() - 300;
    let st = json!({"users": [
        user("u-ivy"),
        {"id": "u-rev", "accountEnabled": true, "licensed": true, "revokeSessionsAfter": ts(revoked)},
        {"id": "u-off", "accountEnabled": false, "licensed": true},
    ]});
    let mut spec = CaSpec::new(&policies, st);
    spec.routes = vec![("/mfa", "mfa-api"), ("/ctx", "ctx-api"), ("/", "corp-api")];
    let ca = CaGateway::start(spec).await;
    let tok = |u: &str, f: &dyn Fn(&mut accessgate::authn::dev::DevTokenOptions)| {
        ca.token(u, |o| {
            o.iat = Some(unix_now() - 3600);
            f(o)
        })
    };
    let cp1 = |o: &mut accessgate::authn::dev::DevTokenOptions| o.xms_cc = vec!["cp1".into()];
    let rfc = |o: &mut accessgate::authn::dev::DevTokenOptions| o.issuer = RFC9470_ISSUER.into();
    let cases: Vec<(&str, &str, Option<String>, &str)> = vec![
        ("no token", "/", None, "missing_token"),
        (
            "garbage token",
            "/",
            Some("not.a.jwt".into()),
            "invalid_token",
        ),
        (
            "revoked, cp1",
            "/",
            Some(tok("u-rev", &cp1)),
            "session_revoked",
        ),
        (
            "revoked, no cp1",
            "/",
            Some(tok("u-rev", &|_| {})),
            "session_revoked",
        ),
        (
            "disabled, cp1",
            "/",
            Some(tok("u-off", &cp1)),
            "user_disabled",
        ),
        (
            "disabled, no cp1",
            "/",
            Some(tok("u-off", &|_| {})),
            "user_disabled",
        ),
        (
            "mfa, entra",
            "/mfa",
            Some(tok("u-ivy", &|_| {})),
            "mfa_required",
        ),
        (
            "c1, entra",
            "/ctx",
            Some(tok("u-ivy", &cp1)),
            "auth_context_required",
        ),
        (
            "mfa, rfc9470",
            "/mfa",
            Some(tok("u-ivy", &rfc)),
            "mfa_required",
        ),
        (
            "c1, rfc9470",
            "/ctx",
            Some(tok("u-ivy", &rfc)),
            "auth_context_required",
        ),
    ];
    for (i, (what, path, token, reason)) in cases.iter().enumerate() {
        let (parts, _) = ca
            .expect_refusal(
                path,
                token.as_deref(),
                i.is_multiple_of(2),
                &[],
                401,
                reason,
            )
            .await;
        // Parses completely (`challenge_of` panics otherwise), every value plain ASCII.
        let c = challenge_of(&parts);
        for (k, v) in &c.params {
            assert!(
                v.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "{what}: {k}={v:?}"
            );
        }
        // MSAL.NET reads the same parameters.
        let msal = msal_net::create_from_header(&header(&parts), "Bearer").unwrap();
        assert_eq!(msal.raw, c.params, "{what}");
        match c.get("error") {
            None => assert_eq!(c.names(), ["realm"], "{what}"),
            Some("insufficient_claims") => {
                decode_claims(c.get("claims").unwrap());
            }
            Some("invalid_token") => {
                assert_invalid_token_challenge(&parts);
            }
            Some("insufficient_user_authentication") => {
                assert_eq!(
                    c.get("acr_values"),
                    Some(if *path == "/ctx" { "c1" } else { "mfa" }),
                    "{what}"
                );
            }
            Some(other) => panic!("{what}: unexpected error {other:?}"),
        }
    }
    // The revoked user's CAE challenge names the revocation moment.
    let (parts, v) = ca
        .expect_refusal(
            "/",
            Some(&tok("u-rev", &cp1)),
            true,
            &[],
            401,
            "session_revoked",
        )
        .await;
    assert!(
        v.get("policy").is_none(),
        "no policy owns a revocation: {v}"
    );
    assert_claims_challenge(&parts, &nbf_claims(revoked));
}

/// The strict parser `every_challenge_parses_with_a_simple_client_parser` relies on refuses what simple client parsers misread.
#[test]
fn the_simple_parser_refuses_what_simple_clients_cannot_read() {
    let ok = parse_challenge(r#"Bearer realm="a", error="insufficient_claims", claims="e30=""#);
    assert_eq!(ok.names(), ["realm", "error", "claims"]);
    assert_eq!(ok.get("claims"), Some("e30="));
    for bad in [
        r#"Bearer realm = "a""#,
        r#"Bearer realm=a"#,
        r#"Bearer realm="a",error="b""#,
        r#"Bearer realm="a", error="say \"hi\"""#,
        r#"Bearer realm="a", realm="b""#,
        r#"Bearer realm="a", "#,
        r#"Bearer realm="a"#,
        "Bearer",
    ] {
        let r = std::panic::catch_unwind(|| parse_challenge(bad));
        assert!(r.is_err(), "accepted {bad:?}");
    }
}
