//! Signaling connections and messages per client network (see
//! [`crate::network`]): one host, or one /24 of them, cannot take the whole
//! signaling tier. Limits per network, not per connection, because a
//! hostile host opens as many connections as it is allowed, each staying
//! under the per-connection rate, and their messages all land on the one
//! actor of the swarm, in front of everyone else's `want`s. A network may
//! hold `max_connections_per_network` connections, and its connections
//! together may send `network_message_units_per_second` units (a message
//! is 1 unit plus 1 per [`HASHES_PER_UNIT`] piece hashes it lists). The
//! limits are generous (one carrier-grade NAT can put many real viewers
//! behind one address); a viewer refused here still gets the site, only
//! without peer-to-peer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use std::time::Instant;

use tuber_proto::signal::ClientToHub;

use crate::network::network_key;

/// Piece hashes that cost one more unit of a network's message budget.
pub const HASHES_PER_UNIT: usize = 16;

/// What a message costs its network's budget.
pub fn cost(msg: &ClientToHub) -> f64 {
    let hashes = match msg {
        ClientToHub::Have { pieces } | ClientToHub::Lost { pieces } => pieces.len(),
        ClientToHub::Want { pieces, .. } => pieces.len(),
        _ => 0,
    };
    1.0 + (hashes / HASHES_PER_UNIT) as f64
}

/// At least what a message will [`cost`], read from its text before it is
/// parsed: every hash it lists is a JSON string, so its strings bound its
/// hashes. A network past its budget is refused at this price, not at the
/// price of parsing and checking hundreds of hashes per message.
pub fn cost_of_text(text: &str) -> f64 {
    let strings = text.bytes().filter(|&b| b == b'"').count() / 2;
    1.0 + (strings / HASHES_PER_UNIT) as f64
}

/// Connections and message budgets counted per network.
#[derive(Debug)]
pub struct PerNetwork {
    limit: usize,
    /// Units per second and burst of each network's message budget.
    rate: f64,
    burst: f64,
    counts: Mutex<HashMap<u128, Entry>>,
}

#[derive(Debug)]
struct Entry {
    connections: usize,
    tokens: f64,
    at: Instant,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct NetworkPermit {
    owner: Arc<PerNetwork>,
    key: u128,
}

impl PerNetwork {
    /// At most `limit` connections per network (at least 1), whose
    /// messages together cost at most `units_per_second` (burst four
    /// seconds' worth).
    pub fn new(limit: usize, units_per_second: u32) -> Arc<Self> {
        let rate = f64::from(units_per_second.max(1));
        Arc::new(Self {
            limit: limit.max(1),
            rate,
            burst: rate * 4.0,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// A place for a connection from `ip`, unless its network is full.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<NetworkPermit> {
        let key = network_key(ip);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let e = counts.entry(key).or_insert(Entry {
            connections: 0,
            tokens: self.burst,
            at: Instant::now(),
        });
        if e.connections >= self.limit {
            return None;
        }
        e.connections += 1;
        Some(NetworkPermit {
            owner: Arc::clone(self),
            key,
        })
    }

    /// Connections from `ip`'s network now.
    pub fn count(&self, ip: IpAddr) -> usize {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(&network_key(ip)).map_or(0, |e| e.connections)
    }
}

impl NetworkPermit {
    /// Whether this connection's network may send a message of `cost`
    /// units at `now` (then it is charged).
    pub fn allow(&self, now: Instant, cost: f64) -> bool {
        self.with_tokens(now, |tokens| {
            let ok = *tokens >= cost;
            if ok {
                *tokens -= cost;
            }
            ok
        })
    }

    /// Whether the network could pay `cost` at `now`, charging nothing: the
    /// check before a message is parsed (see [`cost_of_text`]).
    pub fn affords(&self, now: Instant, cost: f64) -> bool {
        self.with_tokens(now, |tokens| *tokens >= cost)
    }

    /// Runs `f` on the network's tokens, refilled to `now`.
    fn with_tokens(&self, now: Instant, f: impl FnOnce(&mut f64) -> bool) -> bool {
        let owner = &self.owner;
        let mut counts = owner.counts.lock().unwrap_or_else(|e| e.into_inner());
        let Some(e) = counts.get_mut(&self.key) else {
            return true;
        };
        let elapsed = now.saturating_duration_since(e.at).as_secs_f64();
        e.tokens = (e.tokens + elapsed * owner.rate).min(owner.burst);
        e.at = now.max(e.at);
        f(&mut e.tokens)
    }
}

impl Drop for NetworkPermit {
    fn drop(&mut self) {
        let mut counts = self.owner.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = counts.get_mut(&self.key) {
            e.connections -= 1;
            if e.connections == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_is_full_at_its_limit_and_frees_places() {
        let limits = PerNetwork::new(2, 100);
        let a: IpAddr = "203.0.113.1".parse().expect("ip");
        let b: IpAddr = "203.0.113.200".parse().expect("ip");
        let other: IpAddr = "198.51.100.1".parse().expect("ip");
        let p1 = limits.admit(a).expect("first");
        let _p2 = limits.admit(b).expect("second, same /24");
        assert!(limits.admit(a).is_none(), "the /24 is full");
        assert!(limits.admit(other).is_some(), "another network is not");
        drop(p1);
        assert_eq!(limits.count(a), 1);
        assert!(limits.admit(a).is_some());
    }

    #[test]
    fn a_networks_connections_share_one_message_budget() {
        let limits = PerNetwork::new(10, 10);
        let a: IpAddr = "203.0.113.1".parse().expect("ip");
        let other: IpAddr = "198.51.100.1".parse().expect("ip");
        let (p1, p2, q) = (
            limits.admit(a).expect("p1"),
            limits.admit(a).expect("p2"),
            limits.admit(other).expect("q"),
        );
        let t0 = Instant::now();
        // Burst of 40 units, shared by the network's two connections.
        let allowed = (0..30).filter(|_| p1.allow(t0, 1.0)).count()
            + (0..30).filter(|_| p2.allow(t0, 1.0)).count();
        assert_eq!(allowed, 40);
        assert!(q.allow(t0, 1.0), "another network has its own budget");
        // Refilled at 10 units per second.
        assert!(!p1.allow(t0 + std::time::Duration::from_millis(50), 1.0));
        assert!(p2.allow(t0 + std::time::Duration::from_millis(150), 1.0));
        // A 512-hash `have` costs 33 units.
        let have: ClientToHub = serde_json::from_value(serde_json::json!({
            "type": "have", "pieces": vec!["ab".repeat(32); 512]
        }))
        .expect("have");
        assert_eq!(cost(&have), 33.0);
    }

    #[test]
    fn the_price_read_from_the_text_is_the_cost_or_more() {
        let texts = [
            serde_json::json!({"type": "have", "pieces": vec!["ab".repeat(32); 512]}),
            serde_json::json!({"type": "want", "req": 1, "pieces": vec!["cd".repeat(32); 15]}),
            serde_json::json!({"type": "lost", "pieces": vec!["ef".repeat(32); 16]}),
            serde_json::json!({"type": "pong", "nonce": 7}),
        ];
        for v in texts {
            let text = v.to_string();
            let msg: ClientToHub = serde_json::from_str(&text).expect("message");
            let (price, cost) = (cost_of_text(&text), cost(&msg));
            // Never less (a network past its budget is refused unparsed),
            // and no more than one unit over for the messages that count.
            assert!(
                price >= cost && price <= cost + 1.0,
                "{text:.40}: {price} vs {cost}"
            );
        }
        // Refused before parsing: a network with 10 units left cannot send
        // a 512-hash have, and affording it charges nothing.
        let limits = PerNetwork::new(10, 1);
        let p = limits
            .admit("203.0.113.1".parse().expect("ip"))
            .expect("admit");
        let t0 = Instant::now();
        assert!(p.affords(t0, 4.0) && p.affords(t0, 4.0));
        assert!(!p.affords(t0, 33.0));
        assert!(p.allow(t0, 4.0));
    }
}
