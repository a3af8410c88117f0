//! The tokio runtime, sized from `[runtime] worker_threads`.

/// Build the multi-threaded runtime. `0` = tokio's default: `TOKIO_WORKER_THREADS` when
/// set, else one worker per core.
pub fn build(worker_threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.enable_all().thread_name("accessgate");
    if worker_threads > 0 {
        b.worker_threads(worker_threads);
    }
    b.build()
}
