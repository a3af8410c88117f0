//! Config builders: a test states the settings it cares about instead of editing a TOML
//! string with `.replace()` (which silently does nothing when the text it looks for
//! changes). The output keeps the `{certs}` and `{upstream}` placeholders that
//! [`super::TestGateway`] fills in.

use std::fmt::Write as _;

/// One `[[routes]]` table.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub name: String,
    pub path_prefix: String,
    pub upstream: String,
    pub auth: &'static str,
    pub connect_timeout: &'static str,
    pub request_timeout: &'static str,
}

impl RouteSpec {
    /// An unauthenticated route `name` at `path_prefix` to `{upstream}`.
    pub fn open(name: &str, path_prefix: &str) -> Self {
        Self {
            name: name.to_owned(),
            path_prefix: path_prefix.to_owned(),
            upstream: "{upstream}".to_owned(),
            auth: "none",
            connect_timeout: "1s",
            request_timeout: "2s",
        }
    }

    pub fn request_timeout(mut self, t: &'static str) -> Self {
        self.request_timeout = t;
        self
    }
}

/// The plain gateway config: a TLS listener on 127.0.0.1:0 with the test certificates,
/// an admin listener, no decision log, and by default one open route `/` to `{upstream}`
/// (the same config as [`super::PLAIN_CONFIG`]).
#[derive(Debug, Clone)]
pub struct PlainConfig {
    /// `[listen]` keys and their TOML values, in order.
    listen: Vec<(String, String)>,
    /// `[runtime]` keys and their TOML values, in order.
    runtime: Vec<(String, String)>,
    decisions: String,
    routes: Vec<RouteSpec>,
}

impl Default for PlainConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl PlainConfig {
    pub fn new() -> Self {
        let listen = [
            ("address", "\"127.0.0.1:0\""),
            ("tls_cert", "\"{certs}/localhost.crt\""),
            ("tls_key", "\"{certs}/localhost.key\""),
            ("header_read_timeout", "\"1s\""),
            ("idle_timeout", "\"5s\""),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        Self {
            listen,
            runtime: vec![("shutdown_grace".to_owned(), "\"5s\"".to_owned())],
            decisions: "off".to_owned(),
            routes: vec![RouteSpec::open("open", "/")],
        }
    }

    /// Set `[listen] key = value` (`value` is TOML: `"5s"` with quotes, `4096` without).
    pub fn listen(mut self, key: &str, value: &str) -> Self {
        match self.listen.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.listen.push((key.to_owned(), value.to_owned())),
        }
        self
    }

    /// Set `[runtime] key = value` (`value` is TOML).
    pub fn runtime(mut self, key: &str, value: &str) -> Self {
        match self.runtime.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.runtime.push((key.to_owned(), value.to_owned())),
        }
        self
    }

    /// `[log] decisions`: `"off"`, `"stdout"` or a path (may use `{certs}`).
    pub fn decisions(mut self, target: &str) -> Self {
        self.decisions = target.to_owned();
        self
    }

    /// Replace the routes with these.
    pub fn routes(mut self, routes: Vec<RouteSpec>) -> Self {
        self.routes = routes;
        self
    }

    /// Change the default route's request timeout.
    pub fn request_timeout(mut self, t: &'static str) -> Self {
        self.routes = self
            .routes
            .into_iter()
            .map(|r| r.request_timeout(t))
            .collect();
        self
    }

    pub fn toml(&self) -> String {
        let mut s = String::from("[listen]\n");
        for (k, v) in &self.listen {
            let _ = writeln!(s, "{k} = {v}");
        }
        s.push_str("\n[admin]\naddress = \"127.0.0.1:0\"\n\n[runtime]\n");
        for (k, v) in &self.runtime {
            let _ = writeln!(s, "{k} = {v}");
        }
        let _ = writeln!(s, "\n[log]\ndecisions = \"{}\"", self.decisions);
        for r in &self.routes {
            let _ = write!(
                s,
                "\n[[routes]]\nname = \"{}\"\npath_prefix = \"{}\"\nupstream = \"{}\"\nauth = \"{}\"\n\
                 connect_timeout = \"{}\"\nrequest_timeout = \"{}\"\n",
                r.name, r.path_prefix, r.upstream, r.auth, r.connect_timeout, r.request_timeout
            );
        }
        s
    }
}

#[test]
fn the_builder_default_is_the_plain_config() {
    // Compared as parsed TOML, so layout and comments do not matter but every value does.
    let built: toml::Table = PlainConfig::new().toml().parse().unwrap();
    let plain: toml::Table = super::PLAIN_CONFIG.parse().unwrap();
    assert_eq!(built, plain);
    let changed: toml::Table = PlainConfig::new()
        .listen("idle_timeout", "\"60s\"")
        .listen("max_connections", "2")
        .toml()
        .parse()
        .unwrap();
    assert_eq!(changed["listen"]["idle_timeout"].as_str(), Some("60s"));
    assert_eq!(changed["listen"]["max_connections"].as_integer(), Some(2));
    let changed: toml::Table = PlainConfig::new()
        .runtime("worker_threads", "2")
        .runtime("shutdown_grace", "\"30s\"")
        .toml()
        .parse()
        .unwrap();
    assert_eq!(changed["runtime"]["worker_threads"].as_integer(), Some(2));
    assert_eq!(changed["runtime"]["shutdown_grace"].as_str(), Some("30s"));
}
