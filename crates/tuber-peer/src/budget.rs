//! Upload and download budgets: token buckets fed `(now, bytes)`.
//!
//! Pure: nothing here reads the clock, sleeps or spawns. The caller passes
//! `now` to every call, so tests drive time by hand and the engine feeds
//! `Instant::now()`.
//!
//! A request beyond the budget is refused at once with [`Busy`] (the peer
//! wire's `busy` frame, protocol §6.5), so the requester goes elsewhere
//! instead of waiting on a slow peer.
//!
//! ## Burst
//! A bucket holds at most `burst` bytes: one [`BURST_WINDOW`] of the rate,
//! and never less than [`MIN_BURST_BYTES`] so that one full-size wire frame
//! always fits. Over any interval `t`, a bucket admits at most
//! `burst + rate × t` bytes (plus one oversized take, below).
//!
//! A single take larger than the burst could never fit; rather than refuse
//! it forever, it is admitted when the bucket is full and leaves the bucket
//! in debt, which later takes repay. The long-run rate is kept either way.

use std::num::NonZeroU64;
use std::time::{Duration, Instant};

/// How long a full bucket lasts at its rate.
pub const BURST_WINDOW: Duration = Duration::from_secs(1);
/// Smallest burst in bytes: one largest wire frame (protocol §6.4).
pub const MIN_BURST_BYTES: u64 = tuber_proto::limits::LARGE_MAX_FRAME as u64;

/// Tokens are kept in byte-nanoseconds per second (bytes × 10⁹), so that
/// refilling at integer bytes per second over integer nanoseconds is exact
/// and no rounding error accumulates over a long run.
const SCALE: i128 = 1_000_000_000;

/// A rate in bytes per second, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rate {
    /// No limit.
    #[default]
    Unlimited,
    /// At most this many bytes per second.
    BytesPerSec(NonZeroU64),
}

impl Rate {
    /// `bytes_per_sec` bytes a second; 0 means unlimited, as in the
    /// protocol's `capacity.upload_bps`.
    pub fn from_bytes_per_sec(bytes_per_sec: u64) -> Self {
        NonZeroU64::new(bytes_per_sec).map_or(Self::Unlimited, Self::BytesPerSec)
    }

    /// Bytes per second; 0 for unlimited (the protocol's spelling).
    pub fn as_bytes_per_sec(self) -> u64 {
        match self {
            Self::Unlimited => 0,
            Self::BytesPerSec(n) => n.get(),
        }
    }
}

/// The budget is spent: try elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("over budget")]
pub struct Busy {
    /// When the same request would fit, if known (None while paused).
    pub retry_after: Option<Duration>,
}

impl Busy {
    /// The wire's `retry_after_ms` (0: unknown), saturating.
    pub fn retry_after_ms(&self) -> u32 {
        self.retry_after.map_or(0, |d| {
            u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
        })
    }
}

/// A token bucket over bytes.
#[derive(Debug, Clone)]
pub struct RateLimit {
    rate: Rate,
    /// Most bytes the bucket holds.
    burst: u64,
    /// Available bytes × [`SCALE`]; negative while in debt.
    tokens: i128,
    /// When `tokens` was last brought up to date.
    last: Instant,
}

impl RateLimit {
    /// A full bucket at `rate`.
    pub fn new(rate: Rate, now: Instant) -> Self {
        let burst = burst_for(rate);
        Self {
            rate,
            burst,
            tokens: i128::from(burst) * SCALE,
            last: now,
        }
    }

    /// The rate.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// The burst in bytes (0 when unlimited).
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// Takes `bytes` if they fit now, else says when they would.
    pub fn try_take(&mut self, now: Instant, bytes: u64) -> Result<(), Busy> {
        let Rate::BytesPerSec(rate) = self.rate else {
            return Ok(());
        };
        self.refill(now);
        // More than a full bucket can only ever be taken from a full bucket.
        let need = i128::from(bytes.min(self.burst)) * SCALE;
        if self.tokens >= need {
            self.tokens -= i128::from(bytes) * SCALE;
            return Ok(());
        }
        let missing = need - self.tokens;
        let nanos = (missing + i128::from(rate.get()) - 1) / i128::from(rate.get());
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        Err(Busy {
            retry_after: Some(Duration::from_nanos(nanos)),
        })
    }

    /// Whether `bytes` would fit now, without taking them: the answer
    /// [`RateLimit::try_take`] would give.
    pub fn check(&mut self, now: Instant, bytes: u64) -> Result<(), Busy> {
        // Refilled first: what `try_take` adds before taking must stay.
        self.refill(now);
        let saved = self.tokens;
        let r = self.try_take(now, bytes);
        self.tokens = saved;
        r
    }

    /// Gives back `bytes` taken for an answer that never went out (the
    /// remote cancelled it, or the link closed first): the cap counts bytes
    /// sent, so a remote that asks and cancels spends nothing. Never more
    /// than a full bucket.
    pub fn refund(&mut self, bytes: u64) {
        if self.rate == Rate::Unlimited || bytes == 0 {
            return;
        }
        let full = i128::from(self.burst) * SCALE;
        self.tokens = self
            .tokens
            .saturating_add(i128::from(bytes).saturating_mul(SCALE))
            .min(full);
    }

    /// Changes the rate from `now` on: time before `now` still refills at
    /// the old rate, and the burst follows the new rate.
    pub fn set_rate(&mut self, now: Instant, rate: Rate) {
        self.refill(now);
        let was_unlimited = self.rate == Rate::Unlimited;
        self.rate = rate;
        self.burst = burst_for(rate);
        let full = i128::from(self.burst) * SCALE;
        // Leaving "unlimited" starts with a full bucket: nothing was counted.
        self.tokens = if was_unlimited {
            full
        } else {
            self.tokens.min(full)
        };
    }

    fn refill(&mut self, now: Instant) {
        // A `now` older than the last one adds nothing and does not move
        // the clock back.
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        if let Rate::BytesPerSec(rate) = self.rate {
            let add = i128::try_from(elapsed.as_nanos())
                .unwrap_or(i128::MAX / 2)
                .saturating_mul(i128::from(rate.get()));
            let full = i128::from(self.burst) * SCALE;
            self.tokens = self.tokens.saturating_add(add).min(full);
        }
    }
}

fn burst_for(rate: Rate) -> u64 {
    match rate {
        Rate::Unlimited => 0,
        Rate::BytesPerSec(r) => {
            let window = r.get().saturating_mul(BURST_WINDOW.as_millis() as u64) / 1000;
            window.max(MIN_BURST_BYTES)
        }
    }
}

/// The peer's budgets: a global upload cap, an optional download cap, and
/// a pause switch that makes everything busy.
#[derive(Debug, Clone)]
pub struct Budgets {
    upload: RateLimit,
    download: RateLimit,
    paused: bool,
}

impl Budgets {
    /// Budgets at these rates, not paused.
    pub fn new(now: Instant, upload: Rate, download: Rate) -> Self {
        Self {
            upload: RateLimit::new(upload, now),
            download: RateLimit::new(download, now),
            paused: false,
        }
    }

    /// Admits `bytes` of upload, or says busy.
    pub fn try_upload(&mut self, now: Instant, bytes: u64) -> Result<(), Busy> {
        self.check_paused()?;
        self.upload.try_take(now, bytes)
    }

    /// Whether `bytes` of upload would be admitted now (nothing taken).
    pub fn check_upload(&mut self, now: Instant, bytes: u64) -> Result<(), Busy> {
        self.check_paused()?;
        self.upload.check(now, bytes)
    }

    /// Gives back upload taken for bytes that were never sent.
    pub fn refund_upload(&mut self, bytes: u64) {
        self.upload.refund(bytes);
    }

    /// Admits `bytes` of download, or says busy.
    pub fn try_download(&mut self, now: Instant, bytes: u64) -> Result<(), Busy> {
        self.check_paused()?;
        self.download.try_take(now, bytes)
    }

    /// Changes the upload cap.
    pub fn set_upload(&mut self, now: Instant, rate: Rate) {
        self.upload.set_rate(now, rate);
    }

    /// Changes the download cap.
    pub fn set_download(&mut self, now: Instant, rate: Rate) {
        self.download.set_rate(now, rate);
    }

    /// The upload cap.
    pub fn upload(&self) -> Rate {
        self.upload.rate()
    }

    /// The download cap.
    pub fn download(&self) -> Rate {
        self.download.rate()
    }

    /// Stops all transfers: every request is busy until [`Budgets::resume`].
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Undoes [`Budgets::pause`].
    pub fn resume(&mut self) {
        self.paused = false;
    }

    /// Whether paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    fn check_paused(&self) -> Result<(), Busy> {
        if self.paused {
            return Err(Busy { retry_after: None });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;

    fn rate(n: u64) -> Rate {
        Rate::from_bytes_per_sec(n)
    }

    /// Offers `chunk`-byte takes every `step` for `total`; returns bytes admitted.
    fn drive(
        limit: &mut RateLimit,
        t0: Instant,
        step: Duration,
        total: Duration,
        chunk: u64,
    ) -> u64 {
        let mut admitted = 0;
        let mut t = Duration::ZERO;
        while t <= total {
            while limit.try_take(t0 + t, chunk).is_ok() {
                admitted += chunk;
            }
            t += step;
        }
        admitted
    }

    #[test]
    fn a_2mb_cap_admits_2mb_a_second_plus_the_burst() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(rate(2 * MB), t0);
        assert_eq!(limit.burst(), 2 * MB);
        let chunk = 16_384;
        let admitted = drive(
            &mut limit,
            t0,
            Duration::from_millis(10),
            Duration::from_secs(10),
            chunk,
        );
        let expected = 2 * MB * 10 + limit.burst();
        assert!(admitted <= expected, "{admitted} > {expected}");
        assert!(admitted + 2 * chunk >= expected, "{admitted} << {expected}");
    }

    #[test]
    fn busy_says_when_to_retry() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(rate(MB), t0);
        assert!(limit.try_take(t0, MB).is_ok());
        let busy = limit.try_take(t0, 500_000).unwrap_err();
        assert_eq!(busy.retry_after, Some(Duration::from_millis(500)));
        assert_eq!(busy.retry_after_ms(), 500);
        assert!(limit
            .try_take(t0 + Duration::from_millis(499), 500_000)
            .is_err());
        assert!(limit
            .try_take(t0 + Duration::from_millis(500), 500_000)
            .is_ok());
    }

    #[test]
    fn a_take_larger_than_the_burst_waits_for_a_full_bucket_then_owes() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(rate(100_000), t0);
        assert_eq!(limit.burst(), MIN_BURST_BYTES, "never less than a frame");
        assert!(limit.try_take(t0, 1_000).is_ok());
        assert!(limit.try_take(t0, 4 * MB).is_err(), "not full");
        let full = t0 + Duration::from_millis(10);
        assert!(limit.try_take(full, 4 * MB).is_ok(), "full: admitted");
        // The debt (4 MB − burst) is repaid before anything else fits.
        let debt_secs = (4 * MB - MIN_BURST_BYTES) as f64 / 100_000.0;
        let repaid = full + Duration::from_secs_f64(debt_secs);
        assert!(limit
            .try_take(repaid - Duration::from_millis(20), 1)
            .is_err());
        assert!(limit
            .try_take(repaid + Duration::from_millis(20), 1)
            .is_ok());
    }

    #[test]
    fn check_takes_nothing_and_refunds_fill_at_most_the_bucket() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(rate(MB), t0);
        for _ in 0..10 {
            assert!(limit.check(t0, MB).is_ok(), "check takes nothing");
        }
        // Checks in between do not lose the refill.
        assert!(limit.try_take(t0, MB).is_ok());
        for ms in 1..=500 {
            let _ = limit.check(t0 + Duration::from_millis(ms), 1);
        }
        assert!(limit
            .try_take(t0 + Duration::from_millis(500), 500_000)
            .is_ok());
        limit.refund(MB);
        assert!(limit.try_take(t0, MB).is_ok());
        assert!(limit.check(t0, 1).is_err());
        // An answer of 600 kB was cancelled before any of it went out.
        limit.refund(600_000);
        assert!(limit.try_take(t0, 600_000).is_ok());
        assert!(limit.check(t0, 1).is_err());
        // Refunds never make a bucket hold more than its burst.
        limit.refund(50 * MB);
        assert!(limit.try_take(t0, MB).is_ok());
        assert!(limit.try_take(t0, 1).is_err());
    }

    #[test]
    fn a_cancelled_oversized_take_leaves_no_debt() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(rate(100_000), t0);
        assert!(
            limit.try_take(t0, 4 * MB).is_ok(),
            "full: admitted, in debt"
        );
        assert!(limit.check(t0 + Duration::from_secs(1), 1).is_err());
        // None of it went out: the debt is gone with the refund.
        limit.refund(4 * MB);
        assert!(limit.try_take(t0, MIN_BURST_BYTES).is_ok());
    }

    #[test]
    fn unlimited_admits_anything() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(Rate::Unlimited, t0);
        for _ in 0..1000 {
            assert!(limit.try_take(t0, u64::MAX).is_ok());
        }
        assert_eq!(rate(0), Rate::Unlimited);
        assert_eq!(Rate::Unlimited.as_bytes_per_sec(), 0);
    }

    #[test]
    fn set_rate_applies_from_now_on() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(rate(MB), t0);
        assert!(limit.try_take(t0, MB).is_ok());
        // Half a second at 1 MB/s, then 4 MB/s: the old rate refilled 0.5 MB.
        let t1 = t0 + Duration::from_millis(500);
        limit.set_rate(t1, rate(4 * MB));
        assert_eq!(limit.burst(), 4 * MB);
        assert!(limit.try_take(t1, 500_000).is_ok());
        assert!(limit.try_take(t1, 1).is_err());
        assert!(limit.try_take(t1 + Duration::from_millis(250), MB).is_ok());

        limit.set_rate(t1, Rate::Unlimited);
        assert!(limit.try_take(t1, 100 * MB).is_ok());
        limit.set_rate(t1, rate(MB));
        assert!(
            limit.try_take(t1, MB).is_ok(),
            "a full bucket after unlimited"
        );
    }

    #[test]
    fn time_going_backwards_adds_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut limit = RateLimit::new(rate(MB), t0);
        assert!(limit.try_take(t0, MB).is_ok());
        assert!(limit.try_take(t0 - Duration::from_secs(5), 1).is_err());
        assert!(limit.try_take(t0 + Duration::from_millis(1), 1_000).is_ok());
    }

    #[test]
    fn pause_makes_everything_busy_until_resume() {
        let t0 = Instant::now();
        let mut b = Budgets::new(t0, rate(2 * MB), Rate::Unlimited);
        assert!(b.try_upload(t0, 1000).is_ok());
        assert!(b.try_download(t0, 1000).is_ok());
        b.pause();
        assert!(b.is_paused());
        let busy = b.try_upload(t0, 1).unwrap_err();
        assert_eq!(busy, Busy { retry_after: None });
        assert_eq!(busy.retry_after_ms(), 0);
        assert!(b.try_download(t0, 1).is_err());
        b.resume();
        assert!(b.try_upload(t0, 1000).is_ok());
        assert!(b.try_download(t0, 10 * MB).is_ok(), "no download cap");
    }

    #[test]
    fn download_cap_is_separate_from_upload() {
        let t0 = Instant::now();
        let mut b = Budgets::new(t0, rate(MB), rate(2 * MB));
        assert!(b.try_upload(t0, MB).is_ok());
        assert!(b.try_upload(t0, 1).is_err());
        assert!(b.try_download(t0, 2 * MB).is_ok());
        b.set_upload(t0, Rate::Unlimited);
        assert_eq!(b.upload(), Rate::Unlimited);
        assert!(b.try_upload(t0, 10 * MB).is_ok());
        b.set_download(t0, Rate::Unlimited);
        assert_eq!(b.download(), Rate::Unlimited);
    }
}
