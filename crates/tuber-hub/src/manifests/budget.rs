//! What a client's network may make the hub read from the upstream on its
//! behalf: a manifest the hub has not made yet (a whole body read) or a
//! piece not in the cache (a Range read) costs the origin bytes for one
//! small request, so without a bound anyone could turn the hub against its
//! own site (a new query string per request, a piece near the end of a file
//! on an upstream that ignores Range). Each network (see
//! [`crate::network`]) has a token bucket of bytes, refilled at
//! `per_hour` bytes per hour up to one hour's worth. A read is allowed while
//! the bucket is not in debt and then charged in full, so one resource
//! larger than the bucket can still be read once, and the next waits until
//! the debt is paid off. Over budget, the client is told to retry later; a
//! browser then loads the resource through the proxy, whose response the
//! hub hashes as it passes (the bytes go to that client, one for one).
//!
//! Reads shared with another request (a computation in flight, the cache)
//! and the hub's own reads (the publisher) are not charged. Sans-IO: the
//! clock is passed in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::network::network_key;

/// Networks tracked at most; past it, full buckets are forgotten first.
pub const MAX_NETWORKS: usize = 65_536;

/// The longest "retry after" ever given.
const MAX_RETRY: Duration = Duration::from_secs(3600);

/// Per-network byte budgets (see the module doc).
#[derive(Debug)]
pub struct OriginBudget {
    /// Bytes per hour per network; 0 = no limit.
    per_hour: u64,
    buckets: HashMap<u128, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Bytes available; negative is debt.
    balance: f64,
    at: Instant,
}

impl OriginBudget {
    /// A budget of `per_hour` bytes per network per hour (0: unlimited).
    pub fn new(per_hour: u64) -> Self {
        Self {
            per_hour,
            buckets: HashMap::new(),
        }
    }

    fn rate(&self) -> f64 {
        self.per_hour as f64 / 3600.0
    }

    fn refilled(&self, b: Bucket, now: Instant) -> Bucket {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        Bucket {
            balance: (b.balance + elapsed * self.rate()).min(self.per_hour as f64),
            at: now,
        }
    }

    /// A read of `bytes` for `client` at `now`: allowed (and charged) unless
    /// its network is in debt, else how long until it is not.
    pub fn try_charge(&mut self, now: Instant, client: IpAddr, bytes: u64) -> Result<(), Duration> {
        if self.per_hour == 0 {
            return Ok(());
        }
        let key = network_key(client);
        let full = Bucket {
            balance: self.per_hour as f64,
            at: now,
        };
        let bucket = match self.buckets.get(&key) {
            Some(b) => self.refilled(*b, now),
            None => {
                if self.buckets.len() >= MAX_NETWORKS {
                    self.forget_full(now);
                    if self.buckets.len() >= MAX_NETWORKS {
                        return Err(Duration::from_secs(60));
                    }
                }
                full
            }
        };
        if bucket.balance < 0.0 {
            self.buckets.insert(key, bucket);
            let secs = (-bucket.balance / self.rate()).ceil();
            return Err(Duration::from_secs_f64(secs.max(1.0)).min(MAX_RETRY));
        }
        self.buckets.insert(
            key,
            Bucket {
                balance: bucket.balance - bytes as f64,
                at: now,
            },
        );
        Ok(())
    }

    /// Charges `bytes` read beyond what was allowed (an upstream that
    /// ignored Range sent more than asked), into debt if need be.
    pub fn charge_more(&mut self, now: Instant, client: IpAddr, bytes: u64) {
        if self.per_hour == 0 {
            return;
        }
        let key = network_key(client);
        if let Some(b) = self.buckets.get(&key).copied() {
            let mut b = self.refilled(b, now);
            b.balance -= bytes as f64;
            self.buckets.insert(key, b);
        }
    }

    /// Networks tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether none is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    fn forget_full(&mut self, now: Instant) {
        let (rate, cap) = (self.rate(), self.per_hour as f64);
        self.buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
            b.balance + elapsed * rate < cap
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn one_big_read_then_wait_for_the_debt() {
        let t0 = Instant::now();
        let mut b = OriginBudget::new(GIB);
        // Larger than the bucket: allowed once, leaving a 1 GiB debt.
        assert!(b.try_charge(t0, ip("203.0.113.5"), 2 * GIB).is_ok());
        let wait = b.try_charge(t0, ip("203.0.113.99"), 1).unwrap_err();
        assert!(
            (Duration::from_secs(3590)..=Duration::from_secs(3600)).contains(&wait),
            "{wait:?}"
        );
        // Another network is not affected.
        assert!(b.try_charge(t0, ip("198.51.100.1"), GIB / 2).is_ok());
        // After the hour the debt is paid: allowed again.
        assert!(b
            .try_charge(t0 + Duration::from_secs(3601), ip("203.0.113.5"), 1)
            .is_ok());
    }

    #[test]
    fn small_reads_until_the_bucket_is_spent() {
        let t0 = Instant::now();
        let mut b = OriginBudget::new(100 << 20);
        let a = ip("2001:db8:7::1");
        let mut allowed = 0;
        for _ in 0..1000 {
            if b.try_charge(t0, a, 1 << 20).is_ok() {
                allowed += 1;
            }
        }
        // 100 MiB of 1 MiB reads, plus the one that went into debt.
        assert_eq!(allowed, 101);
        // Refilled at 100 MiB/h: about 1 MiB per 36 s.
        assert!(b.try_charge(t0 + Duration::from_secs(30), a, 1).is_err());
        assert!(b.try_charge(t0 + Duration::from_secs(80), a, 1).is_ok());
    }

    #[test]
    fn extra_bytes_read_are_charged_into_debt() {
        let t0 = Instant::now();
        let mut b = OriginBudget::new(GIB);
        let a = ip("192.0.2.1");
        assert!(b.try_charge(t0, a, 1 << 20).is_ok());
        b.charge_more(t0, a, 3 * GIB);
        assert!(b.try_charge(t0, a, 1).is_err());
    }

    #[test]
    fn zero_is_unlimited_and_the_table_is_bounded() {
        let t0 = Instant::now();
        let mut unlimited = OriginBudget::new(0);
        assert!(unlimited.try_charge(t0, ip("192.0.2.1"), u64::MAX).is_ok());
        assert!(unlimited.is_empty());

        let mut b = OriginBudget::new(GIB);
        for i in 0..MAX_NETWORKS as u32 {
            let a = IpAddr::from(std::net::Ipv4Addr::from(i << 8));
            assert!(b.try_charge(t0, a, GIB / 2).is_ok());
        }
        assert_eq!(b.len(), MAX_NETWORKS);
        // Every bucket is half spent: a new network waits, nothing is reset.
        assert!(b.try_charge(t0, ip("255.255.255.1"), 1).is_err());
        // An hour later they are full again and forgotten for the newcomer.
        assert!(b
            .try_charge(t0 + Duration::from_secs(3600), ip("255.255.255.1"), 1)
            .is_ok());
        assert_eq!(b.len(), 1);
    }
}
