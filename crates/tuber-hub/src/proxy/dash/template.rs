//! Segment numbering and naming: `SegmentTimeline` runs, `@duration`
//! counts, `$…$` template expansion and ISO 8601 durations.

use super::xml::{Kind, Node};
use super::{MAX_FORMAT_WIDTH, MAX_SEGMENTS_PER_REPRESENTATION};

/// `(number, time)` of each segment a `SegmentTimeline` lists, at most
/// [`MAX_SEGMENTS_PER_REPRESENTATION`]. `end` (media time) bounds a final
/// `r="-1"`; without it that entry counts once.
pub(super) fn timeline_segments(
    timeline: &Node,
    start_number: u64,
    end: Option<u64>,
) -> Vec<(u64, u64)> {
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
pub(super) fn segment_count(length: f64, timescale: u64, duration: u64) -> usize {
    let count = (length * timescale as f64 / duration as f64 - 1e-9).ceil();
    if count.is_finite() && count > 0.0 {
        count.min(MAX_SEGMENTS_PER_REPRESENTATION as f64) as usize
    } else {
        0
    }
}

/// What a template's `$Identifier$`s stand for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Vars<'a> {
    pub(super) id: Option<&'a str>,
    pub(super) bandwidth: Option<&'a str>,
    pub(super) number: Option<u64>,
    pub(super) time: Option<u64>,
}

/// Expands a URL template (ISO/IEC 23009-1 §5.3.9.4.4); `None` when it
/// names an identifier that has no value here or is malformed.
pub(super) fn expand(template: &str, vars: &Vars<'_>) -> Option<String> {
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

pub(super) fn formatted_opt(value: u64, format: Option<&str>) -> Option<String> {
    match format {
        Some(f) => formatted(value, f),
        None => Some(value.to_string()),
    }
}

/// `value` per a printf tag after its `%`: `0Nd` or `Nd` (zero-padded to
/// N), or `d`.
pub(super) fn formatted(value: u64, format: &str) -> Option<String> {
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
pub(super) fn parse_duration(text: &str) -> Option<f64> {
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
pub(super) fn duration_fields(mut text: &str, units: &[(char, f64)]) -> Option<f64> {
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
