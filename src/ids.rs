//! Decision ids: unique per request, cheap to make, rendered only when written.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// 128-bit id: a random per-process prefix and a counter. Unique across replicas (random
/// prefix) and within a process (counter), with no lock and no allocation until displayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecisionId {
    prefix: u64,
    seq: u64,
}

static PREFIX: OnceLock<u64> = OnceLock::new();
static SEQ: AtomicU64 = AtomicU64::new(1);

fn prefix() -> u64 {
    *PREFIX.get_or_init(|| {
        let mut b = [0u8; 8];
        if aws_lc_rs::rand::fill(&mut b).is_err() {
            // The system RNG failing is not a reason to stop serving; fall back to the clock.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            return t ^ u64::from(std::process::id());
        }
        u64::from_le_bytes(b)
    })
}

impl DecisionId {
    /// The id the observing layer gave this request, or a fresh one when a step runs
    /// alone (unit tests, a stack without `observe`).
    pub fn of(extensions: &http::Extensions) -> Self {
        extensions
            .get::<DecisionId>()
            .copied()
            .unwrap_or_else(DecisionId::next)
    }

    /// The next id.
    pub fn next() -> Self {
        Self {
            prefix: prefix(),
            seq: SEQ.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl DecisionId {
    /// Appends the same 32 hex digits as `Display`, without the `fmt` machinery: the
    /// decision log's writer formats one per line.
    pub fn push_hex(&self, out: &mut String) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.reserve(32);
        for v in [self.prefix, self.seq] {
            for shift in (0..16).rev() {
                out.push(char::from(HEX[((v >> (shift * 4)) & 0xf) as usize]));
            }
        }
    }
}

impl DecisionId {
    /// The same 32 hex digits as `Display`, on the stack: the upstream's
    /// `x-accessgate-decision-id` is built from them on every request.
    pub fn hex(&self) -> [u8; 32] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (i, v) in [self.prefix, self.seq].into_iter().enumerate() {
            for d in 0..16 {
                out[i * 16 + d] = HEX[((v >> ((15 - d) * 4)) & 0xf) as usize];
            }
        }
        out
    }
}

impl fmt::Display for DecisionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:016x}", self.prefix, self.seq)
    }
}
