//! Which listener and which filter chain take a connection (accept ─►
//! original destination ─► **dispatch** ─► detect ─► **filter chain**).
//! Pure functions over the snapshot, as Envoy does them:
//!
//! ```text
//! dispatch: use_original_dst and original ≠ local?
//!             ├─ listener with bind_to_port=false on exactly IP:PORT ─► it
//!             ├─ else one on 0.0.0.0:PORT (or [::]:PORT)             ─► it
//!             └─ else                                                 ─► the capture listener itself
//! chain:    destination_port ─► server_names ─► transport_protocol ─► application_protocols
//!           (each step keeps the most specific matches, else the chains that
//!            leave the field empty; nothing left ─► default_filter_chain)
//! ```

use std::net::SocketAddr;

use super::detect::Detected;
use crate::model::{FilterChain, FilterChainMatch, Listener, Snapshot};

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
/// `destination_port` depends on what detection finds: some chain that
/// survives the destination_port step matches on SNI, transport or
/// application protocol. Listeners whose chains do not (tcp_proxy-only
/// ports, server-first protocols) never wait for the client to speak.
pub fn needs_detection(listener: &Listener, destination_port: u16) -> bool {
    by_port(listener, destination_port).iter().any(|chain| {
        let m = &chain.matcher;
        !m.server_names.is_empty()
            || m.transport_protocol.is_some()
            || !m.application_protocols.is_empty()
    })
}

/// The filter chain for a connection to `destination` with what detection
/// found, in Envoy's order; the default chain when no chain matches.
pub fn select_chain<'a>(
    listener: &'a Listener,
    destination: SocketAddr,
    detected: &Detected,
) -> Option<&'a FilterChain> {
    let candidates = by_port(listener, destination.port());
    let candidates = by_server_name(candidates, detected.server_name.as_deref());
    let candidates = narrow(
        candidates,
        |m| m.transport_protocol.as_deref() == Some(detected.transport_protocol),
        |m| m.transport_protocol.is_none(),
    );
    let candidates = match detected
        .application_protocols
        .iter()
        .map(|p| {
            candidates
                .iter()
                .copied()
                .filter(|c| c.matcher.application_protocols.contains(p))
                .collect::<Vec<_>>()
        })
        .find(|matched| !matched.is_empty())
    {
        Some(matched) => matched,
        None => candidates
            .into_iter()
            .filter(|c| c.matcher.application_protocols.is_empty())
            .collect(),
    };
    candidates
        .first()
        .copied()
        .or(listener.default_filter_chain.as_ref())
}

/// The filter chain for a plaintext connection to `destination` that was
/// not inspected; see [`select_chain`].
pub fn select_filter_chain(listener: &Listener, destination: SocketAddr) -> Option<&FilterChain> {
    select_chain(listener, destination, &Detected::raw())
}

fn by_port(listener: &Listener, port: u16) -> Vec<&FilterChain> {
    narrow(
        listener.filter_chains.iter().collect(),
        |m| m.destination_port == Some(port),
        |m| m.destination_port.is_none(),
    )
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
