//! `[[routes]]`: accepted forms, normalisation, and every refusal naming key and line.

use crate::config::AuthMode;
use crate::config::validate::testkit::{last_line_of, ok, refused, refused_at, with};

/// A second route appended to the base config (which already has route "api" on "/").
fn route(body: &str) -> String {
    with(&format!("[[routes]]\n{body}"))
}

#[test]
fn accepts_every_key_and_normalises() {
    let c = ok(&route(
        "name = \"files\"\nhost = \"Files.Corp.Example:8443\"\npath_prefix = \"/a/./b//%7Ec/\"\nupstream = \"http://files.internal:9000/base/\"\nresource = \"file-share\"\nauth = \"none\"\nforward_token = false\nconnect_timeout = \"500ms\"\nrequest_timeout = \"2m\"\n",
    ));
    let r = &c.routes[1];
    assert_eq!(r.name, "files");
    assert_eq!(r.host.as_deref(), Some("files.corp.example"));
    assert_eq!(r.path_prefix, "/a/b/~c/");
    assert_eq!(
        (r.upstream.authority.as_str(), r.upstream.base_path.as_str()),
        ("files.internal:9000", "/base")
    );
    assert_eq!(r.resource, "file-share");
    assert_eq!(r.auth, AuthMode::None);
    assert!(!r.forward_token);
    assert_eq!(r.connect_timeout, std::time::Duration::from_millis(500));
    assert_eq!(r.request_timeout, std::time::Duration::from_secs(120));
}

#[test]
fn same_prefix_on_another_host_is_fine() {
    let c = ok(&route(
        "name = \"other\"\nhost = \"b.test\"\nupstream = \"http://127.0.0.1:1\"\n",
    ));
    assert_eq!(c.routes.len(), 2);
}

#[test]
fn upstream_must_be_plain_http() {
    refused(
        &route("name = \"r\"\nupstream = \"ftp://x\"\n"),
        "ftp://x",
        "routes[1].upstream",
        "\"ftp://x\" is not an http:// URL",
    );
    refused(
        &route("name = \"r\"\nupstream = \"https://x\"\n"),
        "https://x",
        "routes[1].upstream",
        "https upstreams are not supported",
    );
    refused(
        &route("name = \"r\"\nupstream = \"http://u:p@x\"\n"),
        "http://u:p@x",
        "routes[1].upstream",
        "user info",
    );
    refused(
        &route("name = \"r\"\nupstream = \"http://x/?q=1\"\n"),
        "?q=1",
        "routes[1].upstream",
        "query or fragment",
    );
}

#[test]
fn upstream_and_name_are_required() {
    let text = route("name = \"r\"\n");
    refused_at(
        &text,
        last_line_of(&text, "[[routes]]"),
        "routes[1].upstream",
        "missing (required)",
    );
    let text = route("upstream = \"http://x\"\npath_prefix = \"/x\"\n");
    refused_at(
        &text,
        last_line_of(&text, "[[routes]]"),
        "routes[1].name",
        "missing (required)",
    );
}

#[test]
fn names_are_plain_and_unique() {
    let text = route("name = \"api\"\npath_prefix = \"/b\"\nupstream = \"http://x\"\n");
    refused_at(
        &text,
        last_line_of(&text, "name = \"api\""),
        "routes[1].name",
        "\"api\" is already routes[0]",
    );
    refused(
        &route("name = \"my route\"\npath_prefix = \"/b\"\nupstream = \"http://x\"\n"),
        "my route",
        "routes[1].name",
        "letters, digits",
    );
    refused(
        &route("name = \"\"\npath_prefix = \"/b\"\nupstream = \"http://x\"\n"),
        "name = \"\"",
        "routes[1].name",
        "must not be empty",
    );
}

#[test]
fn an_unreachable_duplicate_route_is_refused() {
    // Same host (none) and the same prefix once normalised ("/./" is "/").
    let text = route("name = \"shadow\"\npath_prefix = \"/./\"\nupstream = \"http://x\"\n");
    refused_at(
        &text,
        last_line_of(&text, "[[routes]]"),
        "routes[1]",
        "same host and path_prefix (\"/\") as routes[0]",
    );
}

#[test]
fn host_and_path_prefix_are_checked() {
    refused(
        &route("name = \"r\"\nhost = \"*.corp.example\"\nupstream = \"http://x\"\n"),
        "*.corp",
        "routes[1].host",
        "is not a host name",
    );
    refused(
        &route("name = \"r\"\nhost = \"https://api\"\nupstream = \"http://x\"\n"),
        "https://api",
        "routes[1].host",
        "is not a host name",
    );
    refused(
        &route("name = \"r\"\npath_prefix = \"public\"\nupstream = \"http://x\"\n"),
        "path_prefix",
        "routes[1].path_prefix",
        "must start with \"/\"",
    );
    refused(
        &route("name = \"r\"\npath_prefix = \"/a?b\"\nupstream = \"http://x\"\n"),
        "path_prefix",
        "routes[1].path_prefix",
        "query or fragment",
    );
    refused(
        &route("name = \"r\"\npath_prefix = \"/%zz\"\nupstream = \"http://x\"\n"),
        "path_prefix",
        "routes[1].path_prefix",
        "bad percent-escape",
    );
}

#[test]
fn auth_resource_and_timeouts_are_checked() {
    refused(
        &route(
            "name = \"r\"\npath_prefix = \"/r\"\nupstream = \"http://x\"\nauth = \"optional\"\n",
        ),
        "optional",
        "routes[1].auth",
        "is not one of \"required\", \"none\"",
    );
    refused(
        &route("name = \"r\"\npath_prefix = \"/r\"\nupstream = \"http://x\"\nresource = \"\"\n"),
        "resource",
        "routes[1].resource",
        "must not be empty",
    );
    refused(
        &route(
            "name = \"r\"\npath_prefix = \"/r\"\nupstream = \"http://x\"\nconnect_timeout = \"0ms\"\n",
        ),
        "connect_timeout",
        "routes[1].connect_timeout",
        "greater than zero",
    );
    refused(
        &route(
            "name = \"r\"\npath_prefix = \"/r\"\nupstream = \"http://x\"\nrequest_timeout = \"30\"\n",
        ),
        "request_timeout",
        "routes[1].request_timeout",
        "missing unit",
    );
    refused(
        &route(
            "name = \"r\"\npath_prefix = \"/r\"\nupstream = \"http://x\"\nupstream_max_connections = 0\n",
        ),
        "upstream_max_connections",
        "routes[1].upstream_max_connections",
        "out of range",
    );
}
