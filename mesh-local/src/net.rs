//! The pods' network: one Linux bridge per run in the root network
//! namespace, and per pod a network namespace joined to it by a veth pair,
//! like a node's CNI does for Kubernetes pods.
//!
//! ```text
//!  root netns:  PREFIXbr 198.18.N.1/24  (route 198.19.N.0/24 dev PREFIXbr: VIPs never leave)
//!                 ├── PREFIXv1 ══ eth0 198.18.N.11  [netns PREFIX-greeter-v1]
//!                 └── PREFIXv2 ══ eth0 198.18.N.12  [netns PREFIX-messenger-v1]
//! ```
//!
//! Every name starts with the run's prefix `TAG<pid>x<counter>` (`mesh` for
//! `meshctl local up`, `e2e` for the e2e suite), which is how
//! [`crate::cleanup_stale`] tells a run's leftovers from anything else.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use crate::cmd::Cmd;
use crate::LocalError;

/// Linux's limit on interface names (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;

/// Serialises subnet choice between clusters of one test process.
static SUBNET_LOCK: Mutex<()> = Mutex::new(());
static RUN_COUNTER: AtomicU32 = AtomicU32::new(1);

/// A fresh run prefix `TAG<pid>x<counter in base 36>`; callers use
/// different tags (meshctl `mesh`, the e2e suite `e2e`), so runs of the two
/// never mix.
pub fn new_prefix(tag: &str) -> String {
    let n = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}x{}", std::process::id(), base36(n))
}

/// The pid of the run that made `name`, if `name` is one of ours.
pub fn prefix_pid(name: &str, tag: &str) -> Option<u32> {
    let rest = name.strip_prefix(tag)?;
    let (pid, rest) = rest.split_at(rest.find(|c: char| !c.is_ascii_digit())?);
    if !rest.starts_with('x') {
        return None;
    }
    pid.parse().ok()
}

fn base36(mut n: u32) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// The bridge, its subnet and the pods' namespaces and veths of one run.
/// Records each thing as soon as it exists, so teardown after a half-done
/// setup removes exactly what was made.
#[derive(Debug)]
pub struct Net {
    prefix: String,
    subnet: u8,
    bridge: Option<String>,
    forward_rule: Option<Vec<String>>,
    veths: Vec<String>,
    netns: Vec<String>,
}

impl Net {
    /// Makes the bridge on a 198.18.N.0/24 that no route or address uses yet.
    pub fn create(prefix: &str) -> Result<Net, LocalError> {
        let bridge = format!("{prefix}br");
        if bridge.len() > MAX_IFNAME {
            return Err(LocalError::Invalid(format!(
                "interface name {bridge:?} is longer than {MAX_IFNAME}"
            )));
        }
        let mut net = Net {
            prefix: prefix.to_string(),
            subnet: 0,
            bridge: None,
            forward_rule: None,
            veths: Vec::new(),
            netns: Vec::new(),
        };
        match net.make_bridge(&bridge) {
            Ok(()) => Ok(net),
            Err(e) => {
                net.teardown();
                Err(e)
            }
        }
    }

    fn make_bridge(&mut self, bridge: &str) -> Result<(), LocalError> {
        let _guard = SUBNET_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        ip(&["link", "add", bridge, "type", "bridge"])?;
        self.bridge = Some(bridge.to_string());
        let start = (std::process::id() % 254) as u8;
        for attempt in 0..254u8 {
            let n = (start.wrapping_add(attempt) % 254) + 1;
            if subnet_in_use(n)? {
                continue;
            }
            let cidr = format!("198.18.{n}.1/24");
            ip(&["addr", "add", &cidr, "dev", bridge])?;
            // Another run (another process) may have picked N at the same moment.
            let users = ip(&[
                "-4",
                "-o",
                "addr",
                "show",
                "to",
                &format!("198.18.{n}.0/24"),
            ])?;
            if users.lines().count() > 1 {
                ip(&["addr", "del", &cidr, "dev", bridge])?;
                continue;
            }
            self.subnet = n;
            ip(&["link", "set", bridge, "up"])?;
            ip(&["route", "add", &format!("198.19.{n}.0/24"), "dev", bridge])?;
            return self.allow_bridged_forwarding(bridge);
        }
        Err(LocalError::Invalid(
            "no free 198.18.N.0/24 subnet for the test bridge".into(),
        ))
    }

    /// With `br_netfilter` loaded, bridged pod-to-pod traffic passes the root
    /// namespace's FORWARD chain; where its policy is DROP (docker sets that)
    /// the run adds one ACCEPT rule for its own bridge, removed at teardown.
    fn allow_bridged_forwarding(&mut self, bridge: &str) -> Result<(), LocalError> {
        let nf = std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables");
        if nf.map(|v| v.trim() != "1").unwrap_or(true) {
            return Ok(());
        }
        let policy = Cmd::new("iptables").args(["-S", "FORWARD"]).run();
        if !policy.is_ok_and(|p| p.lines().any(|l| l == "-P FORWARD DROP")) {
            return Ok(());
        }
        let rule: Vec<String> = [
            "FORWARD",
            "-i",
            bridge,
            "-o",
            bridge,
            "-m",
            "comment",
            "--comment",
            &self.prefix,
            "-j",
            "ACCEPT",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Cmd::new("iptables").arg("-I").args(rule.clone()).run()?;
        self.forward_rule = Some(rule);
        Ok(())
    }

    /// The bridge's address: the pods' default gateway, where pilot listens.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.subnet, 1)
    }

    /// The address of the `index`-th pod (1-based).
    pub fn pod_ip(&self, index: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.subnet, 10u8.saturating_add(index))
    }

    /// The `index`-th service VIP (1-based), in 198.19.N.0/24.
    pub fn vip(&self, index: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 19, self.subnet, 10u8.saturating_add(index))
    }

    /// The network namespace name of `pod`.
    pub fn netns_name(&self, pod: &str) -> String {
        format!("{}-{pod}", self.prefix)
    }

    /// Makes `pod`'s network namespace with `eth0` on the bridge, `lo` up,
    /// the `index`-th pod address and a default route via the bridge.
    pub fn add_pod(&mut self, pod: &str, index: u8) -> Result<String, LocalError> {
        if !(1..=200).contains(&index) {
            return Err(LocalError::Invalid(format!("too many pods ({index})")));
        }
        let (Some(bridge), ns) = (self.bridge.clone(), self.netns_name(pod)) else {
            return Err(LocalError::Invalid("the bridge is gone".into()));
        };
        let veth = format!("{}v{}", self.prefix, base36(u32::from(index)));
        if veth.len() > MAX_IFNAME {
            return Err(LocalError::Invalid(format!(
                "interface name {veth:?} too long"
            )));
        }
        ip(&["netns", "add", &ns])?;
        self.netns.push(ns.clone());
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])?;
        self.veths.push(veth.clone());
        ip(&["link", "set", &veth, "master", &bridge])?;
        ip(&["link", "set", &veth, "up"])?;
        let addr = format!("{}/24", self.pod_ip(index));
        ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        let gw = self.gateway().to_string();
        ip(&["-n", &ns, "route", "add", "default", "via", &gw])?;
        Ok(ns)
    }

    /// Network namespaces made so far.
    pub fn namespaces(&self) -> &[String] {
        &self.netns
    }

    /// Deletes namespaces, veths, the FORWARD rule and the bridge (its
    /// address and routes go with it). Processes inside the namespaces must
    /// be gone first, or a namespace outlives its name. Returns the failures.
    pub fn teardown(&mut self) -> Vec<LocalError> {
        let mut errors = Vec::new();
        for ns in self.netns.drain(..) {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                errors.push(e);
            }
        }
        for veth in self.veths.drain(..) {
            // Deleting the namespace deletes its end and so the pair, but
            // the kernel does that in the background: a link that vanishes
            // between the check and the delete is gone, as wanted.
            if link_exists(&veth) {
                if let Err(e) = ip(&["link", "del", &veth]) {
                    if link_exists(&veth) {
                        errors.push(e);
                    }
                }
            }
        }
        if let Some(rule) = self.forward_rule.take() {
            if let Err(e) = Cmd::new("iptables").arg("-D").args(rule).run() {
                errors.push(e);
            }
        }
        if let Some(bridge) = self.bridge.take() {
            if let Err(e) = ip(&["link", "del", &bridge]) {
                errors.push(e);
            }
        }
        errors
    }
}

/// Pids of the processes in the network namespaces `netns`.
pub fn netns_pids(netns: &[String]) -> Vec<u32> {
    netns
        .iter()
        .filter_map(|ns| Cmd::new("ip").args(["netns", "pids", ns]).run().ok())
        .flat_map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Runs `ip ARGS` and returns its output.
pub fn ip(args: &[&str]) -> Result<String, LocalError> {
    Cmd::new("ip").args(args.iter().copied()).run()
}

/// True when a link of that name exists in the root namespace.
pub fn link_exists(name: &str) -> bool {
    Cmd::new("ip")
        .args(["link", "show", "dev", name])
        .output()
        .is_ok_and(|o| o.success())
}

/// True when an address or route already covers 198.18.N.0/24 or our VIP
/// range 198.19.N.0/24 (routes shorter than /16, such as default, do not count).
fn subnet_in_use(n: u8) -> Result<bool, LocalError> {
    let ours = [
        (u32::from(Ipv4Addr::new(198, 18, n, 0)), 24),
        (u32::from(Ipv4Addr::new(198, 19, n, 0)), 24),
    ];
    let addrs = ip(&["-4", "-o", "addr", "show"])?;
    let routes = ip(&["-4", "route", "show", "table", "all"])?;
    let taken = addrs
        .lines()
        .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1))
        .chain(routes.lines().filter_map(route_destination))
        .filter_map(parse_cidr)
        .filter(|(_, len)| *len >= 16);
    for (net, len) in taken {
        if ours
            .iter()
            .any(|(o, olen)| overlaps((net, len), (*o, *olen)))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The destination of an `ip route` line (`198.18.0.0/15 dev ...`,
/// `local 127.0.0.1 dev lo table local ...`).
fn route_destination(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    let first = words.next()?;
    match first {
        "local" | "broadcast" | "unreachable" | "blackhole" | "prohibit" | "throw" | "anycast"
        | "multicast" | "unicast" | "nat" => words.next(),
        _ => Some(first),
    }
}

fn parse_cidr(s: &str) -> Option<(u32, u8)> {
    let (addr, len) = s.split_once('/').unwrap_or((s, "32"));
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    Some((u32::from(addr), len))
}

fn overlaps(a: (u32, u8), b: (u32, u8)) -> bool {
    let len = a.1.min(b.1);
    let mask = u32::MAX.checked_shl(u32::from(32 - len)).unwrap_or(0);
    a.0 & mask == b.0 & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_short_unique_and_parse_back() {
        let (a, b) = (new_prefix("e2e"), new_prefix("e2e"));
        assert_ne!(a, b);
        assert_eq!(prefix_pid(&a, "e2e"), Some(std::process::id()));
        assert!(format!("{a}br").len() <= MAX_IFNAME, "{a}");
        assert_eq!(prefix_pid("e2e4194304xzzv1z", "e2e"), Some(4194304));
        assert_eq!(prefix_pid("e2e12-pod", "e2e"), None);
        assert_eq!(prefix_pid("eth0", "e2e"), None);
        assert_eq!(prefix_pid("e2ex1", "e2e"), None);
        assert_eq!(base36(36 * 36 - 1), "zz");
    }

    #[test]
    fn overlap_and_route_parsing() {
        let net = |s| parse_cidr(s).unwrap_or((0, 0));
        assert!(overlaps(net("198.18.7.0/24"), net("198.18.7.11")));
        assert!(overlaps(net("198.18.0.0/16"), net("198.18.7.0/24")));
        assert!(!overlaps(net("198.18.8.0/24"), net("198.18.7.0/24")));
        assert_eq!(
            route_destination("local 127.0.0.1 dev lo"),
            Some("127.0.0.1")
        );
        assert_eq!(
            route_destination("198.18.3.0/24 dev x"),
            Some("198.18.3.0/24")
        );
    }
}
