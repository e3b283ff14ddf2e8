//! HTTP `Range: bytes=…` for the hub's own endpoints (one range per request,
//! which is what players and peers send).

/// What to serve of a body of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No usable Range header: the whole body, 200.
    Full,
    /// Bytes `start..=end`, 206.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// The range lies outside the body: 416.
    Unsatisfiable,
}

/// Interprets a Range header value for a body of `len` bytes (RFC 9110 §14).
/// Multiple ranges and other units are answered with the full body, which
/// the RFC allows.
pub fn parse(header: Option<&str>, len: u64) -> RangeAnswer {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => b.parse::<u64>().ok().map(|n| {
            if n == 0 || len == 0 {
                None
            } else {
                Some((len.saturating_sub(n), len - 1))
            }
        }),
        // bytes=A-
        (false, true) => a
            .parse::<u64>()
            .ok()
            .map(|s| (s < len).then(|| (s, len - 1))),
        // bytes=A-B
        (false, false) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(s), Ok(e)) if s <= e => Some((s < len).then(|| (s, e.min(len - 1)))),
            _ => None,
        },
        (true, true) => None,
    };
    match parsed {
        None => RangeAnswer::Full,
        Some(None) => RangeAnswer::Unsatisfiable,
        Some(Some((start, end))) => RangeAnswer::Partial { start, end },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeAnswer::*;

    #[test]
    fn ranges() {
        assert_eq!(parse(None, 10), Full);
        assert_eq!(parse(Some("bytes=0-"), 10), Partial { start: 0, end: 9 });
        assert_eq!(parse(Some("bytes=2-4"), 10), Partial { start: 2, end: 4 });
        assert_eq!(parse(Some("bytes=2-400"), 10), Partial { start: 2, end: 9 });
        assert_eq!(parse(Some("bytes=-3"), 10), Partial { start: 7, end: 9 });
        assert_eq!(parse(Some("bytes=-30"), 10), Partial { start: 0, end: 9 });
        assert_eq!(parse(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(parse(Some("bytes=5-2"), 10), Full);
        assert_eq!(parse(Some("bytes=0-1,4-5"), 10), Full);
        assert_eq!(parse(Some("items=0-1"), 10), Full);
        assert_eq!(parse(Some("bytes=x-y"), 10), Full);
        assert_eq!(
            parse(Some("bytes=18446744073709551615-"), 10),
            Unsatisfiable
        );
    }
}
