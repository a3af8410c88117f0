//! The one place where a refusal becomes an HTTP response.
//!
//! Every step returns a [`Rejection`]; [`reject`] turns it into an RFC 9457
//! `application/problem+json` body with the right status, `WWW-Authenticate` and
//! `Retry-After` headers. The `match` is exhaustive (no `_ =>`) so that a new variant cannot
//! silently become a 500. [`Outcome`] is the closed set of decision labels used by metrics
//! and the decision log; the response carries it in its extensions.

use std::fmt::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

use crate::body::Body;
use crate::config::ChallengeStyle;
use crate::ids::DecisionId;

/// Decision label for metrics and logs. Closed set: `as_str` values are the only label
/// values `accessgate_requests_total{decision}` has, besides the transport's `cancelled`
/// (a request dropped before it answered, see `crate::transport::limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Allow,
    NotFound,
    BadRequest,
    Unauthenticated,
    Reauthenticate,
    StepUp,
    Remediate,
    Block,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
}

impl Outcome {
    pub const ALL: [Outcome; 11] = [
        Self::Allow,
        Self::NotFound,
        Self::BadRequest,
        Self::Unauthenticated,
        Self::Reauthenticate,
        Self::StepUp,
        Self::Remediate,
        Self::Block,
        Self::Unavailable,
        Self::UpstreamError,
        Self::UpstreamTimeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::NotFound => "not_found",
            Self::BadRequest => "bad_request",
            Self::Unauthenticated => "unauthenticated",
            Self::Reauthenticate => "reauthenticate",
            Self::StepUp => "step_up",
            Self::Remediate => "remediate",
            Self::Block => "block",
            Self::Unavailable => "unavailable",
            Self::UpstreamError => "upstream_error",
            Self::UpstreamTimeout => "upstream_timeout",
        }
    }

    /// Who is at fault, for logs: the client (4xx), our own state (503), or the upstream.
    pub fn fault(self) -> &'static str {
        match self {
            Self::Allow => "none",
            Self::NotFound
            | Self::BadRequest
            | Self::Unauthenticated
            | Self::Reauthenticate
            | Self::StepUp
            | Self::Remediate
            | Self::Block => "client",
            Self::Unavailable => "gateway",
            Self::UpstreamError | Self::UpstreamTimeout => "upstream",
        }
    }
}

/// A step-up requirement: what the client must satisfy on its next sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUp {
    /// Authentication context class (`acrs` value, e.g. `c1`), or `None` for plain MFA.
    pub auth_context: Option<String>,
    pub style: ChallengeStyle,
    pub authorization_uri: Option<Arc<str>>,
    /// RFC 9470 `max_age` (seconds), from a sign-in frequency, when one applies.
    pub max_age: Option<u64>,
}

/// A refusal by `authorize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// 401 with the CAE claims challenge (`nbf` = the sign-out moment), or `invalid_token`
    /// for clients that are not CAE-capable.
    Reauthenticate {
        nbf: i64,
        cae_capable: bool,
        authorization_uri: Option<Arc<str>>,
    },
    /// 401 asking for stronger authentication.
    StepUp(StepUp),
    /// 403 until `deadline` (unix seconds): the client can fix this without signing in.
    Remediate { deadline: i64, retry_after: u64 },
    /// 403: no sign-in will help.
    Block,
}

/// Why a request was not forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No route matches host and path.
    NotFound,
    /// Malformed request (framing, headers). 400.
    BadRequest(&'static str),
    /// The client's request body failed while it was streamed upstream (a bad chunk line,
    /// a body cut short). 400, the client's fault: never an upstream error.
    BadRequestBody,
    /// The request head is larger than `max_header_bytes`. 431.
    HeaderTooLarge,
    /// A transfer coding other than `chunked` (RFC 9112 6.1). 501.
    UnsupportedTransferCoding,
    /// No bearer token on a route that requires one. 401 with a bare challenge.
    MissingToken,
    /// Malformed `Authorization` (RFC 6750 `invalid_request`). 400.
    InvalidRequest(&'static str),
    /// Token refused. 401 `invalid_token`; the description is short and never echoes input.
    InvalidToken(&'static str),
    /// A Conditional Access decision against the caller.
    Denied {
        denial: Denial,
        /// Closed-set reason (`device_noncompliant`, `user_unlicensed`, ...).
        reason: &'static str,
        /// The policy that decided, when one did.
        policy: Option<Arc<str>>,
    },
    /// Policy state is missing or too old to decide on. 503.
    StateUnavailable { retry_after: u64 },
    /// The upstream refused, reset or failed. 502.
    UpstreamUnavailable(&'static str),
    /// The upstream did not answer within `request_timeout`. 504.
    UpstreamTimeout,
    /// The route asks for a signed identity assertion and none could be made. 500: the
    /// request is not forwarded without it.
    AssertionUnavailable,
}

impl Rejection {
    /// The decision label this rejection is counted under.
    pub fn outcome(&self) -> Outcome {
        match self {
            Rejection::NotFound => Outcome::NotFound,
            Rejection::BadRequest(_)
            | Rejection::BadRequestBody
            | Rejection::InvalidRequest(_)
            | Rejection::HeaderTooLarge
            | Rejection::UnsupportedTransferCoding => Outcome::BadRequest,
            Rejection::MissingToken | Rejection::InvalidToken(_) => Outcome::Unauthenticated,
            Rejection::Denied { denial, .. } => match denial {
                Denial::Reauthenticate { .. } => Outcome::Reauthenticate,
                Denial::StepUp(_) => Outcome::StepUp,
                Denial::Remediate { .. } => Outcome::Remediate,
                Denial::Block => Outcome::Block,
            },
            Rejection::StateUnavailable { .. } | Rejection::AssertionUnavailable => {
                Outcome::Unavailable
            }
            Rejection::UpstreamUnavailable(_) => Outcome::UpstreamError,
            Rejection::UpstreamTimeout => Outcome::UpstreamTimeout,
        }
    }

    /// The closed-set reason string for logs and the problem body.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::NotFound => "no_route",
            Rejection::BadRequest(_) => "bad_request",
            Rejection::BadRequestBody => "bad_request_body",
            Rejection::HeaderTooLarge => "header_too_large",
            Rejection::UnsupportedTransferCoding => "unsupported_transfer_coding",
            Rejection::MissingToken => "missing_token",
            Rejection::InvalidRequest(_) => "invalid_request",
            Rejection::InvalidToken(_) => "invalid_token",
            Rejection::Denied { reason, .. } => reason,
            Rejection::StateUnavailable { .. } => "state_stale",
            Rejection::UpstreamUnavailable(_) => "upstream_unavailable",
            Rejection::UpstreamTimeout => "upstream_timeout",
            Rejection::AssertionUnavailable => "assertion_unavailable",
        }
    }
}

/// What the observing layer reads back from a response: the outcome and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub reason: &'static str,
}

/// Realm used in every `WWW-Authenticate` challenge.
pub const REALM: &str = "accessgate";

/// Build the response for a rejection.
pub fn reject(rejection: &Rejection, decision_id: DecisionId) -> Response<Body> {
    let verdict = Verdict {
        outcome: rejection.outcome(),
        reason: rejection.reason(),
    };
    let problem = problem(rejection);
    let body = problem.body(verdict.reason, decision_id);
    problem.into_response(body, verdict)
}

/// What one refusal says: the status line, the problem body's fields and the headers.
struct Problem<'a> {
    status: StatusCode,
    title: &'static str,
    detail: String,
    /// `WWW-Authenticate` value.
    challenge: Option<String>,
    /// `Retry-After` seconds.
    retry_after: Option<u64>,
    /// Remediation deadline (unix seconds), rendered RFC 3339 in the body.
    deadline: Option<i64>,
    /// The policy that decided.
    policy: Option<&'a str>,
}

impl<'a> Problem<'a> {
    fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            title,
            detail: detail.into(),
            challenge: None,
            retry_after: None,
            deadline: None,
            policy: None,
        }
    }

    fn challenge(mut self, c: String) -> Self {
        self.challenge = Some(c);
        self
    }

    fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The RFC 9457 body.
    fn body(&self, reason: &str, decision_id: DecisionId) -> String {
        let mut body = String::with_capacity(256);
        body.push_str("{\"type\":\"about:blank\",\"title\":");
        push_json_str(&mut body, self.title);
        let _ = write!(body, ",\"status\":{}", self.status.as_u16());
        body.push_str(",\"detail\":");
        push_json_str(&mut body, &self.detail);
        body.push_str(",\"reason\":");
        push_json_str(&mut body, reason);
        if let Some(p) = self.policy {
            body.push_str(",\"policy\":");
            push_json_str(&mut body, p);
        }
        if let Some(d) = self.deadline {
            body.push_str(",\"remediation_deadline\":");
            push_json_str(&mut body, &rfc3339(d));
        }
        let _ = write!(body, ",\"decision_id\":\"{decision_id}\"}}");
        body
    }

    fn into_response(self, body: String, verdict: Verdict) -> Response<Body> {
        let mut resp = Response::new(Body::full(body));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(v) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            h.insert(WWW_AUTHENTICATE, v);
        }
        if let Some(ra) = self.retry_after {
            h.insert(RETRY_AFTER, HeaderValue::from(ra));
        }
        resp.extensions_mut().insert(verdict);
        resp
    }
}

/// The problem for each rejection. Exhaustive on purpose (see the module doc).
fn problem(rejection: &Rejection) -> Problem<'_> {
    match rejection {
        Rejection::NotFound => Problem::new(
            StatusCode::NOT_FOUND,
            "Not Found",
            "no route matches this host and path",
        ),
        Rejection::BadRequest(d) => Problem::new(StatusCode::BAD_REQUEST, "Bad Request", *d),
        Rejection::BadRequestBody => Problem::new(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "the request body is malformed or ended early",
        ),
        Rejection::UnsupportedTransferCoding => Problem::new(
            StatusCode::NOT_IMPLEMENTED,
            "Not Implemented",
            "only the chunked transfer coding is supported",
        ),
        Rejection::HeaderTooLarge => Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request Header Fields Too Large",
            "the request head is larger than this gateway accepts",
        ),
        Rejection::MissingToken => Problem::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "a bearer token is required",
        )
        .challenge(format!("Bearer realm=\"{REALM}\"")),
        Rejection::InvalidRequest(d) => Problem::new(StatusCode::BAD_REQUEST, "Bad Request", *d)
            .challenge(bearer_error("invalid_request", d)),
        Rejection::InvalidToken(d) => Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", *d)
            .challenge(bearer_error("invalid_token", d)),
        Rejection::Denied {
            denial,
            reason,
            policy,
        } => Problem {
            policy: policy.as_deref(),
            ..denied(denial, reason)
        },
        Rejection::StateUnavailable { retry_after } => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            "policy state is too old to decide on; try again shortly",
        )
        .retry_after(*retry_after),
        Rejection::UpstreamUnavailable(d) => {
            Problem::new(StatusCode::BAD_GATEWAY, "Bad Gateway", *d)
        }
        Rejection::UpstreamTimeout => Problem::new(
            StatusCode::GATEWAY_TIMEOUT,
            "Gateway Timeout",
            "the upstream did not answer in time",
        ),
        Rejection::AssertionUnavailable => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "the gateway could not sign the identity assertion this route requires",
        ),
    }
}

/// A Conditional Access denial: 401 with a challenge (sign in again, step up) or 403.
fn denied(denial: &Denial, reason: &str) -> Problem<'static> {
    match denial {
        Denial::Reauthenticate {
            nbf,
            cae_capable,
            authorization_uri,
        } => {
            let detail = format!("sign in again ({reason})");
            let challenge = if *cae_capable {
                let claims = format!(
                    "{{\"access_token\":{{\"nbf\":{{\"essential\":true,\"value\":\"{nbf}\"}}}}}}"
                );
                claims_challenge(authorization_uri.as_deref(), &claims)
            } else {
                bearer_error("invalid_token", &detail)
            };
            Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", detail).challenge(challenge)
        }
        Denial::StepUp(step) => {
            let detail = match &step.auth_context {
                Some(c) => format!("stronger authentication required (auth context {c})"),
                None => "multi-factor authentication required".to_owned(),
            };
            Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", detail)
                .challenge(step_up_challenge(step))
        }
        Denial::Remediate {
            deadline,
            retry_after,
        } => Problem {
            deadline: Some(*deadline),
            ..Problem::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("remediation required ({reason}); access resumes once compliant"),
            )
            .retry_after(*retry_after)
        },
        Denial::Block => Problem::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("access blocked by conditional access ({reason})"),
        ),
    }
}

/// `Bearer realm=.., error=.., error_description=..` (RFC 6750 3).
fn bearer_error(error: &str, description: &str) -> String {
    format!(
        "Bearer realm=\"{REALM}\", error=\"{error}\", error_description=\"{}\"",
        plain(description)
    )
}

/// `Bearer realm=.., authorization_uri=.., error="insufficient_claims", claims="<b64>"`.
fn claims_challenge(authorization_uri: Option<&str>, claims_json: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(claims_json);
    let mut s = format!("Bearer realm=\"{REALM}\"");
    if let Some(uri) = authorization_uri {
        let _ = write!(s, ", authorization_uri=\"{}\"", plain(uri));
    }
    let _ = write!(s, ", error=\"insufficient_claims\", claims=\"{b64}\"");
    s
}

/// Claims request for plain MFA (OIDC Core 5.5.1 `values` form for `amr`).
pub const MFA_CLAIMS: &str = r#"{"access_token":{"amr":{"essential":true,"values":["mfa"]}}}"#;

fn step_up_challenge(step: &StepUp) -> String {
    match step.style {
        ChallengeStyle::Entra => {
            // An authentication context is what Entra can step up to (c1..c99); plain MFA
            // is asked for with the OIDC claims-request form for `amr`.
            let claims = match step.auth_context.as_deref() {
                Some(acrs) => format!(
                    "{{\"access_token\":{{\"acrs\":{{\"essential\":true,\"value\":\"{}\"}}}}}}",
                    plain(acrs)
                ),
                None => MFA_CLAIMS.to_owned(),
            };
            claims_challenge(step.authorization_uri.as_deref(), &claims)
        }
        ChallengeStyle::Rfc9470 => {
            let mut s = format!(
                "Bearer realm=\"{REALM}\", error=\"insufficient_user_authentication\", error_description=\"{}\"",
                "stronger authentication required"
            );
            // A sign-in-frequency step-up (max_age, no auth context) asks only for a
            // fresh authentication, not for MFA.
            if step.auth_context.is_some() || step.max_age.is_none() {
                let acr = step.auth_context.as_deref().unwrap_or("mfa");
                let _ = write!(s, ", acr_values=\"{}\"", plain(acr));
            }
            if let Some(m) = step.max_age {
                let _ = write!(s, ", max_age=\"{m}\"");
            }
            s
        }
    }
}

/// Header-parameter-safe text: printable ASCII without `"` or `\`, so that clients that
/// parse `name="value"` with simple code never meet an escape.
fn plain(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Append `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Unix seconds as RFC 3339 UTC (`2026-11-28T01:02:03Z`).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
#[path = "respond_tests.rs"]
mod tests;
