//! `/metrics` in Prometheus text format. Counters are plain atomics updated
//! where things happen; gauges that the planner owns are read at scrape time.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The hub's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Bytes of distributable resources served by the origin (through the
    /// proxy or the piece endpoint).
    /// Shared with the proxy, which counts as bodies stream.
    pub origin_distributable_bytes: std::sync::Arc<AtomicU64>,
    /// Bytes of page runtimes' fallback reads answered from the hub's
    /// pieces instead of the origin (`proxy/from_pieces.rs`). Shared with
    /// the proxy.
    pub fallback_piece_bytes: std::sync::Arc<AtomicU64>,
    /// Bytes that peers reported delivering to each other.
    pub p2p_reported_bytes: AtomicU64,
    /// Pieces served by the piece endpoint.
    pub pieces_served: AtomicU64,
    /// Signaling messages refused as malformed, oversized or rate-limited.
    pub signaling_refused: AtomicU64,
    /// Offers, answers and candidates not relayed: no introduction between
    /// the two peers, or too many offers from one network to one peer.
    pub relays_refused: AtomicU64,
}

/// Values read from their owners (planner, manifest service) at scrape time.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    /// Connected browsers.
    pub browsers: u64,
    /// Connected permanent peers.
    pub permanent: u64,
    /// Connected trusted peers.
    pub trusted: u64,
    /// Peers banned (ever, not lifted).
    pub bans: u64,
    /// Manifests hashed from upstream bytes since start (cache misses).
    pub manifests_computed: u64,
    /// Of those, hashed from a response the proxy streamed to a viewer.
    pub manifests_teed: u64,
    /// Manifests made from another query string's manifest of the same bytes.
    pub manifests_aliased: u64,
    /// Bytes in the piece cache now.
    pub piece_cache_bytes: u64,
    /// Piece lookups the cache answered, and not.
    pub piece_cache_hits: u64,
    pub piece_cache_misses: u64,
    /// Manifests in the index (and the database), and their encoded bytes.
    pub manifests_indexed: u64,
    pub manifest_index_bytes: u64,
    /// Of them, published to the planner (assigned to trusted peers), and
    /// their resources' bytes.
    pub manifests_published: u64,
    pub manifests_published_bytes: u64,
    /// Manifests forgotten since start, by reason (age, bound, expired,
    /// retired).
    pub manifests_forgotten: [u64; 4],
    /// What the connected trusted peers can hold, bytes.
    pub donor_capacity: u64,
}

impl Metrics {
    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn render(&self, g: Gauges) -> String {
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::with_capacity(1024);
        let mut metric = |name: &str, kind: &str, help: &str, lines: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in lines {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        metric(
            "tuber_origin_distributable_bytes_total",
            "counter",
            "Bytes of distributable resources served by the origin.",
            &[("", c(&self.origin_distributable_bytes))],
        );
        metric(
            "tuber_p2p_bytes_total",
            "counter",
            "Bytes peers reported delivering to each other.",
            &[("", c(&self.p2p_reported_bytes))],
        );
        metric(
            "tuber_manifests_computed_total",
            "counter",
            "Manifests hashed from upstream bytes.",
            &[("", g.manifests_computed)],
        );
        metric(
            "tuber_manifests_teed_total",
            "counter",
            "Manifests hashed from a response streamed to a viewer (no extra origin read).",
            &[("", g.manifests_teed)],
        );
        metric(
            "tuber_manifests_aliased_total",
            "counter",
            "Manifests made from another query string's manifest of the same bytes (same strong ETag): no origin read.",
            &[("", g.manifests_aliased)],
        );
        metric(
            "tuber_manifests_indexed",
            "gauge",
            "Manifests the hub keeps (its database and index), bounded by [manifests] max_count.",
            &[("", g.manifests_indexed)],
        );
        metric(
            "tuber_manifest_index_bytes",
            "gauge",
            "Bytes of the manifests the hub keeps, bounded by [manifests] max_bytes.",
            &[("", g.manifest_index_bytes)],
        );
        metric(
            "tuber_manifests_published",
            "gauge",
            "Manifests the planner assigns to trusted peers (the most wanted that fit their disks).",
            &[("", g.manifests_published)],
        );
        metric(
            "tuber_manifests_published_bytes",
            "gauge",
            "Bytes of the resources the planner assigns to trusted peers.",
            &[("", g.manifests_published_bytes)],
        );
        let [age, bound, expired, retired] = g.manifests_forgotten;
        metric(
            "tuber_manifests_forgotten_total",
            "counter",
            "Manifests forgotten, by reason: nobody asked within the retention, least wanted past the bound, signed URL expired, live segment retired.",
            &[
                ("{reason=\"age\"}", age),
                ("{reason=\"bound\"}", bound),
                ("{reason=\"expired\"}", expired),
                ("{reason=\"retired\"}", retired),
            ],
        );
        metric(
            "tuber_donor_capacity_bytes",
            "gauge",
            "What the connected trusted peers can hold: their declared disk over the copies kept.",
            &[("", g.donor_capacity)],
        );
        metric(
            "tuber_piece_cache_bytes",
            "gauge",
            "Bytes of hashed pieces the hub keeps to serve without the origin.",
            &[("", g.piece_cache_bytes)],
        );
        metric(
            "tuber_piece_cache_lookups_total",
            "counter",
            "Piece endpoint lookups in the piece cache, by result.",
            &[
                ("{result=\"hit\"}", g.piece_cache_hits),
                ("{result=\"miss\"}", g.piece_cache_misses),
            ],
        );
        metric(
            "tuber_fallback_piece_bytes_total",
            "counter",
            "Bytes of page runtimes' fallback reads answered from the hub's pieces, not the origin.",
            &[("", c(&self.fallback_piece_bytes))],
        );
        metric(
            "tuber_pieces_served_total",
            "counter",
            "Pieces served by the hub's piece endpoint.",
            &[("", c(&self.pieces_served))],
        );
        metric(
            "tuber_signaling_refused_total",
            "counter",
            "Signaling messages refused (malformed, too large, rate-limited).",
            &[("", c(&self.signaling_refused))],
        );
        metric(
            "tuber_relays_refused_total",
            "counter",
            "Offers, answers and candidates not relayed (no introduction, or too many offers from one network to one peer).",
            &[("", c(&self.relays_refused))],
        );
        metric(
            "tuber_peers_connected",
            "gauge",
            "Connected peers by role.",
            &[
                ("{role=\"browser\"}", g.browsers),
                ("{role=\"permanent\"}", g.permanent),
            ],
        );
        metric(
            "tuber_trusted_peers",
            "gauge",
            "Connected trusted peers.",
            &[("", g.trusted)],
        );
        metric("tuber_bans", "gauge", "Banned peers.", &[("", g.bans)]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        Metrics::add(&m.origin_distributable_bytes, 1234);
        let text = m.render(Gauges {
            browsers: 3,
            permanent: 1,
            trusted: 1,
            bans: 0,
            manifests_computed: 2,
            manifests_teed: 1,
            manifests_aliased: 0,
            piece_cache_bytes: 4096,
            piece_cache_hits: 5,
            piece_cache_misses: 6,
            manifests_forgotten: [1, 2, 3, 4],
            ..Gauges::default()
        });
        assert!(text.contains("tuber_manifests_forgotten_total{reason=\"expired\"} 3\n"));
        assert!(text.contains("tuber_manifests_computed_total 2\n"));
        assert!(text.contains("tuber_manifests_teed_total 1\n"));
        assert!(text.contains("tuber_piece_cache_lookups_total{result=\"miss\"} 6\n"));
        assert!(text.contains("tuber_origin_distributable_bytes_total 1234\n"));
        assert!(text.contains("tuber_peers_connected{role=\"browser\"} 3\n"));
        assert!(text.contains("# TYPE tuber_bans gauge\n"));
        // Every sample line is `name[{labels}] value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().expect("value");
            assert!(value.parse::<u64>().is_ok(), "{line}");
        }
    }
}
