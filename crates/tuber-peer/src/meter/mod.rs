//! Metering: bytes and rates up and down, in total, per swarm and per remote
//! peer, with a [`History`] for graphs and totals since install.
//!
//! Pure, like the budgets: every call takes `now`. The engine calls
//! [`Meter::record`] for every verified piece received and every frame sent,
//! and [`Meter::handle_timeout`] about once a second, which advances the
//! history (so idle seconds read as zeros) and forgets idle peers.
//!
//! ## Rates
//! A rate is the bytes of the last *complete* second, so a graph does not
//! jitter with the moment it is read.
//!
//! ## Bounded memory
//! Remote peers come and go without end, so the per-peer table holds at
//! most [`MAX_PEERS`] entries: a peer idle for [`PEER_IDLE_EVICT`] is
//! forgotten, and when the table is full the longest-idle entry makes room.
//! The per-swarm table is bounded the same way by [`MAX_SWARMS`]. Only the
//! totals and the history are persisted ([`MeterSnapshot`]); per-swarm and
//! per-peer bytes count from when this process first saw them.
//!
//! ## Time
//! `Instant` for rates and the history's clock; `SystemTime` only to save
//! and restore across restarts (see [`history`]).

pub mod history;

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tuber_proto::PeerId;

pub use history::{History, HistorySnapshot};

/// Most remote peers tracked at once.
pub const MAX_PEERS: usize = 4096;
/// Most swarms tracked at once.
pub const MAX_SWARMS: usize = 256;
/// A peer without traffic for this long is forgotten.
pub const PEER_IDLE_EVICT: Duration = Duration::from_secs(10 * 60);

/// Which way bytes went, seen from this peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Sent by this peer.
    Up,
    /// Received by this peer.
    Down,
}

/// A pair of byte counts (or bytes per second), up and down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpDown {
    /// Sent.
    pub up: u64,
    /// Received.
    pub down: u64,
}

impl UpDown {
    fn add(&mut self, dir: Direction, bytes: u64) {
        let slot = match dir {
            Direction::Up => &mut self.up,
            Direction::Down => &mut self.down,
        };
        *slot = slot.saturating_add(bytes);
    }
}

/// Traffic of one thing (everything, a swarm, a peer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes per second over the last complete second.
    pub rate: UpDown,
    /// Bytes so far: since install for the total, since first seen by this
    /// process for a swarm or a peer.
    pub bytes: UpDown,
}

/// Counters of one thing: bytes, and the current and previous second.
#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    bytes: UpDown,
    /// The absolute second `current` counts.
    second: u64,
    current: UpDown,
    /// The second before `second`.
    previous: UpDown,
}

impl Counter {
    fn add(&mut self, second: u64, dir: Direction, bytes: u64) {
        if second > self.second {
            self.previous = if second == self.second + 1 {
                self.current
            } else {
                UpDown::default()
            };
            self.current = UpDown::default();
            self.second = second;
        }
        // A late record for an older second only counts in `bytes`.
        if second == self.second {
            self.current.add(dir, bytes);
        }
        self.bytes.add(dir, bytes);
    }

    fn traffic(&self, second: u64) -> Traffic {
        let rate = if second == self.second {
            self.previous
        } else if second == self.second + 1 {
            self.current
        } else {
            UpDown::default()
        };
        Traffic {
            rate,
            bytes: self.bytes,
        }
    }
}

/// Counters by key, at most `cap` of them.
#[derive(Debug, Clone)]
struct Table<K> {
    map: HashMap<K, Counter>,
    cap: usize,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            cap,
        }
    }

    fn add<Q>(&mut self, key: &Q, second: u64, dir: Direction, bytes: u64)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(c) = self.map.get_mut(key) {
            c.add(second, dir, bytes);
            return;
        }
        if self.map.len() >= self.cap {
            // Linear, but only when full and a new key arrives.
            let idlest = self
                .map
                .iter()
                .min_by_key(|(_, c)| c.second)
                .map(|(k, _)| k.clone());
            if let Some(k) = idlest {
                self.map.remove::<K>(&k);
            }
        }
        let mut c = Counter::default();
        c.add(second, dir, bytes);
        self.map.insert(key.to_owned(), c);
    }

    fn forget_idle(&mut self, second: u64, idle: Duration) {
        self.map
            .retain(|_, c| second.saturating_sub(c.second) < idle.as_secs());
    }
}

/// Totals and history as saved across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterSnapshot {
    /// Bytes since install.
    pub total: UpDown,
    /// The graphs.
    pub history: HistorySnapshot,
}

/// The meter: see the module docs.
#[derive(Debug, Clone)]
pub struct Meter {
    total: Counter,
    swarms: Table<String>,
    peers: Table<PeerId>,
    history: History,
}

impl Meter {
    /// A meter with nothing counted yet (a new installation).
    pub fn new(now: Instant, now_wall: SystemTime) -> Self {
        Self::with_history(History::new(now, now_wall), UpDown::default())
    }

    /// A meter that continues a saved one; see [`History::restore`].
    pub fn restore(snapshot: &MeterSnapshot, now: Instant, now_wall: SystemTime) -> Self {
        let history = History::restore(&snapshot.history, now, now_wall);
        Self::with_history(history, snapshot.total)
    }

    fn with_history(history: History, total: UpDown) -> Self {
        Self {
            total: Counter {
                bytes: total,
                ..Counter::default()
            },
            swarms: Table::new(MAX_SWARMS),
            peers: Table::new(MAX_PEERS),
            history,
        }
    }

    /// What to save. Call [`Meter::handle_timeout`] first so the history
    /// ends at the present.
    pub fn snapshot(&self) -> MeterSnapshot {
        MeterSnapshot {
            total: self.total.bytes,
            history: self.history.snapshot(),
        }
    }

    /// Counts `bytes` moved at `now` with `remote` in `swarm`.
    pub fn record(
        &mut self,
        now: Instant,
        dir: Direction,
        swarm: &str,
        remote: PeerId,
        bytes: u64,
    ) {
        let s = self.history.second_of(now);
        self.total.add(s, dir, bytes);
        self.swarms.add(swarm, s, dir, bytes);
        self.peers.add(&remote, s, dir, bytes);
        self.history.record(now, dir, bytes);
    }

    /// Advances the history to `now` and forgets peers idle for
    /// [`PEER_IDLE_EVICT`]. About once a second.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.history.advance(now);
        let s = self.history.second_of(now);
        self.peers.forget_idle(s, PEER_IDLE_EVICT);
    }

    /// Everything: rates, and bytes since install.
    pub fn total(&self, now: Instant) -> Traffic {
        self.total.traffic(self.history.second_of(now))
    }

    /// One swarm, if it had traffic (and was not evicted).
    pub fn swarm(&self, now: Instant, swarm: &str) -> Option<Traffic> {
        let s = self.history.second_of(now);
        self.swarms.map.get(swarm).map(|c| c.traffic(s))
    }

    /// One remote peer, if it had traffic recently.
    pub fn peer(&self, now: Instant, peer: &PeerId) -> Option<Traffic> {
        let s = self.history.second_of(now);
        self.peers.map.get(peer).map(|c| c.traffic(s))
    }

    /// Every tracked remote peer, in no particular order.
    pub fn peers(&self, now: Instant) -> impl Iterator<Item = (PeerId, Traffic)> + '_ {
        let s = self.history.second_of(now);
        self.peers.map.iter().map(move |(p, c)| (*p, c.traffic(s)))
    }

    /// Every tracked swarm, in no particular order.
    pub fn swarms(&self, now: Instant) -> impl Iterator<Item = (&str, Traffic)> + '_ {
        let s = self.history.second_of(now);
        self.swarms
            .map
            .iter()
            .map(move |(k, c)| (k.as_str(), c.traffic(s)))
    }

    /// The graphs.
    pub fn history(&self) -> &History {
        &self.history
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn peer(n: u32) -> PeerId {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&n.to_be_bytes());
        PeerId::from_bytes(b)
    }

    fn wall0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_040)
    }

    const fn ud(up: u64, down: u64) -> UpDown {
        UpDown { up, down }
    }

    #[test]
    fn rates_are_the_last_complete_second() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0, wall0());
        let ms = |n| t0 + Duration::from_millis(n);
        m.record(ms(100), Direction::Up, "a", peer(1), 1000);
        m.record(ms(900), Direction::Up, "a", peer(2), 500);
        m.record(ms(950), Direction::Down, "b", peer(1), 40);
        assert_eq!(
            m.total(ms(999)).rate,
            UpDown::default(),
            "second not complete"
        );
        assert_eq!(m.total(ms(1000)).rate, ud(1500, 40));
        assert_eq!(m.peer(ms(1500), &peer(1)).unwrap().rate, ud(1000, 40));
        assert_eq!(m.peer(ms(1500), &peer(2)).unwrap().rate, ud(500, 0));
        assert_eq!(m.swarm(ms(1500), "a").unwrap().rate, ud(1500, 0));
        assert_eq!(m.swarm(ms(1500), "b").unwrap().rate, ud(0, 40));
        assert_eq!(m.total(ms(2000)).rate, UpDown::default(), "an idle second");

        m.record(ms(1200), Direction::Up, "a", peer(1), 7);
        assert_eq!(m.peer(ms(1900), &peer(1)).unwrap().rate, ud(1000, 40));
        assert_eq!(m.peer(ms(2100), &peer(1)).unwrap().rate, ud(7, 0));
        let t = m.total(ms(2100));
        assert_eq!(t.bytes, ud(1507, 40));
        assert_eq!(m.peers(ms(2100)).count(), 2);
        assert_eq!(m.swarms(ms(2100)).count(), 2);
    }

    #[test]
    fn totals_and_history_survive_a_restart() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0, wall0());
        for s in 0..90 {
            m.record(
                t0 + Duration::from_secs(s),
                Direction::Up,
                "a",
                peer(1),
                100,
            );
        }
        m.handle_timeout(t0 + Duration::from_secs(90));
        let json = serde_json::to_vec(&m.snapshot()).unwrap();

        let snap: MeterSnapshot = serde_json::from_slice(&json).unwrap();
        let t1 = Instant::now();
        let mut r = Meter::restore(&snap, t1, wall0() + Duration::from_secs(90 + 30));
        assert_eq!(r.total(t1).bytes, ud(9000, 0), "since install");
        assert!(
            r.peer(t1, &peer(1)).is_none(),
            "per-peer counts are per run"
        );
        let secs: Vec<u64> = r.history().seconds().map(|(_, v)| v.up).collect();
        assert!(secs[secs.len() - 31..].iter().all(|&v| v == 0), "the gap");
        assert_eq!(secs[secs.len() - 121..secs.len() - 31], [100; 90]);
        r.record(t1, Direction::Down, "a", peer(3), 5);
        assert_eq!(r.total(t1).bytes, ud(9000, 5));
    }

    #[test]
    fn idle_peers_are_forgotten() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0, wall0());
        m.record(t0, Direction::Up, "a", peer(1), 1);
        m.record(
            t0 + Duration::from_secs(300),
            Direction::Up,
            "a",
            peer(2),
            1,
        );
        m.handle_timeout(t0 + PEER_IDLE_EVICT);
        assert!(m.peer(t0, &peer(1)).is_none());
        assert!(m.peer(t0, &peer(2)).is_some());
        assert_eq!(m.total(t0).bytes.up, 2, "the total keeps everything");
    }

    #[test]
    fn the_peer_table_is_bounded_and_evicts_the_idlest() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0, wall0());
        m.record(t0, Direction::Up, "a", peer(0), 1);
        let later = t0 + Duration::from_secs(1);
        for n in 1..(MAX_PEERS as u32 + 100) {
            m.record(later, Direction::Down, "a", peer(n), 1);
        }
        assert_eq!(m.peers(later).count(), MAX_PEERS);
        assert!(m.peer(later, &peer(0)).is_none(), "the idlest went first");
        for n in 0..(MAX_SWARMS + 10) {
            m.record(later, Direction::Down, &format!("s{n}"), peer(1), 1);
        }
        assert_eq!(m.swarms(later).count(), MAX_SWARMS);
        assert_eq!(
            m.total(later).bytes.down,
            (MAX_PEERS + 99 + MAX_SWARMS + 10) as u64
        );
    }
}
