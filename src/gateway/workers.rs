//! Where the accept loops run: on the caller's runtime (one listener), or, with
//! `[runtime] scheduler = "per_core"`, one thread per worker, each with a current-thread
//! runtime, its own `SO_REUSEPORT` listener and accept loop, and its own upstream pools
//! (`crate::snapshot::upstream`).
//!
//! A connection is then accepted, handshaken, served and proxied on one thread: no
//! cross-thread wake-up on the request path. What the workers share is read without
//! locks (the snapshot behind `ArcSwap`, the state store, metrics, the token cache) or
//! only per connection (the `max_connections` semaphore). The control plane (reload,
//! JWKS and state refresh, admin, signals) stays on the caller's runtime and reaches the
//! workers through those shared handles and the drain / kill signals.

use std::convert::Infallible;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::{Request, Response};
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tower::Service;

use crate::body::Body;
use crate::ops::metrics::Metrics;
use crate::transport::server::{ServerSettings, Shutdown};

use super::StartError;

/// What every accept loop is given.
pub(crate) struct Serve<S> {
    pub tls: Arc<ArcSwap<ServerConfig>>,
    pub settings: ServerSettings,
    pub stack: S,
    pub metrics: Metrics,
    pub permits: Arc<Semaphore>,
    pub shutdown: Shutdown,
}

/// The running accept loops.
pub(crate) enum Serving {
    /// One loop on the caller's runtime.
    Local(JoinHandle<()>),
    /// One thread per worker; each receiver completes (closes) when its thread is done.
    Workers(Vec<oneshot::Receiver<()>>),
}

impl Serving {
    /// Wait until every accept loop has stopped and, for worker threads, their runtimes
    /// (and whatever connections they still held after the kill signal) are gone.
    pub async fn finished(self) {
        match self {
            Serving::Local(task) => {
                let _ = task.await;
            }
            Serving::Workers(done) => {
                for d in done {
                    let _ = d.await;
                }
            }
        }
    }
}

/// One accept loop on the caller's runtime.
pub(crate) fn local<S>(listener: TcpListener, serve: Serve<S>) -> Serving
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + Unpin
        + 'static,
    S::Future: Send + Unpin + 'static,
{
    Serving::Local(tokio::spawn(crate::transport::server::run(
        listener,
        serve.tls,
        serve.settings,
        serve.stack,
        serve.metrics,
        0,
        serve.permits,
        serve.shutdown,
    )))
}

/// One thread per listener, named `accessgate-w<i>`. Every runtime is built and every
/// listener registered with its runtime before any thread starts, so a failure is a
/// start error rather than a worker missing later.
pub(crate) fn per_core<S>(
    listeners: Vec<std::net::TcpListener>,
    serve: Serve<S>,
) -> Result<Serving, StartError>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + Unpin
        + 'static,
    S::Future: Send + Unpin + 'static,
{
    let mut ready = Vec::with_capacity(listeners.len());
    for std_listener in listeners {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StartError::Workers)?;
        let listener = {
            let _in_worker = rt.enter();
            TcpListener::from_std(std_listener).map_err(StartError::Workers)?
        };
        ready.push((rt, listener));
    }
    let mut done = Vec::with_capacity(ready.len());
    for (i, (rt, listener)) in ready.into_iter().enumerate() {
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let serve = Serve {
            tls: serve.tls.clone(),
            settings: serve.settings.clone(),
            stack: serve.stack.clone(),
            metrics: serve.metrics.clone(),
            permits: serve.permits.clone(),
            shutdown: serve.shutdown.clone(),
        };
        std::thread::Builder::new()
            .name(format!("accessgate-w{i}"))
            .spawn(move || {
                crate::snapshot::upstream::enter_worker(i);
                let mut kill = serve.shutdown.kill.clone();
                rt.block_on(async move {
                    crate::transport::server::run(
                        listener,
                        serve.tls,
                        serve.settings,
                        serve.stack,
                        serve.metrics,
                        i,
                        serve.permits,
                        serve.shutdown,
                    )
                    .await;
                    // Accepting has stopped; the open connections are tasks on this
                    // runtime and end with it, so it runs until the gateway says the rest
                    // may go (all closed, or the grace period over; or the gateway is
                    // gone: the sender dropped).
                    let _ = kill.wait_for(|k| *k).await;
                });
                drop(rt);
                drop(done_tx);
            })
            .map_err(StartError::Workers)?;
        done.push(done_rx);
    }
    Ok(Serving::Workers(done))
}
