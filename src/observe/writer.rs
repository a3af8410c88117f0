//! The decision log's writer: one thread that owns the sink (stdout or a file) and batches.
//!
//! Why it looks like this: a request must never pay for the log's I/O, and on a busy
//! gateway it should not even pay for waking the writer. So request tasks only push a
//! record into a bounded lock-free queue (`try_send`: full means dropped and counted, never
//! a wait). The writer is not blocked in `recv` (a sender would then have to wake it, one
//! futex call per request): while lines keep coming it sleeps on its own clock
//! ([`FLUSH_INTERVAL`]) and drains what piled up into one buffer, one `write` per batch. Only
//! when a whole interval passed with nothing to do does it park for good; the first line
//! after that wakes it (one wake-up per quiet period, not per line). A sender also kicks it
//! when the queue is half full, so a burst does not overflow while it sleeps.
//!
//! Files are opened for append and checked once per batch: a new inode at the path
//! (logrotate `create`, or the file removed) reopens by path; a file shorter than what was
//! written (logrotate `copytruncate`) needs nothing, as `O_APPEND` writes land at the new end,
//! but is noted so the check stays right. `SIGHUP` asks for a reopen too.
//!
//! Shutdown ([`LogWriter::close`]) writes and flushes every record accepted before it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use prometheus::IntCounter;

/// The longest an accepted line waits in memory before it is written (plus the write).
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Batch size: the writer writes when its buffer reaches this, or at each interval.
const BATCH_BYTES: usize = 64 * 1024;

/// Something the writer can turn into one log line (it appends the line, newline included).
pub trait Record: Send + 'static {
    fn write_line(&self, out: &mut String);
}

/// A line formatted elsewhere (tests, and the format-on-the-request-task variant the bench
/// compares against).
impl Record for String {
    fn write_line(&self, out: &mut String) {
        out.push_str(self);
    }
}

/// Where lines go.
pub enum Sink {
    Stdout,
    /// Opened for append (created if missing); reopened by path after rotation.
    File(PathBuf),
    /// Any writer (tests, benches); never reopened.
    Writer(Box<dyn Write + Send>),
}

/// The request side of the writer: push records, and the control calls.
pub struct LogWriter<R: Record> {
    tx: Sender<R>,
    /// Kept so a sender that raced with the final drain can take a record back out and
    /// count it, instead of leaving it unwritten and uncounted.
    rx: Receiver<R>,
    shared: Arc<Shared>,
    high_water: usize,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    dropped: IntCounter,
    /// The writer parked with no timeout: the next sender must unpark it.
    idle: AtomicBool,
    /// A sender already unparked the writer for a high queue; cleared by the writer.
    kicked: AtomicBool,
    reopen: AtomicBool,
    closing: AtomicBool,
    /// The writer did its last drain; records pushed now are taken back and counted.
    finished: AtomicBool,
    /// Flush requests and acknowledgements (tests, and a bounded wait on close).
    flush_asked: AtomicU64,
    flush_done: Mutex<u64>,
    flush_cv: Condvar,
    writer: OnceLock<Thread>,
}

impl Shared {
    fn wake(&self) {
        if let Some(t) = self.writer.get() {
            t.unpark();
        }
    }
}

impl<R: Record> LogWriter<R> {
    /// Open `sink` and start the writer thread with room for `capacity` queued records.
    /// A file that cannot be opened is an error now, not a silent loss later.
    pub fn start(sink: Sink, capacity: usize, dropped: IntCounter) -> std::io::Result<Self> {
        let out = Out::open(sink)?;
        let capacity = capacity.max(1);
        let (tx, rx) = bounded::<R>(capacity);
        let shared = Arc::new(Shared {
            dropped,
            idle: AtomicBool::new(false),
            kicked: AtomicBool::new(false),
            reopen: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            flush_asked: AtomicU64::new(0),
            flush_done: Mutex::new(0),
            flush_cv: Condvar::new(),
            writer: OnceLock::new(),
        });
        let worker = Worker {
            rx: rx.clone(),
            shared: shared.clone(),
            out,
            buf: String::with_capacity(BATCH_BYTES + 4096),
            lines: 0,
            failing: false,
        };
        let handle = std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || worker.run())?;
        let _ = shared.writer.set(handle.thread().clone());
        Ok(Self {
            tx,
            rx,
            shared,
            high_water: (capacity / 2).max(1),
            thread: Mutex::new(Some(handle)),
        })
    }

    /// Queue one record; never blocks. Returns false (and counts it) when it was dropped.
    pub fn push(&self, record: R) -> bool {
        let s = &*self.shared;
        if s.finished.load(Ordering::Acquire) {
            s.dropped.inc();
            return false;
        }
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(record)
        {
            s.dropped.inc();
            return false;
        }
        // Pairs with the fences in the writer: either it sees this record, or this sees
        // its flag (idle: wake it; finished: take one record back and count it).
        fence(Ordering::SeqCst);
        if s.finished.load(Ordering::Relaxed) {
            // The writer made its last drain: whatever is still queued (this record, or
            // another sender's that raced the same way) will never be written, so count
            // all of it. Nothing left to take back means the last drain wrote this record.
            let mut left = 0;
            while self.rx.try_recv().is_ok() {
                left += 1;
            }
            s.dropped.inc_by(left);
            return left == 0;
        }
        if s.idle.load(Ordering::Relaxed) {
            if s.idle.swap(false, Ordering::AcqRel) {
                s.wake();
            }
        } else if self.tx.len() >= self.high_water && !s.kicked.swap(true, Ordering::AcqRel) {
            s.wake();
        }
        true
    }

    /// Reopen a file sink by path (SIGHUP). No-op for stdout.
    pub fn reopen(&self) {
        self.shared.reopen.store(true, Ordering::Release);
        self.shared.wake();
    }

    /// Write and flush everything pushed before this call; false if that took longer than
    /// `limit` (the sink is stuck) or the writer is gone.
    pub fn flush(&self, limit: Duration) -> bool {
        let s = &*self.shared;
        let ticket = s.flush_asked.fetch_add(1, Ordering::AcqRel) + 1;
        s.wake();
        let Ok(done) = s.flush_done.lock() else {
            return false;
        };
        match s.flush_cv.wait_timeout_while(done, limit, |d| *d < ticket) {
            Ok((d, _)) => *d >= ticket,
            Err(_) => false,
        }
    }

    /// Stop the writer after it wrote and flushed every record accepted so far; later
    /// pushes are counted as dropped. Waits for that at most `limit` (a sink stuck in a
    /// write must not keep the process from exiting) and says whether it happened. Blocks:
    /// call it from a blocking context.
    pub fn close(&self, limit: Duration) -> bool {
        let s = &*self.shared;
        s.closing.store(true, Ordering::Release);
        s.wake();
        let stopped = match s.flush_done.lock() {
            Ok(done) => s
                .flush_cv
                .wait_timeout_while(done, limit, |d| *d != STOPPED)
                .map(|(d, _)| *d == STOPPED)
                .unwrap_or(false),
            Err(_) => false,
        };
        if stopped {
            if let Some(h) = self.thread.lock().ok().and_then(|mut h| h.take()) {
                let _ = h.join();
            }
        } else {
            tracing::error!(
                ?limit,
                "the decision log writer is stuck; lines still queued are lost"
            );
        }
        stopped
    }
}

/// `flush_done` once the writer has written everything and ended.
const STOPPED: u64 = u64::MAX;

impl Shared {
    fn ack_flush(&self, ticket: u64) {
        if let Ok(mut d) = self.flush_done.lock() {
            if *d < ticket {
                *d = ticket;
            }
            self.flush_cv.notify_all();
        }
    }
}

/// Dropped without `close` (a gateway that never shut down): let the writer finish on its
/// own, without waiting for it here (this may run on a runtime thread).
impl<R: Record> Drop for LogWriter<R> {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.wake();
    }
}

/// The writer thread's state.
struct Worker<R: Record> {
    rx: Receiver<R>,
    shared: Arc<Shared>,
    out: Out,
    buf: String,
    /// Lines in `buf` (counted as dropped if the write fails).
    lines: u64,
    /// The last write failed (log once per failure streak, not per batch).
    failing: bool,
}

impl<R: Record> Worker<R> {
    fn run(mut self) {
        loop {
            let closing = self.shared.closing.load(Ordering::Acquire);
            let ticket = self.shared.flush_asked.load(Ordering::Acquire);
            if self.shared.reopen.swap(false, Ordering::AcqRel) {
                self.out.reopen();
            }
            let n = self.drain();
            self.shared.kicked.store(false, Ordering::Release);
            self.write_out();
            self.out.flush();
            self.shared.ack_flush(ticket);
            if closing {
                self.finish();
                return;
            }
            if n > 0 {
                std::thread::park_timeout(FLUSH_INTERVAL);
                continue;
            }
            // Nothing came in a whole interval: park until a sender or a control call
            // wakes us, after telling senders so (and re-checking, see `push`).
            self.shared.idle.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let more_asked = self.shared.flush_asked.load(Ordering::Acquire) != ticket;
            if self.rx.is_empty()
                && !more_asked
                && !self.shared.closing.load(Ordering::Acquire)
                && !self.shared.reopen.load(Ordering::Acquire)
            {
                std::thread::park();
            }
            self.shared.idle.store(false, Ordering::Release);
        }
    }

    /// The last drain: everything queued, then the `finished` handshake with racing senders.
    fn finish(&mut self) {
        self.drain();
        self.write_out();
        self.shared.finished.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.drain();
        self.write_out();
        self.out.flush();
        self.shared.ack_flush(STOPPED);
    }

    /// Format every queued record into the buffer, writing whenever it fills.
    fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Ok(r) = self.rx.try_recv() {
            r.write_line(&mut self.buf);
            self.lines += 1;
            n += 1;
            if self.buf.len() >= BATCH_BYTES {
                self.write_out();
            }
        }
        n
    }

    fn write_out(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        self.out.check_rotation();
        match self.out.write_all(self.buf.as_bytes()) {
            Ok(()) => {
                if self.failing {
                    tracing::info!("decision log writable again");
                    self.failing = false;
                }
            }
            Err(e) => {
                self.shared.dropped.inc_by(self.lines);
                if !self.failing {
                    tracing::error!(error = %e, lines = self.lines, "decision log write failed; lines dropped and counted");
                    self.failing = true;
                }
                // A file may have gone away under us: try the path again next batch.
                self.out.want_reopen();
            }
        }
        self.buf.clear();
        self.lines = 0;
    }
}

/// The open sink.
enum Out {
    Stdout(std::io::Stdout),
    File(FileOut),
    Writer(Box<dyn Write + Send>),
}

struct FileOut {
    path: PathBuf,
    file: File,
    /// Device and inode of `file`, to see a rename-and-create rotation.
    id: (u64, u64),
    /// The file's length as we last wrote it, to see a truncation.
    len: u64,
    reopen: bool,
}

impl Out {
    fn open(sink: Sink) -> std::io::Result<Self> {
        Ok(match sink {
            Sink::Stdout => Out::Stdout(std::io::stdout()),
            Sink::File(path) => Out::File(FileOut::open(path)?),
            Sink::Writer(w) => Out::Writer(w),
        })
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            // Locked so a batch is never interleaved with `tracing` lines on stdout.
            Out::Stdout(s) => s.lock().write_all(bytes),
            Out::File(f) => {
                f.file.write_all(bytes)?;
                f.len = f.len.saturating_add(bytes.len() as u64);
                Ok(())
            }
            Out::Writer(w) => w.write_all(bytes),
        }
    }

    fn flush(&mut self) {
        let _ = match self {
            Out::Stdout(s) => s.lock().flush(),
            Out::File(_) => Ok(()), // unbuffered: each batch is one write(2)
            Out::Writer(w) => w.flush(),
        };
    }

    fn want_reopen(&mut self) {
        if let Out::File(f) = self {
            f.reopen = true;
        }
    }

    fn reopen(&mut self) {
        if let Out::File(f) = self {
            f.reopen_by_path();
        }
    }

    fn check_rotation(&mut self) {
        if let Out::File(f) = self {
            f.check_rotation();
        }
    }
}

impl FileOut {
    fn open(path: PathBuf) -> std::io::Result<Self> {
        let file = open_append(&path)?;
        let (id, len) = identity(&file)?;
        Ok(Self {
            path,
            file,
            id,
            len,
            reopen: false,
        })
    }

    /// Reopen by path; on failure keep writing to the file we have (its lines are not
    /// lost, only in the old file) and say why.
    fn reopen_by_path(&mut self) {
        self.reopen = false;
        match open_append(&self.path).and_then(|f| identity(&f).map(|m| (f, m))) {
            Ok((file, (id, len))) => {
                self.file = file;
                self.id = id;
                self.len = len;
            }
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "cannot reopen the decision log; still writing to the old file");
            }
        }
    }

    /// One `stat` per batch: reopen when the path names another file (or none), note a
    /// truncation in place.
    fn check_rotation(&mut self) {
        if self.reopen {
            self.reopen_by_path();
            return;
        }
        match std::fs::metadata(&self.path) {
            Err(_) => self.reopen_by_path(),
            Ok(m) => {
                if file_id(&m) != self.id {
                    self.reopen_by_path();
                } else if m.is_file() && m.len() < self.len {
                    // copytruncate: O_APPEND puts the next write at the new end, so there
                    // is no hole of zeros; only our record of the length is stale.
                    self.len = m.len();
                }
            }
        }
    }
}

fn open_append(p: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))
}

fn identity(f: &File) -> std::io::Result<((u64, u64), u64)> {
    let m = f.metadata()?;
    Ok((file_id(&m), m.len()))
}

#[cfg(unix)]
fn file_id(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

#[cfg(not(unix))]
fn file_id(_: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
