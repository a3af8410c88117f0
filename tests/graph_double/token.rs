//! The Entra token endpoint (`POST /{tenant}/oauth2/v2.0/token`, client credentials) and
//! the bearer check in front of Graph. Error bodies are AADSTS-shaped like Entra's
//! (research/graph.md section 1); every request is recorded, the assertion decoded, so a
//! test can verify what the connector sent.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::serve::State;

/// The certificate a client assertion must be made with.
#[derive(Clone, Debug)]
pub struct CertCredential {
    /// DER of the certificate registered on the app: `x5t#S256` must be its SHA-256.
    pub der: Vec<u8>,
    /// Its public key (SPKI or PKCS#1 PEM): when given, the PS256 signature is verified.
    pub public_key_pem: Option<String>,
}

/// One token request as received.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub tenant: String,
    /// The form fields (secret included: tests check what was sent).
    pub form: BTreeMap<String, String>,
    /// The client id and secret came in an HTTP Basic header.
    pub basic_auth: bool,
    pub assertion_header: Option<Value>,
    pub assertion_claims: Option<Value>,
    /// `None` when accepted, else the AADSTS error description sent back.
    pub refused: Option<String>,
}

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `a=b&c=d` with `+` and percent escapes; pairs that are not UTF-8 are dropped.
pub fn parse_form(body: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in body.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let dec = |s: &[u8]| -> Option<String> {
            let plus: Vec<u8> = s
                .iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect();
            percent_encoding::percent_decode(&plus)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        };
        if let (Some(k), Some(v)) = (dec(k), dec(v)) {
            out.insert(k, v);
        }
    }
    out
}

/// An Entra error answer: `(status, body)`.
pub fn aad_error(status: u16, error: &str, code: u32, description: &str) -> (u16, String) {
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description}"),
        "error_codes": [code],
        "timestamp": "2026-12-01 09:00:00Z",
        "trace_id": "00000000-0000-0000-0000-000000000001",
        "correlation_id": "00000000-0000-0000-0000-000000000002",
    });
    (status, body.to_string())
}

fn decode_part(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn sha256_b64url(der: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    URL_SAFE_NO_PAD.encode(d.as_ref())
}

/// Checks a client assertion the way Entra documents it (certificate-credentials.md):
/// PS256, `x5t#S256` of the registered certificate, aud = the token URL, iss = sub =
/// client id, a short life, a fresh `jti`.
fn check_assertion(
    st: &mut State,
    jwt: &str,
    header: Option<&Value>,
    claims: Option<&Value>,
    token_urls: &[String],
) -> Result<(), String> {
    let (Some(h), Some(c)) = (header, claims) else {
        return Err("AADSTS50027: JWT token is invalid or malformed.".into());
    };
    let Some(cert) = st.config.certificate.clone() else {
        return Err("AADSTS700027: no certificate is registered on the application.".into());
    };
    if h.get("alg").and_then(Value::as_str) != Some("PS256") {
        return Err("AADSTS700027: client assertion alg must be PS256.".into());
    }
    if h.get("x5t#S256").and_then(Value::as_str) != Some(sha256_b64url(&cert.der).as_str()) {
        return Err("AADSTS700027: the certificate with identifier used to sign the client assertion is not registered on application.".into());
    }
    let client_id = st.config.client_id.clone();
    let str_claim = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
    if str_claim("iss").as_deref() != Some(client_id.as_str())
        || str_claim("sub").as_deref() != Some(client_id.as_str())
    {
        return Err("AADSTS700027: client assertion iss/sub must be the client id.".into());
    }
    let aud_ok = match c.get("aud") {
        Some(Value::String(a)) => token_urls.iter().any(|u| u == a),
        _ => false,
    };
    if !aud_ok {
        return Err(
            "AADSTS700027: client assertion audience claim does not match the token endpoint."
                .into(),
        );
    }
    let now = now_secs();
    let exp = c.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let nbf = c.get("nbf").and_then(Value::as_i64).unwrap_or(now);
    if exp <= now || nbf > now + 300 || exp - nbf > 3600 {
        return Err("AADSTS700027: client assertion is not within its valid time range.".into());
    }
    let Some(jti) = str_claim("jti").filter(|j| !j.is_empty()) else {
        return Err("AADSTS700027: client assertion has no jti.".into());
    };
    if !st.seen_jti.insert(jti) {
        return Err("AADSTS700027: client assertion jti was already used (replay).".into());
    }
    if let Some(pem) = &cert.public_key_pem {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|e| format!("AADSTS700027: double misconfigured: {e}"))?;
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::PS256);
        v.set_audience(token_urls);
        v.set_issuer(&[client_id]);
        v.validate_nbf = true;
        jsonwebtoken::decode::<Value>(jwt, &key, &v).map_err(|e| {
            format!("AADSTS700027: Client assertion failed signature validation ({e}).")
        })?;
    }
    Ok(())
}

/// Answers one token request: `(status, JSON body)`.
pub fn token(
    st: &mut State,
    tenant: &str,
    authorization: Option<&str>,
    body: &[u8],
    base_url: &str,
) -> (u16, String) {
    let mut form = parse_form(body);
    let mut basic_auth = false;
    let basic = authorization
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|d| String::from_utf8(d).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    if let Some((id, secret)) = basic {
        basic_auth = true;
        form.entry("client_id".into()).or_insert(id);
        form.entry("client_secret".into()).or_insert(secret);
    }
    let (assertion_header, assertion_claims) = match form.get("client_assertion") {
        Some(jwt) => {
            let mut parts = jwt.split('.');
            (
                parts.next().and_then(decode_part),
                parts.next().and_then(decode_part),
            )
        }
        None => (None, None),
    };
    let token_urls = vec![
        format!("{base_url}/{tenant}/oauth2/v2.0/token"),
        format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"),
    ];
    let scopes = [
        format!("{base_url}/.default"),
        "https://graph.microsoft.com/.default".to_string(),
    ];
    let get = |k: &str| form.get(k).map(String::as_str);
    let verdict: Result<(), (u16, String)> = (|| {
        if tenant != st.config.tenant_id {
            return Err(aad_error(
                400,
                "invalid_request",
                90002,
                &format!("Tenant '{tenant}' not found."),
            ));
        }
        if get("grant_type") != Some("client_credentials") {
            return Err(aad_error(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type.",
            ));
        }
        if get("client_id") != Some(st.config.client_id.as_str()) {
            return Err(aad_error(
                400,
                "unauthorized_client",
                700016,
                &format!(
                    "Application with identifier '{}' was not found in the directory.",
                    get("client_id").unwrap_or("")
                ),
            ));
        }
        if !get("scope").is_some_and(|s| scopes.iter().any(|x| x == s)) {
            return Err(aad_error(
                400,
                "invalid_scope",
                70011,
                &format!(
                    "The provided value for the input parameter 'scope' is not valid. The scope {} is not valid.",
                    get("scope").unwrap_or("")
                ),
            ));
        }
        if st.refuse_credentials {
            return Err(aad_error(
                400,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            ));
        }
        match (get("client_secret"), get("client_assertion")) {
            (Some(secret), None) => {
                if st.config.client_secret.as_deref() == Some(secret) {
                    Ok(())
                } else {
                    Err(aad_error(
                        400,
                        "invalid_client",
                        7000215,
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
                    ))
                }
            }
            (None, Some(jwt)) => {
                if get("client_assertion_type") != Some(ASSERTION_TYPE) {
                    return Err(aad_error(
                        400,
                        "invalid_request",
                        50027,
                        "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
                    ));
                }
                let jwt = jwt.to_string();
                check_assertion(
                    st,
                    &jwt,
                    assertion_header.as_ref(),
                    assertion_claims.as_ref(),
                    &token_urls,
                )
                .map_err(|d| {
                    let (code, rest) = d
                        .strip_prefix("AADSTS")
                        .and_then(|r| r.split_once(": "))
                        .and_then(|(c, r)| c.parse::<u32>().ok().map(|c| (c, r.to_string())))
                        .unwrap_or((700027, d.clone()));
                    aad_error(400, "invalid_client", code, &rest)
                })
            }
            (Some(_), Some(_)) => Err(aad_error(
                400,
                "invalid_request",
                90014,
                "Only one client credential may be sent.",
            )),
            (None, None) => Err(aad_error(
                400,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )),
        }
    })();
    let refused = verdict.as_ref().err().map(|(_, body)| {
        serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| {
                v.get("error_description")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default()
    });
    st.token_requests.push(TokenRequest {
        tenant: tenant.to_string(),
        form,
        basic_auth,
        assertion_header,
        assertion_claims,
        refused,
    });
    if let Err(e) = verdict {
        return e;
    }
    st.next_token += 1;
    let token = format!(
        "dbl.{}.{:016x}",
        st.next_token,
        st.nonce ^ st.next_token.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    );
    let lifetime = st.config.token_lifetime;
    st.tokens.insert(token.clone(), Instant::now() + lifetime);
    let secs = lifetime.as_secs();
    let body = json!({
        "token_type": "Bearer",
        "expires_in": secs,
        "ext_expires_in": secs,
        "access_token": token,
    });
    (200, body.to_string())
}

/// `Ok` when the request carries a live token the double issued, else a Graph 401 body.
pub fn check_bearer(st: &State, authorization: Option<&str>) -> Result<(), String> {
    let graph_error = |msg: &str| {
        json!({"error": {"code": "InvalidAuthenticationToken", "message": msg,
               "innerError": {"date": "2026-12-01T09:00:00", "request-id": "00000000-0000-0000-0000-000000000003"}}})
        .to_string()
    };
    let token = authorization.and_then(|a| {
        let (scheme, rest) = a.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    match token {
        None | Some("") => Err(graph_error("Access token is empty.")),
        Some(t) => match st.tokens.get(t) {
            None => Err(graph_error("IDX14100: JWT is not well formed.")),
            Some(exp) if Instant::now() >= *exp => Err(graph_error(
                "Lifetime validation failed, the token is expired.",
            )),
            Some(_) => Ok(()),
        },
    }
}

/// Default lifetime of issued tokens (Entra's usual `expires_in`).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3599);
