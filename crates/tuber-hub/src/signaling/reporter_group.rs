//! The [`ReporterGroup`] a connection's blames for bad pieces count as (the
//! planner bans a peer blamed by `ban_threshold` distinct groups). Browser
//! ids are random per connection, so counting ids would let one person with
//! three tabs ban anyone; counting networks makes that person one reporter.
//!
//! - A trusted permanent peer: its own id (the operator vouched for it).
//! - Anyone else (browsers, untrusted permanent peers): the network of its
//!   address, IPv4 /24 or IPv6 /48. An IPv4 address carried in IPv6
//!   (IPv4-mapped `::ffff:a.b.c.d`, or 6to4 `2002:aabb:ccdd::/48`) counts as
//!   that IPv4 address, so one host cannot be two networks by switching
//!   notation.
//! - Address unknown: its own id.

use std::net::IpAddr;

use tuber_proto::PeerId;

use crate::network::network_key;
use crate::planner::ReporterGroup;

/// The group of a client `peer` connecting from `addr`.
pub(crate) fn reporter_group(peer: PeerId, trusted: bool, addr: Option<IpAddr>) -> ReporterGroup {
    match addr {
        Some(ip) if !trusted => ReporterGroup::Shared(network_key(ip)),
        _ => ReporterGroup::Peer(peer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(addr: &str) -> ReporterGroup {
        let ip: IpAddr = addr.parse().expect("address");
        reporter_group(PeerId::from_bytes([1; 32]), false, Some(ip))
    }

    #[test]
    fn ipv4_slash_24_is_one_network() {
        assert_eq!(group("203.0.113.7"), group("203.0.113.250"));
        assert_ne!(group("203.0.113.7"), group("203.0.114.7"));
        assert_eq!(group("127.0.0.1"), group("127.0.0.2"));
    }

    #[test]
    fn ipv6_slash_48_is_one_network() {
        assert_eq!(group("2001:db8:1::1"), group("2001:db8:1:ffff::9"));
        assert_ne!(group("2001:db8:1::1"), group("2001:db8:2::1"));
    }

    #[test]
    fn ipv4_inside_ipv6_counts_as_ipv4() {
        assert_eq!(group("::ffff:203.0.113.7"), group("203.0.113.9"));
        assert_eq!(group("2002:cb00:7107::1"), group("203.0.113.9"));
        // No family collides with another: 0.0.0.0/24 is not ::/48.
        assert_ne!(group("0.0.0.1"), group("::2"));
    }

    #[test]
    fn trusted_peers_and_unknown_addresses_count_alone() {
        let me = PeerId::from_bytes([2; 32]);
        let ip = Some("203.0.113.7".parse().expect("address"));
        assert_eq!(reporter_group(me, true, ip), ReporterGroup::Peer(me));
        assert_eq!(reporter_group(me, false, None), ReporterGroup::Peer(me));
    }
}
