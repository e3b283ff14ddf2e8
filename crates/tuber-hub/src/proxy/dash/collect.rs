//! Walks the element tree Period → AdaptationSet → Representation,
//! resolving `BaseURL`s and inheriting segment descriptions, and collects
//! the media URLs.

use std::collections::HashSet;

use super::template::*;
use super::xml::*;
use super::MAX_SEGMENTS_PER_REPRESENTATION;
use crate::proxy::playlist::{resolve, MAX_URIS};

/// A resolved base: a path, and whether a `BaseURL` set it (else it is the
/// MPD's own path, which is never media).
#[derive(Debug, Clone)]
pub(super) struct Base {
    pub(super) path: String,
    pub(super) from_base_url: bool,
}

pub(super) struct Collector<'a> {
    pub(super) own_origins: &'a [String],
    pub(super) seen: HashSet<String>,
    pub(super) uris: Vec<String>,
}

impl Collector<'_> {
    pub(super) fn full(&self) -> bool {
        self.uris.len() >= MAX_URIS
    }

    pub(super) fn push(&mut self, path: String) {
        if !self.full() && self.seen.insert(path.clone()) {
            self.uris.push(path);
        }
    }

    /// Resolves `reference` against `base` and keeps it when same-origin.
    pub(super) fn push_ref(&mut self, base: &Base, reference: &str) {
        if let Some(path) = resolve(&base.path, reference, self.own_origins) {
            self.push(path);
        }
    }

    /// `node`'s base: the first of its `BaseURL`s that is same-origin,
    /// resolved against `parent`; `parent` when it has none; `None` when
    /// all of them point elsewhere.
    pub(super) fn nest(&self, parent: &Base, node: &Node) -> Option<Base> {
        let mut urls = node.children(Kind::BaseUrl).peekable();
        if urls.peek().is_none() {
            return Some(parent.clone());
        }
        urls.find_map(|b| resolve(&parent.path, &b.text, self.own_origins))
            .map(|path| Base {
                path,
                from_base_url: true,
            })
    }

    pub(super) fn mpd(&mut self, mpd: &Node, mpd_path: &str) {
        let root = Base {
            path: mpd_path.to_string(),
            from_base_url: false,
        };
        let Some(base) = self.nest(&root, mpd) else {
            return;
        };
        let total = mpd
            .attr("mediaPresentationDuration")
            .and_then(parse_duration);
        let periods: Vec<&Node> = mpd.children(Kind::Period).collect();
        for (i, period) in periods.iter().enumerate() {
            let start = period.attr("start").and_then(parse_duration);
            let next_start = periods
                .get(i + 1)
                .and_then(|p| p.attr("start"))
                .and_then(parse_duration);
            let last = i + 1 == periods.len();
            let length = period
                .attr("duration")
                .and_then(parse_duration)
                .or_else(|| Some(next_start? - start.unwrap_or(0.0)))
                .or_else(|| last.then_some(total? - start.unwrap_or(0.0)))
                .filter(|d| d.is_finite() && *d > 0.0);
            let Some(period_base) = self.nest(&base, period) else {
                continue;
            };
            for set in period.children(Kind::AdaptationSet) {
                let Some(set_base) = self.nest(&period_base, set) else {
                    continue;
                };
                for rep in set.children(Kind::Representation) {
                    if self.full() {
                        return;
                    }
                    if let Some(rep_base) = self.nest(&set_base, rep) {
                        self.representation([rep, set, period], &rep_base, length);
                    }
                }
            }
        }
    }

    /// One Representation; `levels` is it, its AdaptationSet and Period,
    /// most specific first. The most specific level that says how segments
    /// are addressed decides which way it is.
    pub(super) fn representation(&mut self, levels: [&Node; 3], base: &Base, length: Option<f64>) {
        let addressing = levels.iter().find_map(|level| {
            level
                .children
                .iter()
                .map(|c| c.kind)
                .find(|k| matches!(k, Kind::SegmentTemplate | Kind::SegmentList))
        });
        let chain = |kind| -> Vec<&Node> { levels.iter().filter_map(|l| l.child(kind)).collect() };
        match addressing {
            Some(Kind::SegmentTemplate) => {
                let vars = Vars {
                    id: levels[0].attr("id"),
                    bandwidth: levels[0].attr("bandwidth"),
                    number: None,
                    time: None,
                };
                self.template(&chain(Kind::SegmentTemplate), base, &vars, length);
            }
            Some(Kind::SegmentList) => self.list(&chain(Kind::SegmentList), base),
            _ => {
                if base.from_base_url && !base.path.ends_with('/') {
                    self.push(base.path.clone());
                }
                let init = chain(Kind::SegmentBase)
                    .into_iter()
                    .find_map(|b| b.child(Kind::Initialization)?.attr("sourceURL"));
                if let Some(init) = init {
                    self.push_ref(base, init);
                }
            }
        }
    }

    pub(super) fn list(&mut self, chain: &[&Node], base: &Base) {
        let init = chain
            .iter()
            .find_map(|l| l.child(Kind::Initialization)?.attr("sourceURL"));
        if let Some(init) = init {
            self.push_ref(base, init);
        }
        let Some(list) = chain.iter().find(|l| l.child(Kind::SegmentUrl).is_some()) else {
            return;
        };
        for url in list
            .children(Kind::SegmentUrl)
            .take(MAX_SEGMENTS_PER_REPRESENTATION)
        {
            match url.attr("media") {
                Some(media) => self.push_ref(base, media),
                // A byte range of the base file.
                None if base.from_base_url => self.push(base.path.clone()),
                None => {}
            }
        }
    }

    pub(super) fn template(
        &mut self,
        chain: &[&Node],
        base: &Base,
        vars: &Vars<'_>,
        length: Option<f64>,
    ) {
        let attr = |name| chain.iter().find_map(|t| t.attr(name));
        let number = |name, default| attr(name).map_or(Some(default), |v| v.parse::<u64>().ok());
        let init = attr("initialization").or_else(|| {
            chain
                .iter()
                .find_map(|t| t.child(Kind::Initialization)?.attr("sourceURL"))
        });
        if let Some(init) = init.and_then(|t| expand(t, vars)) {
            self.push_ref(base, &init);
        }
        let Some(media) = attr("media") else {
            return;
        };
        let (Some(start_number), Some(timescale), Some(offset)) = (
            number("startNumber", 1),
            number("timescale", 1).filter(|t| *t > 0),
            number("presentationTimeOffset", 0),
        ) else {
            return;
        };
        let single = !media.contains("$Number") && !media.contains("$Time");
        let timeline = chain.iter().find_map(|t| t.child(Kind::SegmentTimeline));
        let segments = match (
            timeline,
            attr("duration").and_then(|d| d.parse::<u64>().ok()),
        ) {
            (Some(timeline), _) => {
                // The period's end on the media timeline, for `r="-1"`.
                let end = length.map(|l| offset.saturating_add((l * timescale as f64) as u64));
                timeline_segments(timeline, start_number, end)
            }
            (None, Some(duration)) if duration > 0 => {
                let count = length.map_or(0, |l| segment_count(l, timescale, duration));
                (0..count as u64)
                    .map(|i| {
                        let time = offset.saturating_add(i.saturating_mul(duration));
                        (start_number.saturating_add(i), time)
                    })
                    .collect()
            }
            // No way to count: the one file a template without `$Number$`
            // or `$Time$` names, else nothing.
            _ if single => vec![(start_number, offset)],
            _ => Vec::new(),
        };
        for (number, time) in segments {
            let vars = Vars {
                number: Some(number),
                time: Some(time),
                ..*vars
            };
            if let Some(uri) = expand(media, &vars) {
                self.push_ref(base, &uri);
            }
            if single || self.full() {
                break;
            }
        }
    }
}
