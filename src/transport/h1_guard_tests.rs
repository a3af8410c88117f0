use super::*;

fn scan(input: &[u8]) -> H1Guard {
    let mut g = H1Guard::new(usize::MAX);
    g.feed(input);
    g
}

/// Feed `input` split at every position: the result must not depend on read boundaries.
fn scan_all_splits(input: &[u8]) -> bool {
    let whole = scan(input).conflict();
    for cut in 0..=input.len() {
        let mut g = H1Guard::new(usize::MAX);
        g.feed(&input[..cut]);
        g.feed(&input[cut..]);
        assert_eq!(g.conflict(), whole, "split at {cut}");
    }
    whole
}

#[test]
fn cl_and_te_together_are_flagged_in_either_order() {
    assert!(scan_all_splits(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ));
    assert!(scan_all_splits(
        b"POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n"
    ));
}

#[test]
fn plain_requests_are_not_flagged() {
    assert!(!scan_all_splits(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(!scan_all_splits(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
    ));
    assert!(!scan_all_splits(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    ));
}

#[test]
fn second_pipelined_request_is_seen_after_a_sized_body() {
    // The body of the first request contains text that looks like headers; it must be
    // skipped, and the real second head must be scanned.
    let body = b"Content-Length: 1\r\nTransfer-Encoding: x\r\n\r\n";
    let mut first = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    first.extend_from_slice(body);
    let mut input = first.to_vec();
    assert!(
        !scan(&input).conflict(),
        "body text must not count as headers"
    );
    input.extend_from_slice(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert!(scan_all_splits(&input));
}

#[test]
fn second_pipelined_request_is_seen_after_a_chunked_body() {
    let mut input = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n".to_vec();
    assert!(!scan(&input).conflict());
    assert!(!scan(&input).stopped());
    input.extend_from_slice(
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert!(scan_all_splits(&input));
}

#[test]
fn upgrades_stop_the_scan() {
    let g = scan(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert!(g.stopped());
    assert!(!g.conflict());
}

proptest::proptest! {
    /// Arbitrary input never panics, and the verdict never depends on how reads split it.
    #[test]
    fn any_input_is_split_independent(
        input in proptest::collection::vec(
            proptest::sample::select(b"GET /\r\n:Content-Length:Transfer-Encoding:0123456789aF; \tx".to_vec()),
            0..300,
        ),
        cut in 0usize..300,
    ) {
        let cut = cut.min(input.len());
        let whole = scan(&input);
        let mut g = H1Guard::new(usize::MAX);
        g.feed(&input[..cut]);
        g.feed(&input[cut..]);
        proptest::prop_assert_eq!(g.conflict(), whole.conflict());
        proptest::prop_assert_eq!(g.stopped(), whole.stopped());
    }

    #[test]
    fn random_bytes_never_panic(input in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        let mut g = H1Guard::new(64);
        g.feed(&input);
    }
}

#[test]
fn head_progress_is_tracked_across_bodies() {
    let mut g = H1Guard::new(usize::MAX);
    assert!(!g.in_head());
    g.feed(b"POST / HTTP/1.1\r\nHost: a\r\n");
    assert!(g.in_head(), "a partial head is in progress");
    g.feed(b"Content-Length: 4\r\n\r\nab");
    assert!(!g.in_head(), "body bytes are not a head");
    g.feed(b"cd");
    assert!(!g.in_head(), "between requests");
    g.feed(b"G");
    assert!(g.in_head());
}

#[test]
fn oversized_heads_are_flagged() {
    let mut g = H1Guard::new(64);
    g.feed(b"GET / HTTP/1.1\r\nHost: a\r\n");
    assert!(!g.too_large());
    g.feed(&[b'x'; 100]);
    assert!(g.too_large());
    // Bodies do not count towards the head limit.
    let mut g = H1Guard::new(64);
    g.feed(b"POST / HTTP/1.1\r\nContent-Length: 200\r\n\r\n");
    g.feed(&[b'y'; 200]);
    assert!(!g.too_large());
}

#[test]
fn malformed_length_after_transfer_encoding_is_still_a_conflict() {
    for cl in ["+5", "5, 5", "abc", "-1", "0x5", "99999999999999999999999"] {
        let input = format!(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: {cl}\r\n\r\n"
        );
        assert!(scan_all_splits(input.as_bytes()), "{cl}");
        let input = format!(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {cl}\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        assert!(scan_all_splits(input.as_bytes()), "{cl} first");
    }
}

#[test]
fn transfer_codings_other_than_chunked_are_flagged() {
    for (te, bad) in [
        ("chunked", false),
        (" Chunked ", false),
        ("gzip, chunked", true),
        ("gzip", true),
        ("chunked, chunked", true),
    ] {
        let g = scan(format!("POST / HTTP/1.1\r\nTransfer-Encoding: {te}\r\n\r\n").as_bytes());
        assert_eq!(g.unsupported_coding(), bad, "{te:?}");
    }
}

#[test]
fn a_stop_in_the_middle_of_a_head_is_reported() {
    let g = scan(b"GET / HTTP/1.1\r\nHost: a\r\nX\r\n");
    assert!(g.stopped() && g.stopped_in_head());
    let g = scan(b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n");
    assert!(g.stopped() && g.stopped_in_head());
    let g = scan(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
    assert!(
        g.stopped() && !g.stopped_in_head(),
        "an upgrade head is complete"
    );
}

/// Found by `fuzz/` (target h1_guard): `CONNECT` was recognised only when the method
/// arrived in one read, so a CONNECT head split inside `CONNECT ` was followed as plain
/// HTTP and its tunnel bytes were read as further request heads.
#[test]
fn connect_is_seen_whatever_the_reads() {
    let input = b"CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n\
        GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    for cut in 0..=b"CONNECT ".len() {
        let mut g = H1Guard::new(usize::MAX);
        g.feed(&input[..cut]);
        g.feed(&input[cut..]);
        assert!(g.stopped(), "split at {cut}: CONNECT not seen");
        assert!(
            !g.conflict(),
            "split at {cut}: tunnel bytes read as a request head"
        );
    }
    // A method that only starts like CONNECT is not one.
    assert!(!scan(b"CONNEC / HTTP/1.1\r\nHost: a\r\n\r\n").stopped());
}

/// Found by `fuzz/` (target h1_guard): the first byte of the request line and of every
/// header name was counted twice, so a head a few bytes under `max_header_bytes` (one
/// byte per header line) was refused as too large.
#[test]
fn a_head_of_exactly_the_limit_is_accepted() {
    let head = b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n";
    for limit in [head.len(), head.len() + 1] {
        let mut g = H1Guard::new(limit);
        g.feed(head);
        assert!(
            !g.too_large(),
            "{} bytes refused with limit {limit}",
            head.len()
        );
    }
    let mut g = H1Guard::new(head.len() - 1);
    g.feed(head);
    assert!(g.too_large(), "a head one byte over the limit accepted");
}

#[test]
fn boundary_and_completed_requests_follow_heads_and_bodies() {
    let mut g = H1Guard::new(usize::MAX);
    assert!(g.at_boundary() && g.completed() == 0, "a new connection");
    g.feed(b"GET / HTTP/1.1\r\nHost: a\r\n");
    assert!(!g.at_boundary(), "inside a head");
    g.feed(b"\r\n");
    assert!(g.at_boundary());
    assert_eq!(g.completed(), 1);
    g.feed(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab");
    assert!(!g.at_boundary(), "inside a sized body");
    assert_eq!(g.completed(), 1);
    g.feed(b"c");
    assert!(g.at_boundary());
    assert_eq!(g.completed(), 2);
    g.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n");
    assert!(
        !g.at_boundary(),
        "before the chunked body's last empty line"
    );
    g.feed(b"\r\n");
    assert!(g.at_boundary());
    assert_eq!(g.completed(), 3);
    // Empty lines between requests are tolerated and leave it at a boundary.
    g.feed(b"\r\n\r\n");
    assert!(g.at_boundary());
    g.feed(b"G");
    assert!(!g.at_boundary(), "a request line started");
    // Once stopped, never at a boundary again.
    let mut g = H1Guard::new(usize::MAX);
    g.feed(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
    assert!(g.stopped() && !g.at_boundary());
}
