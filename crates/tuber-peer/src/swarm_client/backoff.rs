//! Reconnect delays: exponential backoff with full jitter.
//!
//! After `failures` failed attempts in a row the next delay is drawn
//! uniformly from `[0, min(BACKOFF_MAX, BACKOFF_INITIAL × BACKOFF_FACTOR^failures)]`
//! ("full jitter"): when a hub restarts, its peers' reconnects spread over
//! the window instead of arriving at once. Pure: the caller passes the
//! random number.

use std::time::Duration;

/// The ceiling of the first delay.
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(250);
/// Growth of the ceiling per failure in a row.
pub const BACKOFF_FACTOR: u32 = 2;
/// The largest ceiling.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The ceiling after `failures` failures in a row.
pub fn ceiling(failures: u32) -> Duration {
    let factor = BACKOFF_FACTOR.checked_pow(failures).unwrap_or(u32::MAX);
    BACKOFF_INITIAL
        .checked_mul(factor)
        .map_or(BACKOFF_MAX, |d| d.min(BACKOFF_MAX))
}

/// The delay after `failures` failures in a row, for a uniformly random
/// `random`.
pub fn delay(failures: u32, random: u64) -> Duration {
    let ceiling = u64::try_from(ceiling(failures).as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(random % ceiling.saturating_add(1))
}

/// A random delay after `failures` failures, from the OS's RNG (the
/// ceiling if that fails: slower, never faster).
pub fn random_delay(failures: u32) -> Duration {
    match getrandom::u64() {
        Ok(r) => delay(failures, r),
        Err(_) => ceiling(failures),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_up_to_the_max() {
        assert_eq!(ceiling(0), Duration::from_millis(250));
        assert_eq!(ceiling(1), Duration::from_millis(500));
        assert_eq!(ceiling(3), Duration::from_secs(2));
        assert_eq!(ceiling(6), Duration::from_secs(16));
        assert_eq!(ceiling(7), BACKOFF_MAX);
        assert_eq!(ceiling(1000), BACKOFF_MAX);
    }

    #[test]
    fn delays_are_spread_over_the_whole_window() {
        assert_eq!(delay(0, 0), Duration::ZERO);
        assert_eq!(delay(0, 250_000_000), Duration::from_millis(250));
        assert_eq!(delay(0, 250_000_001), Duration::ZERO);
        for f in [0, 2, 9, u32::MAX] {
            for _ in 0..100 {
                assert!(random_delay(f) <= ceiling(f));
            }
        }
        let many: Vec<_> = (0..200).map(|_| random_delay(10)).collect();
        assert!(many.iter().any(|d| *d < BACKOFF_MAX / 4));
        assert!(many.iter().any(|d| *d > BACKOFF_MAX * 3 / 4));
    }
}
