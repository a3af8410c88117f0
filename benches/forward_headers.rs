//! The upstream request's header work on the hot path (see benches/README.md,
//! "Forward headers"): `strip_hop_by_hop` + `prepare_headers` for a typical cached-token
//! request (Host, User-Agent, Accept, a 1.5 KB bearer token; an authenticated principal with
//! user, app and device; an untrusted peer), and for one that carries spoofed and hop-by-hop
//! headers.
//!
//! `before` is the code as it was before the one-pass scan and the prepared values (issue
//! 13), kept here so both run in the same process under the same load (this machine is
//! shared; two separate runs are not comparable). Before timing, the bench checks that both
//! produce the same map (names, values, order) for every request shape it times.
//! Allocations per request are counted on the running gateway instead (uprobes on
//! mimalloc, see benches/README.md): the crate forbids `unsafe`, which a counting global
//! allocator would need.

use std::hint::black_box;
use std::net::IpAddr;

use accessgate::authn::Principal;
use accessgate::forward::{ForwardFacts, prepare_headers, strip_hop_by_hop};
use accessgate::ids::DecisionId;
use criterion::Criterion;
use http::header::{HeaderMap, HeaderName, HeaderValue};

mod before {
    use std::net::IpAddr;

    use accessgate::authn::Principal;
    use accessgate::ids::DecisionId;
    use accessgate::route::client_ip::{X_FORWARDED_FOR, forwarded_for};
    use http::header::{self, HeaderMap, HeaderName, HeaderValue};

    const HOP_BY_HOP: [HeaderName; 8] = [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
    ];
    static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
    static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
    static CLIENT_ADDRESS_HEADERS: [HeaderName; 3] = [
        HeaderName::from_static("x-real-ip"),
        HeaderName::from_static("true-client-ip"),
        HeaderName::from_static("x-client-ip"),
    ];
    static X_USER: HeaderName = HeaderName::from_static("x-accessgate-user");
    static X_APP: HeaderName = HeaderName::from_static("x-accessgate-app");
    static X_DEVICE: HeaderName = HeaderName::from_static("x-accessgate-device");
    static X_DECISION: HeaderName = HeaderName::from_static("x-accessgate-decision-id");

    pub struct Facts<'a> {
        pub peer: IpAddr,
        pub peer_trusted: bool,
        pub host: Option<&'a str>,
        pub forward_token: bool,
        pub principal: Option<&'a Principal>,
        pub decision_id: DecisionId,
    }

    pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
        // Headers named by Connection are hop-by-hop too (RFC 9110 7.6.1).
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .filter(|n| !(keep_upgrade && n == header::UPGRADE))
            .collect();
        for n in named {
            headers.remove(n);
        }
        for h in &HOP_BY_HOP {
            headers.remove(h);
        }
        if keep_upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        } else {
            headers.remove(header::UPGRADE);
        }
    }

    pub fn prepare_headers(headers: &mut HeaderMap, facts: &Facts<'_>) {
        // Nothing the client says about our identity headers is believed.
        let spoofed: Vec<HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("x-accessgate-"))
            .cloned()
            .collect();
        for k in spoofed {
            headers.remove(k);
        }
        if !facts.forward_token {
            headers.remove(header::AUTHORIZATION);
        }
        headers.remove(header::PROXY_AUTHORIZATION);

        let peer = HeaderValue::from_str(&facts.peer.to_string()).ok();
        if facts.peer_trusted {
            // Append the peer to the chain the trusted proxy sent.
            let chain = forwarded_for(headers).map(|v| format!("{v}, {}", facts.peer));
            match chain.and_then(|c| HeaderValue::from_str(&c).ok()) {
                Some(v) => {
                    headers.insert(X_FORWARDED_FOR.clone(), v);
                }
                None => {
                    if let Some(p) = peer {
                        headers.insert(X_FORWARDED_FOR.clone(), p);
                    }
                }
            }
            if !headers.contains_key(&X_FORWARDED_PROTO) {
                headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
            }
            if !headers.contains_key(&X_FORWARDED_HOST)
                && let Some(h) = facts.host.and_then(|h| HeaderValue::from_str(h).ok())
            {
                headers.insert(X_FORWARDED_HOST.clone(), h);
            }
        } else {
            headers.remove(&FORWARDED);
            headers.remove(&X_FORWARDED_HOST);
            for h in &CLIENT_ADDRESS_HEADERS {
                headers.remove(h);
            }
            match peer {
                Some(p) => {
                    headers.insert(X_FORWARDED_FOR.clone(), p);
                }
                None => {
                    headers.remove(&X_FORWARDED_FOR);
                }
            }
            headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
            if let Some(h) = facts.host.and_then(|h| HeaderValue::from_str(h).ok()) {
                headers.insert(X_FORWARDED_HOST.clone(), h);
            }
        }
        if let Some(p) = facts.principal {
            if let Ok(v) = HeaderValue::from_str(&p.user) {
                headers.insert(X_USER.clone(), v);
            }
            if let Some(v) = p
                .client_app
                .as_deref()
                .and_then(|a| HeaderValue::from_str(a).ok())
            {
                headers.insert(X_APP.clone(), v);
            }
            if let Some(v) = p
                .device
                .as_deref()
                .and_then(|d| HeaderValue::from_str(d).ok())
            {
                headers.insert(X_DEVICE.clone(), v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&facts.decision_id.to_string()) {
            headers.insert(X_DECISION.clone(), v);
        }
    }
}

fn request_headers(extra: &[(&'static str, &str)]) -> HeaderMap {
    let token = format!("Bearer {}", "a".repeat(1500));
    let mut h = HeaderMap::new();
    let base = [
        ("host", "127.0.0.1:18443"),
        ("user-agent", "h2load nghttp2/1.52.0"),
        ("accept", "*/*"),
        ("authorization", token.as_str()),
    ];
    for (k, v) in base.iter().chain(extra) {
        h.append(
            HeaderName::from_static(k),
            HeaderValue::from_str(v).unwrap_or_else(|e| panic!("{e}")),
        );
    }
    h
}

fn principal() -> Principal {
    Principal {
        user: "b0000000-0000-4000-8000-00000000beef".into(),
        client_app: Some("0c1307d4-29d6-4389-a11c-5cbe7f65d7fa".into()),
        device: Some("d0000000-0000-4000-8000-00000000beef".into()),
        exp: i64::MAX,
        ..Principal::default()
    }
}

fn after(base: &HeaderMap, facts: &ForwardFacts<'_>) -> HeaderMap {
    let mut h = base.clone();
    strip_hop_by_hop(&mut h, false);
    prepare_headers(&mut h, facts);
    h
}

fn old(base: &HeaderMap, facts: &before::Facts<'_>) -> HeaderMap {
    let mut h = base.clone();
    before::strip_hop_by_hop(&mut h, false);
    before::prepare_headers(&mut h, facts);
    h
}

fn pairs(h: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    h.iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect()
}

fn main() {
    let p = principal();
    let peer: IpAddr = "127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}"));
    let id = DecisionId::next();
    let host = HeaderValue::from_static("127.0.0.1:18443");
    let new_facts = |trusted| ForwardFacts {
        peer,
        peer_trusted: trusted,
        host: Some(&host),
        forward_token: false,
        principal: Some(&p),
        decision_id: id,
    };
    let old_facts = |trusted| before::Facts {
        peer,
        peer_trusted: trusted,
        host: Some("127.0.0.1:18443"),
        forward_token: false,
        principal: Some(&p),
        decision_id: id,
    };
    let typical = request_headers(&[]);
    let hostile = request_headers(&[
        ("connection", "keep-alive, x-hop"),
        ("keep-alive", "timeout=5"),
        ("x-hop", "1"),
        ("x-accessgate-user", "admin"),
        ("x-forwarded-for", "203.0.113.1"),
        ("x-real-ip", "203.0.113.1"),
        ("proxy-authorization", "Basic abc"),
    ]);
    for (name, base) in [("typical", &typical), ("hostile", &hostile)] {
        for trusted in [false, true] {
            assert_eq!(
                pairs(&after(base, &new_facts(trusted))),
                pairs(&old(base, &old_facts(trusted))),
                "{name} request (trusted peer: {trusted}): the upstream must see the same headers"
            );
        }
    }

    let mut c = Criterion::default().configure_from_args();
    for (name, base) in [("typical", &typical), ("hostile", &hostile)] {
        let (nf, of) = (new_facts(false), old_facts(false));
        c.bench_function(&format!("forward_headers/{name}/before"), |b| {
            b.iter(|| old(black_box(base), black_box(&of)))
        });
        c.bench_function(&format!("forward_headers/{name}/after"), |b| {
            b.iter(|| after(black_box(base), black_box(&nf)))
        });
    }
    c.final_summary();
}
