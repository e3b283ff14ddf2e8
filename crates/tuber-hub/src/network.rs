//! The network an address is in, for limits that must not be dodged by
//! switching addresses within one: IPv4 /24, IPv6 /48 (what one home, one
//! office or one small host typically holds), and an IPv4 address carried
//! in IPv6 (IPv4-mapped `::ffff:a.b.c.d`, 6to4 `2002:aabb:ccdd::/48`) as
//! that IPv4 address, so one host cannot be two networks by notation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An exact, collision-free key of the network `ip` is in: a family tag in
/// bits 64.., the network prefix in the low bits.
pub fn network_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => v4_key(v4),
        IpAddr::V6(v6) => match embedded_v4(&v6) {
            Some(v4) => v4_key(v4),
            None => (6 << 64) | (u128::from(v6) >> 80),
        },
    }
}

fn v4_key(v4: Ipv4Addr) -> u128 {
    (4 << 64) | u128::from(u32::from(v4) >> 8)
}

/// The IPv4 address an IPv4-mapped or 6to4 IPv6 address stands for.
fn embedded_v4(v6: &Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    if s[0] == 0x2002 {
        let [a, b] = s[1].to_be_bytes();
        let [c, d] = s[2].to_be_bytes();
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(addr: &str) -> u128 {
        network_key(addr.parse().expect("address"))
    }

    #[test]
    fn networks() {
        assert_eq!(key("203.0.113.7"), key("203.0.113.250"));
        assert_ne!(key("203.0.113.7"), key("203.0.114.7"));
        assert_eq!(key("2001:db8:1::1"), key("2001:db8:1:ffff::9"));
        assert_ne!(key("2001:db8:1::1"), key("2001:db8:2::1"));
        assert_eq!(key("::ffff:203.0.113.7"), key("203.0.113.9"));
        assert_eq!(key("2002:cb00:7107::1"), key("203.0.113.9"));
        assert_ne!(key("0.0.0.1"), key("::2"));
    }
}
