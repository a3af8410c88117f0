use super::*;

fn principal(user: &str, app: Option<&str>, device: Option<&str>) -> Principal {
    Principal {
        user: user.into(),
        client_app: app.map(str::to_owned),
        device: device.map(str::to_owned),
        ..Principal::default()
    }
}

#[test]
fn values_are_the_claims() {
    let p = principal("u1", Some("app1"), Some("dev1"));
    let v = p.identity_headers();
    assert_eq!(v.user.as_ref().map(HeaderValue::as_bytes), Some(&b"u1"[..]));
    assert_eq!(
        v.app.as_ref().map(HeaderValue::as_bytes),
        Some(&b"app1"[..])
    );
    assert_eq!(
        v.device.as_ref().map(HeaderValue::as_bytes),
        Some(&b"dev1"[..])
    );
    assert!(principal("u1", None, None).identity_headers().app.is_none());
}

#[test]
fn a_claim_a_header_cannot_carry_is_left_out() {
    let p = principal("u1\r\nx-injected: 1", Some("app\n"), Some("dev\u{7f}"));
    assert_eq!(p.identity_headers(), &IdentityValues::default());
}

#[test]
fn built_once_and_never_carried_into_a_clone() {
    let p = principal("u1", None, None);
    let first: *const IdentityValues = p.identity_headers();
    assert!(std::ptr::eq(first, p.identity_headers()), "built once");
    let mut copy = p.clone();
    copy.user = "u2".into();
    assert_eq!(
        copy.identity_headers()
            .user
            .as_ref()
            .map(HeaderValue::as_bytes),
        Some(&b"u2"[..]),
        "a clone builds its own values from its own claims"
    );
    assert_eq!(
        p,
        principal("u1", None, None),
        "derived data takes no part in equality"
    );
}
