//! The planner's settings and the capacity → weight formula.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tuber_proto::signal::Capacity;

/// One GiB, the disk unit of [`capacity_weight`].
const GIB: f64 = (1u64 << 30) as f64;
/// One MB/s, the upload unit of [`capacity_weight`].
const MB_PER_S: f64 = 1_000_000.0;
/// What an "unlimited" upload budget (`upload_bps: 0`) counts as: 1 Gbit/s.
/// A real number so that one peer saying "unlimited" does not take every
/// partition.
pub const UNLIMITED_UPLOAD_BPS: u64 = 125_000_000;

/// Settings of one [`Planner`](super::Planner). `Default` is a working setup;
/// [`Planner::new`](super::Planner::new) clamps nonsense (zeros) to the
/// smallest working value.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannerConfig {
    /// Consecutive pieces per partition (the unit of assignment). Default 64
    /// (16 MiB at 256 KiB pieces). At least 1.
    pub partition_pieces: u32,
    /// Trusted peers that hold each partition. Default 2. At least 1.
    pub replication: u32,
    /// Distinct reporter groups (see [`ban_reporters`](Self::ban_reporters))
    /// that must blame a peer for bad pieces before it is banned. Default 3.
    /// At least 1.
    pub ban_threshold: u32,
    /// What counts as one reporter towards `ban_threshold`. Default
    /// [`BanReporters::DistinctNetworks`].
    pub ban_reporters: BanReporters,
    /// How often the planner pings every client (an output). A client silent
    /// for longer than three intervals is evicted. Default 15 s; at least 1 ms.
    pub ping_interval: Duration,
    /// Connected peers at most; more joins are refused (`Refused::Full`).
    /// Default 100 000.
    pub max_peers: usize,
    /// Pieces indexed per permanent peer; `have` beyond this is ignored with
    /// a warning. Default 1 000 000 (244 GiB at 256 KiB pieces).
    pub max_holdings_per_peer: usize,
    /// Pieces indexed per browser (memory-only, untrusted). Default 65 536
    /// (16 GiB at 256 KiB pieces).
    pub max_browser_holdings: usize,
    /// Pieces indexed for all the untrusted connections of one network
    /// together (IPv4 /24, IPv6 /48: [`super::ReporterGroup::Shared`]), so
    /// one host cannot grow the index by opening connections. Default
    /// 262 144 (four browsers' worth).
    pub max_network_holdings: usize,
    /// Partitions tracked over all content; more content is refused
    /// (`ContentError::Full`). Default 2^20 (16 TiB at the defaults).
    pub max_partitions: usize,
    /// The capacity assumed for a trusted permanent peer that declared none.
    /// Default 10 GiB of disk and 1.25 MB/s (10 Mbit/s) of upload.
    pub default_capacity: Capacity,
    /// Half-life of the measured upload used to rank providers. Default 10 min.
    pub upload_half_life: Duration,
    /// How long each reporter group's blame of a peer counts (then it ages
    /// out, whatever else happens). Default 24 h.
    pub blame_memory: Duration,
    /// Blamed peers remembered at most. When full, new blame records are
    /// refused (existing ones are never evicted by volume, so junk cannot
    /// flush the blames against a real liar). Default 65 536.
    pub max_blame_records: usize,
    /// Live blames one reporter group may hold (against distinct peers);
    /// more from that group are ignored until its blames age out, so one
    /// network cannot fill the blame records. Default 64. At least 1.
    pub max_blames_per_group: usize,
    /// How long the planner remembers that it named a provider of a piece
    /// to an asker (`want` → `providers`): a blame counts only for such an
    /// introduction. Default 10 min (reports come every few seconds).
    pub introduction_memory: Duration,
    /// (provider, piece) introductions remembered per connected peer, the
    /// oldest forgotten first (only that peer's own). Default 8192.
    /// At least 64 (one piece's providers always fit).
    pub max_introductions_per_peer: usize,
    /// How long a ban lasts. Default 7 days.
    pub ban_duration: Duration,
    /// Bans kept at most (the one expiring first goes first). Default 100 000.
    pub max_bans: usize,
    /// How long a `want` for a piece that a trusted peer was just assigned
    /// (and is fetching) waits for that peer's `have` before it is answered
    /// anyway (see `seeding.rs`). Default 1.5 s; at most 2.5 s (clients
    /// give a `want` 3 s); zero turns the wait off.
    pub seed_wait: Duration,
}

/// The longest [`PlannerConfig::seed_wait`]: under the clients' 3 s for a
/// `want`'s answer.
pub const MAX_SEED_WAIT: Duration = Duration::from_millis(2500);

/// What counts as one reporter when blames for bad pieces are counted
/// towards `ban_threshold`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BanReporters {
    /// One per [`ReporterGroup`](super::ReporterGroup), as the server assigns
    /// them at join: a trusted permanent peer counts on its own, everyone else
    /// once per network. Browser ids are random per connection, so counting
    /// ids would let one person with three tabs ban anyone. The default.
    #[default]
    DistinctNetworks,
    /// One per peer id, whatever its group: every connection counts on its
    /// own. For private networks and tests where every browser is on one
    /// host; on the open Internet anyone can ban anyone.
    DistinctPeers,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        Self {
            partition_pieces: 64,
            replication: 2,
            ban_threshold: 3,
            ban_reporters: BanReporters::DistinctNetworks,
            ping_interval: Duration::from_secs(15),
            max_peers: 100_000,
            max_holdings_per_peer: 1_000_000,
            max_browser_holdings: 65_536,
            max_network_holdings: 262_144,
            max_partitions: 1 << 20,
            default_capacity: Capacity {
                disk_bytes: 10 << 30,
                upload_bps: 1_250_000,
            },
            upload_half_life: Duration::from_secs(600),
            blame_memory: Duration::from_secs(24 * 3600),
            max_blame_records: 65_536,
            max_blames_per_group: 64,
            introduction_memory: Duration::from_secs(600),
            max_introductions_per_peer: 8192,
            ban_duration: Duration::from_secs(7 * 24 * 3600),
            max_bans: 100_000,
            seed_wait: Duration::from_millis(1500),
        }
    }
}

impl PlannerConfig {
    /// The same settings with every zero that would break the planner raised
    /// to the smallest working value.
    pub(super) fn sanitized(mut self) -> Self {
        self.partition_pieces = self.partition_pieces.max(1);
        self.replication = self.replication.max(1);
        self.ban_threshold = self.ban_threshold.max(1);
        self.ping_interval = self.ping_interval.max(Duration::from_millis(1));
        self.upload_half_life = self.upload_half_life.max(Duration::from_millis(1));
        self.max_blame_records = self.max_blame_records.max(1);
        self.max_blames_per_group = self.max_blames_per_group.max(1);
        self.max_introductions_per_peer = self.max_introductions_per_peer.max(64);
        self.seed_wait = self.seed_wait.min(MAX_SEED_WAIT);
        self
    }
}

/// The weight of a trusted permanent peer in partition assignment: the
/// geometric mean of its disk budget in GiB and its upload budget in MB/s,
///
/// `weight = sqrt(disk_bytes / 2^30 × upload_bps / 10^6)`,
///
/// with `upload_bps == 0` (unlimited) read as [`UNLIMITED_UPLOAD_BPS`]. A
/// peer gets a share of the partitions proportional to its weight, so
/// doubling both budgets doubles its share and doubling one of them
/// multiplies it by √2: a huge disk behind a thin uplink does not attract
/// content it could not serve. `disk_bytes == 0` gives weight 0: the peer
/// gets no partitions (it can still serve what it holds).
pub fn capacity_weight(capacity: Capacity) -> f64 {
    let upload = match capacity.upload_bps {
        0 => UNLIMITED_UPLOAD_BPS,
        bps => bps,
    };
    let w = (capacity.disk_bytes as f64 / GIB * (upload as f64 / MB_PER_S)).sqrt();
    if w.is_finite() {
        w
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_scales_with_both_budgets() {
        let c = |d: u64, u: u64| Capacity {
            disk_bytes: d,
            upload_bps: u,
        };
        let one = capacity_weight(c(1 << 30, 1_000_000));
        assert!((one - 1.0).abs() < 1e-12);
        assert!((capacity_weight(c(2 << 30, 2_000_000)) - 2.0).abs() < 1e-12);
        assert_eq!(capacity_weight(c(0, 1_000_000)), 0.0);
        assert_eq!(
            capacity_weight(c(1 << 30, 0)),
            capacity_weight(c(1 << 30, UNLIMITED_UPLOAD_BPS))
        );
        assert!(capacity_weight(c(u64::MAX, u64::MAX)).is_finite());
    }
}
