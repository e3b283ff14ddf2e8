//! Persisted bans as the operator sees them: each lasts `planner.ban_duration`
//! from when it was made (so a changed setting applies to existing bans at
//! the next start), and is listed and lifted through the admin API or, with
//! the hub stopped, straight from the database (`tuber-hub bans`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tuber_proto::PeerId;

use crate::db::{DbError, HubDb};

/// One ban, for `GET /.tuber/admin/bans` and `tuber-hub bans list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanView {
    /// The banned peer id (hex).
    pub peer: String,
    /// Why.
    pub reason: String,
    /// When it was made, Unix seconds.
    pub since: u64,
    /// When it ends, Unix seconds.
    pub until: u64,
}

/// When a ban made at `since` ends.
pub fn ends(since: u64, ban_duration: Duration) -> u64 {
    since.saturating_add(ban_duration.as_secs())
}

/// The bans still in force at `now` (Unix seconds), the one ending first
/// first.
pub fn active(db: &HubDb, ban_duration: Duration, now: u64) -> Result<Vec<BanView>, DbError> {
    let mut out: Vec<BanView> = db
        .bans()?
        .into_iter()
        .filter_map(|(peer, rec)| {
            let until = ends(rec.since, ban_duration);
            (until > now).then(|| BanView {
                peer: peer.to_hex(),
                reason: rec.reason,
                since: rec.since,
                until,
            })
        })
        .collect();
    out.sort_by(|a, b| (a.until, &a.peer).cmp(&(b.until, &b.peer)));
    Ok(out)
}

/// The bans in force at `now` with the time each has left; deletes those
/// that ran out (at startup: the planner then holds the rest).
pub fn split_expired(
    db: &HubDb,
    ban_duration: Duration,
    now: u64,
) -> Result<Vec<(PeerId, Duration)>, DbError> {
    let mut active = Vec::new();
    for (peer, rec) in db.bans()? {
        let until = ends(rec.since, ban_duration);
        if until > now {
            active.push((peer, Duration::from_secs(until - now)));
        } else {
            db.unban(&peer)?;
        }
    }
    Ok(active)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_last_their_duration_from_when_they_were_made() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = HubDb::open(dir.path()).expect("db");
        let [old, new] = [PeerId::from_bytes([1; 32]), PeerId::from_bytes([2; 32])];
        db.record_ban(&old, "liar", 1_000).expect("ban");
        db.record_ban(&new, "liar", 5_000).expect("ban");
        let day = Duration::from_secs(2_000);
        let listed = active(&db, day, 4_000).expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].peer, new.to_hex());
        assert_eq!(listed[0].until, 7_000);
        let left = split_expired(&db, day, 4_000).expect("split");
        assert_eq!(left, vec![(new, Duration::from_secs(3_000))]);
        assert_eq!(db.bans().expect("bans").len(), 1, "the expired one is gone");
    }
}
