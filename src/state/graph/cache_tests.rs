use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use super::*;

#[test]
fn ledger_keeps_first_seen_moments_across_loads_and_clears_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::load(dir.path()).unwrap();
    assert!(l.is_empty());
    assert!(l.update(&["device/a".into(), "device/b".into()], 100));
    l.save().unwrap();
    let mut l = Ledger::load(dir.path()).unwrap();
    assert_eq!(l.since("device/a"), Some(100));
    // Still failing later: the moment stays; b recovered: cleared; c new: now.
    assert!(l.update(&["device/a".into(), "device/c".into()], 500));
    assert_eq!(
        (
            l.since("device/a"),
            l.since("device/b"),
            l.since("device/c")
        ),
        (Some(100), None, Some(500))
    );
    assert!(
        !l.update(&["device/a".into(), "device/c".into()], 900),
        "no change"
    );
    l.save().unwrap();
    let l = Ledger::load(dir.path()).unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!(l.since("device/a"), Some(100));
}

#[test]
fn a_damaged_ledger_is_an_error_not_a_reset() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(LEDGER),
        "{\"version\":1,\"noncompliantSince\":{\"a\":",
    )
    .unwrap();
    let e = Ledger::load(dir.path()).unwrap_err();
    assert!(
        matches!(&e, GraphError::Cache(m) if m.contains("remediation window")),
        "{e:?}"
    );
    std::fs::write(
        dir.path().join(LEDGER),
        r#"{"version":2,"noncompliantSince":{}}"#,
    )
    .unwrap();
    assert!(Ledger::load(dir.path()).is_err());
}

#[test]
fn atomic_writes_leave_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sub").join("f.json");
    write_atomic(&p, |w| w.write_all(b"one")).unwrap();
    write_atomic(&p, |w| w.write_all(b"two")).unwrap();
    // A failing writer leaves the old file untouched.
    assert!(write_atomic(&p, |_| Err(std::io::Error::other("disk full"))).is_err());
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
    let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["f.json"]);
}

#[test]
fn snapshot_round_trips_with_its_true_age() {
    let dir = tempfile::tempdir().unwrap();
    assert!(load_snapshot(dir.path()).unwrap().is_none());
    let mut m = Mapped::default();
    m.users.insert(
        "u-1".into(),
        RawUser {
            id: Cow::Borrowed("u-1"),
            account_enabled: true,
            licensed: true,
            groups: vec![Cow::Borrowed("g-1")],
            revoke_sessions_after: Some(Cow::Borrowed("2026-05-01T10:00:00Z")),
        },
    );
    m.devices.insert(
        "d-1".into(),
        RawDevice {
            device_id: Cow::Borrowed("d-1"),
            compliance_state: Cow::Borrowed("noncompliant"),
            operating_system: Some(Cow::Borrowed("iOS")),
            os_version: None,
            noncompliant_since: Some(Cow::Borrowed("2026-11-30T10:00:00Z")),
            remediation: None,
        },
    );
    let synced = SystemTime::now() - Duration::from_secs(3600);
    save_snapshot(dir.path(), &m, synced).unwrap();
    let (state, at) = load_snapshot(dir.path()).unwrap().unwrap();
    assert_eq!(state.counts().users, 1);
    assert_eq!(
        state.device("d-1").unwrap().noncompliant_since,
        Some(1_796_032_800)
    );
    let age = SystemTime::now().duration_since(at).unwrap();
    assert!(age >= Duration::from_secs(3599), "{age:?}");
    // A later sync of the same records moves only the time on.
    save_snapshot_time(dir.path(), SystemTime::now()).unwrap();
    let (_, at2) = load_snapshot(dir.path()).unwrap().unwrap();
    assert!(at2 > at);
    // The same records rebuilt directly give the same state.
    assert_eq!(m.build().unwrap().counts(), state.counts());
    // A damaged snapshot is an error (the store then waits for a sync).
    std::fs::write(dir.path().join(SNAPSHOT), "{\"users\":[").unwrap();
    assert!(load_snapshot(dir.path()).is_err());
}
