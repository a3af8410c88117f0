//! `state.json` (users, devices, app protection policies, registrations) -> PolicyState.
//!
//! Invariants: parsing is deterministic; an accepted document is accepted again with
//! surrounding whitespace and yields the same counts; trailing bytes after the document,
//! or a document cut short, are refused (a truncated download must not load as a smaller
//! state); every error is a non-empty message.

#![no_main]

use accessgate::policy::PolicyState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let first = PolicyState::from_json(data);
    let again = PolicyState::from_json(data);
    match (&first, &again) {
        (Ok(a), Ok(b)) => assert_eq!(a.counts(), b.counts()),
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("same bytes, different outcome"),
    }
    let state = match first {
        Ok(s) => s,
        Err(e) => {
            assert!(!e.trim().is_empty(), "empty error message");
            return;
        }
    };
    let mut padded = b" \n\t".to_vec();
    padded.extend_from_slice(data);
    padded.extend_from_slice(b"\r\n ");
    let p = PolicyState::from_json(&padded).expect("whitespace around an accepted document");
    assert_eq!(p.counts(), state.counts());

    let mut trailing = data.to_vec();
    trailing.extend_from_slice(b"{}");
    assert!(
        PolicyState::from_json(&trailing).is_err(),
        "trailing bytes accepted"
    );

    // Every strict prefix that ends before the closing brace is refused.
    let end = data
        .iter()
        .rposition(|&b| b == b'}')
        .expect("a document is an object");
    assert!(
        PolicyState::from_json(&data[..end]).is_err(),
        "truncated document accepted"
    );
});
