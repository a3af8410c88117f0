//! The head record: what a follower accepts before reading a snapshot.

use std::collections::HashMap;

use super::{CHUNK_BYTES, Head, entry_id, sha256_hex};

fn head() -> HashMap<String, String> {
    [
        ("format", "1"),
        ("snapshot", "abc123"),
        ("chunks", "1"),
        ("bytes", "10"),
        ("sha256", &sha256_hex(b"0123456789")),
        ("version", "0-0"),
        ("last", "17-2"),
        ("confirmed_ms", "1700000000000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[test]
fn a_good_head_parses() {
    let h = Head::parse(&head()).unwrap();
    assert_eq!((h.chunks, h.bytes, h.last.as_str()), (1, 10, "17-2"));
    assert_eq!(h.confirmed_ms, Some(1_700_000_000_000));
}

#[test]
fn a_bad_head_is_refused() {
    assert!(
        Head::parse(&HashMap::new())
            .unwrap_err()
            .contains("no snapshot")
    );
    let bad = |k: &str, v: &str| {
        let mut h = head();
        h.insert(k.into(), v.into());
        Head::parse(&h).unwrap_err()
    };
    assert!(bad("format", "2").contains("format"));
    assert!(bad("snapshot", "../x").contains("alphanumeric"));
    assert!(bad("chunks", "3").contains("not a valid snapshot"));
    assert!(bad("chunks", "x").contains("not a number"));
    assert!(bad("bytes", &(2 * CHUNK_BYTES).to_string()).contains("not a valid snapshot"));
    assert!(bad("version", "latest").contains("stream id"));
    assert!(bad("sha256", "00").contains("SHA-256"));
    let mut h = head();
    h.remove("last");
    assert!(Head::parse(&h).unwrap_err().contains("last"));
}

#[test]
fn stream_ids_compare_as_numbers() {
    assert!(entry_id("10-0") > entry_id("9-5"));
    assert!(entry_id("9-10") > entry_id("9-9"));
    assert_eq!(entry_id("x-1"), None);
    assert_eq!(entry_id("12"), None);
}
