use std::io::Write;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::IntCounter;

use super::{LogWriter, Sink};

/// Bound on every wait in these tests (a hang fails the test instead of blocking it).
const LIMIT: Duration = Duration::from_secs(10);

fn counter() -> IntCounter {
    IntCounter::new("dropped", "test").unwrap()
}

/// A sink that records what it was given and how many `write` calls it took.
#[derive(Clone, Default)]
struct Recorder {
    bytes: Arc<Mutex<Vec<u8>>>,
    writes: Arc<Mutex<usize>>,
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.lock().unwrap().extend_from_slice(buf);
        *self.writes.lock().unwrap() += 1;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Recorder {
    fn text(&self) -> String {
        String::from_utf8(self.bytes.lock().unwrap().clone()).unwrap()
    }
    fn writes(&self) -> usize {
        *self.writes.lock().unwrap()
    }
}

fn line(i: usize) -> String {
    format!("{{\"n\":{i}}}\n")
}

#[test]
fn lines_queued_together_are_written_in_one_batch() {
    let rec = Recorder::default();
    let w =
        LogWriter::<String>::start(Sink::Writer(Box::new(rec.clone())), 1024, counter()).unwrap();
    // A first line and a flush put the writer into its timed (batching) mode.
    assert!(w.push(line(0)));
    assert!(w.flush(LIMIT));
    let before = rec.writes();
    for i in 1..=200 {
        assert!(w.push(line(i)));
    }
    assert!(w.flush(LIMIT));
    let expected: String = (0..=200).map(line).collect();
    assert_eq!(rec.text(), expected, "every line, in order");
    // 200 lines well under one batch: far fewer writes than lines (a loaded machine may
    // split them over a few intervals, never one write per line).
    let writes = rec.writes() - before;
    assert!((1..=20).contains(&writes), "{writes} writes for 200 lines");
}

/// A sink whose first write blocks until the test releases it.
struct Stuck {
    entered: mpsc::Sender<()>,
    release: Mutex<mpsc::Receiver<()>>,
    inner: Recorder,
    blocked_once: bool,
}

impl Write for Stuck {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.blocked_once {
            self.blocked_once = true;
            let _ = self.entered.send(());
            let _ = self.release.lock().unwrap().recv_timeout(LIMIT);
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking_the_sender() {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let rec = Recorder::default();
    let sink = Stuck {
        entered: entered_tx,
        release: Mutex::new(release_rx),
        inner: rec.clone(),
        blocked_once: false,
    };
    let dropped = counter();
    let w = LogWriter::<String>::start(Sink::Writer(Box::new(sink)), 4, dropped.clone()).unwrap();
    assert!(w.push(line(0)));
    // The writer took line 0 and is now stuck writing it.
    entered_rx.recv_timeout(LIMIT).unwrap();
    let accepted: Vec<bool> = (1..=7).map(|i| w.push(line(i))).collect();
    assert_eq!(
        accepted,
        [true, true, true, true, false, false, false],
        "four fit the queue, the rest are refused at once"
    );
    assert_eq!(dropped.get(), 3);
    release_tx.send(()).unwrap();
    assert!(w.flush(LIMIT));
    let expected: String = (0..=4).map(line).collect();
    assert_eq!(rec.text(), expected, "what was accepted is written");
    assert_eq!(dropped.get(), 3);
}

#[test]
fn close_writes_everything_accepted_and_later_lines_count_as_dropped() {
    let rec = Recorder::default();
    let dropped = counter();
    let w = LogWriter::<String>::start(Sink::Writer(Box::new(rec.clone())), 4096, dropped.clone())
        .unwrap();
    for i in 0..1000 {
        assert!(w.push(line(i)));
    }
    assert!(w.close(LIMIT));
    let expected: String = (0..1000).map(line).collect();
    assert_eq!(rec.text(), expected);
    assert_eq!(dropped.get(), 0);
    assert!(!w.push(line(1000)), "the writer is gone: refused");
    assert_eq!(dropped.get(), 1);
    assert!(w.flush(LIMIT), "everything accepted is written");
    assert!(w.close(LIMIT), "twice is fine");
}

#[test]
fn close_gives_up_on_a_stuck_sink_instead_of_hanging() {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let rec = Recorder::default();
    let sink = Stuck {
        entered: entered_tx,
        release: Mutex::new(release_rx),
        inner: rec.clone(),
        blocked_once: false,
    };
    let w = LogWriter::<String>::start(Sink::Writer(Box::new(sink)), 4, counter()).unwrap();
    assert!(w.push(line(0)));
    entered_rx.recv_timeout(LIMIT).unwrap();
    assert!(
        !w.close(Duration::from_millis(100)),
        "reported, not waited for"
    );
    assert!(!w.flush(Duration::from_millis(10)));
    // Once the sink moves again the writer still ends cleanly.
    release_tx.send(()).unwrap();
    assert!(w.close(LIMIT));
    assert_eq!(rec.text(), line(0));
}

#[test]
fn lines_pushed_from_many_threads_while_closing_are_written_or_counted() {
    let rec = Recorder::default();
    let dropped = counter();
    let w = Arc::new(
        LogWriter::<String>::start(Sink::Writer(Box::new(rec.clone())), 64, dropped.clone())
            .unwrap(),
    );
    let per_thread = 2000;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let w = w.clone();
            std::thread::spawn(move || {
                (0..per_thread)
                    .filter(|i| w.push(line(t * per_thread + i)))
                    .count()
            })
        })
        .collect();
    assert!(w.close(LIMIT));
    let accepted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let written = rec.text().lines().count();
    // Every push is accounted for exactly once: written, or counted as dropped.
    assert_eq!(written as u64 + dropped.get(), (4 * per_thread) as u64);
    assert!(written <= accepted);
}

#[test]
fn a_quiet_writer_is_woken_by_the_next_line() {
    let rec = Recorder::default();
    let w = LogWriter::<String>::start(Sink::Writer(Box::new(rec.clone())), 16, counter()).unwrap();
    assert!(w.push(line(1)));
    assert!(w.flush(LIMIT));
    // Wait (bounded) until the writer has gone idle, then a line must still come out
    // without any flush call: the sender wakes it.
    let mut idle = false;
    for _ in 0..200 {
        if w.shared.idle.load(std::sync::atomic::Ordering::Acquire) {
            idle = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(idle, "the writer parks when there is nothing to do");
    assert!(w.push(line(2)));
    let mut seen = false;
    for _ in 0..1000 {
        if rec.text() == format!("{}{}", line(1), line(2)) {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(seen, "got {:?}", rec.text());
}

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn a_file_renamed_away_is_reopened_by_path_logrotate_create() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decisions.log");
    let w = LogWriter::<String>::start(Sink::File(path.clone()), 64, counter()).unwrap();
    assert!(w.push(line(1)));
    assert!(w.flush(LIMIT));
    // logrotate `create`: rename, then create an empty file at the path.
    let rotated = dir.path().join("decisions.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    std::fs::File::create(&path).unwrap();
    assert!(w.push(line(2)));
    assert!(w.flush(LIMIT));
    assert_eq!(read(&rotated), line(1));
    assert_eq!(read(&path), line(2));
    // Renamed away with nothing created in its place: the writer creates it.
    std::fs::rename(&path, dir.path().join("decisions.log.2")).unwrap();
    assert!(w.push(line(3)));
    assert!(w.close(LIMIT));
    assert_eq!(read(&path), line(3));
    assert_eq!(read(&dir.path().join("decisions.log.2")), line(2));
}

#[test]
fn a_file_truncated_in_place_gets_new_lines_at_its_start_logrotate_copytruncate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decisions.log");
    std::fs::write(&path, "old\n").unwrap();
    let w = LogWriter::<String>::start(Sink::File(path.clone()), 64, counter()).unwrap();
    for i in 0..50 {
        assert!(w.push(line(i)));
    }
    assert!(w.flush(LIMIT));
    let before: String = std::iter::once("old\n".to_owned())
        .chain((0..50).map(line))
        .collect();
    assert_eq!(read(&path), before, "appended, not overwritten");
    // copytruncate: copy, then truncate the file the writer still has open.
    let copy = dir.path().join("decisions.log.1");
    std::fs::copy(&path, &copy).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    assert!(w.push(line(99)));
    assert!(w.flush(LIMIT));
    // No hole of zeros where the old content was: the new line is the whole file.
    assert_eq!(read(&path), line(99));
    assert_eq!(read(&copy), before);
    assert!(w.push(line(100)));
    assert!(w.close(LIMIT));
    assert_eq!(read(&path), format!("{}{}", line(99), line(100)));
}

#[test]
fn reopen_on_request_follows_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decisions.log");
    let w = LogWriter::<String>::start(Sink::File(path.clone()), 64, counter()).unwrap();
    assert!(w.push(line(1)));
    assert!(w.flush(LIMIT));
    let moved = dir.path().join("moved.log");
    std::fs::rename(&path, &moved).unwrap();
    w.reopen();
    assert!(w.push(line(2)));
    assert!(w.close(LIMIT));
    assert_eq!(read(&moved), line(1));
    assert_eq!(read(&path), line(2));
}

#[test]
fn a_file_that_cannot_be_opened_is_an_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("decisions.log");
    let err = LogWriter::<String>::start(Sink::File(path), 4, counter())
        .err()
        .expect("a missing folder must fail");
    assert!(err.to_string().contains("no-such-dir"), "{err}");
}

/// A sink that always fails: its lines are counted as dropped, and nothing panics.
struct Broken;

impl Write for Broken {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("disk full"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn failed_writes_count_their_lines_as_dropped() {
    let dropped = counter();
    let w =
        LogWriter::<String>::start(Sink::Writer(Box::new(Broken)), 64, dropped.clone()).unwrap();
    for i in 0..10 {
        assert!(w.push(line(i)));
    }
    assert!(w.close(LIMIT));
    assert_eq!(dropped.get(), 10);
}
