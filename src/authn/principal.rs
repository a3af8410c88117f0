//! The authenticated caller, as `authenticate` hands it to `authorize`.

use std::sync::Arc;

use super::identity::IdentityHeaders;

/// Who is calling, read from a verified token. Inserted into the request extensions as
/// `Arc<Principal>` (the verified-token cache shares one allocation between requests).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Principal {
    /// Index into `Config::issuers` of the issuer that signed the token.
    pub issuer_index: usize,
    /// The token's `iss`, exactly.
    pub issuer: Arc<str>,
    /// User id: the issuer's user claim (`oid`, fallback `sub`).
    pub user: String,
    /// Tenant (`tid`), lower-case, when present.
    pub tenant: Option<String>,
    /// Client app id: `azp` (v2), fallback `appid` (v1); or the issuer's configured claim.
    pub client_app: Option<String>,
    /// Entra device id (`deviceid`), when the token carries one.
    pub device: Option<String>,
    /// Group ids from the token's `groups` claim.
    pub groups: Vec<String>,
    /// True when the token's `groups` list cannot be taken as complete: a groups overage
    /// (`_claim_names.groups` / `hasgroups`), or no `groups` claim at all. Membership is
    /// then unknown unless the user is in policy state (and unknown never loosens).
    pub groups_incomplete: bool,
    /// `amr` values (e.g. `pwd`, `mfa`).
    pub amr: Vec<String>,
    /// `acrs` values (authentication contexts satisfied, e.g. `c1`).
    pub acrs: Vec<String>,
    /// `auth_time` (unix seconds), when present.
    pub auth_time: Option<i64>,
    /// `iat` (unix seconds), when present.
    pub iat: Option<i64>,
    /// `exp` (unix seconds); always present in an accepted token.
    pub exp: i64,
    /// `nbf` (unix seconds), when present.
    pub nbf: Option<i64>,
    /// `xms_cc` contains `cp1`: the client handles CAE claims challenges.
    pub cae_capable: bool,
    /// `scp`, split on spaces.
    pub scopes: Vec<String>,
    /// `roles`.
    pub roles: Vec<String>,
    /// A log-safe token identifier: the `jti`, or a short hash of the token. Never the token.
    pub token_id: String,
    /// The `x-accessgate-*` header values, built once from the fields above
    /// ([`Principal::identity_headers`]).
    pub identity: IdentityHeaders,
}

impl Principal {
    /// When the user last authenticated: `auth_time`, falling back to `iat`.
    pub fn authenticated_at(&self) -> Option<i64> {
        self.auth_time.or(self.iat)
    }
}
