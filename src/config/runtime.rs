//! `[runtime] scheduler` and the worker count `worker_threads` stands for.
//!
//! The count is resolved here, not in the CLI, because the snapshot needs it too: with
//! `per_core` every worker gets its own upstream pool (see `crate::snapshot::upstream`).

use std::num::NonZeroUsize;

use super::RuntimeConfig;

/// How the workers are arranged (benches/README.md has the measurements behind the
/// default; docs/operations.md, "Tuning", says when to change it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    /// One current-thread runtime per worker, each with its own `SO_REUSEPORT` listener,
    /// accept loop and upstream pools: a request never leaves the thread that accepted its
    /// connection, so CPU per request stays flat as workers are added. The control plane
    /// (reload, key and state refresh, admin, signals) runs on the caller's runtime.
    PerCore,
    /// One tokio work-stealing runtime with `worker_threads` workers and one listener:
    /// balances uneven connections across cores, at the price of cross-thread wake-ups.
    WorkStealing,
    /// One current-thread runtime for everything (one worker only).
    CurrentThread,
}

impl Scheduler {
    /// The config keyword.
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::PerCore => "per_core",
            Scheduler::WorkStealing => "work_stealing",
            Scheduler::CurrentThread => "current_thread",
        }
    }

    /// Every keyword with its value, for the validator.
    pub const CHOICES: [(&'static str, Scheduler); 3] = [
        ("per_core", Scheduler::PerCore),
        ("work_stealing", Scheduler::WorkStealing),
        ("current_thread", Scheduler::CurrentThread),
    ];
}

impl RuntimeConfig {
    /// The worker count `worker_threads` stands for: itself when non-zero, else
    /// `TOKIO_WORKER_THREADS` (as tokio reads it), else the CPUs this process may use
    /// (`available_parallelism` honours the affinity mask, e.g. `taskset`). Always 1 for
    /// `current_thread`.
    pub fn workers(&self) -> usize {
        if self.scheduler == Scheduler::CurrentThread {
            return 1;
        }
        resolve_workers(self.worker_threads)
    }

    /// How many upstream pools each route keeps: one per worker with `per_core` (so no
    /// request waits on another thread's connection), else one shared pool.
    pub fn upstream_pools(&self) -> usize {
        match self.scheduler {
            Scheduler::PerCore => self.workers(),
            Scheduler::WorkStealing | Scheduler::CurrentThread => 1,
        }
    }
}

/// See [`RuntimeConfig::workers`].
pub fn resolve_workers(worker_threads: usize) -> usize {
    if worker_threads > 0 {
        return worker_threads;
    }
    std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
}
