//! Traffic history for graphs: the last hour at 1 s and the last 7 days at
//! 1 min, kept across restarts.
//!
//! ## Time
//! Buckets are numbered by absolute second: Unix seconds, read once from the
//! wall clock when the history is created or restored and then advanced by
//! the monotonic clock (`Instant`), so a wall-clock step while running
//! neither scrambles nor shifts the graph. Minute buckets are `second / 60`,
//! which aligns them with wall-clock minutes.
//!
//! Persistence is the only use of the wall clock: a [`HistorySnapshot`]
//! names the Unix second of its newest bucket, and [`History::restore`]
//! shifts everything by the wall-clock time that passed while the peer was
//! down (the gap reads as zeros). A wall clock that went backwards counts as
//! no gap, so a bad clock can never make a snapshot from the future.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Direction, UpDown};

/// Seconds kept at 1 s resolution: one hour.
pub const SECOND_BUCKETS: usize = 3600;
/// Minutes kept at 1 min resolution: seven days.
pub const MINUTE_BUCKETS: usize = 7 * 24 * 60;

/// A history as saved: plain data for serde.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistorySnapshot {
    /// Unix second of the newest second bucket (the newest minute bucket is
    /// `newest_second / 60`).
    pub newest_second: u64,
    /// Bytes per second, oldest first (at most [`SECOND_BUCKETS`]).
    pub seconds: Vec<UpDown>,
    /// Bytes per minute, oldest first (at most [`MINUTE_BUCKETS`]).
    pub minutes: Vec<UpDown>,
}

/// Fixed-length ring of buckets numbered by absolute index.
#[derive(Debug, Clone)]
struct Ring {
    buckets: VecDeque<UpDown>,
    /// Index of the newest (back) bucket.
    newest: u64,
}

impl Ring {
    fn new(len: usize, newest: u64) -> Self {
        Self {
            buckets: std::iter::repeat_n(UpDown::default(), len).collect(),
            newest,
        }
    }

    /// Restores `saved` (oldest first) ending at `newest`: extra old entries
    /// are dropped and missing ones read as zeros, so a damaged file cannot
    /// change the ring's size.
    fn from_saved(len: usize, newest: u64, saved: &[UpDown]) -> Self {
        let mut ring = Self::new(len, newest);
        let keep = &saved[saved.len().saturating_sub(len)..];
        for (slot, v) in ring.buckets.iter_mut().skip(len - keep.len()).zip(keep) {
            *slot = *v;
        }
        ring
    }

    /// Moves the newest bucket to `index`, filling the gap with zeros.
    fn advance(&mut self, index: u64) {
        if index <= self.newest {
            return;
        }
        let len = self.buckets.len();
        let gap = index - self.newest;
        if gap >= len as u64 {
            self.buckets.iter_mut().for_each(|b| *b = UpDown::default());
        } else {
            for _ in 0..gap {
                self.buckets.pop_front();
                self.buckets.push_back(UpDown::default());
            }
        }
        self.newest = index;
    }

    fn add(&mut self, index: u64, dir: Direction, bytes: u64) {
        self.advance(index);
        // An index older than the ring (a late caller) has nowhere to go.
        let back = self.newest - index;
        let len = self.buckets.len() as u64;
        if back < len {
            if let Some(b) = self.buckets.get_mut((len - 1 - back) as usize) {
                b.add(dir, bytes);
            }
        }
    }
}

/// The two rings and the clock that numbers their buckets.
#[derive(Debug, Clone)]
pub struct History {
    /// The `Instant` that corresponds to absolute second `base`.
    epoch: Instant,
    base: u64,
    seconds: Ring,
    minutes: Ring,
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl History {
    /// An empty history whose clock reads `now_wall` at `now`.
    pub fn new(now: Instant, now_wall: SystemTime) -> Self {
        let base = unix_secs(now_wall);
        Self {
            epoch: now,
            base,
            seconds: Ring::new(SECOND_BUCKETS, base),
            minutes: Ring::new(MINUTE_BUCKETS, base / 60),
        }
    }

    /// Restores a saved history at `now` (`Instant`, for the clock from now
    /// on) and `now_wall` (`SystemTime`, to measure how long the peer was
    /// down). The downtime reads as zeros; a history older than a week is
    /// all zeros.
    pub fn restore(snapshot: &HistorySnapshot, now: Instant, now_wall: SystemTime) -> Self {
        let wall = unix_secs(now_wall);
        // A snapshot "from the future" means the clock went back: no gap.
        let newest = snapshot.newest_second.min(wall);
        let mut h = Self {
            epoch: now,
            base: wall,
            seconds: Ring::from_saved(SECOND_BUCKETS, newest, &snapshot.seconds),
            minutes: Ring::from_saved(MINUTE_BUCKETS, newest / 60, &snapshot.minutes),
        };
        h.advance(now);
        h
    }

    /// The history as plain data, for saving. Call [`History::advance`]
    /// first so the snapshot ends at the present.
    pub fn snapshot(&self) -> HistorySnapshot {
        HistorySnapshot {
            newest_second: self.seconds.newest,
            seconds: self.seconds.buckets.iter().copied().collect(),
            minutes: self.minutes.buckets.iter().copied().collect(),
        }
    }

    /// The absolute second (Unix seconds, by this history's clock) of `now`.
    pub fn second_of(&self, now: Instant) -> u64 {
        self.base
            .saturating_add(now.saturating_duration_since(self.epoch).as_secs())
    }

    /// Rolls both rings forward to `now`; seconds without traffic read 0.
    pub fn advance(&mut self, now: Instant) {
        let s = self.second_of(now);
        self.seconds.advance(s);
        self.minutes.advance(s / 60);
    }

    /// Adds `bytes` at `now` to its second and its minute.
    pub fn record(&mut self, now: Instant, dir: Direction, bytes: u64) {
        let s = self.second_of(now);
        self.seconds.add(s, dir, bytes);
        self.minutes.add(s / 60, dir, bytes);
    }

    /// Unix second of the newest second bucket.
    pub fn newest_second(&self) -> u64 {
        self.seconds.newest
    }

    /// Bytes per second for the last [`SECOND_BUCKETS`] seconds, oldest
    /// first, each with its Unix second.
    pub fn seconds(&self) -> impl Iterator<Item = (u64, UpDown)> + '_ {
        // Saturating: only a clock near 1970 gets wrong labels, never a panic.
        let first = (self.seconds.newest + 1).saturating_sub(SECOND_BUCKETS as u64);
        (first..).zip(self.seconds.buckets.iter().copied())
    }

    /// Bytes per minute for the last [`MINUTE_BUCKETS`] minutes, oldest
    /// first, each with the Unix second its minute starts at.
    pub fn minutes(&self) -> impl Iterator<Item = (u64, UpDown)> + '_ {
        let first = (self.minutes.newest + 1).saturating_sub(MINUTE_BUCKETS as u64);
        (first..)
            .map(|m| m * 60)
            .zip(self.minutes.buckets.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A wall clock at a whole minute, so minute boundaries are predictable.
    fn wall0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_040)
    }

    fn up(n: u64) -> UpDown {
        UpDown { up: n, down: 0 }
    }

    #[test]
    fn seconds_roll_up_into_minutes() {
        let t0 = Instant::now();
        let mut h = History::new(t0, wall0());
        for s in 0..150 {
            h.record(t0 + Duration::from_secs(s), Direction::Up, 10);
            h.record(
                t0 + Duration::from_millis(s * 1000 + 500),
                Direction::Down,
                1,
            );
        }
        h.advance(t0 + Duration::from_secs(150));
        let secs: Vec<_> = h.seconds().collect();
        assert_eq!(secs.len(), SECOND_BUCKETS);
        assert_eq!(secs.last().unwrap().0, 1_700_000_040 + 150);
        assert_eq!(
            secs.last().unwrap().1,
            UpDown::default(),
            "the present second is empty"
        );
        assert_eq!(secs[SECOND_BUCKETS - 2].1, UpDown { up: 10, down: 1 });
        let mins: Vec<_> = h.minutes().collect();
        assert_eq!(mins.len(), MINUTE_BUCKETS);
        let tail: Vec<_> = mins[MINUTE_BUCKETS - 3..].to_vec();
        assert_eq!(
            tail,
            vec![
                (1_700_000_040, UpDown { up: 600, down: 60 }),
                (1_700_000_100, UpDown { up: 600, down: 60 }),
                (1_700_000_160, UpDown { up: 300, down: 30 }),
            ]
        );
    }

    #[test]
    fn an_hour_later_seconds_forget_and_minutes_remember() {
        let t0 = Instant::now();
        let mut h = History::new(t0, wall0());
        h.record(t0, Direction::Up, 5);
        h.advance(t0 + Duration::from_secs(3599));
        assert_eq!(h.seconds().next().unwrap().1, up(5), "oldest second");
        h.advance(t0 + Duration::from_secs(3600));
        assert!(h.seconds().all(|(_, v)| v == UpDown::default()));
        assert_eq!(h.minutes().map(|(_, v)| v.up).sum::<u64>(), 5);
        h.advance(t0 + Duration::from_secs(7 * 24 * 3600));
        assert_eq!(h.minutes().map(|(_, v)| v.up).sum::<u64>(), 0, "a week on");
    }

    #[test]
    fn a_late_record_lands_in_its_own_bucket_or_nowhere() {
        let t0 = Instant::now();
        let mut h = History::new(t0, wall0());
        h.advance(t0 + Duration::from_secs(10));
        h.record(t0 + Duration::from_secs(8), Direction::Up, 7);
        let secs: Vec<_> = h.seconds().map(|(_, v)| v.up).collect();
        assert_eq!(secs[SECOND_BUCKETS - 3], 7);
        h.advance(t0 + Duration::from_secs(5000));
        h.record(t0, Direction::Up, 1);
        assert_eq!(h.seconds().map(|(_, v)| v.up).sum::<u64>(), 0);
    }

    #[test]
    fn restore_shifts_by_the_downtime() {
        let t0 = Instant::now();
        let mut h = History::new(t0, wall0());
        for s in 0..120 {
            h.record(t0 + Duration::from_secs(s), Direction::Down, 2);
        }
        h.advance(t0 + Duration::from_secs(120));
        let snap = h.snapshot();
        let json = serde_json::to_string(&snap).unwrap();
        let snap: HistorySnapshot = serde_json::from_str(&json).unwrap();

        // Down for 10 minutes; the new process has a fresh Instant.
        let t1 = Instant::now();
        let wall1 = wall0() + Duration::from_secs(120 + 600);
        let r = History::restore(&snap, t1, wall1);
        assert_eq!(r.newest_second(), 1_700_000_040 + 720);
        let secs: Vec<_> = r.seconds().map(|(_, v)| v.down).collect();
        // 120 seconds of traffic, then 601 empty ones (the gap and now).
        assert!(secs[SECOND_BUCKETS - 601..].iter().all(|&v| v == 0));
        assert_eq!(secs[SECOND_BUCKETS - 721..SECOND_BUCKETS - 601], [2; 120]);
        let mins: Vec<_> = r.minutes().map(|(_, v)| v.down).collect();
        assert_eq!(
            mins[MINUTE_BUCKETS - 13..],
            [120, 120, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        // It keeps counting on the new clock.
        let mut r = r;
        r.record(t1 + Duration::from_secs(1), Direction::Up, 9);
        assert_eq!(r.newest_second(), 1_700_000_040 + 721);
    }

    #[test]
    fn restore_with_a_clock_that_went_back_keeps_the_data() {
        let t0 = Instant::now();
        let mut h = History::new(t0, wall0());
        h.record(t0, Direction::Up, 3);
        let snap = h.snapshot();
        let r = History::restore(&snap, Instant::now(), wall0() - Duration::from_secs(3600));
        assert_eq!(r.newest_second(), 1_700_000_040 - 3600);
        assert_eq!(r.seconds().last().unwrap().1, up(3));
    }

    #[test]
    fn restore_of_a_damaged_snapshot_keeps_the_ring_sizes() {
        let snap = HistorySnapshot {
            newest_second: 1_700_000_040,
            seconds: vec![up(1); SECOND_BUCKETS + 10],
            minutes: vec![up(1); 3],
        };
        let r = History::restore(&snap, Instant::now(), wall0());
        assert_eq!(r.seconds().count(), SECOND_BUCKETS);
        assert_eq!(r.minutes().count(), MINUTE_BUCKETS);
        assert_eq!(r.minutes().map(|(_, v)| v.up).sum::<u64>(), 3);
    }
}
