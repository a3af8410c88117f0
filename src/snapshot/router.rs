//! The routing table of one snapshot: host + normalised path -> route index. Built once per
//! config version; the `route` step only reads it.

use crate::config::RouteConfig;

/// The routing table: host-specific routes first, then host-less ones; longest prefix wins.
#[derive(Debug, Default)]
pub struct Router {
    /// (lower-case host or None, prefix, route index), sorted by prefix length, longest first.
    entries: Vec<(Option<String>, String, usize)>,
}

impl Router {
    /// Build the table from validated routes (hosts lower-case, prefixes normalised).
    pub fn new(routes: &[RouteConfig]) -> Self {
        let mut entries: Vec<_> = routes
            .iter()
            .enumerate()
            .map(|(i, r)| (r.host.clone(), r.path_prefix.clone(), i))
            .collect();
        entries.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.2.cmp(&b.2)));
        Self { entries }
    }

    /// The route for `host` (lower-case, no port) and a normalised `path`. Routes naming
    /// this host are preferred over host-less ones (like a virtual host); within the
    /// chosen group the longest matching prefix wins.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<usize> {
        if let Some(h) = host {
            let has_vhost = self
                .entries
                .iter()
                .any(|(eh, _, _)| eh.as_deref() == Some(h));
            if has_vhost {
                return self
                    .entries
                    .iter()
                    .find(|(eh, p, _)| eh.as_deref() == Some(h) && prefix_matches(p, path))
                    .map(|e| e.2);
            }
        }
        self.entries
            .iter()
            .find(|(eh, p, _)| eh.is_none() && prefix_matches(p, path))
            .map(|e| e.2)
    }
}

/// Prefix match on segment boundaries: `/api` matches `/api` and `/api/x`, not `/apix`.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if !path.starts_with(prefix) {
        return false;
    }
    prefix.ends_with('/') || path.len() == prefix.len() || path.as_bytes()[prefix.len()] == b'/'
}
