//! Packet pacing for a connection's UDP socket.
//!
//! SCTP in `webrtc` 0.21 has no pacing and no burst limit: whenever a SACK
//! opens its window, or a retransmission timer marks everything in flight
//! for resending, it hands the network as much as the window allows, at
//! once (one GSO `sendmsg` of up to 64 KiB). A browser reads WebRTC through
//! a small socket buffer (Chromium asks for 64 KiB) on a busy thread, so the
//! tail of such a burst is dropped, and a lost retransmission can only be
//! recovered by the retransmission timer. Pacing bounds those bursts; it
//! does not end the drops (`RcvbufErrors` in `/proc/net/snmp` rose by
//! 50–180 per 16 MiB download to Chromium with it, 50–350 without), so the
//! timer's length is what decides a stall: see `third_party/rtc-sctp`.
//!
//! [`PacedUdpSocket`] sends every datagram (DATA, retransmissions, SACKs,
//! DTLS, STUN) through a token bucket ([`Pacer`]): bursts of at most
//! [`Pacing::burst`] bytes, then [`Pacing::rate`] bytes per second, and GSO
//! runs no longer than a burst. The application-level pacer in
//! `engine::link` spaces whole messages; this one spaces what SCTP makes of
//! them. (That one keeps its own bucket: it waits for a full bucket before a
//! message larger than the burst, which this one does not.)

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use webrtc::runtime::{AsyncUdpSocket, RecvMeta, Transmit};

/// A socket's pacing: [`rate`](Self::rate) bytes per second after bursts of
/// up to [`burst`](Self::burst) bytes. A rate of 0 turns pacing off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    /// Long-run send rate, bytes per second, on the wire (headers included).
    pub rate: f64,
    /// Bytes that may go back to back.
    pub burst: usize,
}

impl Pacing {
    /// 32 MB/s in bursts of 16 KiB (about 13 datagrams, well inside a 64 KiB
    /// receive buffer). The rate sits above `engine::link`'s 24 MB/s for
    /// payload, so in steady state that pacer decides and this one only
    /// smooths SCTP's own bursts; it is far above a home uplink.
    pub const DEFAULT: Pacing = Pacing {
        rate: 32e6,
        burst: 16 * 1024,
    };

    /// No pacing.
    pub const OFF: Pacing = Pacing {
        rate: 0.0,
        burst: usize::MAX,
    };

    fn is_off(&self) -> bool {
        self.rate.is_nan() || self.rate <= 0.0
    }
}

impl Default for Pacing {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The token bucket, sans-IO: the caller passes the clock in.
///
/// A send may go while the bucket is not in debt; it then takes its bytes,
/// possibly into debt, so a datagram larger than what is left still goes
/// and the long-run rate holds.
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Pacer {
    /// A full bucket at `now`.
    pub fn new(pacing: Pacing, now: Instant) -> Self {
        let burst = pacing.burst as f64;
        Self {
            rate: pacing.rate,
            burst,
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = self.at.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
    }

    /// `None` when a send may go at `now`; otherwise when it may.
    pub fn poll_ready(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        if self.tokens >= 0.0 {
            None
        } else {
            // Rounded up, so the bucket is out of debt at the instant given.
            let nanos = (-self.tokens / self.rate * 1e9).ceil() as u64;
            Some(now + Duration::from_nanos(nanos.max(1)))
        }
    }

    /// Takes `len` bytes for a send made at `now`.
    pub fn sent(&mut self, now: Instant, len: usize) {
        self.refill(now);
        self.tokens -= len as f64;
    }
}

struct State {
    pacer: Pacer,
    /// The wait for the bucket, made on first need inside the driver's
    /// runtime (`poll_send` runs on it).
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// A UDP socket whose sends are paced (see the module text).
pub struct PacedUdpSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    state: Mutex<State>,
    max_gso: usize,
}

impl PacedUdpSocket {
    /// Wraps `inner`; with [`Pacing::OFF`] the socket is returned as is.
    pub fn wrap(inner: Arc<dyn AsyncUdpSocket>, pacing: Pacing) -> Arc<dyn AsyncUdpSocket> {
        if pacing.is_off() {
            return inner;
        }
        // A GSO run is one burst on the wire: no longer than the bucket.
        let max_gso = inner.max_gso_segments().min((pacing.burst / 1200).max(1));
        Arc::new(Self {
            inner,
            state: Mutex::new(State {
                pacer: Pacer::new(pacing, Instant::now()),
                sleep: None,
            }),
            max_gso,
        })
    }
}

impl fmt::Debug for PacedUdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacedUdpSocket")
            .field("inner", &self.inner)
            .field("max_gso", &self.max_gso)
            .finish()
    }
}

impl AsyncUdpSocket for PacedUdpSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        let mut state = match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        loop {
            let now = Instant::now();
            let Some(at) = state.pacer.poll_ready(now) else {
                break;
            };
            if tokio::runtime::Handle::try_current().is_err() {
                // No timer to wait on (not the driver's runtime): send unpaced
                // rather than never.
                break;
            }
            let sleep = state
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at.into())));
            if sleep.deadline() != at.into() {
                sleep.as_mut().reset(at.into());
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let result = self.inner.poll_send(cx, transmit);
        if let Poll::Ready(Ok(_)) = &result {
            state.pacer.sent(Instant::now(), transmit.contents.len());
        }
        result
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
    }

    fn max_gso_segments(&self) -> usize {
        self.max_gso
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_near(got: Duration, want: Duration, what: &str) {
        let diff = got.abs_diff(want);
        assert!(
            diff <= Duration::from_micros(1),
            "{what}: {got:?}, want {want:?}"
        );
    }

    const P: Pacing = Pacing {
        rate: 1e6,
        burst: 10_000,
    };

    #[test]
    fn a_full_bucket_lets_a_burst_go_then_paces() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(P, t0);
        let mut sent = 0;
        while pacer.poll_ready(t0).is_none() {
            pacer.sent(t0, 1_200);
            sent += 1_200;
        }
        // The burst, plus the datagram that took the bucket into debt.
        assert_eq!(sent, 10_800);
        let at = pacer.poll_ready(t0).expect("in debt");
        assert_near(
            at - t0,
            Duration::from_micros(800),
            "800 bytes of debt at 1 MB/s",
        );
        assert!(pacer.poll_ready(at).is_none());
    }

    #[test]
    fn the_long_run_rate_holds() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(P, t0);
        let mut now = t0;
        let mut sent = 0usize;
        for _ in 0..10_000 {
            match pacer.poll_ready(now) {
                None => {
                    pacer.sent(now, 1_200);
                    sent += 1_200;
                }
                Some(at) => now = at,
            }
        }
        let secs = (now - t0).as_secs_f64();
        let rate = (sent - 10_000) as f64 / secs;
        assert!((rate - 1e6).abs() / 1e6 < 0.01, "rate {rate}");
    }

    #[test]
    fn idle_time_refills_no_more_than_the_burst() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(P, t0);
        pacer.sent(t0, 10_000);
        let later = t0 + Duration::from_secs(60);
        let mut sent = 0;
        while pacer.poll_ready(later).is_none() {
            pacer.sent(later, 1_000);
            sent += 1_000;
        }
        assert_eq!(sent, 11_000, "a minute idle buys one burst, not 60 MB");
    }

    #[test]
    fn a_datagram_larger_than_the_burst_still_goes() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(
            Pacing {
                rate: 1e6,
                burst: 100,
            },
            t0,
        );
        assert!(pacer.poll_ready(t0).is_none());
        pacer.sent(t0, 1_200);
        let at = pacer.poll_ready(t0).expect("in debt");
        assert_near(at - t0, Duration::from_micros(1_100), "1,100 bytes of debt");
    }

    #[test]
    fn a_clock_that_goes_back_takes_nothing() {
        let t0 = Instant::now() + Duration::from_secs(1);
        let mut pacer = Pacer::new(P, t0);
        pacer.sent(t0, 10_000);
        assert!(pacer.poll_ready(t0 - Duration::from_millis(500)).is_none());
        pacer.sent(t0, 1);
        assert!(pacer.poll_ready(t0).is_some());
    }
}
