//! The tokio runtime `accessgate run` starts the gateway on, from `[runtime]`.

use crate::config::{RuntimeConfig, Scheduler};

/// Build the runtime `Gateway::start` is called on.
///
/// - `per_core`: a current-thread runtime for the control plane only (signals, reload,
///   key and state refresh, admin); `Gateway::start` starts one thread per worker with a
///   runtime and a listener of its own.
/// - `work_stealing`: tokio's multi-thread runtime with [`RuntimeConfig::workers`] workers,
///   which also serves the one listener.
/// - `current_thread`: one thread for everything.
pub fn build(cfg: &RuntimeConfig) -> std::io::Result<tokio::runtime::Runtime> {
    match cfg.scheduler {
        Scheduler::PerCore | Scheduler::CurrentThread => current_thread(),
        Scheduler::WorkStealing => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("accessgate")
            .worker_threads(cfg.workers())
            .build(),
    }
}

/// The runtime of a process that serves no clients (`accessgate sync`): `0` = one worker
/// per core; a count of one, given or resolved, picks the current-thread scheduler, whose
/// single worker never parks and wakes through the work-stealing machinery.
pub fn build_pool(worker_threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let workers = resolve(worker_threads);
    if workers == 1 {
        return current_thread();
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("accessgate")
        .worker_threads(workers)
        .build()
}

fn current_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("accessgate")
        .build()
}

/// The worker count `worker_threads` stands for (see [`RuntimeConfig::workers`]).
pub fn resolve(worker_threads: usize) -> usize {
    crate::config::runtime::resolve_workers(worker_threads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroUsize;

    fn cfg(worker_threads: usize, scheduler: Scheduler) -> RuntimeConfig {
        RuntimeConfig {
            worker_threads,
            scheduler,
            shutdown_grace: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn explicit_counts_are_kept_and_zero_resolves_to_at_least_one() {
        assert_eq!(resolve(1), 1);
        assert_eq!(resolve(3), 3);
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
            assert_eq!(resolve(0), cores);
        }
        assert!(resolve(0) >= 1);
    }

    #[test]
    fn each_scheduler_builds_its_runtime_flavor() {
        use tokio::runtime::RuntimeFlavor::{CurrentThread, MultiThread};
        let flavor = |c: RuntimeConfig| build(&c).unwrap().handle().runtime_flavor();
        // per_core's workers are started by the gateway; the caller's runtime is the
        // control plane's.
        assert_eq!(flavor(cfg(2, Scheduler::PerCore)), CurrentThread);
        assert_eq!(flavor(cfg(1, Scheduler::CurrentThread)), CurrentThread);
        assert_eq!(flavor(cfg(1, Scheduler::WorkStealing)), MultiThread);
        assert_eq!(flavor(cfg(2, Scheduler::WorkStealing)), MultiThread);
        let rt = build_pool(1).unwrap();
        assert_eq!(rt.handle().runtime_flavor(), CurrentThread);
        let rt = build_pool(2).unwrap();
        assert_eq!(rt.handle().runtime_flavor(), MultiThread);
    }
}
