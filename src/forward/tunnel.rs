//! WebSocket tunnels: once both sides agreed to switch protocols, bytes are copied both
//! ways outside the request pipeline, holding the connection's slot until the shutdown
//! grace period ends.

use http::Request;
use hyper_util::rt::TokioIo;

use crate::body::Body;
use crate::transport::server::TunnelGuard;

/// The client's side of an upgrade, taken from the request before it is forwarded.
pub struct ClientUpgrade {
    on_upgrade: hyper::upgrade::OnUpgrade,
    /// The tunnel keeps the connection's slot (max_connections, open_connections) and
    /// learns when the shutdown grace period is over.
    guard: Option<TunnelGuard>,
}

impl ClientUpgrade {
    /// Take the upgrade handle (and the slot guard) off an upgrade request.
    pub fn take(req: &mut Request<Body>) -> Self {
        let guard = req.extensions_mut().remove::<TunnelGuard>();
        Self {
            on_upgrade: hyper::upgrade::on(req),
            guard,
        }
    }

    /// The upstream switched protocols: join the two sides in a background task.
    pub fn spawn_tunnel<B>(self, upstream_resp: &mut http::Response<B>) {
        let upstream = hyper::upgrade::on(upstream_resp);
        tokio::spawn(tunnel(self.on_upgrade, upstream, self.guard));
    }
}

/// Copy bytes both ways between an upgraded client connection and the upstream, until
/// either side closes or the shutdown grace period ends.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    guard: Option<TunnelGuard>,
) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(x) => x,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            return;
        }
    };
    let mut c = TokioIo::new(client);
    let mut u = TokioIo::new(upstream);
    let copy = tokio::io::copy_bidirectional(&mut c, &mut u);
    match guard {
        Some(mut g) => {
            if *g.kill.borrow() {
                return;
            }
            tokio::select! {
                _ = copy => {}
                _ = g.kill.changed() => {}
            }
        }
        None => {
            let _ = copy.await;
        }
    }
}
