//! Reporting what the proxy saw to the manifest builder: distributable
//! responses, and the segments listed by playlists that passed through.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::decode::{self, Coding};
use super::distributable::{strip_query, Rules};
use super::playlist::{self, PlaylistKind};

/// Why a resource was reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenReason {
    /// A distributable response passed through the proxy.
    Response,
    /// A playlist that passed through listed it.
    Playlist,
    /// A live playlist that passed through lists it now (one of its newest
    /// entries): the hub pushes it to trusted peers, so they seed the edge.
    Live,
}

/// At most this many of a live playlist's newest entries are reported: an
/// `EVENT` playlist lists every segment since the start.
pub(crate) const LIVE_ENTRIES: usize = 10;

/// Live playlists remembered by their text's hash, so a playlist that many
/// viewers poll is reported once per change. Bounded: cleared when full.
const LIVE_PLAYLISTS_REMEMBERED: usize = 1024;

/// A distributable resource the proxy saw, for the manifest builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenResource {
    /// Path and query on the origin.
    pub path: String,
    /// The response's `Content-Type`, or a guess from the extension for
    /// playlist entries (empty when unknown).
    pub content_type: String,
    /// The whole resource's length, when known.
    pub length: Option<u64>,
    /// A strong ETag, else Last-Modified.
    pub version: Option<String>,
    /// Why it was reported.
    pub reason: SeenReason,
}

/// Sends [`SeenResource`]s without ever waiting: a full channel drops the
/// report, never the response.
#[derive(Clone)]
pub(crate) struct Reporter {
    pub(crate) seen: mpsc::Sender<SeenResource>,
    pub(crate) rules: Arc<Rules>,
    /// Origins that count as "ours" in playlists (upstream, public).
    pub(crate) own_origins: Arc<[String]>,
    /// Live playlist path → hash of the text last reported.
    pub(crate) live_seen: Arc<Mutex<LiveSeen>>,
}

/// The hashes of the live playlists last reported (see [`Reporter`]).
#[derive(Default)]
pub(crate) struct LiveSeen {
    hasher: RandomState,
    last: HashMap<String, u64>,
}

impl LiveSeen {
    /// Whether `text` is news for the live playlist at `path` (and
    /// remembers it).
    fn changed(&mut self, path: &str, text: &str) -> bool {
        let hash = self.hasher.hash_one(text);
        if self.last.get(path) == Some(&hash) {
            return false;
        }
        if self.last.len() >= LIVE_PLAYLISTS_REMEMBERED {
            self.last.clear();
        }
        self.last.insert(path.to_string(), hash);
        true
    }
}

impl Reporter {
    pub(crate) fn report(&self, resource: SeenResource) {
        match self.seen.try_send(resource) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(r)) => {
                tracing::debug!(path = %r.path, "seen channel full: report dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// What to do with a playlist's collected bytes: decode, parse and
    /// report its segments in a tracked task, off the response's path.
    pub(crate) fn playlist_reader(
        &self,
        tasks: &TaskTracker,
        path: String,
        coding: Coding,
        kind: PlaylistKind,
    ) -> playlist::OnComplete {
        let reporter = self.clone();
        let tasks = tasks.clone();
        Box::new(move |bytes| {
            tasks.spawn(async move {
                let decoded = decode::decode_bounded(coding, bytes, playlist::PLAYLIST_LIMIT);
                match decoded.await {
                    Ok(Some(text)) => reporter.report_segments(&path, &text, kind),
                    Ok(None) => tracing::debug!(%path, "playlist too large to read"),
                    Err(e) => tracing::debug!(%path, "playlist not decodable: {e}"),
                }
            });
        })
    }

    fn report_segments(&self, path: &str, text: &[u8], kind: PlaylistKind) {
        let text = String::from_utf8_lossy(text);
        let mut uris = kind.segment_uris(path, &text, &self.own_origins);
        let live = kind == PlaylistKind::Hls && playlist::is_live_hls(&text);
        if live {
            let changed = self
                .live_seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .changed(path, &text);
            if !changed {
                return;
            }
            uris.drain(..uris.len().saturating_sub(LIVE_ENTRIES));
        }
        for uri in uris {
            if self.rules.is_excluded(&uri) {
                continue;
            }
            self.report(SeenResource {
                content_type: guess_media_type(&uri).to_string(),
                path: uri,
                length: None,
                version: None,
                reason: if live {
                    SeenReason::Live
                } else {
                    SeenReason::Playlist
                },
            });
        }
    }
}

/// A content type for a playlist entry, from its extension.
fn guess_media_type(path: &str) -> &'static str {
    let path = strip_query(path).to_ascii_lowercase();
    let ext = path.rsplit('.').next().unwrap_or("");
    match ext {
        "ts" => "video/mp2t",
        "mp4" | "m4s" | "m4v" | "cmfv" => "video/mp4",
        "webm" => "video/webm",
        "m4a" | "cmfa" => "audio/mp4",
        "aac" => "audio/aac",
        "mp3" => "audio/mpeg",
        "vtt" => "text/vtt",
        "m3u8" => "application/vnd.apple.mpegurl",
        "mpd" => "application/dash+xml",
        _ => "",
    }
}
