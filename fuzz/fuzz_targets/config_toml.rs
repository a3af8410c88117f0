//! Config TOML -> validated runtime config (`config::parse_str`, as `load` and every reload
//! use it).
//!
//! Invariants: deterministic; every error is one line, each naming the file first (a
//! message can never break the one-problem-per-line output a reload logs); an accepted
//! config holds what later steps rely on without checking again: route hosts lower-case,
//! path prefixes already normalised, and a routing table that finds every route's own
//! prefix.

#![no_main]

use std::path::Path;

use accessgate::config::parse_str;
use accessgate::route::normalize_path;
use accessgate::snapshot::router::Router;
use libfuzzer_sys::fuzz_target;

const SOURCE: &str = "/etc/accessgate/fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = Path::new(SOURCE);
    let first = parse_str(text, source);
    match (&first, &parse_str(text, source)) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("same text, different outcome"),
    }
    let config = match first {
        Ok(c) => c,
        Err(e) => {
            assert!(e.count() >= 1);
            for line in e.messages() {
                assert!(
                    line.starts_with(SOURCE),
                    "error line without the file: {line:?}"
                );
                assert!(line.len() > SOURCE.len() + 2, "empty error: {line:?}");
            }
            return;
        }
    };
    for r in &config.routes {
        if let Some(h) = &r.host {
            assert_eq!(*h, h.to_ascii_lowercase(), "route host not lower-case");
        }
        let norm = normalize_path(&r.path_prefix).expect("route prefix is a valid path");
        assert_eq!(norm.as_ref(), r.path_prefix, "route prefix not normalised");
    }
    let router = Router::new(&config.routes);
    for (i, r) in config.routes.iter().enumerate() {
        let found = router.find(r.host.as_deref(), &r.path_prefix);
        let found = found.expect("a route's own prefix finds a route");
        assert!(found < config.routes.len());
        // Another route with the same host and prefix may win (first one listed), never
        // a route with a shorter prefix.
        let f = &config.routes[found];
        assert!(
            f.path_prefix.len() >= r.path_prefix.len(),
            "route {i} shadowed"
        );
    }
});
