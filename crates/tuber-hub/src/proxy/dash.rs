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

use std::collections::HashSet;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::playlist::{resolve, MAX_URIS, PLAYLIST_LIMIT};

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

/// The MPD elements the walk looks at; anything else is skipped whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mpd,
    Period,
    AdaptationSet,
    Representation,
    BaseUrl,
    SegmentTemplate,
    SegmentTimeline,
    S,
    SegmentList,
    SegmentUrl,
    SegmentBase,
    Initialization,
}

impl Kind {
    fn of(local_name: &str) -> Option<Self> {
        Some(match local_name {
            "MPD" => Self::Mpd,
            "Period" => Self::Period,
            "AdaptationSet" => Self::AdaptationSet,
            "Representation" => Self::Representation,
            "BaseURL" => Self::BaseUrl,
            "SegmentTemplate" => Self::SegmentTemplate,
            "SegmentTimeline" => Self::SegmentTimeline,
            "S" => Self::S,
            "SegmentList" => Self::SegmentList,
            "SegmentURL" => Self::SegmentUrl,
            "SegmentBase" => Self::SegmentBase,
            "Initialization" => Self::Initialization,
            _ => return None,
        })
    }
}

/// One kept element: attributes by local name, text (`BaseURL` only).
#[derive(Debug)]
struct Node {
    kind: Kind,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    }

    fn children(&self, kind: Kind) -> impl Iterator<Item = &Node> {
        self.children.iter().filter(move |c| c.kind == kind)
    }

    fn child(&self, kind: Kind) -> Option<&Node> {
        self.children(kind).next()
    }
}

fn element(e: &BytesStart<'_>) -> Option<Node> {
    let kind = Kind::of(e.local_name().as_ref())?;
    let attrs = e
        .attributes()
        .filter_map(Result::ok)
        .filter_map(|a| {
            let value = a.normalized_value(XmlVersion::Implicit1_0).ok()?;
            Some((a.key.local_name().as_ref().to_string(), value.into_owned()))
        })
        .collect();
    Some(Node {
        kind,
        attrs,
        text: String::new(),
        children: Vec::new(),
    })
}

/// Builds the tree of kept elements under the root `MPD`. Malformed XML
/// ends the parse; what was read until then is kept.
fn parse(text: &str) -> Option<Node> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Node> = Vec::new();
    let mut root = None;
    // Depth inside a skipped subtree (unknown element, or too deep).
    let mut skipping = 0usize;
    loop {
        let event = match reader.read_event() {
            Ok(Event::Eof) | Err(_) => break,
            Ok(event) => event,
        };
        match event {
            Event::Start(e) => {
                if skipping > 0 {
                    skipping += 1;
                } else if let (Some(node), true) = (element(&e), stack.len() < MAX_DEPTH) {
                    stack.push(node);
                } else {
                    skipping = 1;
                }
            }
            Event::Empty(e) if skipping == 0 && stack.len() < MAX_DEPTH => {
                if let Some(node) = element(&e) {
                    close(&mut stack, &mut root, node);
                }
            }
            Event::End(_) => {
                if skipping > 0 {
                    skipping -= 1;
                } else if let Some(node) = stack.pop() {
                    close(&mut stack, &mut root, node);
                }
            }
            Event::Text(t) if skipping == 0 => append_text(&mut stack, &t.xml10_content()),
            Event::CData(t) if skipping == 0 => append_text(&mut stack, &t.xml10_content()),
            Event::GeneralRef(r) if skipping == 0 => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    Ok(None) => resolve_predefined_entity(&r).map(str::to_string),
                    Err(_) => None,
                };
                if let Some(s) = resolved {
                    append_text(&mut stack, &s);
                }
            }
            _ => {}
        }
        if root.is_some() {
            break;
        }
    }
    // A truncated or malformed document: close what is open.
    while let Some(node) = stack.pop() {
        close(&mut stack, &mut root, node);
    }
    root
}

fn close(stack: &mut [Node], root: &mut Option<Node>, node: Node) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None if node.kind == Kind::Mpd && root.is_none() => *root = Some(node),
        None => {}
    }
}

fn append_text(stack: &mut [Node], text: &str) {
    if let Some(node) = stack.last_mut().filter(|n| n.kind == Kind::BaseUrl) {
        node.text.push_str(text);
    }
}

/// A resolved base: a path, and whether a `BaseURL` set it (else it is the
/// MPD's own path, which is never media).
#[derive(Debug, Clone)]
struct Base {
    path: String,
    from_base_url: bool,
}

struct Collector<'a> {
    own_origins: &'a [String],
    seen: HashSet<String>,
    uris: Vec<String>,
}

impl Collector<'_> {
    fn full(&self) -> bool {
        self.uris.len() >= MAX_URIS
    }

    fn push(&mut self, path: String) {
        if !self.full() && self.seen.insert(path.clone()) {
            self.uris.push(path);
        }
    }

    /// Resolves `reference` against `base` and keeps it when same-origin.
    fn push_ref(&mut self, base: &Base, reference: &str) {
        if let Some(path) = resolve(&base.path, reference, self.own_origins) {
            self.push(path);
        }
    }

    /// `node`'s base: the first of its `BaseURL`s that is same-origin,
    /// resolved against `parent`; `parent` when it has none; `None` when
    /// all of them point elsewhere.
    fn nest(&self, parent: &Base, node: &Node) -> Option<Base> {
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

    fn mpd(&mut self, mpd: &Node, mpd_path: &str) {
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
    fn representation(&mut self, levels: [&Node; 3], base: &Base, length: Option<f64>) {
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

    fn list(&mut self, chain: &[&Node], base: &Base) {
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

    fn template(&mut self, chain: &[&Node], base: &Base, vars: &Vars<'_>, length: Option<f64>) {
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

/// `(number, time)` of each segment a `SegmentTimeline` lists, at most
/// [`MAX_SEGMENTS_PER_REPRESENTATION`]. `end` (media time) bounds a final
/// `r="-1"`; without it that entry counts once.
fn timeline_segments(timeline: &Node, start_number: u64, end: Option<u64>) -> Vec<(u64, u64)> {
    let entries: Vec<&Node> = timeline.children(Kind::S).collect();
    let mut out = Vec::new();
    let mut time = 0u64;
    let mut number = start_number;
    for (i, s) in entries.iter().enumerate() {
        if let Some(t) = s.attr("t").and_then(|t| t.parse::<u64>().ok()) {
            time = t;
        }
        let Some(d) = s
            .attr("d")
            .and_then(|d| d.parse::<u64>().ok())
            .filter(|d| *d > 0)
        else {
            break;
        };
        let r = s.attr("r").and_then(|r| r.parse::<i64>().ok()).unwrap_or(0);
        let repeats = match u64::try_from(r) {
            Ok(r) => r,
            // Negative: repeat until the next entry's start or the end.
            Err(_) => {
                let until = entries
                    .get(i + 1)
                    .and_then(|n| n.attr("t"))
                    .and_then(|t| t.parse::<u64>().ok())
                    .or(end);
                match until {
                    Some(u) if u > time => (u - time).div_ceil(d) - 1,
                    _ => 0,
                }
            }
        };
        let mut k = 0u64;
        while k <= repeats {
            if out.len() >= MAX_SEGMENTS_PER_REPRESENTATION {
                return out;
            }
            out.push((number, time));
            number = number.saturating_add(1);
            time = time.saturating_add(d);
            k += 1;
        }
    }
    out
}

/// Segments of `duration` (in `timescale` units) needed to cover
/// `length` seconds, capped.
fn segment_count(length: f64, timescale: u64, duration: u64) -> usize {
    let count = (length * timescale as f64 / duration as f64 - 1e-9).ceil();
    if count.is_finite() && count > 0.0 {
        count.min(MAX_SEGMENTS_PER_REPRESENTATION as f64) as usize
    } else {
        0
    }
}

/// What a template's `$Identifier$`s stand for.
#[derive(Debug, Clone, Copy)]
struct Vars<'a> {
    id: Option<&'a str>,
    bandwidth: Option<&'a str>,
    number: Option<u64>,
    time: Option<u64>,
}

/// Expands a URL template (ISO/IEC 23009-1 §5.3.9.4.4); `None` when it
/// names an identifier that has no value here or is malformed.
fn expand(template: &str, vars: &Vars<'_>) -> Option<String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('$')?;
        let identifier = &after[..end];
        rest = &after[end + 1..];
        if identifier.is_empty() {
            out.push('$');
            continue;
        }
        let (name, format) = match identifier.split_once('%') {
            Some((name, format)) => (name, Some(format)),
            None => (identifier, None),
        };
        let value = match name {
            "RepresentationID" if format.is_none() => vars.id?.to_string(),
            "Bandwidth" => match format {
                Some(f) => formatted(vars.bandwidth?.parse().ok()?, f)?,
                None => vars.bandwidth?.to_string(),
            },
            "Number" => formatted_opt(vars.number?, format)?,
            "Time" => formatted_opt(vars.time?, format)?,
            _ => return None,
        };
        out.push_str(&value);
    }
    out.push_str(rest);
    Some(out)
}

fn formatted_opt(value: u64, format: Option<&str>) -> Option<String> {
    match format {
        Some(f) => formatted(value, f),
        None => Some(value.to_string()),
    }
}

/// `value` per a printf tag after its `%`: `0Nd` or `Nd` (zero-padded to
/// N), or `d`.
fn formatted(value: u64, format: &str) -> Option<String> {
    let width = format.strip_suffix('d')?;
    let width = width.strip_prefix('0').unwrap_or(width);
    let width: usize = if width.is_empty() {
        0
    } else {
        width.parse().ok()?
    };
    (width <= MAX_FORMAT_WIDTH).then(|| format!("{value:0width$}"))
}

/// An `xs:duration` (`PT1H2M3.5S`, `P1DT2H`) in seconds. Years and months
/// count as 365 and 30 days; negative durations are refused.
fn parse_duration(text: &str) -> Option<f64> {
    let rest = text.trim().strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    const DAY: f64 = 86_400.0;
    let date_units = [
        ('Y', 365.0 * DAY),
        ('M', 30.0 * DAY),
        ('W', 7.0 * DAY),
        ('D', DAY),
    ];
    let time_units = [('H', 3600.0), ('M', 60.0), ('S', 1.0)];
    let mut total = duration_fields(date, &date_units)?;
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        total += duration_fields(time, &time_units)?;
    } else if date.is_empty() {
        return None;
    }
    total.is_finite().then_some(total)
}

/// Sums `<number><unit>` fields whose units appear in `units`' order.
fn duration_fields(mut text: &str, units: &[(char, f64)]) -> Option<f64> {
    let mut total = 0.0;
    let mut next_unit = 0;
    while !text.is_empty() {
        let digits = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = text[..digits].parse().ok()?;
        let unit = text[digits..].chars().next()?;
        let offset = units[next_unit..].iter().position(|(u, _)| *u == unit)?;
        total += value * units[next_unit + offset].1;
        next_unit += offset + 1;
        text = &text[digits + unit.len_utf8()..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> Vec<String> {
        vec![
            "http://127.0.0.1:8080".to_string(),
            "https://hub.example".to_string(),
        ]
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT1H2M3.5S"), Some(3723.5));
        assert_eq!(parse_duration("PT30S"), Some(30.0));
        assert_eq!(parse_duration("P1DT1S"), Some(86_401.0));
        assert_eq!(parse_duration("P0Y0M0DT0H3M30.000S"), Some(210.0));
        for bad in [
            "", "P", "PT", "PT1", "1S", "PTS", "PT1S2M", "-PT1S", "PT1.2.3S",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn templates() {
        let vars = Vars {
            id: Some("v720"),
            bandwidth: Some("3000000"),
            number: Some(42),
            time: Some(180_000),
        };
        let e = |t: &str| expand(t, &vars);
        assert_eq!(
            e("$RepresentationID$/seg-$Number%05d$.m4s").as_deref(),
            Some("v720/seg-00042.m4s")
        );
        assert_eq!(
            e("t$Time$-b$Bandwidth$-$$.mp4").as_deref(),
            Some("t180000-b3000000-$.mp4")
        );
        assert_eq!(e("$Bandwidth%09d$").as_deref(), Some("003000000"));
        assert_eq!(e("$Number%d$").as_deref(), Some("42"));
        assert_eq!(e("plain.mp4").as_deref(), Some("plain.mp4"));
        for bad in ["$SubNumber$", "$Number", "$Number%05x$", "$Number%099d$"] {
            assert_eq!(e(bad), None, "{bad:?}");
        }
        let no_number = Vars {
            number: None,
            ..vars
        };
        assert_eq!(expand("$Number$.m4s", &no_number), None);
    }

    /// A live-style MPD: a template with a timeline (explicit `t`, repeats,
    /// and a final `r="-1"` that runs to the next entry), nested BaseURLs.
    #[test]
    fn template_with_timeline() {
        let mpd = r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic"
     availabilityStartTime="2024-01-01T00:00:00Z" minimumUpdatePeriod="PT2S"
     profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <!-- a comment with <Period> inside -->
  <BaseURL>http://127.0.0.1:8080/live/</BaseURL>
  <Period id="p0" start="PT0S">
    <AdaptationSet mimeType="video/mp4" segmentAlignment="true">
      <BaseURL>video/</BaseURL>
      <ContentProtection schemeIdUri="urn:x"><BaseURL>/not-media/</BaseURL></ContentProtection>
      <SegmentTemplate timescale="90000" startNumber="100"
          initialization="$RepresentationID$/init.mp4"
          media="$RepresentationID$/$Number%06d$-$Time$.m4s?a=1&amp;b=2">
        <SegmentTimeline>
          <S t="900000" d="180000" r="2"/>
          <S d="90000"/>
          <S d="180000" r="-1"/>
          <S t="2000000" d="180000"/>
        </SegmentTimeline>
      </SegmentTemplate>
      <Representation id="v1" bandwidth="800000" width="640" height="360"/>
      <Representation id="v2" bandwidth="3000000" width="1280" height="720"/>
    </AdaptationSet>
    <AdaptationSet mimeType="audio/mp4">
      <Representation id="a1" bandwidth="128000">
        <SegmentTemplate timescale="48000" media="https://hub.example/audio/$Time$.m4a"
            initialization="https://cdn.elsewhere.example/audio/init.mp4">
          <SegmentTimeline><S t="0" d="96000" r="1"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>"#;
        let got = dash_segment_uris("/live/stream.mpd?token=t", mpd, &own());
        let mut want = Vec::new();
        for rep in ["v1", "v2"] {
            want.push(format!("/live/video/{rep}/init.mp4"));
            // 3 × 180000 from 900000, one 90000, then 180000s until 2000000
            // (from 1530000: 3 segments), then the last one.
            let times = [
                900_000, 1_080_000, 1_260_000, 1_440_000, 1_530_000, 1_710_000, 1_890_000,
                2_000_000,
            ];
            for (i, t) in times.iter().enumerate() {
                let n = 100 + i;
                want.push(format!("/live/video/{rep}/{n:06}-{t}.m4s?a=1&b=2"));
            }
        }
        want.push("/audio/0.m4a".to_string());
        want.push("/audio/96000.m4a".to_string());
        assert_eq!(got, want);
    }

    /// An on-demand MPD with a SegmentList per Representation, and an
    /// inherited `duration` template in a second period.
    #[test]
    fn segment_list_and_duration_template() {
        let mpd = r#"<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT0H0M30.00S">
  <Period duration="PT10S">
    <AdaptationSet mimeType="video/mp4">
      <Representation id="low" bandwidth="400000">
        <BaseURL>low/</BaseURL>
        <SegmentList timescale="1000" duration="4000">
          <Initialization sourceURL="init.mp4"/>
          <SegmentURL media="s1.m4s"/>
          <SegmentURL media="s2.m4s" mediaRange="0-999"/>
          <SegmentURL media="../shared/s3.m4s"/>
          <SegmentURL media="//cdn.elsewhere.example/s4.m4s"/>
        </SegmentList>
      </Representation>
    </AdaptationSet>
  </Period>
  <Period start="PT10S">
    <SegmentTemplate media="p2/$RepresentationID$-$Number$.m4s" duration="8" timescale="2"
        startNumber="0"/>
    <AdaptationSet mimeType="video/mp4">
      <Representation id="hi" bandwidth="3000000"/>
    </AdaptationSet>
  </Period>
</MPD>"#;
        let got = dash_segment_uris("/vod/movie/manifest.mpd", mpd, &own());
        assert_eq!(
            got,
            [
                "/vod/movie/low/init.mp4",
                "/vod/movie/low/s1.m4s",
                "/vod/movie/low/s2.m4s",
                "/vod/movie/shared/s3.m4s",
                // 20 s left of 30, 4 s segments.
                "/vod/movie/p2/hi-0.m4s",
                "/vod/movie/p2/hi-1.m4s",
                "/vod/movie/p2/hi-2.m4s",
                "/vod/movie/p2/hi-3.m4s",
                "/vod/movie/p2/hi-4.m4s",
            ]
        );
    }

    /// Single-file Representations (SegmentBase, on-demand profile); a
    /// cross-origin BaseURL drops its whole subtree.
    #[test]
    fn base_url_single_files() {
        let mpd = r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" mediaPresentationDuration="PT634.566S"
     profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
  <Period>
    <AdaptationSet mimeType="video/mp4">
      <Representation id="1" bandwidth="4000000">
        <BaseURL>video_1080p.mp4</BaseURL>
        <SegmentBase indexRange="896-2551"><Initialization range="0-895"/></SegmentBase>
      </Representation>
      <Representation id="2" bandwidth="1000000">
        <BaseURL>https://cdn.elsewhere.example/video_480p.mp4</BaseURL>
        <BaseURL>http://127.0.0.1:8080/mirror/video_480p.mp4</BaseURL>
      </Representation>
      <Representation id="3" bandwidth="500000">
        <BaseURL>https://cdn.elsewhere.example/video_240p.mp4</BaseURL>
      </Representation>
    </AdaptationSet>
    <AdaptationSet mimeType="audio/mp4">
      <BaseURL><![CDATA[audio/]]></BaseURL>
      <Representation id="a" bandwidth="128000">
        <BaseURL>en&#46;m4a</BaseURL>
        <SegmentBase><Initialization sourceURL="en-init.mp4"/></SegmentBase>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>"#;
        let got = dash_segment_uris("/films/f.mpd", mpd, &own());
        assert_eq!(
            got,
            [
                "/films/video_1080p.mp4",
                "/mirror/video_480p.mp4",
                "/films/audio/en.m4a",
                "/films/audio/en-init.mp4",
            ]
        );
    }

    #[test]
    fn counts_are_capped_and_bad_input_yields_nothing() {
        let huge = r#"<MPD><Period><AdaptationSet><Representation id="x">
            <SegmentTemplate media="$Number$.m4s"><SegmentTimeline>
            <S d="1" r="999999999999"/></SegmentTimeline></SegmentTemplate>
            </Representation></AdaptationSet></Period></MPD>"#;
        let got = dash_segment_uris("/m.mpd", huge, &own());
        assert_eq!(got.len(), MAX_SEGMENTS_PER_REPRESENTATION);
        assert_eq!(got[0], "/1.m4s");

        let endless = r#"<MPD mediaPresentationDuration="P100000Y"><Period><AdaptationSet>
            <Representation id="x"><SegmentTemplate media="$Number$.m4s" duration="1"/>
            </Representation></AdaptationSet></Period></MPD>"#;
        assert_eq!(
            dash_segment_uris("/m.mpd", endless, &own()).len(),
            MAX_SEGMENTS_PER_REPRESENTATION
        );

        // Live, no timeline: only the init segment can be known.
        let live = r#"<MPD type="dynamic"><Period><AdaptationSet><Representation id="x">
            <SegmentTemplate media="$Number$.m4s" initialization="init-$RepresentationID$.mp4"
             duration="2"/></Representation></AdaptationSet></Period></MPD>"#;
        assert_eq!(dash_segment_uris("/m.mpd", live, &own()), ["/init-x.mp4"]);

        let deep = format!("<MPD>{}</MPD>", "<Period>".repeat(100_000));
        assert!(dash_segment_uris("/m.mpd", &deep, &own()).is_empty());
        for bad in [
            "",
            "not xml",
            "<html><body>x</body></html>",
            "<MPD",
            "<<<>>>&&&",
        ] {
            assert!(
                dash_segment_uris("/m.mpd", bad, &own()).is_empty(),
                "{bad:?}"
            );
        }
        let over = format!("<MPD>{}</MPD>", " ".repeat(PLAYLIST_LIMIT));
        assert!(dash_segment_uris("/m.mpd", &over, &own()).is_empty());
    }
}
