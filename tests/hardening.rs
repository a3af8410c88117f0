//! Hardening findings of issue 14 (3, 4, 5, 7, 8) and the signed identity assertion the
//! upstream can verify, end to end through the running gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authn_common;
#[path = "authn_e2e/fixture.rs"]
#[allow(dead_code)]
mod fixture;
mod support;

// #[path = "hardening/assertion.rs"]
// mod assertion;
// #[path = "hardening/demo.rs"]
// mod demo;
#[path = "hardening/devcerts.rs"]
mod devcerts;
#[path = "hardening/findings.rs"]
mod findings;
#[path = "hardening/h2raw.rs"]
mod h2raw;
