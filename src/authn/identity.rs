//! The gateway's identity header values for one principal, built once.
//!
//! A cached token's principal is shared (one `Arc`) by every request that presents the
//! token, so `x-accessgate-user`, `-app` and `-device` are validated and copied into
//! `HeaderValue`s the first time the principal is forwarded, and every later request
//! shares them (a reference count) instead of a validation and a copy per header per
//! request.

use std::sync::OnceLock;

use http::HeaderValue;

use super::principal::Principal;

/// The identity header values. `None` where the claim is absent or holds a character a
/// header value cannot carry: that header is left out (the request still goes upstream,
/// as it always has).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentityValues {
    pub user: Option<HeaderValue>,
    pub app: Option<HeaderValue>,
    pub device: Option<HeaderValue>,
}

impl IdentityValues {
    fn of(p: &Principal) -> Self {
        let value = |s: &str| HeaderValue::from_str(s).ok();
        Self {
            user: value(&p.user),
            app: p.client_app.as_deref().and_then(value),
            device: p.device.as_deref().and_then(value),
        }
    }
}

/// [`IdentityValues`], built on first use. Derived data, not a claim: a clone starts
/// empty (the copy may be edited before it is used and must not inherit the original's
/// values), and any two compare equal (principals compare by their claims).
#[derive(Default)]
pub struct IdentityHeaders(OnceLock<IdentityValues>);

impl Clone for IdentityHeaders {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for IdentityHeaders {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for IdentityHeaders {}

impl std::fmt::Debug for IdentityHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityHeaders")
    }
}

impl Principal {
    /// The identity header values, built from the claims on the first call. Call it only
    /// on a principal that no longer changes (a verified one, behind its `Arc`): the
    /// values are not rebuilt when a field is edited afterwards.
    pub fn identity_headers(&self) -> &IdentityValues {
        self.identity.0.get_or_init(|| IdentityValues::of(self))
    }
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
