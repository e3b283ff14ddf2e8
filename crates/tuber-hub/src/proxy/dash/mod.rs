//! DASH manifests (MPD, ISO/IEC 23009-1): the pure parser that turns an MPD
//! into the same-origin URLs of the media it lists, like
//! [`hls_segment_uris`](super::playlist::hls_segment_uris) for HLS.
//!
//! What counts as media, per Representation (`Period` → `AdaptationSet` →
//! `Representation`, each level's `BaseURL` resolved against its parent's,
//! the MPD's own path first):
//! - `SegmentTemplate`: `@initialization` and `@media` expanded for
//!   `$RepresentationID$`, `$Bandwidth$`, `$Number$` and `$Time$` (with
//!   `%0Nd` widths), one URL per segment of the `SegmentTimeline`, or of
//!   `@duration` over the period's length;
//! - `SegmentList`: `Initialization@sourceURL` and every `SegmentURL@media`;
//! - otherwise (`SegmentBase` or nothing): the Representation's `BaseURL`
//!   itself, a single file, and `Initialization@sourceURL` if any.
//!
//! `SegmentTemplate` and `SegmentList` inherit from the enclosing
//! `AdaptationSet` and `Period`. The segment count of a live template
//! without a timeline depends on the wall clock, so only its init segment
//! is listed. Cross-origin URLs are dropped, and with them everything under
//! a `BaseURL` that is cross-origin.
//!
//! Input is bounded ([`PLAYLIST_LIMIT`]), elements nest at most
//! [`MAX_DEPTH`] deep, a Representation yields at most
//! [`MAX_SEGMENTS_PER_REPRESENTATION`] segments and the whole MPD at most
//! as many URLs as an HLS playlist.
//!
//! ## Layout
//! - `xml.rs` — the MPD as a bounded element tree.
//! - `collect.rs` — the walk that resolves BaseURLs and lists media.
//! - `template.rs` — timelines, durations and `$…$` expansion.

mod collect;
mod template;
#[cfg(test)]
mod tests;
mod xml;

use std::collections::HashSet;

use crate::proxy::playlist::PLAYLIST_LIMIT;
use collect::Collector;
use xml::parse;

/// At most this many segments are taken from one Representation.
pub const MAX_SEGMENTS_PER_REPRESENTATION: usize = 10_000;

/// Elements nested deeper than this are ignored (an MPD needs about 6).
pub const MAX_DEPTH: usize = 16;

/// The widest `%0Nd` a template may ask for.
const MAX_FORMAT_WIDTH: usize = 20;

/// The same-origin `path?query` URLs of the media an MPD lists, resolved
/// against `base_path` (the MPD's own path) and its `BaseURL`s; see the
/// module docs. `own_origins` as for HLS. Duplicates are dropped; text
/// over [`PLAYLIST_LIMIT`] bytes or that is not an MPD yields nothing.
pub fn dash_segment_uris(base_path: &str, text: &str, own_origins: &[String]) -> Vec<String> {
    if text.len() > PLAYLIST_LIMIT {
        return Vec::new();
    }
    let Some(mpd) = parse(text) else {
        return Vec::new();
    };
    let mut out = Collector {
        own_origins,
        seen: HashSet::new(),
        uris: Vec::new(),
    };
    out.mpd(&mpd, base_path);
    out.uris
}
