//! Process logging: `tracing`, JSON lines when stdout is not a terminal (containers, log
//! shippers), human-readable when it is. `RUST_LOG` wins over `[log] level`.
//!
//! Secrets never reach a log line: request headers are not logged by the pipeline, tokens
//! appear only as their `token_id` (jti or a hash prefix), and [`Redacted`] is the one way
//! to print a header map for debugging.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Install the global subscriber. Safe to call more than once (later calls are no-ops).
pub fn init(level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let _ = if std::io::stdout().is_terminal() {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
}

/// Headers whose values are never printed.
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Debug-prints a header map with secret values replaced by `<redacted>`.
pub struct Redacted<'a>(pub &'a http::HeaderMap);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in self.0 {
            if SECRET_HEADERS.contains(&k.as_str()) {
                m.entry(&k.as_str(), &"<redacted>");
            } else {
                m.entry(&k.as_str(), &v.to_str().unwrap_or("<binary>"));
            }
        }
        m.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let mut h = http::HeaderMap::new();
        h.insert("authorization", "Bearer secret-token".parse().unwrap());
        h.insert("cookie", "session=abc".parse().unwrap());
        h.insert("accept", "*/*".parse().unwrap());
        let s = format!("{:?}", Redacted(&h));
        assert!(!s.contains("secret-token"), "{s}");
        assert!(!s.contains("session=abc"), "{s}");
        assert!(s.contains("<redacted>"));
        assert!(s.contains("*/*"));
    }
}
