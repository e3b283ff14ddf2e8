//! When a resource's URL says it stops being valid: the expiry that signed
//! URLs carry in their query string. The hub stops distributing such a
//! resource at that moment, and a trusted peer told to unassign it deletes
//! its pieces instead of only unpinning them (protocol §4.5), so what the
//! origin only gives out behind a signature is not kept in the swarm after
//! the signature ran out. Pure functions of the path and a Unix time.
//!
//! Recognised (parameter names in any case; the earliest expiry wins):
//! - AWS SigV4 `X-Amz-Date=YYYYMMDDTHHMMSSZ` with `X-Amz-Expires=<seconds>`,
//!   and the same pair as `X-Goog-Date`/`X-Goog-Expires` (Google Cloud
//!   Storage V4);
//! - `Expires`, `exp`, `e`: Unix seconds (CloudFront canned policies, GCS
//!   V2, most CDN tokens), taken only when the value looks like a time
//!   (9 to 11 digits, from 2001-09-09 on), so `?e=1` is not an expiry;
//! - Akamai tokens (`hdnts`, `hdnea`, `__token__`): the `exp=<unix>` field of
//!   the `~`-separated value;
//! - Azure SAS `se=<ISO 8601 UTC>` when a `sig` parameter is present too.
//!
//! Not recognised: expiries only inside an opaque or base64 policy
//! (CloudFront custom policies, JWTs). Response headers (`Expires`,
//! `Cache-Control: max-age`) say how long a copy may be reused without
//! asking again, not when the resource stops being valid, and are ignored.

/// The Unix time at which `path_and_query` stops being valid, if its query
/// string says so (the earliest of every expiry it carries).
pub fn signed_url_expiry(path_and_query: &str) -> Option<u64> {
    let (_, query) = path_and_query.split_once('?')?;
    let query = query.split('#').next().unwrap_or("");
    let mut earliest: Option<u64> = None;
    let mut keep = |t: Option<u64>| {
        if let Some(t) = t {
            earliest = Some(earliest.map_or(t, |e| e.min(t)));
        }
    };
    let mut dated: [(Option<u64>, Option<u64>); 2] = [(None, None); 2];
    let mut azure_end = None;
    let mut azure_signed = false;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "x-amz-date" => dated[0].0 = compact_utc(value),
            "x-amz-expires" => dated[0].1 = seconds(value),
            "x-goog-date" => dated[1].0 = compact_utc(value),
            "x-goog-expires" => dated[1].1 = seconds(value),
            "expires" | "exp" | "e" => keep(unix_time(value)),
            "hdnts" | "hdnea" | "__token__" => keep(akamai_exp(&percent_decode(value))),
            "se" => azure_end = iso_utc(&percent_decode(value)),
            "sig" => azure_signed = true,
            _ => {}
        }
    }
    for (date, secs) in dated {
        if let (Some(d), Some(s)) = (date, secs) {
            keep(d.checked_add(s));
        }
    }
    if azure_signed {
        keep(azure_end);
    }
    earliest
}

/// Whether `path_and_query` carries an expiry at or before `now` (Unix
/// seconds).
pub fn has_expired(path_and_query: &str, now: u64) -> bool {
    signed_url_expiry(path_and_query).is_some_and(|t| t <= now)
}

/// A count of seconds (at most ten digits).
fn seconds(v: &str) -> Option<u64> {
    (!v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit()))
        .then(|| v.parse().ok())
        .flatten()
}

/// Unix seconds that look like a time: 9 to 11 digits, from 10^9 on.
fn unix_time(v: &str) -> Option<u64> {
    if !(9..=11).contains(&v.len()) || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|t| *t >= 1_000_000_000)
}

/// `exp=<unix>` inside an Akamai token (`st=…~exp=…~acl=…~hmac=…`).
fn akamai_exp(token: &str) -> Option<u64> {
    token
        .split('~')
        .find_map(|f| f.strip_prefix("exp="))
        .and_then(unix_time)
}

/// `YYYYMMDDTHHMMSSZ` (SigV4's date).
fn compact_utc(v: &str) -> Option<u64> {
    let b = v.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits(&v[r]);
    civil(
        n(0..4)?,
        n(4..6)?,
        n(6..8)?,
        n(9..11)?,
        n(11..13)?,
        n(13..15)?,
    )
}

/// `YYYY-MM-DD`, optionally `THH:MM[:SS[.fff]]` and `Z` (Azure's `se`).
fn iso_utc(v: &str) -> Option<u64> {
    let v = v.strip_suffix('Z').unwrap_or(v);
    let (date, time) = v.split_once('T').unwrap_or((v, "00:00:00"));
    let mut d = date.split('-');
    let (y, m, day) = (digits(d.next()?)?, digits(d.next()?)?, digits(d.next()?)?);
    let time = time.split('.').next().unwrap_or("");
    let mut t = time.split(':');
    let (hh, mm) = (digits(t.next()?)?, digits(t.next()?)?);
    let ss = match t.next() {
        Some(s) => digits(s)?,
        None => 0,
    };
    if d.next().is_some() || t.next().is_some() {
        return None;
    }
    civil(y, m, day, hh, mm, ss)
}

fn digits(s: &str) -> Option<u64> {
    (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Unix seconds of a UTC civil time (days from civil, H. Hinnant's
/// algorithm); None when a field is out of range or before 1970.
fn civil(y: u64, m: u64, d: u64, hh: u64, mm: u64, ss: u64) -> Option<u64> {
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// `%XX` decoded; invalid escapes are kept as written.
fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_and_google_dates_plus_seconds() {
        // 2024-05-01T12:00:00Z = 1714564800.
        let p = "/v.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240501T120000Z&X-Amz-Expires=3600&X-Amz-Signature=ab";
        assert_eq!(signed_url_expiry(p), Some(1_714_564_800 + 3600));
        let g = "/o.bin?x-goog-date=20240501T120000Z&x-goog-expires=60&x-goog-signature=00";
        assert_eq!(signed_url_expiry(g), Some(1_714_564_860));
        // A date alone, or seconds alone, is no expiry.
        assert_eq!(signed_url_expiry("/v?X-Amz-Date=20240501T120000Z"), None);
        assert_eq!(signed_url_expiry("/v?X-Amz-Expires=60"), None);
        assert_eq!(
            signed_url_expiry("/v?X-Amz-Date=20241301T120000Z&X-Amz-Expires=60"),
            None
        );
    }

    #[test]
    fn unix_expiries_and_tokens() {
        assert_eq!(
            signed_url_expiry("/a.mp4?Expires=1714564800&Signature=x&Key-Pair-Id=K"),
            Some(1_714_564_800)
        );
        assert_eq!(signed_url_expiry("/a?exp=1714564800"), Some(1_714_564_800));
        assert_eq!(
            signed_url_expiry("/a?e=1714564800&h=x"),
            Some(1_714_564_800)
        );
        for not_a_time in ["/a?e=1", "/a?exp=12345678", "/a?expires=abc", "/a?e="] {
            assert_eq!(signed_url_expiry(not_a_time), None, "{not_a_time}");
        }
        let akamai = "/s.m3u8?hdnts=st%3D1714561200~exp%3D1714564800~acl%3D%2F*~hmac%3Dff";
        assert_eq!(signed_url_expiry(akamai), Some(1_714_564_800));
        let plain = "/s.ts?__token__=exp=1714564800~acl=/*~hmac=ff";
        assert_eq!(signed_url_expiry(plain), Some(1_714_564_800));
        // The earliest of several wins.
        assert_eq!(
            signed_url_expiry("/a?exp=1714564900&Expires=1714564800"),
            Some(1_714_564_800)
        );
    }

    #[test]
    fn azure_needs_a_signature() {
        let sas = "/c/b.bin?sv=2022-11-02&se=2024-05-01T12%3A00%3A00Z&sr=b&sp=r&sig=abc";
        assert_eq!(signed_url_expiry(sas), Some(1_714_564_800));
        assert_eq!(
            signed_url_expiry("/c/b.bin?se=2024-05-01&sig=x"),
            Some(1_714_521_600)
        );
        assert_eq!(signed_url_expiry("/c/b.bin?se=2024-05-01T12:00:00Z"), None);
    }

    #[test]
    fn paths_without_an_expiry() {
        for p in [
            "/a.mp4",
            "/a.mp4?",
            "/a.mp4?v=3",
            "/x?expires",
            "/x#exp=1714564800",
        ] {
            assert_eq!(signed_url_expiry(p), None, "{p}");
        }
        assert!(has_expired("/a?exp=1714564800", 1_714_564_800));
        assert!(!has_expired("/a?exp=1714564800", 1_714_564_799));
        assert!(!has_expired("/a", u64::MAX));
    }

    #[test]
    fn hostile_input_never_panics() {
        for p in [
            "/?%",
            "/?a=%",
            "/?hdnts=%e",
            "/?hdnts=%ZZ~exp=1714564800",
            "/?se=9999-12-31T23:59:60Z&sig",
            "/?X-Amz-Date=99999999T999999Z&X-Amz-Expires=9999999999",
            "/?se=-1-1-1&sig",
            "/?hdnts=%C3%A9",
            "/?é=1&e=é",
        ] {
            let _ = signed_url_expiry(p);
        }
        assert_eq!(
            signed_url_expiry("/?X-Amz-Date=99991231T235959Z&X-Amz-Expires=9999999999"),
            Some(253_402_300_799 + 9_999_999_999)
        );
    }
}
