//! What the proxy saw becomes content the planner assigns to trusted peers:
//! distributable responses, and the newest segments of live playlists,
//! which are pushed as they appear so permanent peers seed the live edge
//! before viewers ask (hls.js plays about three segments behind it). A VOD
//! playlist's entries are not: a segment becomes distributable when first
//! requested, since hashing every segment a VOD playlist lists, watched or
//! not, would make the origin send what nobody asked for.
//!
//! Live segments are retired when no live playlist has listed them for
//! [`LIVE_RETIRE`]: the hub forgets them and the planner unassigns them, so
//! donors stop pinning a stream's past (their stores would otherwise fill
//! with it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tuber_proto::hash::ManifestId;

use crate::proxy::{SeenReason, SeenResource};
use crate::server::HubState;

/// A live segment no playlist listed for this long is retired. Longer than
/// any live window players keep (a few minutes of DVR is rarer than the
/// 6–10 segments of a plain live playlist, and costs only donor disk).
pub const LIVE_RETIRE: Duration = Duration::from_secs(120);

/// At most this many live segments are tracked; the least recently listed
/// is retired first when a new one would exceed it.
pub const MAX_LIVE_SEGMENTS: usize = 4096;

/// How often retirement is checked.
const SWEEP: Duration = Duration::from_secs(10);

/// Distributable responses are re-checked at most this often per path, so
/// a popular video is not looked up on every range request.
const RECHECK: Duration = Duration::from_secs(60);

/// The live segments the hub pushed, and when a live playlist last listed
/// each. Sans-IO: the clock is passed in.
#[derive(Debug, Default)]
pub struct LiveSegments {
    entries: HashMap<String, LiveEntry>,
    retired: Vec<ManifestId>,
}

#[derive(Debug)]
struct LiveEntry {
    /// `None` until published (or when it was not distributable).
    manifest: Option<ManifestId>,
    last_listed: Instant,
}

impl LiveSegments {
    /// A live playlist lists `path` at `now`. True when it is new: the
    /// caller computes its manifest and reports it with [`Self::handle_published`].
    pub fn handle_listed(&mut self, now: Instant, path: &str) -> bool {
        if let Some(e) = self.entries.get_mut(path) {
            e.last_listed = now;
            return false;
        }
        if self.entries.len() >= MAX_LIVE_SEGMENTS {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_listed)
                .map(|(p, _)| p.clone());
            if let Some(p) = oldest {
                if let Some(m) = self.entries.remove(&p).and_then(|e| e.manifest) {
                    self.retired.push(m);
                }
            }
        }
        self.entries.insert(
            path.to_string(),
            LiveEntry {
                manifest: None,
                last_listed: now,
            },
        );
        true
    }

    /// `path`'s manifest was published (it is retired with it later).
    pub fn handle_published(&mut self, path: &str, manifest: ManifestId) {
        if let Some(e) = self.entries.get_mut(path) {
            e.manifest = Some(manifest);
        }
    }

    /// The manifests to unassign now: segments unlisted for [`LIVE_RETIRE`]
    /// and those pushed out by [`MAX_LIVE_SEGMENTS`]. They are forgotten.
    pub fn poll_retired(&mut self, now: Instant) -> Vec<ManifestId> {
        let mut out = std::mem::take(&mut self.retired);
        self.entries.retain(|_, e| {
            let keep = now.saturating_duration_since(e.last_listed) < LIVE_RETIRE;
            if !keep {
                out.extend(e.manifest);
            }
            keep
        });
        out
    }

    /// Segments tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Resources the proxy saw become manifests and reach the planner, one at a
/// time so a burst cannot flood the upstream.
pub(crate) async fn publish_seen(
    state: Arc<HubState>,
    mut seen: mpsc::Receiver<SeenResource>,
    cancel: CancellationToken,
) {
    // Recently published paths. Bounded: cleared when it grows past its cap.
    let mut recent: HashMap<String, Instant> = Default::default();
    let mut live = LiveSegments::default();
    let mut sweep = tokio::time::interval(SWEEP);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let item = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            _ = sweep.tick() => {
                for manifest in live.poll_retired(Instant::now()) {
                    state.retire(manifest).await;
                }
                continue;
            }
            item = seen.recv() => item,
        };
        let Some(item) = item else { break };
        match item.reason {
            SeenReason::Playlist => continue,
            SeenReason::Live => {
                if !live.handle_listed(Instant::now(), &item.path) {
                    continue;
                }
            }
            SeenReason::Response => {
                if recent
                    .get(&item.path)
                    .is_some_and(|t| t.elapsed() < RECHECK)
                {
                    continue;
                }
                if recent.len() > 10_000 {
                    recent.clear();
                }
                recent.insert(item.path.clone(), Instant::now());
            }
        }
        let got = tokio::select! {
            () = cancel.cancelled() => break,
            got = state.manifests.get_or_wait(&item.path) => got,
        };
        match got {
            Ok(m) => {
                let pushed = item.reason == SeenReason::Live;
                if pushed {
                    live.handle_published(&item.path, m.id());
                }
                state.publish(&m, pushed).await;
            }
            Err(e) => {
                tracing::debug!(path = %item.path, error = %e, "no manifest for a seen resource")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ManifestId {
        ManifestId::from_bytes([n; 32])
    }

    #[test]
    fn a_segment_is_new_once_and_retires_when_unlisted() {
        let t0 = Instant::now();
        let mut live = LiveSegments::default();
        assert!(live.handle_listed(t0, "/live/s1.ts"));
        live.handle_published("/live/s1.ts", id(1));
        assert!(!live.handle_listed(t0 + Duration::from_secs(2), "/live/s1.ts"));
        // Listed again at +60 s: still live at +150 s.
        assert!(!live.handle_listed(t0 + Duration::from_secs(60), "/live/s1.ts"));
        assert!(live.poll_retired(t0 + Duration::from_secs(150)).is_empty());
        assert_eq!(live.poll_retired(t0 + Duration::from_secs(181)), [id(1)]);
        assert!(live.is_empty());
        // Forgotten, so new again if a playlist lists it once more.
        assert!(live.handle_listed(t0 + Duration::from_secs(200), "/live/s1.ts"));
    }

    #[test]
    fn an_unpublished_segment_retires_without_a_manifest() {
        let t0 = Instant::now();
        let mut live = LiveSegments::default();
        assert!(live.handle_listed(t0, "/live/tiny.ts"));
        assert!(live.poll_retired(t0 + LIVE_RETIRE).is_empty());
        assert!(live.is_empty());
    }

    #[test]
    fn the_least_recently_listed_goes_first_when_full() {
        let t0 = Instant::now();
        let mut live = LiveSegments::default();
        for i in 0..MAX_LIVE_SEGMENTS {
            let path = format!("/live/{i}.ts");
            assert!(live.handle_listed(t0 + Duration::from_millis(i as u64), &path));
            live.handle_published(&path, id((i % 250) as u8));
        }
        // Segment 0 is listed again: segment 1 is now the oldest.
        live.handle_listed(t0 + Duration::from_secs(10), "/live/0.ts");
        assert!(live.handle_listed(t0 + Duration::from_secs(11), "/live/new.ts"));
        assert_eq!(live.len(), MAX_LIVE_SEGMENTS);
        assert_eq!(live.poll_retired(t0 + Duration::from_secs(11)), [id(1)]);
        assert!(!live.handle_listed(t0 + Duration::from_secs(12), "/live/0.ts"));
        assert!(live.handle_listed(t0 + Duration::from_secs(12), "/live/1.ts"));
    }
}
