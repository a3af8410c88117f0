//! State sources: a file (re-read when its size or modification time changes), an HTTP
//! URL polled with `If-None-Match`, or Microsoft Graph (`super::graph`). All are bounded
//! in size and time.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{ACCEPT, ETAG, IF_NONE_MATCH, USER_AGENT};
use http::{HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};

use crate::ops::outbound::error_chain;

/// Largest state document accepted (file or HTTP body). A million devices and a million
/// app registrations are about 500 MiB of JSON; this leaves room and still bounds memory.
pub const MAX_STATE_BYTES: usize = 1024 * 1024 * 1024;

/// Connecting (TCP + TLS) must finish within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The response head must arrive within this.
const HEAD_TIMEOUT: Duration = Duration::from_secs(15);
/// The whole body must arrive within this (large states over slow links).
const BODY_TIMEOUT: Duration = Duration::from_secs(120);

type StateClient = crate::ops::outbound::HttpsClient;

/// A version marker of what was last loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SourceVersion {
    File {
        modified: Option<SystemTime>,
        len: u64,
    },
    Etag(Option<HeaderValue>),
}

pub(crate) enum Fetched {
    /// The source says nothing changed since the last good load.
    Unchanged,
    /// New bytes; `version` is committed only if they parse and validate.
    New {
        bytes: Bytes,
        version: SourceVersion,
    },
    /// A state already built (Graph), confirmed by its source at `at`.
    State {
        state: Box<crate::policy::PolicyState>,
        at: SystemTime,
    },
}

pub(crate) enum Source {
    File {
        path: PathBuf,
        origin: String,
        last: Option<SourceVersion>,
    },
    Http {
        uri: Uri,
        origin: String,
        client: Box<StateClient>,
        last: Option<SourceVersion>,
    },
    Graph(Box<super::graph::GraphSource>),
}

impl Source {
    pub(crate) fn file(path: PathBuf) -> Self {
        Source::File {
            origin: path.display().to_string(),
            path,
            last: None,
        }
    }

    /// Build the HTTP source (reads `ca` from disk: call off the runtime threads).
    pub(crate) fn http(url: String, ca: Option<&Path>) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|_| format!("state url {url:?} is not a valid URL"))?;
        match uri.scheme_str() {
            Some("https") | Some("http") => {}
            _ => {
                return Err(format!(
                    "state url {url:?}: scheme must be https (or http to loopback)"
                ));
            }
        }
        Ok(Source::Http {
            uri,
            origin: url,
            client: Box::new(client(ca)?),
            last: None,
        })
    }

    pub(crate) fn origin(&self) -> &str {
        match self {
            Source::File { origin, .. } | Source::Http { origin, .. } => origin,
            Source::Graph(g) => g.origin(),
        }
    }

    /// Remember what was loaded, once it validated.
    pub(crate) fn commit(&mut self, version: SourceVersion) {
        match self {
            Source::File { last, .. } | Source::Http { last, .. } => *last = Some(version),
            Source::Graph(_) => {}
        }
    }

    /// The source has only served a stand-in (Graph's cached snapshot) and wants a real
    /// fetch now rather than after `refresh`.
    pub(crate) async fn wants_fetch_now(&self) -> bool {
        match self {
            Source::Graph(g) => g.wants_sync_now().await,
            _ => false,
        }
    }

    /// Fetch if changed. `loaded = false` ignores any remembered version (nothing is
    /// loaded, so "unchanged" would be meaningless).
    ///
    /// A Graph source hands each page of its round to `hook` as it is read (critical
    /// changes go out, or are applied, before the round ends). Other sources have no
    /// pages: they ignore it.
    pub(crate) async fn fetch_with(
        &self,
        loaded: bool,
        hook: Option<&dyn super::graph::PageHook>,
    ) -> Result<Fetched, String> {
        match self {
            Source::Graph(g) => match g.fetch_with(loaded, hook).await {
                Ok(super::graph::Fetch::State { state, at }) => Ok(Fetched::State {
                    state: Box::new(state),
                    at,
                }),
                Err(e) => Err(e.to_string()),
            },
            Source::File { path, origin, last } => {
                let meta = tokio::fs::metadata(path)
                    .await
                    .map_err(|e| format!("{origin}: {e}"))?;
                let version = SourceVersion::File {
                    modified: meta.modified().ok(),
                    len: meta.len(),
                };
                if loaded && last.as_ref() == Some(&version) {
                    return Ok(Fetched::Unchanged);
                }
                if meta.len() > MAX_STATE_BYTES as u64 {
                    return Err(format!(
                        "{origin}: {} bytes is over the {MAX_STATE_BYTES}-byte limit",
                        meta.len()
                    ));
                }
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|e| format!("{origin}: {e}"))?;
                Ok(Fetched::New {
                    bytes: Bytes::from(bytes),
                    version,
                })
            }
            Source::Http {
                uri,
                origin,
                client,
                last,
            } => {
                let mut req = Request::get(uri.clone())
                    .header(ACCEPT, "application/json")
                    .header(
                        USER_AGENT,
                        concat!("accessgate/", env!("CARGO_PKG_VERSION")),
                    );
                if let (true, Some(SourceVersion::Etag(Some(tag)))) = (loaded, last) {
                    req = req.header(IF_NONE_MATCH, tag.clone());
                }
                let req = req
                    .body(Empty::new())
                    .map_err(|e| format!("{origin}: {e}"))?;
                let resp = tokio::time::timeout(HEAD_TIMEOUT, client.request(req))
                    .await
                    .map_err(|_| {
                        format!("{origin}: no response within {}s", HEAD_TIMEOUT.as_secs())
                    })?
                    .map_err(|e| format!("{origin}: {}", error_chain(&e)))?;
                match resp.status() {
                    StatusCode::NOT_MODIFIED if loaded => return Ok(Fetched::Unchanged),
                    StatusCode::OK => {}
                    s => return Err(format!("{origin}: HTTP {}", s.as_u16())),
                }
                let etag = resp.headers().get(ETAG).cloned();
                let body = tokio::time::timeout(
                    BODY_TIMEOUT,
                    Limited::new(resp.into_body(), MAX_STATE_BYTES).collect(),
                )
                .await
                .map_err(|_| {
                    format!(
                        "{origin}: body not received within {}s",
                        BODY_TIMEOUT.as_secs()
                    )
                })?
                .map_err(|e| format!("{origin}: body: {e}"))?;
                Ok(Fetched::New {
                    bytes: body.to_bytes(),
                    version: SourceVersion::Etag(etag),
                })
            }
        }
    }
}

fn client(extra_ca: Option<&Path>) -> Result<StateClient, String> {
    crate::ops::outbound::https_client(extra_ca, "state ca", CONNECT_TIMEOUT)
}
