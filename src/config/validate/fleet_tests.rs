//! `[state] source = "redis"` and `[publish]`: accepted shapes and every refusal at its key.

use crate::config::validate::testkit::{ok, refused, with};
use crate::config::{PublishTarget, RedisEndpoint, StateSource};

#[test]
fn a_gateway_follows_redis_with_defaults() {
    let c = ok(&with(
        "[state]\nsource = \"redis\"\nurl = \"rediss://cache.example:6380/0\"\n",
    ));
    assert_eq!(
        c.state.source,
        StateSource::Redis(RedisEndpoint {
            url: "rediss://cache.example:6380/0".into(),
            key_prefix: "accessgate".into(),
            password_file: None,
        })
    );
    assert!(c.publish.is_none());
    let c = ok(&with(
        "[state]\nsource = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\nkey_prefix = \"fleet-a\"\n",
    ));
    assert!(matches!(c.state.source, StateSource::Redis(r) if r.key_prefix == "fleet-a"));
}

#[test]
fn plain_redis_only_to_loopback_and_the_url_is_required() {
    refused(
        &with("[state]\nsource = \"redis\"\nurl = \"redis://cache.example:6379\" # here\n"),
        "# here",
        "state.url",
        "rediss://",
    );
    refused(
        &with("[state]\nsource = \"redis\"\nurl = \"https://cache.example\" # here\n"),
        "# here",
        "state.url",
        "rediss://",
    );
    refused(
        &with("[state] # here\nsource = \"redis\"\n"),
        "# here",
        "state.url",
        "missing",
    );
    refused(
        &with("[state]\nsource = \"redis\"\nurl = \"rediss:///0\" # here\n"),
        "# here",
        "state.url",
        "no host",
    );
}

#[test]
fn a_gateway_following_redis_may_keep_a_cache_dir_a_file_source_may_not() {
    let c = ok(&with(
        "[state]\nsource = \"redis\"\nurl = \"redis://127.0.0.1\"\ncache_dir = \"/var/cache/ag\"\n",
    ));
    assert_eq!(c.state.cache_dir, Some("/var/cache/ag".into()));
    let c = ok(&with(
        "[state]\nsource = \"redis\"\nurl = \"redis://127.0.0.1\"\n",
    ));
    assert_eq!(c.state.cache_dir, None, "optional with redis");
    for source in ["file", "http"] {
        let url = if source == "http" {
            "url = \"https://x.example/s\"\n"
        } else {
            ""
        };
        refused(
            &with(&format!(
                "[state]\nsource = \"{source}\"\n{url}cache_dir = \"c\" # here\n"
            )),
            "# here",
            "state.cache_dir",
            "only with source = \"graph\" or \"redis\"",
        );
    }
}

#[test]
fn redis_keys_belong_to_redis_only() {
    refused(
        &with("[state]\nsource = \"file\"\nkey_prefix = \"x\" # here\n"),
        "# here",
        "state.key_prefix",
        "only with source = \"redis\"",
    );
    refused(
        &with(
            "[state]\nsource = \"redis\"\nurl = \"redis://127.0.0.1\"\npath = \"s.json\" # here\n",
        ),
        "# here",
        "state.path",
        "only with",
    );
    refused(
        &with(
            "[state]\nsource = \"redis\"\nurl = \"redis://127.0.0.1\"\nkey_prefix = \"a b\" # here\n",
        ),
        "# here",
        "state.key_prefix",
        "whitespace",
    );
}

#[test]
fn a_missing_password_file_is_an_error() {
    refused(
        &with(
            "[state]\nsource = \"redis\"\nurl = \"redis://127.0.0.1\"\npassword_file = \"/nonexistent/pw\" # here\n",
        ),
        "# here",
        "state.password_file",
        "/nonexistent/pw",
    );
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    let c = ok(&with(&format!(
        "[state]\nsource = \"redis\"\nurl = \"redis://127.0.0.1\"\npassword_file = \"{}\"\n",
        pw.display()
    )));
    assert!(
        matches!(c.state.source, StateSource::Redis(r) if r.password_file.as_deref() == Some(pw.as_path()))
    );
}

#[test]
fn publish_to_file_or_redis() {
    let c = ok(&with(
        "[publish]\nto = \"file\"\npath = \"out/state.json\"\n",
    ));
    assert_eq!(
        c.publish,
        Some(PublishTarget::File("/etc/accessgate/out/state.json".into()))
    );
    let c = ok(&with(
        "[publish]\nto = \"redis\"\nurl = \"rediss://cache.example:6380\"\nkey_prefix = \"p\"\n",
    ));
    assert!(matches!(c.publish, Some(PublishTarget::Redis(r)) if r.key_prefix == "p"));
    refused(
        &with("[publish] # here\npath = \"x\"\n"),
        "# here",
        "publish.to",
        "missing",
    );
    refused(
        &with("[publish]\nto = \"s3\" # here\n"),
        "# here",
        "publish.to",
        "not one of",
    );
    refused(
        &with("[publish]\nto = \"file\"\nurl = \"rediss://x\" # here\n"),
        "# here",
        "publish.url",
        "only with to = \"redis\"",
    );
    refused(
        &with("[publish]\nto = \"redis\"\nurl = \"redis://10.0.0.5\" # here\n"),
        "# here",
        "publish.url",
        "loopback",
    );
}

#[test]
fn a_password_in_the_url_never_shows() {
    let r = RedisEndpoint {
        url: "rediss://:s3cret@cache.example:6380/0".into(),
        key_prefix: "accessgate".into(),
        password_file: None,
    };
    assert_eq!(r.redacted_url(), "rediss://cache.example:6380/0");
    let c = ok(&with(
        "[state]\nsource = \"redis\"\nurl = \"rediss://user:s3cret@cache.example:6380/0\"\n",
    ));
    assert!(!c.summary().contains("s3cret"), "{}", c.summary());
}
