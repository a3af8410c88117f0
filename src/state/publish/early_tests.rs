//! The early publisher's choice (what of a page takes access away) and its hand-over to
//! the end-of-round diff. Published documents are written the way `sync` writes them
//! (each record serialised from its struct), so equal records have equal text.

use std::borrow::Cow;

use bytes::Bytes;

use super::super::diff::{Early, Records, diff_with};
use super::{Page, pending};
use crate::policy::{ChangeBatch, PolicyState, RawDevice, RawRegistration, RawUser};

fn user(id: &str, enabled: bool, revoke: Option<&str>) -> RawUser<'static> {
    RawUser {
        id: Cow::Owned(id.into()),
        account_enabled: enabled,
        licensed: true,
        groups: vec![Cow::Borrowed("g1")],
        revoke_sessions_after: revoke.map(|r| Cow::Owned(r.into())),
    }
}

/// A user as the connector hands it over from users/delta: no groups yet.
fn read_user(id: &str, enabled: bool, revoke: Option<&str>) -> RawUser<'static> {
    RawUser {
        groups: Vec::new(),
        ..user(id, enabled, revoke)
    }
}

fn device(id: &str, state: &str, os: &str) -> RawDevice<'static> {
    RawDevice {
        device_id: Cow::Owned(id.into()),
        compliance_state: Cow::Owned(state.into()),
        operating_system: Some(Cow::Borrowed("iOS")),
        os_version: Some(Cow::Owned(os.into())),
        noncompliant_since: (state != "compliant").then_some(Cow::Borrowed("2026-12-01T10:00:00Z")),
        remediation: None,
    }
}

fn reg(user: &str, device: &str, state: &str) -> RawRegistration<'static> {
    RawRegistration {
        user_id: Cow::Owned(user.into()),
        app_id: Cow::Borrowed("app"),
        device_id: Some(Cow::Owned(device.into())),
        platform: Some(Cow::Borrowed("ios")),
        application_version: None,
        platform_version: None,
        flagged_reasons: Vec::new(),
        last_sync_date_time: None,
        compliance_state: Cow::Owned(state.into()),
        noncompliant_since: None,
        remediation: None,
    }
}

fn doc(users: &[RawUser<'_>], devices: &[RawDevice<'_>], regs: &[RawRegistration<'_>]) -> Bytes {
    fn list<T: serde::Serialize>(v: &[T]) -> String {
        v.iter()
            .map(|x| serde_json::to_string(x).unwrap())
            .collect::<Vec<_>>()
            .join(",")
    }
    Bytes::from(format!(
        "{{\"users\":[{}],\"devices\":[{}],\"appProtectionPolicies\":[],\"appRegistrations\":[{}]}}",
        list(users),
        list(devices),
        list(regs)
    ))
}

fn published() -> (Bytes, Records) {
    let d = doc(
        &[
            user("u1", true, None),
            user("u2", true, Some("2026-11-01T00:00:00Z")),
            user("u3", false, None),
        ],
        &[
            device("d1", "compliant", "17.4"),
            device("d2", "noncompliant", "17.4"),
        ],
        &[reg("u1", "d1", "compliant")],
    );
    (d.clone(), Records::index(d).unwrap())
}

fn apply(state: PolicyState, batches: &[Vec<u8>]) -> PolicyState {
    batches.iter().fold(state, |s, b| {
        let b = ChangeBatch::from_json(b)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(b)));
        s.apply(&b).unwrap()
    })
}

#[test]
fn a_disabled_user_goes_early_with_its_published_groups() {
    let (bytes, pubd) = published();
    let page = Page::Users(vec![read_user("u1", false, None)]);
    let p = pending(&pubd, &Early::default(), &page).unwrap();
    assert_eq!(p.len(), 1);
    let state = apply(PolicyState::from_json(&bytes).unwrap(), &p.batches());
    let u = state.user("u1").unwrap();
    assert!(!u.account_enabled);
    assert_eq!(u.group_ids().len(), 1, "the published groups are kept");
}

#[test]
fn revocation_goes_early_only_when_it_moves_later() {
    let (_, pubd) = published();
    let later = Page::Users(vec![read_user("u2", true, Some("2026-12-01T09:00:00Z"))]);
    assert_eq!(pending(&pubd, &Early::default(), &later).unwrap().len(), 1);
    let earlier = Page::Users(vec![read_user("u2", true, Some("2026-10-01T00:00:00Z"))]);
    assert!(
        pending(&pubd, &Early::default(), &earlier)
            .unwrap()
            .is_empty()
    );
    let cleared = Page::Users(vec![read_user("u2", true, None)]);
    assert!(
        pending(&pubd, &Early::default(), &cleared)
            .unwrap()
            .is_empty()
    );
    let first = Page::Users(vec![read_user("u1", true, Some("2026-12-01T09:00:00Z"))]);
    assert_eq!(pending(&pubd, &Early::default(), &first).unwrap().len(), 1);
}

#[test]
fn loosening_unchanged_and_new_users_wait_for_the_round() {
    let (_, pubd) = published();
    let page = Page::Users(vec![
        read_user("u3", true, None),   // re-enabled: loosens
        read_user("u1", true, None),   // unchanged (groups are not compared early)
        read_user("new", false, None), // new to the state: its round brings it
    ]);
    assert!(pending(&pubd, &Early::default(), &page).unwrap().is_empty());
}

#[test]
fn failing_devices_go_early_and_compliant_ones_wait() {
    let (bytes, pubd) = published();
    let page = Page::Devices(vec![
        device("d1", "noncompliant", "17.4"), // turned noncompliant
        device("d2", "noncompliant", "17.4"), // already so, same record
        device("d3", "compliant", "17.4"),    // new and compliant
    ]);
    let p = pending(&pubd, &Early::default(), &page).unwrap();
    assert_eq!(p.len(), 1);
    let state = apply(PolicyState::from_json(&bytes).unwrap(), &p.batches());
    assert!(!state.device("d1").unwrap().compliance.is_compliant());
    assert!(state.device("d3").is_none());
    let recovered = Page::Devices(vec![device("d2", "compliant", "17.4")]);
    assert!(
        pending(&pubd, &Early::default(), &recovered)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn failing_registrations_go_early_only_for_published_users() {
    let (_, pubd) = published();
    let page = Page::Registrations(vec![
        reg("u1", "d1", "noncompliant"),
        reg("stranger", "d9", "noncompliant"),
        reg("u2", "d2", "compliant"),
    ]);
    let p = pending(&pubd, &Early::default(), &page).unwrap();
    assert_eq!(p.len(), 1);
    let b = String::from_utf8(p.batches().concat()).unwrap();
    assert!(b.contains("\"u1\"") && !b.contains("stranger"), "{b}");
}

#[test]
fn the_rounds_diff_neither_resends_nor_undoes_early_records() {
    let (bytes, pubd) = published();
    let mut early = Early::default();
    let pages = [
        Page::Users(vec![read_user("u1", false, None)]),
        Page::Devices(vec![
            device("d1", "noncompliant", "17.4"),
            device("d9", "noncompliant", "17.4"),
        ]),
    ];
    let mut sent = Vec::new();
    for page in &pages {
        let p = pending(&pubd, &early, page).unwrap();
        sent.extend(p.batches());
        early.commit(&p.items);
        assert!(
            pending(&pubd, &early, page).unwrap().is_empty(),
            "a page read again sends nothing more"
        );
    }
    assert_eq!(early.len(), 3);
    // The round ends: u1 disabled as published early; d1 as published early; d9 gone
    // again by the end of the devices read (so removed).
    let final_doc = doc(
        &[
            user("u1", false, None),
            user("u2", true, Some("2026-11-01T00:00:00Z")),
            user("u3", false, None),
        ],
        &[
            device("d1", "noncompliant", "17.4"),
            device("d2", "noncompliant", "17.4"),
        ],
        &[reg("u1", "d1", "compliant")],
    );
    let new = Records::index(final_doc.clone()).unwrap();
    let rest = diff_with(&pubd, &early, &new);
    let text = String::from_utf8(rest.concat()).unwrap();
    assert_eq!(
        text, r#"{"removed":{"devices":["d9"]}}"#,
        "only the early-only device goes (removed); u1 and d1 are not resent"
    );
    // Old state + early batches + the round's batches = the round's state.
    sent.extend(rest);
    let got = apply(PolicyState::from_json(&bytes).unwrap(), &sent);
    let want = PolicyState::from_json(&final_doc).unwrap();
    for id in ["u1", "u2", "u3"] {
        let (g, w) = (got.user(id).unwrap(), want.user(id).unwrap());
        assert_eq!(g.account_enabled, w.account_enabled, "{id}");
        assert_eq!(g.revoke_sessions_after, w.revoke_sessions_after, "{id}");
        assert_eq!(g.group_ids().len(), w.group_ids().len(), "{id}");
    }
    for id in ["d1", "d2", "d9"] {
        let c = |s: &PolicyState| s.device(id).map(|d| d.compliance.is_compliant());
        assert_eq!(c(&got), c(&want), "{id}");
    }
    // Without the early overlay the same diff would resend both early records.
    let naive = String::from_utf8(diff_with(&pubd, &Early::default(), &new).concat()).unwrap();
    assert!(
        naive.contains("\"u1\"") && naive.contains("\"d1\""),
        "{naive}"
    );
}
