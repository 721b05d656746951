//! Which listener and which filter chain take a connection (accept ─►
//! original destination ─► **dispatch** ─► detect ─► **filter chain**).
//! Pure functions over the snapshot, as Envoy does them:
//!
//! ```text
//! dispatch: use_original_dst and original ≠ local?
//!             ├─ listener with bind_to_port=false on exactly IP:PORT ─► it
//!             ├─ else one on 0.0.0.0:PORT (or [::]:PORT)             ─► it
//!             └─ else                                                 ─► the capture listener itself
//! chain:    destination_port ─► destination IP (prefix_ranges, longest) ─► server_names
//!           ─► transport_protocol ─► application_protocols ─► direct source IP
//!           ─► source_type ─► source IP (longest) ─► source port
//!           (each step keeps the most specific matches, else the chains that
//!            leave the field empty; nothing left ─► default_filter_chain;
//!            never back to a wider match once a narrower one was taken)
//! ```

use std::net::{IpAddr, SocketAddr};

use super::detect::Detected;
use crate::model::{CidrRange, FilterChain, FilterChainMatch, Listener, Snapshot, SourceType};

/// The listener that serves a connection accepted on `accepting` whose
/// original destination is `original_dst` (`local` is where it was
/// accepted). Without `use_original_dst`, or when nothing was redirected
/// (`original_dst == local`), it is `accepting` itself.
///
/// A listener whose `traffic_direction` is known only takes connections
/// from a capture listener of the same direction, so the inbound capture
/// listener never hands a call to the workload to an outbound listener
/// that happens to share its port.
pub fn dispatch<'a>(
    snapshot: &'a Snapshot,
    accepting: &'a Listener,
    original_dst: SocketAddr,
    local: SocketAddr,
) -> &'a Listener {
    if !accepting.use_original_dst || original_dst == local {
        return accepting;
    }
    let eligible = |l: &&Listener| {
        !l.bind_to_port
            && match (accepting.traffic_direction, l.traffic_direction) {
                (Some(from), Some(to)) => from == to,
                _ => true,
            }
    };
    let candidates = || snapshot.listeners.values().map(|l| &**l).filter(eligible);
    if let Some(exact) = candidates().find(|l| l.address == original_dst) {
        return exact;
    }
    let wildcard = |v4: bool| {
        candidates().find(|l| {
            l.address.port() == original_dst.port()
                && l.address.ip().is_unspecified()
                && l.address.is_ipv4() == v4
        })
    };
    wildcard(original_dst.is_ipv4())
        .or_else(|| wildcard(!original_dst.is_ipv4()))
        .unwrap_or(accepting)
}

/// Whether choosing a chain of `listener` for a connection to
/// `destination` depends on what detection finds: some chain that survives
/// the destination port and IP steps matches on SNI, transport or
/// application protocol. Listeners whose chains do not (tcp_proxy-only
/// ports, server-first protocols) never wait for the client to speak.
pub fn needs_detection(listener: &Listener, destination: SocketAddr) -> bool {
    let candidates = by_port(listener, destination.port());
    by_longest_prefix(candidates, destination.ip(), |m| &m.prefix_ranges)
        .iter()
        .any(|chain| {
            let m = &chain.matcher;
            !m.server_names.is_empty()
                || m.transport_protocol.is_some()
                || !m.application_protocols.is_empty()
        })
}

/// The addresses of a connection that filter chains match on.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionAddresses {
    /// The original destination (the local address without capture).
    pub destination: SocketAddr,
    /// The peer's address.
    pub source: SocketAddr,
    /// The local address the connection was accepted on.
    pub local: SocketAddr,
}

impl ConnectionAddresses {
    /// The addresses of a connection that was not redirected.
    pub fn direct(source: SocketAddr, local: SocketAddr) -> ConnectionAddresses {
        ConnectionAddresses {
            destination: local,
            source,
            local,
        }
    }

    /// Envoy's `SAME_IP_OR_LOOPBACK`: the peer is on this host.
    fn is_local_source(&self) -> bool {
        let source = self.source.ip().to_canonical();
        source.is_loopback() || source == self.local.ip().to_canonical()
    }
}

/// The filter chain for a connection with what detection found, in Envoy's
/// order (module doc); the default chain when no chain matches.
pub fn select_chain<'a>(
    listener: &'a Listener,
    addresses: &ConnectionAddresses,
    detected: &Detected,
) -> Option<&'a FilterChain> {
    let candidates = by_port(listener, addresses.destination.port());
    let candidates =
        by_longest_prefix(candidates, addresses.destination.ip(), |m| &m.prefix_ranges);
    let candidates = by_server_name(candidates, detected.server_name.as_deref());
    let candidates = narrow(
        candidates,
        |m| m.transport_protocol.as_deref() == Some(detected.transport_protocol),
        |m| m.transport_protocol.is_none(),
    );
    let candidates = by_application_protocol(candidates, &detected.application_protocols);
    // No PROXY protocol filter exists here, so the directly connected peer
    // is the source.
    let candidates = by_longest_prefix(candidates, addresses.source.ip(), |m| {
        &m.direct_source_prefix_ranges
    });
    let wanted = if addresses.is_local_source() {
        SourceType::SameIpOrLoopback
    } else {
        SourceType::External
    };
    let candidates = narrow(
        candidates,
        |m| m.source_type == wanted,
        |m| m.source_type == SourceType::Any,
    );
    let candidates = by_longest_prefix(candidates, addresses.source.ip(), |m| {
        &m.source_prefix_ranges
    });
    let candidates = narrow(
        candidates,
        |m| m.source_ports.contains(&addresses.source.port()),
        |m| m.source_ports.is_empty(),
    );
    candidates
        .first()
        .copied()
        .or(listener.default_filter_chain.as_ref())
}

/// The filter chain for a plaintext connection that was not inspected; see
/// [`select_chain`].
pub fn select_filter_chain<'a>(
    listener: &'a Listener,
    addresses: &ConnectionAddresses,
) -> Option<&'a FilterChain> {
    select_chain(listener, addresses, &Detected::raw())
}

fn by_port(listener: &Listener, port: u16) -> Vec<&FilterChain> {
    narrow(
        listener.filter_chains.iter().collect(),
        |m| m.destination_port == Some(port),
        |m| m.destination_port.is_none(),
    )
}

/// The chains whose ranges hold `ip` with the longest prefix; a chain
/// without ranges counts as `/0` (Envoy files both under the catch-all).
fn by_longest_prefix(
    chains: Vec<&FilterChain>,
    ip: IpAddr,
    ranges: impl Fn(&FilterChainMatch) -> &Vec<CidrRange>,
) -> Vec<&FilterChain> {
    let longest = |chain: &FilterChain| -> Option<u8> {
        let ranges = ranges(&chain.matcher);
        if ranges.is_empty() {
            return Some(0);
        }
        ranges
            .iter()
            .filter(|r| r.contains(ip))
            .map(|r| r.prefix_len)
            .max()
    };
    let scored: Vec<(Option<u8>, &FilterChain)> =
        chains.into_iter().map(|c| (longest(c), c)).collect();
    let Some(best) = scored.iter().filter_map(|(len, _)| *len).max() else {
        return Vec::new();
    };
    scored
        .into_iter()
        .filter(|(len, _)| *len == Some(best))
        .map(|(_, c)| c)
        .collect()
}

/// The chains asking for the first of the connection's protocols that any
/// chain asks for, else the chains that ask for none.
fn by_application_protocol<'a>(
    chains: Vec<&'a FilterChain>,
    protocols: &[String],
) -> Vec<&'a FilterChain> {
    let asked = protocols.iter().map(|p| {
        chains
            .iter()
            .copied()
            .filter(|c| c.matcher.application_protocols.contains(p))
            .collect::<Vec<_>>()
    });
    let mut asked = asked.filter(|matched| !matched.is_empty());
    match asked.next() {
        Some(matched) => matched,
        None => chains
            .into_iter()
            .filter(|c| c.matcher.application_protocols.is_empty())
            .collect(),
    }
}

/// Exact SNI, then `*.suffix` wildcards from the longest suffix down, then
/// chains without server names.
fn by_server_name<'a>(chains: Vec<&'a FilterChain>, sni: Option<&str>) -> Vec<&'a FilterChain> {
    if let Some(sni) = sni {
        let with = |name: &str| -> Vec<&'a FilterChain> {
            chains
                .iter()
                .copied()
                .filter(|c| {
                    c.matcher
                        .server_names
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(name))
                })
                .collect()
        };
        let exact = with(sni);
        if !exact.is_empty() {
            return exact;
        }
        let mut rest = sni;
        while let Some((_, parent)) = rest.split_once('.') {
            let wildcard = with(&format!("*.{parent}"));
            if !wildcard.is_empty() {
                return wildcard;
            }
            rest = parent;
        }
    }
    chains
        .into_iter()
        .filter(|c| c.matcher.server_names.is_empty())
        .collect()
}

/// The chains for which `specific` holds, or if none, those for which
/// `unset` holds (the field is empty and matches anything).
fn narrow(
    chains: Vec<&FilterChain>,
    specific: impl Fn(&FilterChainMatch) -> bool,
    unset: impl Fn(&FilterChainMatch) -> bool,
) -> Vec<&FilterChain> {
    let matched: Vec<_> = chains
        .iter()
        .copied()
        .filter(|c| specific(&c.matcher))
        .collect();
    if !matched.is_empty() {
        return matched;
    }
    chains.into_iter().filter(|c| unset(&c.matcher)).collect()
}

#[cfg(test)]
#[path = "select_tests.rs"]
mod tests;
