//! Who is asking: the client address that per-client limits (logins, order lookups)
//! key on. Behind a load balancer or an ingress every request arrives from the proxy,
//! so the address comes from a header the proxy writes (`X-Forwarded-For`), but only
//! when the TCP peer is a proxy this deployment trusts (`TRUSTED_PROXIES`): anyone else
//! can write any address there, and would pick a fresh one for every guess.

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// Where the client address comes from.
#[derive(clap::Args, Clone, Debug)]
pub struct ClientAddressSettings {
    /// Comma-separated CIDRs (or single addresses) of the proxies in front of this
    /// service, e.g. `10.0.0.0/8,192.168.1.10`. A request whose TCP peer is one of them
    /// is counted against the address its CLIENT_IP_HEADER names; empty (the default):
    /// no header is believed and the TCP peer is the client.
    #[arg(long = "trusted-proxies", env = "TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: TrustedProxies,
    /// Header in which trusted proxies name the client: a comma-separated list of
    /// addresses, each proxy appending the one it received from. The right-most
    /// address that is not itself a trusted proxy is the client.
    #[arg(long = "client-ip-header", env = "CLIENT_IP_HEADER",
          default_value = "X-Forwarded-For", value_parser = parse_header_name)]
    pub client_ip_header: HeaderName,
}

fn parse_header_name(value: &str) -> Result<HeaderName, String> {
    HeaderName::from_str(value.trim()).map_err(|_| format!("'{value}' is not a header name"))
}

/// An address block: `10.0.0.0/8`, `fd00::/8`, or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `addr` lies in the block (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || format!("'{s}' is not an address or CIDR block (e.g. 10.0.0.0/8)");
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network = IpAddr::from_str(addr).map_err(|_| bad())?.to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The proxies whose client header is believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(addr))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for TrustedProxies {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .filter(|block| !block.trim().is_empty())
            .map(Cidr::from_str)
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let blocks: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&blocks.join(","))
    }
}

/// Finds the client address of a request; cheap to clone.
#[derive(Clone, Debug)]
pub struct ClientAddresses {
    trusted: TrustedProxies,
    header: HeaderName,
}

impl Default for ClientAddresses {
    /// No proxy trusted: the TCP peer is the client.
    fn default() -> Self {
        Self {
            trusted: TrustedProxies::default(),
            header: HeaderName::from_static("x-forwarded-for"),
        }
    }
}

impl ClientAddresses {
    pub fn new(settings: &ClientAddressSettings) -> Self {
        Self {
            trusted: settings.trusted_proxies.clone(),
            header: settings.client_ip_header.clone(),
        }
    }

    /// The client of a request that came from `peer` with `headers`: `peer` itself
    /// unless it is a trusted proxy; then, walking the header from the right (each
    /// proxy appends the address it received from), the first address that is not a
    /// trusted proxy. An entry that is not an address stops the walk at the trusted
    /// proxy that wrote it, so garbage never becomes a fresh key.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusted.contains(client) {
            return client;
        }
        let entries: Vec<&str> = headers
            .get_all(&self.header)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for entry in entries.into_iter().rev() {
            let Some(addr) = parse_entry(entry) else {
                return client;
            };
            client = addr;
            if !self.trusted.contains(addr) {
                return client;
            }
        }
        client
    }

    /// The key of the per-client limits for a request from `peer` (the TCP peer, when
    /// the server recorded it) with `headers`; requests with no recorded peer (a router
    /// called in-process) share one key.
    pub fn key(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> String {
        peer.map_or_else(
            || "unknown".to_owned(),
            |peer| self.client(peer.ip(), headers).to_string(),
        )
    }

    /// [`ClientAddresses::client`] of `request`, whose TCP peer the server recorded
    /// (`ConnectInfo`); `None` when it did not (a router called in-process).
    pub fn of<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        let ConnectInfo(peer) = request.extensions().get::<ConnectInfo<SocketAddr>>()?;
        Some(self.client(peer.ip(), request.headers()))
    }

    /// The header and value to send when this service passes a request from `peer` on
    /// to another service of the platform, so that one (trusting this one as a proxy)
    /// counts it against the same client: the header as received plus `peer` when
    /// `peer` is a trusted proxy, otherwise `peer` alone (what an untrusted caller
    /// wrote there proves nothing).
    pub fn forwarded(&self, peer: IpAddr, headers: &HeaderMap) -> (HeaderName, HeaderValue) {
        let peer = peer.to_canonical();
        let mut value = String::new();
        if self.trusted.contains(peer) {
            for received in headers
                .get_all(&self.header)
                .iter()
                .filter_map(|v| v.to_str().ok())
            {
                value.push_str(received);
                value.push_str(", ");
            }
        }
        value.push_str(&peer.to_string());
        // Visible ASCII plus an address always makes a header value; were it not, an
        // entry that is no address stops the other service's walk at this service.
        let value = HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("unknown"));
        (self.header.clone(), value)
    }
}

/// One entry of the header: `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:80`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    IpAddr::from_str(entry)
        .or_else(|_| SocketAddr::from_str(entry).map(|s| s.ip()))
        .ok()
        .map(|a| a.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(trusted: &str) -> ClientAddresses {
        ClientAddresses {
            trusted: trusted.parse().unwrap(),
            header: HeaderName::from_static("x-forwarded-for"),
        }
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn with_no_trusted_proxy_the_header_is_ignored_and_the_peer_is_the_client() {
        let a = addresses("");
        assert_eq!(
            a.client(ip("203.0.113.9"), &headers(&["198.51.100.1"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_header_from_an_untrusted_peer_is_ignored() {
        let a = addresses("10.0.0.0/8");
        assert_eq!(
            a.client(ip("203.0.113.9"), &headers(&["198.51.100.1"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_address_is_the_client() {
        let a = addresses("10.0.0.0/8, 192.168.1.10");
        // The client wrote a spoofed first entry; the ingress appended the real one.
        let h = headers(&["1.1.1.1, 198.51.100.7", "192.168.1.10"]);
        assert_eq!(a.client(ip("10.1.2.3"), &h), ip("198.51.100.7"));
        assert_eq!(a.client(ip("::ffff:10.1.2.3"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn ports_and_brackets_are_read_and_garbage_stops_at_the_proxy_that_wrote_it() {
        let a = addresses("10.0.0.0/8,fd00::/8");
        assert_eq!(
            a.client(ip("10.0.0.1"), &headers(&["[2001:db8::1]:443"])),
            ip("2001:db8::1")
        );
        assert_eq!(
            a.client(ip("10.0.0.1"), &headers(&["198.51.100.1:80"])),
            ip("198.51.100.1")
        );
        assert_eq!(
            a.client(ip("fd00::1"), &headers(&["unknown"])),
            ip("fd00::1")
        );
        assert_eq!(a.client(ip("10.0.0.1"), &headers(&[])), ip("10.0.0.1"));
    }

    #[test]
    fn what_is_passed_on_is_the_peer_appended_only_to_a_trusted_header() {
        let a = addresses("127.0.0.1");
        let h = headers(&["198.51.100.1"]);
        let (_, trusted) = a.forwarded(ip("127.0.0.1"), &h);
        assert_eq!(trusted, "198.51.100.1, 127.0.0.1");
        let (_, untrusted) = a.forwarded(ip("203.0.113.9"), &h);
        assert_eq!(untrusted, "203.0.113.9");
    }

    #[test]
    fn blocks_parse_strictly() {
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("10.0.0/8".parse::<Cidr>().is_err());
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        let block: Cidr = "192.168.0.0/16".parse().unwrap();
        assert!(block.contains(ip("192.168.77.1")) && !block.contains(ip("192.169.0.1")));
        let everything: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(everything.contains(ip("8.8.8.8")) && !everything.contains(ip("::1")));
    }
}
