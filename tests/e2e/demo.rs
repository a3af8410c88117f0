//! The demo's scenarios (`accessgate demo` prints them as curl commands) hold end to end:
//! the embedded demo config and state, the DEV signing key, each scenario's token, and
//! the status its `expect` announces.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use accessgate::authn::dev::DevSigner;
use accessgate::cli::demo;
use accessgate::config::{DEMO_CONFIG, Upstream};
use accessgate::{Gateway, StartOptions};

use crate::support::*;

#[tokio::test]
async fn every_demo_scenario_gets_the_status_it_announces() {
    let dir = tempfile::tempdir().unwrap();
    demo::materialize(dir.path()).unwrap();
    let config_path = dir.path().join("config/demo.toml");
    let mut config = accessgate::config::parse_str(DEMO_CONFIG, &config_path).unwrap();
    // The demo's fixed ports are for people; the test takes whatever is free.
    config.listen.address = SocketAddr::from(([127, 0, 0, 1], 0));
    config.admin.address = None;
    let upstream = demo::echo_server(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    for r in &mut config.routes {
        r.upstream = Upstream {
            authority: upstream.to_string().parse().unwrap(),
            base_path: String::new(),
        };
    }
    let gw = Gateway::start(config, StartOptions { quiet: true })
        .await
        .unwrap();
    let signer = DevSigner::load(&dir.path().join("certs")).unwrap();
    let c = client(&dir.path().join("certs/ca.crt"), false);
    let base = format!("https://localhost:{}", gw.local_addr().port());
    let scenarios = demo::scenarios();
    assert!(scenarios.len() >= 5, "the demo has its scenarios");
    for s in scenarios {
        let token = s.token.as_ref().map(|o| signer.mint(o).unwrap());
        let auth = token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        let (parts, body) = send(&c, get(&format!("{base}{}", s.path), &headers)).await;
        let want = &s.expect[..3];
        assert_eq!(
            parts.status.as_str(),
            want,
            "{}: expected {}, got {}: {}",
            s.title,
            s.expect,
            parts.status,
            String::from_utf8_lossy(&body)
        );
    }
    gw.shutdown().await;
}
