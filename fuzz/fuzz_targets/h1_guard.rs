//! The HTTP/1.1 smuggling guard, fed a client byte stream in many chunkings.
//!
//! Invariants:
//! - its verdicts do not depend on how the stream was split into reads (whole, byte by
//!   byte, pseudo-random splits derived from the input);
//! - verdicts never go back (a flag once raised stays raised while feeding);
//! - on the first request head as hyper's parser (httparse) reads it: a head carrying both
//!   Content-Length and Transfer-Encoding is flagged, and a head longer than the limit is
//!   flagged too large, exactly then.

#![no_main]

use accessgate::transport::h1_guard::H1Guard;
use libfuzzer_sys::fuzz_target;

/// Small enough that the fuzzer reaches it, as `max_header_bytes` would in production.
const SMALL_LIMIT: usize = 96;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Verdict {
    conflict: bool,
    too_large: bool,
    unsupported_coding: bool,
    stopped: bool,
    in_head: bool,
    stopped_in_head: bool,
}

fn verdict(g: &H1Guard) -> Verdict {
    Verdict {
        conflict: g.conflict(),
        too_large: g.too_large(),
        unsupported_coding: g.unsupported_coding(),
        stopped: g.stopped(),
        in_head: g.in_head(),
        stopped_in_head: g.stopped_in_head(),
    }
}

/// Feed `data` in reads of the given sizes (cycled), checking flags never clear.
fn feed_chunked(data: &[u8], limit: usize, sizes: &[usize]) -> Verdict {
    let mut g = H1Guard::new(limit);
    let mut prev = verdict(&g);
    let mut rest = data;
    let mut k = 0;
    while !rest.is_empty() {
        let n = sizes[k % sizes.len()].clamp(1, rest.len());
        k += 1;
        g.feed(&rest[..n]);
        rest = &rest[n..];
        let v = verdict(&g);
        assert!(!prev.conflict || v.conflict, "conflict cleared");
        assert!(!prev.too_large || v.too_large, "too_large cleared");
        assert!(
            !prev.unsupported_coding || v.unsupported_coding,
            "coding flag cleared"
        );
        assert!(!prev.stopped || v.stopped, "guard restarted after stopping");
        prev = v;
    }
    prev
}

/// Read sizes from a splitmix64 stream seeded by the input, so the fuzzer explores splits
/// by mutating the data and every run of one input is reproducible.
fn split_sizes(data: &[u8], salt: u64) -> Vec<usize> {
    let mut x = data.iter().fold(0xcbf2_9ce4_8422_2325_u64 ^ salt, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (0..16)
        .map(|_| {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            1 + (z % 24) as usize
        })
        .collect()
}

/// The first head as httparse sees it: (head length, leading empty-line bytes,
/// has Content-Length, has Transfer-Encoding).
fn first_head(data: &[u8]) -> Option<(usize, usize, bool, bool)> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(n) = req.parse(data).ok()? else {
        return None;
    };
    let has = |name: &str| {
        req.headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case(name))
    };
    let leading = data
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    Some((n, leading, has("content-length"), has("transfer-encoding")))
}

fuzz_target!(|data: &[u8]| {
    for limit in [usize::MAX, SMALL_LIMIT] {
        let whole = feed_chunked(data, limit, &[data.len().max(1)]);
        let bytewise = feed_chunked(data, limit, &[1]);
        assert_eq!(whole, bytewise, "byte-by-byte reads changed the verdict");
        for salt in 0..3 {
            let sizes = split_sizes(data, salt);
            let split = feed_chunked(data, limit, &sizes);
            assert_eq!(whole, split, "reads of {sizes:?} changed the verdict");
        }
    }

    if let Some((n, leading, cl, te)) = first_head(data) {
        let head = &data[..n];
        let g = feed_chunked(head, usize::MAX, &[n]);
        assert_eq!(
            g.conflict,
            cl && te,
            "CL+TE head: httparse saw cl={cl} te={te}"
        );
        let small = feed_chunked(head, SMALL_LIMIT, &[n]);
        assert_eq!(
            small.too_large,
            n - leading > SMALL_LIMIT,
            "head of {} bytes vs limit {SMALL_LIMIT}",
            n - leading
        );
        if !small.too_large {
            assert_eq!(small.conflict, cl && te);
        }
    }
});
