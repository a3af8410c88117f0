//! Request path normalisation, which routing (and so which policy applies) is decided on.
//!
//! Invariants of an accepted path: absolute, no `.`/`..`/empty segments, no backslash, no
//! escape of an unreserved byte, upper-case escapes only, idempotent (normalising it again
//! changes nothing), and a path that needed no work is returned as it came.

#![no_main]

use std::borrow::Cow;

use accessgate::route::normalize_path;
use accessgate::snapshot::router::prefix_matches;
use libfuzzer_sys::fuzz_target;

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hexval(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(norm) = normalize_path(path) else {
        return;
    };
    let n: &str = &norm;
    if let Cow::Borrowed(b) = &norm {
        assert_eq!(*b, path);
    }
    assert!(n.starts_with('/'), "{n:?} not absolute");
    assert!(!n.contains('\\'));
    let segments: Vec<&str> = n[1..].split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        assert!(*seg != "." && *seg != "..", "dot segment left in {n:?}");
        // Only the last segment may be empty (a trailing slash).
        assert!(
            !seg.is_empty() || i == segments.len() - 1,
            "empty segment in {n:?}"
        );
        // `..;x` reaches a servlet container as `..`: never let one through.
        if let Some((name, _)) = seg.split_once(';') {
            assert!(
                name != "." && name != "..",
                "dot segment with parameters in {n:?}"
            );
        }
    }
    let b = n.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let (h, l) = (b[i + 1], b[i + 2]);
            let v = hexval(h).expect("escape hex") * 16 + hexval(l).expect("escape hex");
            assert!(!h.is_ascii_lowercase() && !l.is_ascii_lowercase(), "{n:?}");
            assert!(
                !unreserved(v) && v != b'\\',
                "escape of {v:#x} left in {n:?}"
            );
            i += 3;
        } else {
            i += 1;
        }
    }
    match normalize_path(n) {
        Ok(again) => assert_eq!(again.as_ref(), n, "not idempotent"),
        Err(e) => panic!("normalised {n:?} is refused: {e:?}"),
    }
    // Prefix matching on the normalised path is on segment boundaries: the first segment
    // matches, a shorter piece of it (`/adm` for `/admin/x`) never does.
    if let Some(first) = segments.first().filter(|s| !s.is_empty()) {
        assert!(prefix_matches(&format!("/{first}"), n));
        if let Some((cut, _)) = first.char_indices().nth(1) {
            let piece = &first[..cut];
            assert!(
                !prefix_matches(&format!("/{piece}"), n),
                "/{piece} matched {n:?}"
            );
        }
    }
});
