//! `grantControls` and `sessionControls` -> `grant` and `session`.
//!
//! A grant control accessgate cannot check is refused even under `OR` (where dropping it
//! would only remove a way to pass): the imported policy would still differ from Entra's,
//! and users who satisfy it today would be locked out.

use std::time::Duration;

use super::Context;
use super::entra::{self, meaningful};
use super::map::Findings;
use crate::config::{Grant, GrantControl, GrantOperator};

/// `frequencyInterval = everyTime`: Entra re-prompts at most once per five minutes
/// (its documented clock-skew allowance), so "every time" is a five-minute frequency.
pub(crate) const EVERY_TIME: Duration = Duration::from_secs(5 * 60);

/// `grantControls`. `has_session`: the policy has a session control (a policy with
/// neither grant nor session requires nothing and is skipped).
pub(crate) fn grant(
    g: Option<&entra::GrantControls>,
    cx: &Context,
    has_session: bool,
    f: &mut Findings,
) -> Grant {
    let before = f.refused();
    let built_in: &[String] = g
        .and_then(|g| g.built_in_controls.as_deref())
        .unwrap_or_default();
    if let Some(g) = g {
        for (key, list, why) in [
            (
                "customAuthenticationFactors",
                &g.custom_authentication_factors,
                "custom controls run at Entra's sign-in, not in the token",
            ),
            (
                "termsOfUse",
                &g.terms_of_use,
                "terms-of-use acceptance is not in the token",
            ),
        ] {
            if list.as_ref().is_some_and(|l| !l.is_empty()) {
                f.refuse(format!("grantControls.{key}: {why}"));
            }
        }
        if g.authentication_strength.as_ref().is_some_and(meaningful) {
            let name = g
                .authentication_strength
                .as_ref()
                .and_then(|s| s.get("displayName"))
                .and_then(|v| v.as_str())
                .unwrap_or("?");
            f.refuse(format!(
                "grantControls.authenticationStrength {name:?}: the token's amr does not show which method combination was used"
            ));
        }
        f.unknown("grantControls", &g.other);
    }
    let custom = g.is_some_and(|g| {
        [&g.custom_authentication_factors, &g.terms_of_use]
            .iter()
            .any(|l| l.as_ref().is_some_and(|l| !l.is_empty()))
            || g.authentication_strength.as_ref().is_some_and(meaningful)
    });
    if built_in.is_empty() && !custom {
        if has_session {
            f.refuse("no grant controls, only a session control: every accessgate policy needs a grant, so a session-only policy cannot be expressed");
        } else if f.refused() == before {
            f.skip("no grant or session controls: the policy requires nothing");
        }
        return Grant::Block;
    }
    let mut block = false;
    let mut controls: Vec<GrantControl> = Vec::new();
    for c in built_in {
        let mapped = match c.as_str() {
            "block" => {
                block = true;
                continue;
            }
            "mfa" => GrantControl::Mfa,
            "compliantDevice" => GrantControl::CompliantDevice,
            "approvedApplication" => {
                if !cx.has_approved_apps {
                    f.refuse("grantControls approvedApplication: the config's [approved_apps] names no app, so no client could satisfy it (add the approved client app ids and import again)");
                }
                GrantControl::ApprovedApp
            }
            "compliantApplication" => GrantControl::AppProtection,
            "domainJoinedDevice" => {
                f.refuse("grantControls domainJoinedDevice: hybrid join is not in the gateway's device state");
                continue;
            }
            "passwordChange" => {
                f.refuse("grantControls passwordChange: a password change happens at sign-in, not in the token");
                continue;
            }
            "riskRemediation" => {
                f.refuse("grantControls riskRemediation: risk remediation happens at sign-in, not in the token");
                continue;
            }
            other => {
                f.refuse(format!(
                    "grantControls {other:?}: not a known grant control"
                ));
                continue;
            }
        };
        if !controls.contains(&mapped) {
            controls.push(mapped);
        }
    }
    let operator = match g.and_then(|g| g.operator.as_deref()) {
        Some("AND") | None => GrantOperator::All,
        Some("OR") => GrantOperator::Any,
        Some(other) => {
            f.refuse(format!(
                "grantControls.operator {other:?}: neither AND nor OR"
            ));
            GrantOperator::All
        }
    };
    if block {
        if !controls.is_empty() || custom {
            f.refuse("grantControls: block combined with other controls has no single meaning");
        }
        return Grant::Block;
    }
    if controls.is_empty() {
        // Only unsupported controls: already refused above.
        return Grant::Block;
    }
    Grant::Controls {
        operator,
        controls,
        auth_context: None,
    }
}

/// `sessionControls` -> `sign_in_frequency`. Controls that govern Entra's own browser
/// session or Office apps are noted and ignored; ones that would need the gateway to do
/// something it does not (a session proxy, bound tokens) refuse.
pub(crate) fn session(s: Option<&entra::SessionControls>, f: &mut Findings) -> Option<Duration> {
    let s = s?;
    for (key, v, why) in [
        (
            "persistentBrowser",
            &s.persistent_browser,
            "it governs Entra's browser sign-in session, which the gateway never sees",
        ),
        (
            "applicationEnforcedRestrictions",
            &s.application_enforced_restrictions,
            "only Exchange Online and SharePoint Online act on it",
        ),
        (
            "disableResilienceDefaults",
            &s.disable_resilience_defaults,
            "it governs how Entra issues tokens during an outage; the gateway evaluates every token itself",
        ),
    ] {
        if v.as_ref().is_some_and(meaningful) {
            f.note(format!("sessionControls.{key} ignored: {why}"));
        }
    }
    if s.cloud_app_security.as_ref().is_some_and(meaningful) {
        f.refuse("sessionControls.cloudAppSecurity: Defender for Cloud Apps session control needs its own proxy, which the gateway is not");
    }
    f.unknown("sessionControls", &s.other);
    let sif = s.sign_in_frequency.as_ref()?;
    if sif.is_enabled != Some(true) {
        return None;
    }
    f.unknown("sessionControls.signInFrequency", &sif.other);
    match sif.authentication_type.as_deref() {
        None | Some("primaryAndSecondaryAuthentication") => {}
        Some("secondaryAuthentication") => {
            f.refuse("sessionControls.signInFrequency.authenticationType secondaryAuthentication: the token's auth_time does not say when MFA alone was last done");
            return None;
        }
        Some(other) => {
            f.refuse(format!(
                "sessionControls.signInFrequency.authenticationType {other:?}: not known"
            ));
            return None;
        }
    }
    match sif.frequency_interval.as_deref() {
        Some("everyTime") => {
            f.note("signInFrequency everyTime: a sign-in older than 5 minutes counts as stale (Entra's own allowance for every-time reauthentication)");
            return Some(EVERY_TIME);
        }
        None | Some("timeBased") => {}
        Some(other) => {
            f.refuse(format!(
                "sessionControls.signInFrequency.frequencyInterval {other:?}: not known"
            ));
            return None;
        }
    }
    let unit: u64 = match sif.kind.as_deref() {
        Some("hours") => 3600,
        Some("days") => 86_400,
        other => {
            f.refuse(format!(
                "sessionControls.signInFrequency.type {other:?}: neither hours nor days"
            ));
            return None;
        }
    };
    match sif
        .value
        .and_then(|v| u64::try_from(v).ok())
        .filter(|v| (1..=100_000).contains(v))
    {
        Some(v) => Some(Duration::from_secs(v * unit)),
        None => {
            f.refuse(format!(
                "sessionControls.signInFrequency.value {:?}: not a positive number of {}",
                sif.value,
                sif.kind.as_deref().unwrap_or("units")
            ));
            None
        }
    }
}
