//! Helpers for the config tests: a minimal valid base document and assertions that an
//! error names the right key on the right line.

use std::path::Path;

use super::{ConfigError, parse_str};
use crate::config::Config;

/// Where test configs pretend to live (relative paths resolve against `/etc/accessgate`).
pub(crate) const SOURCE: &str = "/etc/accessgate/test.toml";

/// A minimal valid config. `[listen]` comes last so that a test can append keys to it;
/// appending a new `[section]` or `[[array]]` entry works as usual.
pub(crate) const BASE: &str = r#"
[[issuers]]
issuer = "https://login.example.test/tenant/v2.0"
audiences = ["api://test"]
jwks_file = "keys/jwks.json"

[[routes]]
name = "api"
upstream = "http://127.0.0.1:8080"

[listen]
tls_cert = "tls/cert.pem"
tls_key = "tls/key.pem"
"#;

/// BASE followed by `extra`.
pub(crate) fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

pub(crate) fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_str(text, Path::new(SOURCE))
}

/// Parse text that must be valid.
pub(crate) fn ok(text: &str) -> Config {
    match parse(text) {
        Ok(config) => config,
        Err(e) => panic!("expected a valid config, got:\n{e}\n--- config ---\n{text}"),
    }
}

/// Parse text that must be refused; the error text.
pub(crate) fn err(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.message,
    }
}

/// 1-based number of the first line of `text` containing `marker`.
pub(crate) fn line_of(text: &str, marker: &str) -> usize {
    match text.lines().position(|l| l.contains(marker)) {
        Some(i) => i + 1,
        None => panic!("marker {marker:?} not in:\n{text}"),
    }
}

/// Assert that `text` is refused with an error on the line holding `marker` that mentions
/// `key` and `needle`. Returns that error line.
pub(crate) fn refused(text: &str, marker: &str, key: &str, needle: &str) -> String {
    refused_at(text, line_of(text, marker), key, needle)
}

/// 1-based number of the last line of `text` containing `marker`.
pub(crate) fn last_line_of(text: &str, marker: &str) -> usize {
    match text
        .lines()
        .collect::<Vec<_>>()
        .iter()
        .rposition(|l| l.contains(marker))
    {
        Some(i) => i + 1,
        None => panic!("marker {marker:?} not in:\n{text}"),
    }
}

/// As [`refused`], with the line given by number.
pub(crate) fn refused_at(text: &str, line: usize, key: &str, needle: &str) -> String {
    let errors = err(text);
    let prefix = format!("{SOURCE}:{line}:");
    match errors
        .lines()
        .find(|l| l.starts_with(&prefix) && l.contains(key) && l.contains(needle))
    {
        Some(line) => line.to_owned(),
        None => panic!(
            "no error starting {prefix:?} naming {key:?} with {needle:?}; got:\n{errors}\n--- config ---\n{text}"
        ),
    }
}
