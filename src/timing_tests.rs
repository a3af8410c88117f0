use std::time::Duration;

use super::{Phase, Phases};

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

#[test]
fn steps_record_into_one_value() {
    let mut ext = http::Extensions::new();
    assert_eq!(Phases::of(&ext), Phases::default());
    Phases::record(&mut ext, Phase::Upstream, us(1200));
    Phases::record(&mut ext, Phase::Authz, us(3));
    Phases::record(&mut ext, Phase::Authn, us(12));
    let p = Phases::of(&ext);
    assert_eq!(p.authn, Some(us(12)));
    assert_eq!(p.authz, Some(us(3)));
    assert_eq!(p.upstream, Some(us(1200)));
}

#[test]
fn server_timing_is_in_milliseconds_in_pipeline_order() {
    let p = Phases {
        authn: Some(us(12)),
        authz: Some(us(3)),
        upstream: Some(us(1200)),
    };
    assert_eq!(
        p.server_timing().unwrap(),
        "authn;dur=0.012, authz;dur=0.003, upstream;dur=1.2"
    );
    let p = Phases {
        authn: Some(us(1050)),
        authz: None,
        upstream: Some(us(3000)),
    };
    assert_eq!(p.server_timing().unwrap(), "authn;dur=1.05, upstream;dur=3");
    let p = Phases {
        upstream: Some(Duration::ZERO),
        ..Phases::default()
    };
    assert_eq!(p.server_timing().unwrap(), "upstream;dur=0");
}

#[test]
fn no_phase_means_no_header() {
    assert!(Phases::default().server_timing().is_none());
}
