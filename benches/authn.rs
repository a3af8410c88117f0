//! `authenticate` costs: an uncached RS256 and ES256 validation, a cache hit, and, as the
//! baseline, the bare RSA-2048 PKCS#1 v1.5 SHA-256 verification an RS256 validation
//! contains. Run: `cargo bench --bench authn`. Method and figures: `benches/README.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use accessgate::authn::dev::{DevAlg, DevSigner, DevTokenOptions};
use accessgate::authn::{Authenticator, Principal};
use accessgate::config::parse_str;
use accessgate::ops::metrics::Metrics;
use accessgate::respond::Rejection;
use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, black_box, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};

const ISSUER: &str = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0";
const AUDIENCE: &str = "api://corp-api";

/// `authenticate` for a known kid never waits on anything, so one poll with a no-op waker
/// measures it without any executor overhead in the figures.
fn poll_once<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("authenticate waited on a known kid"),
    }
}

fn authenticator(signer: &DevSigner, cache_capacity: u64) -> Authenticator {
    let dir = std::env::temp_dir().join(format!("accessgate-bench-authn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, serde_json::to_vec(&signer.jwks()).unwrap()).unwrap();
    let text = format!(
        r#"
[listen]
address = "127.0.0.1:0"
tls_cert = "cert.pem"
tls_key = "key.pem"
[[issuers]]
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
jwks_file = "{}"
algorithms = ["RS256", "ES256"]
[state]
source = "file"
path = "state.json"
[[routes]]
name = "api"
path_prefix = "/"
upstream = "http://127.0.0.1:9"
"#,
        jwks.display()
    );
    let mut cfg = parse_str(&text, Path::new("/tmp/accessgate-bench.toml")).unwrap();
    cfg.tokens.cache_capacity = cache_capacity;
    let a = Authenticator::new(&cfg, &Metrics::new(), None);
    assert!(a.is_ready(), "{:?}", a.startup_errors());
    std::fs::remove_dir_all(&dir).unwrap();
    a
}

/// An Entra-shaped v2 access token (about 1.2 KB, a typical size without many groups).
fn token(signer: &DevSigner, alg: DevAlg) -> String {
    let o = DevTokenOptions {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        alg,
        tid: Some("72f988bf-86f1-41af-91ab-2d7cd011db47".into()),
        deviceid: Some("5f3d1c2a-9b8e-4f7a-8c6d-1e2f3a4b5c6d".into()),
        groups: (0..8)
            .map(|i| format!("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f{i}"))
            .collect(),
        amr: vec!["pwd".into(), "mfa".into()],
        xms_cc: vec!["cp1".into()],
        scp: Some("Files.Read User.Read Sites.Read.All".into()),
        expires_in: Duration::from_secs(3600),
        ..DevTokenOptions::default()
    };
    signer.mint(&o).unwrap()
}

fn headers(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

fn check(r: Result<Arc<Principal>, Rejection>) -> Arc<Principal> {
    r.unwrap_or_else(|e| panic!("bench token refused: {e:?}"))
}

fn benches(c: &mut Criterion) {
    let signer = DevSigner::generate("bench-rsa", "bench-ec").unwrap();
    let rs = token(&signer, DevAlg::RS256);
    let es = token(&signer, DevAlg::ES256);
    eprintln!(
        "token sizes: RS256 {} bytes, ES256 {} bytes",
        rs.len(),
        es.len()
    );

    // Baseline: the signature check alone, from the same JWK components the store holds.
    let jwk = signer.jwks()["keys"][0].clone();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let dot = rs.rfind('.').unwrap();
    let (input, sig) = (
        &rs.as_bytes()[..dot],
        URL_SAFE_NO_PAD.decode(&rs[dot + 1..]).unwrap(),
    );
    let components = RsaPublicKeyComponents { n: &n, e: &e };
    let spki =
        aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(&components)
            .unwrap();
    let spki = spki.as_ref().to_vec();

    let mut g = c.benchmark_group("authn");
    g.bench_function("bare_rsa2048_verify_components", |b| {
        b.iter(|| {
            components
                .verify(
                    &signature::RSA_PKCS1_2048_8192_SHA256,
                    black_box(input),
                    &sig,
                )
                .unwrap()
        })
    });
    g.bench_function("bare_rsa2048_verify_spki", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &spki)
                .verify(black_box(input), &sig)
                .unwrap()
        })
    });

    // jsonwebtoken's own share: decode + validate with a prebuilt key and Validation.
    let jwt_key = jsonwebtoken::DecodingKey::from_rsa_raw_components(&n, &e);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    g.bench_function("jsonwebtoken_decode_rs256", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<serde::de::IgnoredAny>(black_box(&rs), &jwt_key, &validation)
                .unwrap()
        })
    });

    let uncached = authenticator(&signer, 0);
    let (h_rs, h_es) = (headers(&rs), headers(&es));
    g.bench_function("uncached_rs256", |b| {
        b.iter(|| check(poll_once(uncached.authenticate(black_box(&h_rs)))))
    });
    g.bench_function("uncached_es256", |b| {
        b.iter(|| check(poll_once(uncached.authenticate(black_box(&h_es)))))
    });

    let cached = authenticator(&signer, 10_000);
    check(poll_once(cached.authenticate(&h_rs)));
    g.bench_function("cache_hit", |b| {
        b.iter(|| check(poll_once(cached.authenticate(black_box(&h_rs)))))
    });
    // The same path for a compact token: a hit costs SHA-256 of the token plus a constant.
    let small = signer
        .mint(&DevTokenOptions {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            ..DevTokenOptions::default()
        })
        .unwrap();
    eprintln!("compact token: {} bytes", small.len());
    let h_small = headers(&small);
    check(poll_once(cached.authenticate(&h_small)));
    g.bench_function("cache_hit_compact_token", |b| {
        b.iter(|| check(poll_once(cached.authenticate(black_box(&h_small)))))
    });
    g.bench_function("sha256_of_token", |b| {
        b.iter(|| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(rs.as_bytes())))
    });
    g.finish();

    // The ratio target, measured robustly on a shared machine: alternate short batches of
    // the two so both see the same background load, and take the median per-round ratio.
    let ratio = interleaved_ratio(
        || {
            components
                .verify(
                    &signature::RSA_PKCS1_2048_8192_SHA256,
                    black_box(input),
                    &sig,
                )
                .unwrap()
        },
        || {
            check(poll_once(uncached.authenticate(black_box(&h_rs))));
        },
    );
    eprintln!(
        "ratio uncached_rs256 / bare_rsa2048_verify: {ratio:.3} (median of interleaved rounds)"
    );
    let hit = interleaved_ratio(
        || {
            black_box(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                black_box(rs.as_bytes()),
            ));
        },
        || {
            check(poll_once(cached.authenticate(black_box(&h_rs))));
        },
    );
    eprintln!("ratio cache_hit / sha256_of_token: {hit:.3} (median of interleaved rounds)");
}

/// Median over rounds of time(b) / time(a), each round running a batch of `a` then of `b`.
fn interleaved_ratio(mut a: impl FnMut(), mut b: impl FnMut()) -> f64 {
    const ROUNDS: usize = 201;
    const BATCH: usize = 50;
    let mut ratios = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = std::time::Instant::now();
        for _ in 0..BATCH {
            a();
        }
        let ta = t.elapsed();
        let t = std::time::Instant::now();
        for _ in 0..BATCH {
            b();
        }
        ratios.push(t.elapsed().as_secs_f64() / ta.as_secs_f64().max(1e-12));
    }
    ratios.sort_by(f64::total_cmp);
    ratios[ROUNDS / 2]
}

criterion_group! {
    name = authn;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(authn);
