use std::time::Duration;

use super::PhaseMetrics;
use crate::ops::metrics::Metrics;
use crate::timing::Phases;

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

#[test]
fn histograms_get_the_phases_that_ran_and_the_total() {
    let m = Metrics::new();
    let pm = PhaseMetrics::new(&m);
    pm.observe(
        &Phases {
            authn: Some(us(10)),
            ..Phases::default()
        },
        us(50),
    );
    let count = |phase: &str| {
        m.phase_duration_seconds
            .with_label_values(&[phase])
            .get_sample_count()
    };
    assert_eq!(count("authn"), 1);
    assert_eq!(count("authz"), 0);
    assert_eq!(count("upstream"), 0);
    assert_eq!(count("total"), 1);
    let text = String::from_utf8(m.encode()).unwrap();
    for phase in ["authn", "authz", "upstream", "total"] {
        assert!(
            text.contains(&format!(
                "accessgate_phase_duration_seconds_count{{phase=\"{phase}\"}}"
            )),
            "{phase} exported from the start"
        );
    }
}
