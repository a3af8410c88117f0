//! Robustness ("fuzz") tests of everything that faces the internet, as property tests.
//! cargo-fuzz needs a nightly toolchain, so these drive the thin targets STYLE.md names —
//! the `Authorization` header and JWT decoding, `state.json`, the config, request paths,
//! raw HTTP/1.1 heads — with a few hundred generated inputs each. Every property asserts
//! no panic plus a sensible result; a failure shrinks to a minimal input.
//!
//! Each run draws fresh inputs (proptest's random seed), so repeated CI runs cover more
//! ground; no regression files are written into the tree (`failure_persistence: None`), so
//! a failure prints its shrunk input, to be pasted into a unit test. The raw-HTTP cases
//! use a fixed sequence instead, because each one costs a TLS connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::authn as authn_common;

mod config;
mod paths;
mod raw_http;
mod state;
mod tokens;

use std::cell::Cell;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

/// Run `f` on `cases` inputs from `s`; panic with the shrunk failing input, if any. No
/// regression files are written into the repository.
fn run<S: Strategy>(cases: u32, s: S, f: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    if let Err(e) = runner.run(&s, f) {
        panic!("{e}");
    }
}

/// Counts outcomes across a run, to show the generated inputs reach both sides of the
/// target (a property that only ever saw Ok, or only Err, tested little).
#[derive(Debug, Default)]
struct Tally {
    ok: Cell<u32>,
    err: Cell<u32>,
}

impl Tally {
    fn count<T, E>(&self, r: &Result<T, E>) {
        let c = if r.is_ok() { &self.ok } else { &self.err };
        c.set(c.get() + 1);
    }

    fn assert_both(&self, what: &str) {
        assert!(
            self.ok.get() > 0 && self.err.get() > 0,
            "{what}: {} accepted, {} refused: the inputs miss one side",
            self.ok.get(),
            self.err.get()
        );
    }
}

/// A file of this repository.
fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Any JSON value, weighted towards the shapes parsers trip over.
fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({"k": [1, "x"]})),
        Just(json!("RS256")),
        Just(json!("kid-rsa-1")),
    ]
}
