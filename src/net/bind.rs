//! `--bind`: local source addresses (lists and ranges) spread over connections, so one host
//! passes the ~28k ephemeral ports the kernel has per (source, destination) pair.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Most source addresses one `--bind` may list: far above what a host has, small enough that
/// checking each one at start stays instant.
pub const MAX_BIND_ADDRS: usize = 4096;

/// Why a `--bind` list was refused; each names the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindError {
    /// An item is neither an address nor a range of two addresses.
    NotAnAddress(String),
    /// A range's ends are of different families (IPv4 and IPv6).
    MixedRange(String),
    /// A range ends before it starts.
    BackwardsRange(String),
    /// The list holds more addresses than [`MAX_BIND_ADDRS`].
    TooMany(usize),
    /// An address that cannot be a source (unspecified, multicast or broadcast).
    NotUnicast(IpAddr),
    /// The address is not one of this host's (the kernel refused to bind it).
    NotLocal {
        /// The address.
        addr: IpAddr,
        /// The kernel's reason.
        reason: String,
    },
    /// No source address has the family of any broker address.
    NoFamilyMatch,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::NotAnAddress(item) => write!(
                f,
                "--bind {item:?} is not an IP address or range: give e.g. 127.0.0.2,127.0.0.5 or 127.0.0.2-127.0.0.9"
            ),
            BindError::MixedRange(item) => write!(
                f,
                "--bind {item:?} mixes IPv4 and IPv6: both ends of a range must be of one family"
            ),
            BindError::BackwardsRange(item) => write!(
                f,
                "--bind {item:?} ends before it starts: write the lower address first"
            ),
            BindError::TooMany(n) => write!(
                f,
                "--bind lists {n} addresses, more than {MAX_BIND_ADDRS}: give a shorter range"
            ),
            BindError::NotUnicast(addr) => write!(
                f,
                "--bind {addr} cannot be a source address: give addresses assigned to this host (`ip -br addr`)"
            ),
            BindError::NotLocal { addr, reason } => write!(
                f,
                "--bind {addr} is not an address of this host ({reason}): give addresses from `ip -br addr` (any 127.x.y.z works on loopback)"
            ),
            BindError::NoFamilyMatch => f.write_str(
                "--bind has no address of the broker's family (IPv4/IPv6): add one, or give --host as an address of the other family",
            ),
        }
    }
}

impl std::error::Error for BindError {}

/// Parses `--bind` items: each an address or `FIRST-LAST` range (inclusive).
pub fn parse_bind(items: &[String]) -> Result<Vec<IpAddr>, BindError> {
    let mut out = Vec::new();
    for item in items.iter().flat_map(|i| i.split(',')) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        match item.split_once('-') {
            None => out.push(parse_one(item, item)?),
            Some((first, last)) => {
                let (first, last) = (parse_one(item, first)?, parse_one(item, last)?);
                let (lo, hi) = match (first, last) {
                    (IpAddr::V4(a), IpAddr::V4(b)) => {
                        (u128::from(u32::from(a)), u128::from(u32::from(b)))
                    }
                    (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b)),
                    _ => return Err(BindError::MixedRange(item.to_string())),
                };
                if hi < lo {
                    return Err(BindError::BackwardsRange(item.to_string()));
                }
                let count = hi - lo + 1;
                if count > (MAX_BIND_ADDRS - out.len().min(MAX_BIND_ADDRS)) as u128 {
                    return Err(BindError::TooMany(
                        usize::try_from(count)
                            .unwrap_or(usize::MAX)
                            .saturating_add(out.len()),
                    ));
                }
                for n in lo..=hi {
                    out.push(match first {
                        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
                        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
                    });
                }
            }
        }
        if out.len() > MAX_BIND_ADDRS {
            return Err(BindError::TooMany(out.len()));
        }
    }
    for addr in &out {
        if addr.is_unspecified() || addr.is_multicast() || *addr == IpAddr::V4(Ipv4Addr::BROADCAST)
        {
            return Err(BindError::NotUnicast(*addr));
        }
    }
    Ok(out)
}

fn parse_one(item: &str, text: &str) -> Result<IpAddr, BindError> {
    let text = text.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    text.parse()
        .map_err(|_| BindError::NotAnAddress(item.to_string()))
}

/// Checks that the kernel lets this host bind every address (port 0, no connection made).
pub fn check_local(addrs: &[IpAddr]) -> Result<(), BindError> {
    for &addr in addrs {
        std::net::UdpSocket::bind(SocketAddr::new(addr, 0)).map_err(|e| BindError::NotLocal {
            addr,
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// Keeps the broker addresses some source can reach (same family); errors when none remain.
pub fn reachable(brokers: &[SocketAddr], sources: &[IpAddr]) -> Result<Vec<SocketAddr>, BindError> {
    if sources.is_empty() {
        return Ok(brokers.to_vec());
    }
    let kept: Vec<SocketAddr> = brokers
        .iter()
        .filter(|b| sources.iter().any(|s| s.is_ipv4() == b.is_ipv4()))
        .copied()
        .collect();
    if kept.is_empty() {
        return Err(BindError::NoFamilyMatch);
    }
    Ok(kept)
}

/// The broker address and source address of user `user`'s connections: users go round the
/// broker addresses first, then round the sources of that address's family, so every
/// (source, broker) pair carries an even share.
pub fn route(
    user: u64,
    brokers: &[SocketAddr],
    sources: &[IpAddr],
) -> (SocketAddr, Option<IpAddr>) {
    let n = brokers.len().max(1) as u64;
    let broker = brokers[(user % n) as usize];
    let family: Vec<&IpAddr> = sources
        .iter()
        .filter(|s| s.is_ipv4() == broker.is_ipv4())
        .collect();
    if family.is_empty() {
        return (broker, None);
    }
    let source = *family[((user / n) % family.len() as u64) as usize];
    (broker, Some(source))
}

/// Ephemeral ports the kernel hands out per (source, destination) pair
/// (`net.ipv4.ip_local_port_range`); `None` when it cannot be read.
pub fn ephemeral_ports() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(str::parse::<u64>);
    let (lo, hi) = (it.next()?.ok()?, it.next()?.ok()?);
    Some(hi.saturating_sub(lo) + 1)
}

/// Opens a non-blocking TCP socket from `source` (port chosen by the kernel at connect time,
/// thanks to `IP_BIND_ADDRESS_NO_PORT`, so each source has its own ports per destination) and
/// starts connecting it to `dest`.
pub fn connect_from(dest: SocketAddr, source: IpAddr) -> std::io::Result<mio::net::TcpStream> {
    use std::os::fd::FromRawFd;
    let domain = if dest.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket syscalls on a descriptor this function owns; it is closed on every
    // error path (by the OwnedFd) and handed to std's TcpStream on success.
    unsafe {
        let fd = libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let one: libc::c_int = 1;
        // Best effort: without it (old kernels) bind picks a port now, as bind always did.
        let _ = libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let (storage, len) = sockaddr(SocketAddr::new(source, 0));
        if libc::bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let (storage, len) = sockaddr(dest);
        if libc::connect(fd, (&storage as *const libc::sockaddr_storage).cast(), len) != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(err);
            }
        }
        let std_stream = std::net::TcpStream::from(owned);
        Ok(mio::net::TcpStream::from_std(std_stream))
    }
}

/// A socket address in the C layout the kernel takes.
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data for which all zeroes is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<IpAddr>, BindError> {
        parse_bind(&[text.to_string()])
    }

    #[test]
    fn lists_and_ranges_expand_in_order() {
        let got = parse("127.0.0.2-127.0.0.4, 127.0.0.9").expect("valid");
        let want: Vec<IpAddr> = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.9"]
            .iter()
            .map(|s| s.parse().expect("ip"))
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            parse("::1").expect("v6"),
            vec!["::1".parse::<IpAddr>().expect("ip")]
        );
        assert_eq!(parse("[fd00::1]-[fd00::3]").expect("v6 range").len(), 3);
        assert_eq!(parse("10.0.0.255-10.0.1.0").expect("carry").len(), 2);
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(
            parse("localhost"),
            Err(BindError::NotAnAddress("localhost".into()))
        );
        assert_eq!(
            parse("127.0.0.9-127.0.0.2"),
            Err(BindError::BackwardsRange("127.0.0.9-127.0.0.2".into()))
        );
        assert_eq!(
            parse("127.0.0.1-::1"),
            Err(BindError::MixedRange("127.0.0.1-::1".into()))
        );
        assert!(matches!(
            parse("10.0.0.0-10.255.255.255"),
            Err(BindError::TooMany(_))
        ));
        assert!(matches!(parse("::-ffff::"), Err(BindError::TooMany(_))));
        assert!(matches!(parse("0.0.0.0"), Err(BindError::NotUnicast(_))));
        assert!(matches!(parse("224.0.0.1"), Err(BindError::NotUnicast(_))));
        assert_eq!(
            parse("127.0.0.1-"),
            Err(BindError::NotAnAddress("127.0.0.1-".into()))
        );
    }

    #[test]
    fn loopback_is_local_and_a_documentation_address_is_not() {
        assert_eq!(check_local(&["127.0.0.7".parse().expect("ip")]), Ok(()));
        let err = check_local(&["192.0.2.1".parse().expect("ip")]).expect_err("not ours");
        assert!(matches!(err, BindError::NotLocal { .. }), "{err}");
    }

    #[test]
    fn a_bound_connect_leaves_from_the_source_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let dest = listener.local_addr().expect("addr");
        let source: IpAddr = "127.0.0.3".parse().expect("ip");
        let _stream = connect_from(dest, source).expect("connect");
        let (_, peer) = listener.accept().expect("accept");
        assert_eq!(peer.ip(), source);
    }

    #[test]
    fn routes_cover_every_source_and_broker_pair_evenly() {
        let brokers: Vec<SocketAddr> = vec![
            "127.0.0.1:1".parse().expect("a"),
            "127.0.0.1:2".parse().expect("b"),
        ];
        let sources = parse("127.0.0.2-127.0.0.4").expect("valid");
        let mut counts = std::collections::HashMap::new();
        for user in 0..60 {
            let (b, s) = route(user, &brokers, &sources);
            *counts.entry((b, s.expect("bound"))).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 6);
        assert!(counts.values().all(|&n| n == 10), "{counts:?}");
        assert_eq!(route(3, &brokers, &[]).1, None);
        let v6: Vec<IpAddr> = vec!["::1".parse().expect("ip")];
        assert_eq!(reachable(&brokers, &v6), Err(BindError::NoFamilyMatch));
    }
}
