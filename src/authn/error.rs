//! Why a bearer token was refused: a closed set of reasons for metrics, and a short fixed
//! description for the client.
//!
//! Descriptions are `&'static str` on purpose: they can never echo a byte of the token or
//! of the header the client sent, so nothing the client controls reaches a response header.

use prometheus::IntCounter;

use crate::ops::metrics::Metrics;
use crate::respond::Rejection;

/// The `reason` label of `accessgate_token_rejections_total`. Closed set: `as_str` values
/// are the only label values the family ever has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    /// No `Authorization: Bearer` credentials at all.
    Missing,
    /// The `Authorization` header is malformed or repeated (RFC 6750 `invalid_request`).
    InvalidRequest,
    /// Over [`crate::authn::MAX_TOKEN_BYTES`]; refused before any decoding.
    TooLarge,
    /// Not a compact JWS: wrong number of parts, bad base64url, not JSON.
    Malformed,
    /// A JOSE header we refuse (`crit`, missing `alg`).
    Header,
    /// `alg` is `none`, HS*, unsupported, outside the issuer's allow-list, or wrong for the key.
    Algorithm,
    /// `iss` is not a configured issuer, or its tenant is not allowed.
    Issuer,
    /// `aud` names none of the issuer's audiences.
    Audience,
    /// `exp` is past (beyond the clock skew).
    Expired,
    /// `nbf` is in the future (beyond the clock skew).
    NotYetValid,
    /// No key with this `kid`, even after a refetch.
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// A required claim is missing or mistyped.
    Claims,
}

impl RefusalReason {
    pub const ALL: [RefusalReason; 13] = [
        Self::Missing,
        Self::InvalidRequest,
        Self::TooLarge,
        Self::Malformed,
        Self::Header,
        Self::Algorithm,
        Self::Issuer,
        Self::Audience,
        Self::Expired,
        Self::NotYetValid,
        Self::UnknownKey,
        Self::Signature,
        Self::Claims,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::InvalidRequest => "invalid_request",
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::Header => "header",
            Self::Algorithm => "algorithm",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::UnknownKey => "unknown_key",
            Self::Signature => "signature",
            Self::Claims => "claims",
        }
    }
}

/// One refusal: the metric reason and the client-facing description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRefusal {
    pub reason: RefusalReason,
    pub description: &'static str,
}

impl TokenRefusal {
    pub const fn new(reason: RefusalReason, description: &'static str) -> Self {
        Self {
            reason,
            description,
        }
    }

    /// The response-facing form. A non-Bearer scheme or no header at all is "no token"
    /// (RFC 6750 3.1: no error code), a malformed header is `invalid_request`, and every
    /// other refusal is `invalid_token`.
    pub fn to_rejection(self) -> Rejection {
        match self.reason {
            RefusalReason::Missing => Rejection::MissingToken,
            RefusalReason::InvalidRequest => Rejection::InvalidRequest(self.description),
            RefusalReason::TooLarge
            | RefusalReason::Malformed
            | RefusalReason::Header
            | RefusalReason::Algorithm
            | RefusalReason::Issuer
            | RefusalReason::Audience
            | RefusalReason::Expired
            | RefusalReason::NotYetValid
            | RefusalReason::UnknownKey
            | RefusalReason::Signature
            | RefusalReason::Claims => Rejection::InvalidToken(self.description),
        }
    }
}

/// Shorthands for the refusals used in more than one place.
pub(crate) mod refuse {
    use super::{RefusalReason as R, TokenRefusal as T};

    pub const MISSING: T = T::new(R::Missing, "a bearer token is required");
    pub const TOO_LARGE: T = T::new(R::TooLarge, "token too large");
    pub const MALFORMED: T = T::new(R::Malformed, "malformed token");
    pub const EMPTY: T = T::new(R::Malformed, "empty bearer token");
    pub const CLAIMS: T = T::new(R::Claims, "malformed or missing claims");
    pub const EXPIRED: T = T::new(R::Expired, "token expired");
    pub const NOT_YET_VALID: T = T::new(R::NotYetValid, "token not yet valid");
    pub const UNKNOWN_KEY: T = T::new(R::UnknownKey, "signing key not found");
    pub const ISSUER: T = T::new(R::Issuer, "issuer not trusted");
    pub const ALG_NOT_ALLOWED: T = T::new(R::Algorithm, "signing algorithm not allowed");
}

/// Concrete counters, one per reason, resolved once per [`super::Authenticator`] so a
/// refusal touches one atomic (no label hashing on the request path).
#[derive(Debug, Clone)]
pub(crate) struct RefusalCounters {
    counters: Vec<IntCounter>,
}

impl RefusalCounters {
    pub(crate) fn new(metrics: &Metrics) -> Self {
        Self {
            counters: RefusalReason::ALL
                .iter()
                .map(|r| {
                    metrics
                        .token_rejections_total
                        .with_label_values(&[r.as_str()])
                })
                .collect(),
        }
    }

    pub(crate) fn count(&self, reason: RefusalReason) {
        if let Some(c) = self.counters.get(reason as usize) {
            c.inc();
        }
    }
}
