//! Hardening findings of issue 14 (3, 4, 5, 7; 8 is in `demo`) and the signed identity assertion the
//! upstream can verify, end to end through the running gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod assertion;
mod devcerts;
mod findings;
mod h2raw;
