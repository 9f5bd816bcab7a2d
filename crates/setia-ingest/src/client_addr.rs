//! Who is calling: the peer address, or, behind a trusted proxy, the address the proxy
//! reports in X-Forwarded-For. Nobody else's X-Forwarded-For is believed.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// A comma-separated list of addresses and networks (`103.236.201.178, 10.0.0.0/8`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressList(Vec<IpNet>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or network")]
pub struct AddressListError(String);

impl FromStr for AddressList {
    type Err = AddressListError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut networks = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let network = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| AddressListError(item.to_owned()))?;
            networks.push(network);
        }
        Ok(AddressList(networks))
    }
}

impl AddressList {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|network| network.contains(&address))
    }
}

/// The caller's address. Behind trusted proxies, X-Forwarded-For is read from the right and
/// the first address that is not a trusted proxy is the client. Every X-Forwarded-For line
/// counts, in order, as one list: a proxy that adds a line of its own instead of appending
/// to the client's must not let the client's line be read as the only hop. `None` when a
/// trusted proxy's header is malformed: such a caller matches no allowlist.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &AddressList) -> Option<IpAddr> {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let lines = headers.get_all("x-forwarded-for");
    if lines.iter().any(|line| line.to_str().is_err()) {
        return None;
    }
    let mut client = peer;
    let hops = lines
        .iter()
        .rev()
        .flat_map(|line| line.to_str().unwrap_or("").rsplit(','));
    for hop in hops {
        let address = hop.trim().parse::<IpAddr>().ok()?.to_canonical();
        client = address;
        if !trusted.contains(address) {
            break;
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn lists_parse_addresses_and_networks() {
        let list: AddressList = "103.236.201.178, 103.28.52.182,10.0.0.0/8".parse().unwrap();
        assert!(list.contains(ip("103.236.201.178")));
        assert!(list.contains(ip("10.9.8.7")));
        assert!(
            list.contains(ip("::ffff:103.28.52.182")),
            "IPv4-mapped IPv6"
        );
        assert!(!list.contains(ip("103.236.201.179")));
        assert!("".parse::<AddressList>().unwrap().is_empty());
        assert!("103.236.201".parse::<AddressList>().is_err());
    }

    fn forwarded(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("x-forwarded-for", line.parse().unwrap());
        }
        headers
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: AddressList = "127.0.0.1, 10.0.0.0/8".parse().unwrap();
        let spoof = forwarded(&["103.236.201.178"]);
        assert_eq!(
            client_address(ip("198.51.100.7"), &spoof, &trusted),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client_address(ip("127.0.0.1"), &spoof, &trusted),
            Some(ip("103.236.201.178"))
        );
        // A client cannot prepend its own claim: the rightmost untrusted hop counts.
        assert_eq!(
            client_address(
                ip("127.0.0.1"),
                &forwarded(&["103.236.201.178, 198.51.100.7, 10.1.1.1"]),
                &trusted
            ),
            Some(ip("198.51.100.7"))
        );
        // Nor by sending a line of its own before the one its proxy adds.
        assert_eq!(
            client_address(
                ip("127.0.0.1"),
                &forwarded(&["103.236.201.178", "198.51.100.7"]),
                &trusted
            ),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client_address(
                ip("127.0.0.1"),
                &forwarded(&["103.236.201.178", "198.51.100.7, 10.1.1.1", "10.2.2.2"]),
                &trusted
            ),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client_address(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            Some(ip("127.0.0.1"))
        );
        for malformed in [&["nonsense"][..], &["198.51.100.7", "nonsense"]] {
            assert_eq!(
                client_address(ip("127.0.0.1"), &forwarded(malformed), &trusted),
                None,
                "{malformed:?}"
            );
        }
        let mut not_text = HeaderMap::new();
        not_text.append(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\xff").unwrap(),
        );
        assert_eq!(client_address(ip("127.0.0.1"), &not_text, &trusted), None);
        assert_eq!(
            client_address(ip("198.51.100.7"), &spoof, &AddressList::default()),
            Some(ip("198.51.100.7"))
        );
    }
}
