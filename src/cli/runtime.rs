//! The tokio runtime, sized from `[runtime] worker_threads`.

use std::num::NonZeroUsize;

/// Build the runtime. `0` = one worker per core this process may run on
/// (`TOKIO_WORKER_THREADS` when set). A count of one, given or resolved, picks tokio's
/// current-thread scheduler: with a single worker the work-stealing machinery of the
/// multi-thread scheduler is pure overhead (measured with `cargo bench --bench proxy`, see
/// benches/README.md), so the default on a one-core host or a one-CPU cgroup/affinity mask
/// is the fast runtime without tuning.
pub fn build(worker_threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let workers = resolve(worker_threads);
    if workers == 1 {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("accessgate")
            .build();
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("accessgate")
        .worker_threads(workers)
        .build()
}

/// The worker count `worker_threads` stands for: itself when non-zero, else
/// `TOKIO_WORKER_THREADS` (as tokio reads it), else the CPUs this process may use
/// (`available_parallelism` honours the affinity mask, e.g. `taskset`).
pub fn resolve(worker_threads: usize) -> usize {
    if worker_threads > 0 {
        return worker_threads;
    }
    std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn one_worker_builds_the_current_thread_runtime() {
        let rt = build(1).unwrap();
        assert_eq!(
            rt.handle().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::CurrentThread
        );
        let rt = build(2).unwrap();
        assert_eq!(
            rt.handle().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::MultiThread
        );
    }
}
