//! What If's reading of a token's claims: the same issuer choice ([`issuer::select`]:
//! exact `iss`, then `{tenantid}` templates with their tenant allow-lists) and the same
//! claims reader ([`claims::principal`]: strict types, duplicate members refused, the
//! issuer's claim names) as [`super::Authenticator`], minus what needs keys: the
//! signature, `aud` and the time checks are not made (What If is offline and evaluates at
//! a time of the caller's choosing). So a token the gateway would refuse for its claims
//! is refused here too, with the gateway's own description.

use std::sync::Arc;
use std::time::Duration;

use super::error::TokenRefusal;
use super::issuer::{self, Issuer};
use super::principal::Principal;
use super::store::KeyStore;
use super::{claims, jose};
use crate::config::IssuerConfig;
use crate::ops::metrics::Metrics;

/// The principal `authenticate` would build from this (decoded, unverified) payload.
pub fn principal_from_payload(
    issuers: &[IssuerConfig],
    payload: &[u8],
) -> Result<Principal, TokenRefusal> {
    // Issuers without keys: selection reads only their config. A throwaway registry keeps
    // the key stores' counters out of any real one.
    let metrics = Metrics::new();
    let issuers: Vec<Issuer> = issuers
        .iter()
        .map(|c| {
            let store = Arc::new(KeyStore::new(c, &metrics));
            Issuer::new(c.clone(), store, Duration::ZERO, Duration::ZERO)
        })
        .collect();
    let peek = jose::peek(payload)?;
    let idx = issuer::select(&issuers, &peek)?;
    let iss: Arc<str> = Arc::from(peek.iss);
    claims::principal(payload, &issuers[idx].config.claims, idx, &iss, || {
        "what-if".to_owned()
    })
}

#[cfg(test)]
#[path = "offline_tests.rs"]
mod tests;
