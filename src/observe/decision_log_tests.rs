use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{DecisionLog, Line, RequestFacts};
use crate::authn::Principal;
use crate::config::{DecisionLogTarget, LogConfig};
use crate::ids::DecisionId;
use crate::observe::writer::{Record, Sink};
use crate::ops::metrics::Metrics;
use crate::respond::{Outcome, Verdict};
use crate::timing::Phases;

fn facts() -> RequestFacts {
    let req = http::Request::get("https://api.corp.example/orders/42?token=secret")
        .body(())
        .unwrap();
    RequestFacts::capture(&req)
}

fn line(outcome: Outcome, reason: &'static str) -> Line {
    Line {
        at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000),
        id: DecisionId::next(),
        facts: facts(),
        route: None,
        principal: Some(Arc::new(Principal {
            user: "alice\"\n".into(),
            client_app: Some("app".into()),
            token_id: "jti-1".into(),
            ..Principal::default()
        })),
        client_ip: Some([203, 0, 113, 7].into()),
        verdict: Verdict { outcome, reason },
        status: 403,
        bytes: Some(120),
        authz: None,
        phases: Phases {
            authn: Some(Duration::from_micros(12)),
            authz: Some(Duration::from_micros(3)),
            upstream: None,
        },
        total: Duration::from_micros(40),
    }
}

#[test]
fn a_line_is_one_json_object_with_the_phase_fields() {
    let mut s = String::new();
    line(Outcome::Block, "policy_block").write_line(&mut s);
    assert!(s.ends_with("}\n") && s.matches('\n').count() == 1, "{s}");
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["ts"], "2025-11-24T16:00:00Z");
    assert_eq!(v["host"], "api.corp.example");
    assert_eq!(v["path"], "/orders/42", "no query string");
    assert!(!s.contains("secret"));
    assert_eq!(v["user"], "alice\"\n", "escaped, still one line");
    assert_eq!(v["decision"], "block");
    assert_eq!(v["reason"], "policy_block");
    assert_eq!(v["client_ip"], "203.0.113.7");
    assert_eq!(v["authn_us"], 12);
    assert_eq!(v["authz_us"], 3);
    assert!(v.get("upstream_us").is_none(), "a phase that did not run");
    assert_eq!(v["total_us"], 40);
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<u8>>>);

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn denials_are_never_sampled_away() {
    let metrics = Metrics::new();
    let rec = Recorder::default();
    let mut log =
        DecisionLog::to_sink(Sink::Writer(Box::new(rec.clone())), 1024, &metrics).unwrap();
    log.allow_threshold = 0; // keep (almost) no allow line
    for _ in 0..100 {
        log.write(line(Outcome::Allow, ""));
        log.write(line(Outcome::Block, "policy_block"));
    }
    assert!(log.flush(Duration::from_secs(10)));
    let text = String::from_utf8(rec.0.lock().unwrap().clone()).unwrap();
    let blocks = text.matches("\"decision\":\"block\"").count();
    let allows = text.matches("\"decision\":\"allow\"").count();
    assert_eq!(blocks, 100);
    assert!(allows < 5, "{allows} allow lines kept at sample ~0");
    assert!(log.close(Duration::from_secs(10)));
}

#[test]
fn off_writes_nothing_and_a_bad_file_fails_at_start() {
    let metrics = Metrics::new();
    let cfg = |d| LogConfig {
        level: "info".into(),
        decisions: d,
        allow_sample: 1.0,
        server_timing: false,
    };
    let off = DecisionLog::new(&cfg(DecisionLogTarget::Off), &metrics).unwrap();
    assert!(!off.enabled());
    assert!(!off.wants(Outcome::Block, DecisionId::next()));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("missing").join("d.log");
    let err = DecisionLog::new(&cfg(DecisionLogTarget::File(bad)), &metrics).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}
