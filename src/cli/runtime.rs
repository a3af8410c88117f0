//! The tokio runtime, sized from `[runtime] worker_threads`.

/// Build the runtime. `0` = tokio's default: `TOKIO_WORKER_THREADS` when set, else one
/// worker per core. `1` = tokio's current-thread scheduler: with a single worker the
/// work-stealing machinery of the multi-thread scheduler is pure overhead (measured with
/// `cargo bench --bench proxy`, see benches/README.md).
pub fn build(worker_threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if worker_threads == 1 {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("accessgate")
            .build();
    }
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.enable_all().thread_name("accessgate");
    if worker_threads > 0 {
        b.worker_threads(worker_threads);
    }
    b.build()
}
