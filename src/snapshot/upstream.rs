//! The pooled upstream clients of each route, built with the snapshot so a reload that
//! changes `connect_timeout` gets a fresh pool and an unchanged request path reuses its own.
//!
//! With `[runtime] scheduler = "per_core"` a route keeps one pool per worker and a request
//! uses the pool of the worker thread it runs on ([`Pools::get`]): a pooled connection's
//! task lives on the runtime that opened it, so a shared pool would hand a request to a
//! connection driven by another thread and wake that thread twice per request.

use std::cell::Cell;
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::Body;
use crate::config::RouteConfig;
use crate::snapshot::capped::CappedConnector;

/// The pooled HTTP/1.1 client used for one route's upstream.
pub type UpstreamClient = Client<CappedConnector, Body>;

/// How long an idle pooled upstream connection is kept. Below common upstream keep-alive
/// timeouts (nginx 75s, Node 5s is the outlier) to avoid racing the upstream's close.
const POOL_IDLE: Duration = Duration::from_secs(30);

thread_local! {
    /// The worker this thread serves (0 off the worker threads: the control plane, a
    /// shared runtime's threads, tests).
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Mark the calling thread as worker `index` (called once, by the worker thread itself).
pub fn enter_worker(index: usize) {
    WORKER.with(|w| w.set(index));
}

/// The worker index of the calling thread (see [`enter_worker`]).
pub fn current_worker() -> usize {
    WORKER.with(Cell::get)
}

/// A route's upstream clients: one per worker, or one shared.
#[derive(Debug)]
pub struct Pools(Box<[UpstreamClient]>);

impl Pools {
    /// `count` pools (at least one) sharing the route's `upstream_max_connections`: each
    /// holds an equal share of the cap, so the route never has more connections open than
    /// configured. A cap below the worker count cannot be shared out (a worker with no
    /// share could never connect), so such a route keeps one pool for all workers.
    pub fn for_route(route: &RouteConfig, count: usize) -> Self {
        let caps = split_cap(route.upstream_max_connections, count);
        Self(caps.into_iter().map(|cap| client_for(route, cap)).collect())
    }

    /// The pool for the calling thread's worker. A worker index past the pools (the
    /// worker count resolved differently since this snapshot was built) shares one.
    pub fn get(&self) -> &UpstreamClient {
        let i = current_worker();
        &self.0[i % self.0.len()]
    }

    /// How many pools there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true: there is always at least one pool.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The cap of each of `count` pools: `cap` shared out evenly (the first ones take the
/// remainder), or one pool with all of it when there are fewer connections than pools.
pub fn split_cap(cap: usize, count: usize) -> Vec<usize> {
    let count = count.max(1);
    if cap < count {
        return vec![cap];
    }
    (0..count)
        .map(|i| cap / count + usize::from(i < cap % count))
        .collect()
}

/// Build one pooled client for a route (connect timeout is a connector setting).
fn client_for(route: &RouteConfig, cap: usize) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(route.connect_timeout));
    connector.set_nodelay(true);
    connector.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(256)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(CappedConnector::new(connector, cap, route.connect_timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_shared_out_and_never_exceeded() {
        assert_eq!(split_cap(256, 1), vec![256]);
        assert_eq!(split_cap(256, 2), vec![128, 128]);
        assert_eq!(split_cap(5, 2), vec![3, 2]);
        assert_eq!(split_cap(2, 2), vec![1, 1]);
        // Fewer connections than workers: one pool holds them all.
        assert_eq!(split_cap(1, 2), vec![1]);
        assert_eq!(split_cap(3, 8), vec![3]);
        assert_eq!(split_cap(7, 0), vec![7]);
        for cap in 1..40 {
            for n in 1..10 {
                let caps = split_cap(cap, n);
                assert_eq!(caps.iter().sum::<usize>(), cap, "cap {cap}, {n} pools");
                assert!(caps.iter().all(|&c| c >= 1), "cap {cap}, {n} pools");
            }
        }
    }

    #[test]
    fn each_worker_thread_picks_its_own_pool() {
        let route = crate::route::tests_support::route("r", None, "/");
        let pools = Pools::for_route(&route, 2);
        assert_eq!(pools.len(), 2);
        let first: *const UpstreamClient = pools.get();
        assert_eq!(current_worker(), 0);
        let second = std::thread::scope(|s| {
            s.spawn(|| {
                enter_worker(1);
                std::ptr::from_ref(pools.get()) as usize
            })
            .join()
            .unwrap()
        });
        assert_ne!(first as usize, second);
        // An index past the pools wraps around instead of failing.
        let wrapped = std::thread::scope(|s| {
            s.spawn(|| {
                enter_worker(2);
                std::ptr::from_ref(pools.get()) as usize
            })
            .join()
            .unwrap()
        });
        assert_eq!(first as usize, wrapped);
    }
}
