//! Per-connection limits the watchdog enforces beyond the timeouts: the budget of
//! cancelled HTTP/2 streams, and shedding idle connections near `max_connections`.
//!
//! h2's own `max_pending_accept_reset_streams` only catches a burst of resets before the
//! server accepts the streams; a client pacing its resets under that limit (issue 14,
//! finding 1) could cancel streams forever, and each cancelled request is work for us.
//! So every request future dropped before it answered counts as cancelled
//! (`accessgate_requests_total{route="",decision="cancelled"}`: the transport does not
//! know the route), and a connection that cancels more than [`MAX_CANCELLED_PER_WINDOW`]
//! within [`CANCEL_WINDOW`] is closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Window of the cancelled-stream budget.
pub const CANCEL_WINDOW: Duration = Duration::from_secs(10);
/// Cancelled requests allowed per connection per window: a browser navigating away
/// cancels a few dozen at most; a rapid-reset client thousands.
pub const MAX_CANCELLED_PER_WINDOW: u32 = 100;

/// Counts a request as cancelled unless it answered ([`CancelGuard::answered`]).
pub struct CancelGuard {
    conn_cancelled: Arc<AtomicU32>,
    total: prometheus::IntCounter,
    answered: bool,
}

impl CancelGuard {
    pub fn new(conn_cancelled: Arc<AtomicU32>, total: prometheus::IntCounter) -> Self {
        Self {
            conn_cancelled,
            total,
            answered: false,
        }
    }

    pub fn answered(&mut self) {
        self.answered = true;
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.answered {
            self.conn_cancelled.fetch_add(1, Ordering::Relaxed);
            self.total.inc();
        }
    }
}

/// The cancelled-stream budget as the watchdog sees it, tick by tick.
#[derive(Debug, Default)]
pub struct CancelBudget {
    base: u32,
    elapsed: Duration,
}

impl CancelBudget {
    /// Whether the connection went over budget; `cancelled` is its running count.
    pub fn exceeded(&mut self, cancelled: u32, tick: Duration) -> bool {
        if cancelled.wrapping_sub(self.base) > MAX_CANCELLED_PER_WINDOW {
            return true;
        }
        self.elapsed += tick;
        if self.elapsed >= CANCEL_WINDOW {
            self.base = cancelled;
            self.elapsed = Duration::ZERO;
        }
        false
    }
}

/// Open connections against the point (90% of `max_connections`) from which connections
/// idle between requests are closed first, so a new client is not kept waiting in the
/// backlog for their `idle_timeout`.
#[derive(Debug, Clone)]
pub struct Pressure {
    open: prometheus::IntGauge,
    shed_at: i64,
}

impl Pressure {
    pub fn new(open: prometheus::IntGauge, max_connections: usize) -> Self {
        let max = i64::try_from(max_connections).unwrap_or(i64::MAX);
        // ceil(0.9 * max), at least 1.
        let shed_at = (max.saturating_mul(9).saturating_add(9) / 10).max(1);
        Self { open, shed_at }
    }

    pub fn high(&self) -> bool {
        self.open.get() >= self.shed_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_trips_over_time_not_only_in_a_burst() {
        let tick = Duration::from_millis(250);
        let mut b = CancelBudget::default();
        // 20 cancels per tick = 80/s: under budget in no single tick, over it in 2 s.
        let mut n = 0;
        let mut tripped = false;
        for _ in 0..40 {
            n += 20;
            if b.exceeded(n, tick) {
                tripped = true;
                break;
            }
        }
        assert!(tripped);
        // A slow trickle (1 per tick) never trips.
        let mut b = CancelBudget::default();
        assert!((1..=400).all(|n| !b.exceeded(n, tick)));
    }

    #[test]
    fn pressure_threshold_is_ninety_percent_rounded_up() {
        let g = prometheus::IntGauge::new("g", "g").unwrap();
        let p = Pressure::new(g.clone(), 3);
        g.set(2);
        assert!(!p.high());
        g.set(3);
        assert!(p.high());
        let p = Pressure::new(g.clone(), 100);
        g.set(89);
        assert!(!p.high());
        g.set(90);
        assert!(p.high());
    }
}
