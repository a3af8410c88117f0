//! The demo's requests (see `config/demo.toml` for who is who).

use crate::authn::dev::DevAlg;
use crate::demo::{Scenario, demo_token};

/// Every scenario the demo prints.
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            title: "public path, no token",
            expect: "200",
            path: "/public/hello",
            token: None,
        },
        Scenario {
            title: "protected path without a token",
            expect: "401 (WWW-Authenticate: Bearer realm=\"accessgate\")",
            path: "/api/orders",
            token: None,
        },
        Scenario {
            title: "a valid token",
            expect: "200 with x-accessgate-* identity at the upstream",
            path: "/api/orders",
            token: Some(demo_token(DevAlg::ES256)),
        },
    ]
}
