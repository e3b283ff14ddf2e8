//! Whom the proxy believes: the `X-Forwarded-For`/`Forwarded` headers of a
//! configured reverse proxy in front of the hub are passed on; anyone
//! else's are dropped, so a client cannot tell the upstream it is another
//! address (and slip past the upstream's IP rules).

use std::net::IpAddr;

/// An address range, `addr/len` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// Parses `192.0.2.0/24`, `::1/128` or a bare address.
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, len) = match text.trim().split_once('/') {
            Some((a, l)) => (a.parse::<IpAddr>().ok()?, l.parse::<u8>().ok()?),
            None => {
                let a = text.trim().parse::<IpAddr>().ok()?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (len <= max).then_some(Self { addr, len })
    }

    /// Whether `ip` is in the range (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => prefix_eq(&net.octets(), &a.octets(), self.len),
            (IpAddr::V6(net), IpAddr::V6(a)) => prefix_eq(&net.octets(), &a.octets(), self.len),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], len: u8) -> bool {
    let (bytes, bits) = ((len / 8) as usize, len % 8);
    if a[..bytes] != b[..bytes] {
        return false;
    }
    bits == 0 || {
        let mask = 0xffu8 << (8 - bits);
        a[bytes] & mask == b[bytes] & mask
    }
}

/// The configured trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// From the config's strings; unparsable entries were refused by the
    /// config check and are skipped here.
    pub fn new(ranges: &[String]) -> Self {
        Self(ranges.iter().filter_map(|r| Cidr::parse(r)).collect())
    }

    /// Whether a request from `ip` may carry forwarding headers we pass on.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// Who a request is really from: walking `X-Forwarded-For` from the
    /// right, past the trusted proxies, to the first address they did not
    /// add themselves. `peer` is the connection's address.
    pub fn client_ip(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let chain: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        let mut client = peer;
        for ip in chain.into_iter().rev() {
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_contain_what_they_should() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let odd = Cidr::parse("192.168.1.128/25").unwrap();
        assert!(odd.contains("192.168.1.200".parse().unwrap()));
        assert!(!odd.contains("192.168.1.100".parse().unwrap()));
        let one = Cidr::parse("::1").unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        for bad in ["10.0.0.0/33", "x", "::/129", "1.2.3.4/-1"] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
        let t = TrustedProxies::new(&["127.0.0.0/8".into(), "::1/128".into()]);
        assert!(t.trusts("127.0.0.1".parse().unwrap()));
        assert!(!t.trusts("203.0.113.7".parse().unwrap()));
    }

    #[test]
    fn the_client_is_the_first_address_no_trusted_proxy_added() {
        let t = TrustedProxies::new(&["127.0.0.0/8".into(), "10.0.0.0/8".into()]);
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "198.51.100.1, 203.0.113.7, 10.0.0.2".parse().unwrap(),
        );
        let lo = "127.0.0.1".parse().unwrap();
        // The spoofable left part is ignored: 203.0.113.7 reached the proxies.
        assert_eq!(
            t.client_ip(lo, &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // From an untrusted peer the header means nothing.
        let far: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(t.client_ip(far, &h), far);
        assert_eq!(t.client_ip(lo, &http::HeaderMap::new()), lo);
    }
}
