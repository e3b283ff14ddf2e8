//! What the trusted peers can hold together: the hub publishes (and so the
//! planner assigns) no more content than this (see `manifests/index`).

use super::Planner;

impl Planner {
    /// Bytes of content the members (trusted permanent peers of weight > 0)
    /// can hold: the sum of their declared disks over the copies kept of
    /// each piece (`replication`, or fewer when fewer members are there).
    /// Zero without members. Shares follow weight, not disk alone, so one
    /// peer may still be given more than its disk; its store then evicts
    /// its least recently used pinned pieces.
    pub fn donor_capacity(&self) -> u64 {
        let mut members = 0u64;
        let mut disk = 0u64;
        for peer in self.content.members() {
            members += 1;
            let d = self.peers.get(peer).map_or(0, |p| p.disk_bytes);
            disk = disk.saturating_add(d);
        }
        let copies = u64::from(self.config.replication).min(members).max(1);
        disk / copies
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tuber_proto::signal::{Capacity, Role};
    use tuber_proto::PeerId;

    use crate::planner::{Planner, PlannerConfig};

    #[test]
    fn capacity_is_the_members_disk_over_the_copies() {
        let mut p = Planner::new(PlannerConfig::default());
        let now = Instant::now();
        assert_eq!(p.donor_capacity(), 0);
        let mut join = |n: u8, role: Role, trusted: bool, gib: u64| {
            let capacity = Capacity {
                disk_bytes: gib << 30,
                upload_bps: 1_000_000,
            };
            let joined = p.handle_join(
                now,
                PeerId::from_bytes([n; 32]),
                role,
                trusted,
                Some(capacity),
            );
            assert!(joined.is_ok());
            p.donor_capacity()
        };
        assert_eq!(
            join(1, Role::Permanent, true, 10),
            10 << 30,
            "one member, one copy"
        );
        assert_eq!(
            join(2, Role::Permanent, true, 30),
            20 << 30,
            "two copies of everything"
        );
        // Untrusted peers and browsers hold nothing for the planner.
        assert_eq!(join(3, Role::Permanent, false, 99), 20 << 30);
        assert_eq!(join(4, Role::Browser, false, 99), 20 << 30);
        p.handle_leave(now, PeerId::from_bytes([2; 32]));
        assert_eq!(p.donor_capacity(), 10 << 30);
    }
}
