//! The load driver: `conns` connections x `streams` in-flight requests each, run closed
//! loop (each slot sends its next request when the last one is answered) or open loop
//! (each slot sends on a fixed schedule, and latency is counted from the *scheduled*
//! send time, so a stall shows up in p99 instead of silently lowering the offered load —
//! the coordinated-omission correction wrk2 makes).
//!
//! Every slot records into its own histogram (no shared lock on the driver's hot path);
//! they are merged at the end. Only requests scheduled inside the measured window count
//! towards req/s and latency; errors count whenever they happen.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use http::HeaderValue;
use tokio::time::Instant;

use crate::client::{Proto, RequestTemplate, Sender, Target, drain};
use crate::procs;

/// A request not answered within this is an error (and its connection is not reused).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Latency range recorded, in microseconds (1 us .. 60 s, 3 significant digits).
const HIST_MAX_US: u64 = 60_000_000;

/// Fixed concurrency, or a fixed offered rate (requests/s over all slots).
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Closed,
    Open(f64),
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open(_) => "open",
        }
    }
}

/// One measured run.
#[derive(Clone)]
pub struct Load {
    pub proto: Proto,
    pub mode: Mode,
    pub conns: usize,
    /// In-flight requests per connection (1 for HTTP/1.1).
    pub streams: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Bearer tokens, used round robin (empty = no `Authorization`).
    pub tokens: Arc<Vec<HeaderValue>>,
    /// Processes whose CPU time is read at the window's start and end.
    pub watch: Vec<u32>,
    /// Sample this process's RSS every so often during the run (soak mode).
    pub rss_every: Option<(u32, Duration)>,
}

/// What a run measured.
pub struct Outcome {
    pub ok: u64,
    pub non2xx: u64,
    pub errors: u64,
    /// Open loop only: requests scheduled in the window that were never sent because the
    /// driver was still behind schedule when the window closed (the target saturated).
    pub dropped: u64,
    pub hist: Histogram<u64>,
    pub window: Duration,
    pub first_problem: Option<String>,
    /// CPU seconds used during the window by each `watch` pid, then by the driver itself.
    pub cpu: Vec<f64>,
    /// (seconds since start, VmRSS KiB) samples, when asked for.
    pub rss: Vec<(f64, u64)>,
}

impl Outcome {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64().max(1e-9)
    }
}

struct Ctx {
    template: RequestTemplate,
    tokens: Arc<Vec<HeaderValue>>,
    next_token: AtomicUsize,
    measure_start: Instant,
    end: Instant,
}

struct Slot {
    ok: u64,
    non2xx: u64,
    errors: u64,
    dropped: u64,
    hist: Histogram<u64>,
    problem: Option<String>,
}

fn new_hist() -> Result<Histogram<u64>, String> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).map_err(|e| e.to_string())
}

/// Open the connections, warm up, measure, and merge the slots' results.
pub async fn run(target: &Target, load: &Load) -> Result<Outcome, String> {
    let streams = if load.proto == Proto::H1 {
        1
    } else {
        load.streams.max(1)
    };
    let mut senders = Vec::with_capacity(load.conns);
    for _ in 0..load.conns {
        senders.push(Sender::open(target, load.proto).await?);
    }
    let slots = load.conns * streams;
    let t0 = Instant::now();
    let ctx = Arc::new(Ctx {
        template: RequestTemplate::new(target, load.proto)?,
        tokens: load.tokens.clone(),
        next_token: AtomicUsize::new(0),
        measure_start: t0 + load.warmup,
        end: t0 + load.warmup + load.duration,
    });
    let interval = match load.mode {
        Mode::Closed => None,
        Mode::Open(rate) => Some(Duration::from_secs_f64(slots as f64 / rate.max(1e-3))),
    };

    let probe = tokio::spawn(cpu_window(load.watch.clone(), ctx.measure_start, ctx.end));
    let sampler = load
        .rss_every
        .map(|(pid, every)| tokio::spawn(rss_samples(pid, every, t0, ctx.end)));

    let mut tasks = Vec::with_capacity(slots);
    for (i, sender) in senders.into_iter().enumerate() {
        let mut handles: Vec<Sender> = (1..streams).filter_map(|_| sender.h2_clone()).collect();
        handles.push(sender);
        for (s, handle) in handles.into_iter().enumerate() {
            let slot = i * streams + s;
            // Spread the slots' schedules evenly over one interval.
            let first = interval.map(|iv| t0 + iv.mul_f64(slot as f64 / slots as f64));
            tasks.push(tokio::spawn(slot_loop(
                handle,
                ctx.clone(),
                first,
                interval,
            )));
        }
    }
    let mut out = Outcome {
        ok: 0,
        non2xx: 0,
        errors: 0,
        dropped: 0,
        hist: new_hist()?,
        window: load.duration,
        first_problem: None,
        cpu: Vec::new(),
        rss: Vec::new(),
    };
    for t in tasks {
        let s = t.await.map_err(|e| format!("driver task failed: {e}"))??;
        out.ok += s.ok;
        out.non2xx += s.non2xx;
        out.errors += s.errors;
        out.dropped += s.dropped;
        out.hist.add(&s.hist).map_err(|e| format!("{e:?}"))?;
        if out.first_problem.is_none() {
            out.first_problem = s.problem;
        }
    }
    out.cpu = probe.await.unwrap_or_default();
    if let Some(s) = sampler {
        out.rss = s.await.unwrap_or_default();
    }
    Ok(out)
}

async fn slot_loop(
    mut sender: Sender,
    ctx: Arc<Ctx>,
    mut next: Option<Instant>,
    interval: Option<Duration>,
) -> Result<Slot, String> {
    let mut s = Slot {
        ok: 0,
        non2xx: 0,
        errors: 0,
        dropped: 0,
        hist: new_hist()?,
        problem: None,
    };
    loop {
        let now = Instant::now();
        let scheduled = match (next.as_mut(), interval) {
            (Some(at), Some(iv)) => {
                let this = *at;
                *at += iv;
                if this >= ctx.end {
                    break;
                }
                if now >= ctx.end {
                    // Behind schedule at the end: what is left was never sent.
                    let left = ctx
                        .end
                        .saturating_duration_since(this.max(ctx.measure_start));
                    s.dropped += (left.as_secs_f64() / iv.as_secs_f64()).ceil() as u64;
                    break;
                }
                pace_until(this).await;
                this
            }
            _ => {
                if now >= ctx.end {
                    break;
                }
                now
            }
        };
        let token = match ctx.tokens.len() {
            0 => None,
            n => ctx
                .tokens
                .get(ctx.next_token.fetch_add(1, Ordering::Relaxed) % n),
        };
        let req = ctx.template.build(token);
        let sent = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let resp = sender.send(req).await?;
            let status = resp.status();
            drain(resp.into_body()).await?;
            Ok::<_, hyper::Error>(status)
        })
        .await;
        let latency = Instant::now().saturating_duration_since(scheduled);
        let counted = scheduled >= ctx.measure_start;
        match sent {
            Ok(Ok(status)) => {
                if counted {
                    s.hist
                        .saturating_record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
                    if status.is_success() {
                        s.ok += 1;
                    } else {
                        s.non2xx += 1;
                    }
                }
                if !status.is_success() && s.problem.is_none() {
                    s.problem = Some(format!("status {status}"));
                }
            }
            Ok(Err(e)) => {
                s.errors += 1;
                s.problem.get_or_insert_with(|| e.to_string());
                if sender.is_closed() {
                    break;
                }
            }
            Err(_) => {
                s.errors += 1;
                s.problem
                    .get_or_insert_with(|| format!("no answer within {REQUEST_TIMEOUT:?}"));
                // An HTTP/1.1 connection with a request still in flight cannot be reused.
                if matches!(sender, Sender::H1(_)) || sender.is_closed() {
                    break;
                }
            }
        }
    }
    Ok(s)
}

/// Wait until `at` with better than the timer's resolution. tokio's timer rounds up to
/// the next millisecond, and in open loop that lateness would be counted as latency (up
/// to 1 ms on every request); so sleep to within a tick, then yield until the moment.
/// The driver has a core of its own, so the spin costs the servers nothing.
async fn pace_until(at: Instant) {
    const TICK: Duration = Duration::from_millis(1);
    if let Some(early) = at.checked_sub(TICK)
        && early > Instant::now()
    {
        tokio::time::sleep_until(early).await;
    }
    while Instant::now() < at {
        tokio::task::yield_now().await;
    }
}

/// CPU seconds each pid (then this process) used between `from` and `to`.
async fn cpu_window(pids: Vec<u32>, from: Instant, to: Instant) -> Vec<f64> {
    let read = |pids: &[u32]| -> Vec<f64> {
        pids.iter()
            .map(|p| procs::cpu_seconds(Some(*p)).unwrap_or(0.0))
            .chain(std::iter::once(procs::cpu_seconds(None).unwrap_or(0.0)))
            .collect()
    };
    tokio::time::sleep_until(from).await;
    let a = read(&pids);
    tokio::time::sleep_until(to).await;
    let b = read(&pids);
    a.iter().zip(b).map(|(x, y)| (y - x).max(0.0)).collect()
}

async fn rss_samples(pid: u32, every: Duration, t0: Instant, end: Instant) -> Vec<(f64, u64)> {
    let mut out = Vec::new();
    let mut at = t0;
    while at <= end {
        tokio::time::sleep_until(at).await;
        if let Some((rss, _)) = procs::rss_kib(pid) {
            out.push((at.duration_since(t0).as_secs_f64(), rss));
        }
        at += every.max(Duration::from_millis(100));
    }
    out
}

/// Open `n` TLS connections, send one request on each (so each is a kept-alive
/// connection that has served traffic), and keep them open. Returns the handles and how
/// many failed. At most `parallel` handshakes at a time.
pub async fn open_idle(
    target: &Target,
    proto: Proto,
    n: usize,
    parallel: usize,
    token: Option<HeaderValue>,
) -> (Vec<Sender>, usize, Option<String>) {
    let template = match RequestTemplate::new(target, proto) {
        Ok(t) => t,
        Err(e) => return (Vec::new(), n, Some(e)),
    };
    let mut kept = Vec::with_capacity(n);
    let mut failed = 0;
    let mut problem = None;
    let mut left = n;
    while left > 0 {
        let batch = left.min(parallel.max(1));
        left -= batch;
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..batch {
            let target = target.clone();
            let req = template.build(token.as_ref());
            set.spawn(async move {
                let mut tx = Sender::open(&target, proto).await?;
                let resp = tokio::time::timeout(REQUEST_TIMEOUT, tx.send(req))
                    .await
                    .map_err(|_| "timed out".to_owned())?
                    .map_err(|e| e.to_string())?;
                let status = resp.status();
                drain(resp.into_body()).await.map_err(|e| e.to_string())?;
                if !status.is_success() {
                    return Err(format!("status {status}"));
                }
                Ok::<_, String>(tx)
            });
        }
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(tx)) => kept.push(tx),
                Ok(Err(e)) => {
                    failed += 1;
                    problem.get_or_insert(e);
                }
                Err(e) => {
                    failed += 1;
                    problem.get_or_insert(e.to_string());
                }
            }
        }
    }
    (kept, failed, problem)
}
