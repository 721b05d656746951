//! Flags of `mesh-proxy init` and the small value types they parse into
//! (port and CIDR lists in Istio's comma-separated form, `*` for "all").

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// What `mesh-proxy init` captures. Defaults match Istio's sidecar: all
/// inbound ports, all outbound destinations, proxy UID/GID 1337.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct InitConfig {
    /// Inbound ports to capture: `*` for all, a comma list, or empty for none.
    #[arg(long, default_value = "*")]
    pub inbound_ports: Selection<u16>,
    /// Inbound ports never captured, added to the proxy's own 15000, 15020,
    /// 15021 and 15090.
    #[arg(long, default_value = "")]
    pub exclude_inbound_ports: List<u16>,
    /// Outbound destinations to capture: `*` for all, or a comma list of CIDRs.
    #[arg(long, default_value = "*")]
    pub include_outbound_cidrs: Selection<Cidr>,
    /// Outbound destinations never captured (comma list of CIDRs).
    #[arg(long, default_value = "")]
    pub exclude_outbound_cidrs: List<Cidr>,
    /// Outbound destination ports never captured (comma list).
    #[arg(long, default_value = "")]
    pub exclude_outbound_ports: List<u16>,
    /// Port of the proxy's inbound capture listener (`virtualInbound`).
    #[arg(long, default_value_t = 15006)]
    pub inbound_capture_port: u16,
    /// Port of the proxy's outbound capture listener (`virtualOutbound`).
    #[arg(long, default_value_t = 15001)]
    pub outbound_capture_port: u16,
    /// UID the proxy runs as; its own traffic is not captured.
    #[arg(long, default_value_t = 1337)]
    pub proxy_uid: u32,
    /// GID the proxy runs as; its own traffic is not captured.
    #[arg(long, default_value_t = 1337)]
    pub proxy_gid: u32,
    /// Print the `iptables-restore` input instead of applying it.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove the rules and chains `init` added instead of adding them.
    #[arg(long)]
    pub cleanup: bool,
}

impl Default for InitConfig {
    fn default() -> InitConfig {
        InitConfig {
            inbound_ports: Selection::All,
            exclude_inbound_ports: List::default(),
            include_outbound_cidrs: Selection::All,
            exclude_outbound_cidrs: List::default(),
            exclude_outbound_ports: List::default(),
            inbound_capture_port: 15006,
            outbound_capture_port: 15001,
            proxy_uid: 1337,
            proxy_gid: 1337,
            dry_run: false,
            cleanup: false,
        }
    }
}

/// `*` (everything) or an explicit comma-separated list (possibly empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection<T> {
    /// `*`: everything.
    All,
    /// Only these; an empty list selects nothing.
    Only(Vec<T>),
}

impl<T: FromStr> FromStr for Selection<T>
where
    T::Err: fmt::Display,
{
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim() == "*" {
            return Ok(Selection::All);
        }
        Ok(Selection::Only(s.parse::<List<T>>()?.0))
    }
}

/// A comma-separated list; the empty string is the empty list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> List<T> {
        List(Vec::new())
    }
}

impl<T: FromStr> FromStr for List<T>
where
    T::Err: fmt::Display,
{
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| item.parse::<T>().map_err(|e| format!("{item:?}: {e}")))
            .collect::<Result<Vec<T>, String>>()
            .map(List)
    }
}

/// An IP network, `198.18.0.0/15` or a bare address (a /32 or /128). Stored
/// with the host bits cleared, as iptables prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// True for an IPv4 network (the only kind the rules are written for).
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("not an IP address: {addr:?}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("prefix length must be 0..={max}, got {p:?}"))?,
        };
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(u32::from(32 - prefix)).unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(u32::from(128 - prefix)).unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}
