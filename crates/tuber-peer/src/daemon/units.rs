//! Human sizes and rates, both ways: `10GB`, `512MiB`, `2MB/s`, `500kB/s`,
//! `0` or `unlimited` in; `1.5 MB`, `2.0 MiB/s` out.
//!
//! Every unit counts bytes. Decimal prefixes (`k`, `M`, `G`, `T`) are powers
//! of 1000, binary ones (`Ki`, `Mi`, `Gi`, `Ti`) powers of 1024; the letter
//! case of a prefix does not matter. A lowercase `b` after a prefix (`Mb`)
//! usually means bits, so it is refused rather than guessed. Values are
//! whole bytes, rounded down, up to [`MAX_VALUE`].
//!
//! The dashboard (`ui/format.js`) reads and writes the same way: both pass
//! the cases in `docs/units-vectors.json`.

/// The largest size or rate: 2^53 - 1 (9 PB), the largest integer a JSON
/// number carries exactly to the dashboard and back.
pub const MAX_VALUE: u64 = (1 << 53) - 1;

/// Parses a size in bytes: `10GB`, `512MiB`, `1.5G`, `4096`, `4096B`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty size".into());
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let multiplier = unit_multiplier(unit.trim()).map_err(|why| format!("{t:?}: {why}"))?;
    scale(number, multiplier).map_err(|why| format!("{t:?}: {why}"))
}

/// Parses a rate in bytes per second, 0 meaning unlimited: `2MB/s`,
/// `2MiB/s`, `500kB/s`, `500k`, `0`, `unlimited`.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("unlimited") || t.eq_ignore_ascii_case("none") {
        return Ok(0);
    }
    let size = t
        .strip_suffix("/s")
        .or_else(|| t.strip_suffix("/S"))
        .or_else(|| t.strip_suffix("ps"))
        .unwrap_or(t);
    parse_size(size).map_err(|e| format!("rate {e} (e.g. 2MB/s, 512KiB/s, 0 = unlimited)"))
}

fn unit_multiplier(unit: &str) -> Result<u64, String> {
    if unit.is_empty() || unit == "B" {
        return Ok(1);
    }
    let (prefix, has_b) = match unit.strip_suffix('B') {
        Some(p) => (p, true),
        None => (unit, false),
    };
    if !has_b && unit.ends_with('b') && unit.len() > 1 {
        return Err(format!(
            "{unit:?} reads as bits; write {}B for bytes",
            &unit[..unit.len() - 1]
        ));
    }
    // Bytes, not string slices: a prefix may be any text, `é` included.
    let power = match prefix.as_bytes() {
        [letter] | [letter, b'i' | b'I'] => match letter.to_ascii_lowercase() {
            b'k' => 1,
            b'm' => 2,
            b'g' => 3,
            b't' => 4,
            _ => return Err(format!("unknown unit {unit:?}")),
        },
        _ => return Err(format!("unknown unit {unit:?}")),
    };
    let binary = prefix.len() == 2;
    let base: u64 = if binary { 1024 } else { 1000 };
    Ok(base.pow(power))
}

/// `number` (digits, at most one `.`) times `multiplier`, rounded down.
fn scale(number: &str, multiplier: u64) -> Result<u64, String> {
    if number.is_empty() {
        return Err("no number".into());
    }
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err("not a number".into());
    }
    let digits = |s: &str| -> Result<u128, String> {
        if s.is_empty() {
            return Ok(0);
        }
        if s.len() > 30 {
            return Err("too many digits".into());
        }
        s.parse::<u128>().map_err(|_| "not a number".to_string())
    };
    let too_large = || "too large".to_string();
    let mut value = digits(whole)?
        .checked_mul(u128::from(multiplier))
        .ok_or_else(too_large)?;
    if !frac.is_empty() {
        let denom = 10u128
            .checked_pow(frac.len() as u32)
            .ok_or_else(too_large)?;
        value += digits(frac)? * u128::from(multiplier) / denom;
    }
    u64::try_from(value)
        .ok()
        .filter(|v| *v <= MAX_VALUE)
        .ok_or_else(too_large)
}

/// `1.50 MB`, `812 B`, `10.7 GB`: decimal units, three significant digits
/// rounded half up, in the first unit where they make less than 1000.
/// Integer arithmetic, so that the dashboard, which does the same with
/// BigInt, writes every value exactly alike (a float rounds 1.125 either
/// way).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let n = u128::from(bytes);
    let mut last = String::new();
    for (k, unit) in UNITS.iter().enumerate() {
        let divisor = 1000u128.pow(k as u32 + 1);
        for decimals in [2u32, 1, 0] {
            let scale = 10u128.pow(decimals);
            // Half up: (2 n s + d) / 2d.
            let r = (2 * n * scale + divisor) / (2 * divisor);
            last = if decimals == 0 {
                format!("{r} {unit}")
            } else {
                format!(
                    "{}.{:0width$} {unit}",
                    r / scale,
                    r % scale,
                    width = decimals as usize
                )
            };
            if r < 1000 {
                return last;
            }
        }
    }
    last
}

/// `2.00 MB/s`, or `unlimited` for a cap of 0 when `zero_is_unlimited`.
pub fn format_rate(bps: u64, zero_is_unlimited: bool) -> String {
    if bps == 0 && zero_is_unlimited {
        "unlimited".into()
    } else {
        format!("{}/s", format_size(bps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096B"), Ok(4096));
        assert_eq!(parse_size("10GB"), Ok(10_000_000_000));
        assert_eq!(parse_size("10 GB"), Ok(10_000_000_000));
        assert_eq!(parse_size("10G"), Ok(10_000_000_000));
        assert_eq!(parse_size("512MiB"), Ok(512 * 1024 * 1024));
        assert!(parse_size("512Mib").is_err(), "bits are refused");
        assert_eq!(parse_size("512Mi"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("500kB"), Ok(500_000));
        assert_eq!(parse_size("500KB"), Ok(500_000));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
        assert_eq!(parse_size(" 7 "), Ok(7));
        assert_eq!(parse_size(".5kB"), Ok(500));
    }

    #[test]
    fn bad_sizes() {
        for bad in [
            "",
            "GB",
            "1.2.3GB",
            "12XB",
            "-1",
            "1e9",
            "10Mb",
            "10 gigs",
            "1KiBB",
            ".",
            "1 2",
            "99999999999999999999999999999999999",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse_size("20000000000GB").is_err(), "overflow");
        assert_eq!(parse_size(&MAX_VALUE.to_string()), Ok(MAX_VALUE));
        assert!(parse_size(&(MAX_VALUE + 1).to_string()).is_err());
        assert!(parse_size("18446744073709551616").is_err());
        for odd in ["1é", "1éB", "1éi", "1ié", "1\u{0}", "1iB", "1 KiB/s"] {
            assert!(parse_size(odd).is_err(), "{odd:?} parsed");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("2MB/s"), Ok(2_000_000));
        assert_eq!(parse_rate("2MiB/s"), Ok(2 * 1024 * 1024));
        assert_eq!(parse_rate("500kB/s"), Ok(500_000));
        assert_eq!(parse_rate("500k"), Ok(500_000));
        assert_eq!(parse_rate("1MBps"), Ok(1_000_000));
        assert_eq!(parse_rate("0"), Ok(0));
        assert_eq!(parse_rate("unlimited"), Ok(0));
        assert_eq!(parse_rate("Unlimited"), Ok(0));
        assert_eq!(parse_rate("12345"), Ok(12345));
        assert!(parse_rate("2Mb/s").is_err(), "bits are refused");
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("/s").is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(999), "999 B");
        assert_eq!(format_size(1000), "1.00 kB");
        assert_eq!(format_size(1_500_000), "1.50 MB");
        assert_eq!(format_size(12_340_000), "12.3 MB");
        assert_eq!(format_size(999_999), "1.00 MB");
        assert_eq!(format_size(10_737_418_240), "10.7 GB");
        assert_eq!(format_size(u64::MAX), "18.4 EB");
        assert_eq!(format_size(1125), "1.13 kB", "half up, not to even");
        assert_eq!(format_size(9_995), "10.0 kB");
        assert_eq!(format_size(99_950), "100 kB");
        assert_eq!(format_rate(0, true), "unlimited");
        assert_eq!(format_rate(0, false), "0 B/s");
        assert_eq!(format_rate(2_000_000, true), "2.00 MB/s");
    }

    /// The cases the dashboard passes too (`web/test/units.test.js`).
    #[test]
    fn shared_vectors() {
        let text = include_str!("../../../../docs/units-vectors.json");
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let cases = |key: &str| v[key].as_array().unwrap().clone();
        for (key, parse) in [
            ("size", parse_size as fn(&str) -> Result<u64, String>),
            ("rate", parse_rate),
        ] {
            assert!(cases(key).len() > 10);
            for c in cases(key) {
                let text = c["text"].as_str().unwrap();
                match c["bytes"].as_u64() {
                    Some(bytes) => assert_eq!(parse(text), Ok(bytes), "{key} {text:?}"),
                    None => assert!(parse(text).is_err(), "{key} {text:?} parsed"),
                }
            }
        }
        for c in cases("format_size") {
            let bytes = c["bytes"].as_u64().unwrap();
            assert_eq!(format_size(bytes), c["text"].as_str().unwrap(), "{bytes}");
        }
        for c in cases("format_rate") {
            let bps = c["bps"].as_u64().unwrap();
            let unlimited = c["zero_is_unlimited"].as_bool().unwrap();
            assert_eq!(format_rate(bps, unlimited), c["text"].as_str().unwrap());
        }
    }
}
