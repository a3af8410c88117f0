//! The demo's requests. Who is who is documented in `config/demo.toml`; the expected
//! outcomes are also checked offline by `config/policy-tests.toml` and end to end by
//! `tests/e2e/demo.rs`.

use crate::authn::dev::{DevAlg, DevTokenOptions};

/// The demo client app (shaped like the Azure mobile app's id).
pub const DEMO_APP: &str = "0c1307d4-29d6-4389-a11c-5cbe7f65d7fa";

/// 2025-12-31T23:50:00Z: before sam's sign-out moment (2026-01-01T00:00:00Z).
const SAM_OLD_IAT: i64 = 1_767_225_000;

fn user(oid: &str, device: &str) -> DevTokenOptions {
    DevTokenOptions {
        oid: Some(oid.to_owned()),
        azp: Some(DEMO_APP.to_owned()),
        deviceid: Some(device.to_owned()),
        // CAE-capable, like MSAL clients that declare the cp1 capability.
        xms_cc: vec!["cp1".to_owned()],
        ..demo_token(DevAlg::ES256)
    }
}

/// Every scenario the demo prints, in order.
pub fn all() -> Vec<Scenario> {
    let alice = user(
        "11111111-1111-4111-8111-111111111111",
        "d1111111-1111-4111-8111-111111111111",
    );
    let rita = user(
        "22222222-2222-4222-8222-222222222222",
        "d2222222-2222-4222-8222-222222222222",
    );
    let sam = user(
        "33333333-3333-4333-8333-333333333333",
        "d3333333-3333-4333-8333-333333333333",
    );
    let sam_old = DevTokenOptions {
        iat: Some(SAM_OLD_IAT),
        auth_time: Some(SAM_OLD_IAT),
        ..sam.clone()
    };
    let uma = user(
        "44444444-4444-4444-8444-444444444444",
        "d4444444-4444-4444-8444-444444444444",
    );
    let bea = DevTokenOptions {
        groups: vec!["break-glass".to_owned()],
        ..user(
            "55555555-5555-4555-8555-555555555555",
            "d5555555-5555-4555-8555-555555555555",
        )
    };
    vec![
        Scenario {
            title: "public path, no token needed",
            expect: "200",
            path: "/public/hello",
            token: None,
        },
        Scenario {
            title: "protected path without a token",
            expect: "401, WWW-Authenticate: Bearer realm=\"accessgate\"",
            path: "/api/orders",
            token: None,
        },
        Scenario {
            title: "alice: compliant device, managed app checked in",
            expect: "200, the upstream sees x-accessgate-user/app/device",
            path: "/api/orders",
            token: Some(alice),
        },
        Scenario {
            title: "rita: app out of compliance, remediation under way",
            expect: "403 remediate (app_noncompliant) with remediation_deadline and Retry-After",
            path: "/api/orders",
            token: Some(rita),
        },
        Scenario {
            title: "sam: remediation failed; his token predates the sign-out moment",
            expect: "401 reauthenticate: error=\"insufficient_claims\" with a CAE claims challenge",
            path: "/api/orders",
            token: Some(sam_old),
        },
        Scenario {
            title: "sam again, with a token issued after the sign-out moment",
            expect: "403 block (app_noncompliant): no sign-in loop",
            path: "/api/orders",
            token: Some(sam),
        },
        Scenario {
            title: "uma: not licensed for app protection",
            expect: "403 block (user_unlicensed)",
            path: "/api/orders",
            token: Some(uma),
        },
        Scenario {
            title: "bea: in the excluded break-glass group",
            expect: "200",
            path: "/api/orders",
            token: Some(bea),
        },
    ]
}

/// One demo request: who calls, and what the gateway should answer.
pub struct Scenario {
    pub title: &'static str,
    pub expect: &'static str,
    pub path: &'static str,
    pub token: Option<DevTokenOptions>,
}

/// Options for a demo token as `alg` (ES256 keeps the pasted commands short).
pub fn demo_token(alg: DevAlg) -> DevTokenOptions {
    DevTokenOptions {
        alg,
        ..DevTokenOptions::default()
    }
}
