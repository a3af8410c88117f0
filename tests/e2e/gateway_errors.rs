//! Start and reload failures are typed: a caller can tell a port in use from a change
//! that needs a restart from a certificate that does not load, and the message still
//! names the config key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use accessgate::gateway::{ReloadError, StartError};
use accessgate::{Gateway, StartOptions};

use crate::support::*;

fn config_text(certs: &Certs, listen: &str) -> String {
    PlainConfig::new()
        .listen("address", &format!("\"{listen}\""))
        .toml()
        .replace("{certs}", &certs.dir.path().display().to_string())
        .replace("{upstream}", "http://127.0.0.1:9")
}

#[tokio::test]
async fn a_listen_address_in_use_is_a_bind_error_naming_the_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let certs = Certs::new();
    let path = certs.path("accessgate.toml");
    let text = config_text(&certs, &addr.to_string());
    let config = accessgate::config::parse_str(&text, &path).unwrap();
    let Err(err) = Gateway::start(config, StartOptions { quiet: true }).await else {
        panic!("started on a port in use");
    };
    match &err {
        StartError::Bind { key, addr: a, .. } => {
            assert_eq!((*key, *a), ("listen.address", addr));
        }
        other => panic!("expected Bind, got {other:?}"),
    }
    assert!(err.to_string().starts_with("listen.address"), "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the io error is kept"
    );
}

#[tokio::test]
async fn reload_refusals_say_why_by_type() {
    let mut gw = TestGateway::start(PLAIN_CONFIG, "http://127.0.0.1:9").await;
    let text = std::fs::read_to_string(&gw.config_path).unwrap();
    // A listener change: fixed for the process's life.
    let moved = text.replacen("address = \"127.0.0.1:0\"", "address = \"127.0.0.1:1\"", 1);
    let cfg = accessgate::config::parse_str(&moved, &gw.config_path).unwrap();
    assert!(matches!(
        gw.gw().apply_config(cfg),
        Err(ReloadError::NeedsRestart(m)) if m.contains("listen.address")
    ));
    // A certificate that does not load.
    std::fs::write(gw.certs.path("localhost.crt"), "not a certificate").unwrap();
    assert!(matches!(gw.gw().reload_tls(), Err(ReloadError::Tls(_))));
    gw.shutdown().await;
}
