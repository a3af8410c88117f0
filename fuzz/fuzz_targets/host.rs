//! `Host` (HTTP/1.1) and `:authority` / absolute-form URI authority -> the routing host.
//!
//! Input: the raw header / authority bytes.
//!
//! Invariants: the result is lower-case and no longer than the input, the same whatever the
//! letter case of the input, and a URI authority always wins over a `Host` header (an h2
//! request cannot be routed by a header its `:authority` contradicts).

#![no_main]

use accessgate::route::request_host;
use http::header::HOST;
use http::uri::{Authority, Uri};
use http::{HeaderValue, Request};
use libfuzzer_sys::fuzz_target;

fn with_host(v: &[u8]) -> Option<Request<()>> {
    let mut req = Request::new(());
    req.headers_mut()
        .insert(HOST, HeaderValue::from_bytes(v).ok()?);
    Some(req)
}

fn with_authority(a: &[u8], host_header: Option<&str>) -> Option<Request<()>> {
    let authority = Authority::try_from(a).ok()?;
    let uri = Uri::builder()
        .scheme("https")
        .authority(authority)
        .path_and_query("/")
        .build()
        .ok()?;
    let mut b = Request::builder().uri(uri);
    if let Some(h) = host_header {
        b = b.header(HOST, h);
    }
    b.body(()).ok()
}

fn check(got: Option<&str>, input_len: usize) {
    if let Some(h) = got {
        assert!(
            !h.bytes().any(|b| b.is_ascii_uppercase()),
            "{h:?} not lower-case"
        );
        assert!(h.len() <= input_len);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(req) = with_host(data) {
        let got = request_host(&req);
        check(got.as_deref(), data.len());
        let upper = with_host(&data.to_ascii_uppercase()).expect("same bytes, other case");
        assert_eq!(
            request_host(&upper).as_deref(),
            got.as_deref(),
            "case changed the host"
        );
        let plain = data
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.');
        if plain && !data.ends_with(b".") {
            let lower = String::from_utf8(data.to_ascii_lowercase()).expect("ascii");
            assert_eq!(got.as_deref(), Some(lower.as_str()));
        }
    }
    if let Some(req) = with_authority(data, None) {
        let got = request_host(&req);
        check(got.as_deref(), data.len());
        assert!(got.is_some(), "an authority with no host");
        let req2 = with_authority(data, Some("other.example")).expect("same authority");
        assert_eq!(
            request_host(&req2),
            got,
            "Host header overrode the authority"
        );
    }
});
