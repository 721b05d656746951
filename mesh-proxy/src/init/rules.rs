//! The rule text of `mesh-proxy init`: turns an [`InitConfig`] and the
//! current `iptables-save -t nat` output into `iptables-restore --noflush`
//! input. Pure functions, so the exact rules are unit-tested without root.
//!
//! The shape is Istio's (`istio-iptables`), with our chain names:
//!
//! ```text
//! PREROUTING -p tcp ─► MESH_INBOUND ──(excluded ports: RETURN)──► MESH_IN_REDIRECT ─► REDIRECT :15006
//! OUTPUT     -p tcp ─► MESH_OUTPUT ───(proxy UID/GID, loopback, excluded: RETURN)──► MESH_REDIRECT ─► REDIRECT :15001
//!                          └─(proxy → own pod IP over lo)──► MESH_IN_REDIRECT
//! ```

use std::collections::BTreeSet;

use super::{Cidr, InitConfig, Selection};

/// Chain the inbound jump from `PREROUTING` goes to.
pub const INBOUND: &str = "MESH_INBOUND";
/// Chain that redirects inbound connections to the inbound capture port.
pub const IN_REDIRECT: &str = "MESH_IN_REDIRECT";
/// Chain the outbound jump from `OUTPUT` goes to.
pub const OUTPUT: &str = "MESH_OUTPUT";
/// Chain that redirects outbound connections to the outbound capture port.
pub const REDIRECT: &str = "MESH_REDIRECT";

/// Every chain `init` owns; `cleanup` removes exactly these and the jumps to them.
pub const OWN_CHAINS: [&str; 4] = [INBOUND, IN_REDIRECT, OUTPUT, REDIRECT];

/// Ports of the proxy itself that inbound capture never takes: admin (15000),
/// the agent (15020), health (15021) and Prometheus (15090), as in Istio.
pub const PROXY_PORTS: [u16; 4] = [15000, 15020, 15021, 15090];

/// Source address Istio's inbound passthrough uses toward the app; traffic from
/// it must not be captured again.
const INBOUND_PASSTHROUGH_SRC: &str = "127.0.0.6/32";

/// What of ours is in the nat table now, read from `iptables-save -t nat`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatState {
    /// Our chains that exist, in [`OWN_CHAINS`] order.
    pub own_chains: Vec<String>,
    /// Rules in other chains that jump or go to one of ours, as saved
    /// (`-A PREROUTING -p tcp -j MESH_INBOUND`).
    pub jumps: Vec<String>,
}

impl NatState {
    /// Reads the `*nat` section of `iptables-save` output; other tables are ignored.
    pub fn parse(save: &str) -> NatState {
        let mut in_nat = false;
        let mut chains = BTreeSet::new();
        let mut jumps = Vec::new();
        for line in save.lines().map(str::trim) {
            if let Some(table) = line.strip_prefix('*') {
                in_nat = table == "nat";
                continue;
            }
            if !in_nat {
                continue;
            }
            if let Some(decl) = line.strip_prefix(':') {
                let name = decl.split_whitespace().next().unwrap_or_default();
                if OWN_CHAINS.contains(&name) {
                    chains.insert(name.to_string());
                }
            } else if let Some(rule) = line.strip_prefix("-A ") {
                let chain = rule.split_whitespace().next().unwrap_or_default();
                if !OWN_CHAINS.contains(&chain) && targets_own_chain(rule) {
                    jumps.push(line.to_string());
                }
            }
        }
        let own_chains = OWN_CHAINS
            .iter()
            .filter(|c| chains.contains(**c))
            .map(|c| c.to_string())
            .collect();
        NatState { own_chains, jumps }
    }

    /// True when nothing of ours is installed.
    pub fn is_empty(&self) -> bool {
        self.own_chains.is_empty() && self.jumps.is_empty()
    }
}

/// True when a rule's `-j`/`-g` target is one of our chains.
fn targets_own_chain(rule: &str) -> bool {
    let words: Vec<&str> = rule.split_whitespace().collect();
    words
        .windows(2)
        .any(|w| matches!(w[0], "-j" | "--jump" | "-g" | "--goto") && OWN_CHAINS.contains(&w[1]))
}

/// The `iptables-restore --noflush` input that installs capture, replacing any
/// earlier install (its chains are flushed and its jumps deleted in the same
/// transaction, so running `init` twice leaves one copy).
pub fn install_script(cfg: &InitConfig, current: &NatState) -> String {
    let mut out = Script::new();
    for chain in OWN_CHAINS {
        out.line(format!(":{chain} - [0:0]"));
    }
    out.remove_jumps(current);
    for chain in OWN_CHAINS {
        out.line(format!("-F {chain}"));
    }
    out.line(format!(
        "-A {IN_REDIRECT} -p tcp -j REDIRECT --to-ports {}",
        cfg.inbound_capture_port
    ));
    out.line(format!(
        "-A {REDIRECT} -p tcp -j REDIRECT --to-ports {}",
        cfg.outbound_capture_port
    ));
    inbound_rules(cfg, &mut out);
    outbound_rules(cfg, &mut out);
    out.finish()
}

/// The `iptables-restore --noflush` input that removes our jumps and chains,
/// or `None` when nothing of ours is installed.
pub fn cleanup_script(current: &NatState) -> Option<String> {
    if current.is_empty() {
        return None;
    }
    let mut out = Script::new();
    out.remove_jumps(current);
    for chain in &current.own_chains {
        out.line(format!("-F {chain}"));
    }
    for chain in &current.own_chains {
        out.line(format!("-X {chain}"));
    }
    Some(out.finish())
}

/// Inbound ports that are never captured: the proxy's own plus the configured ones.
fn excluded_inbound(cfg: &InitConfig) -> Vec<u16> {
    let mut ports = PROXY_PORTS.to_vec();
    for p in &cfg.exclude_inbound_ports.0 {
        if !ports.contains(p) {
            ports.push(*p);
        }
    }
    ports
}

/// True when some inbound port is captured at all.
fn captures_inbound(cfg: &InitConfig) -> bool {
    match &cfg.inbound_ports {
        Selection::All => true,
        Selection::Only(ports) => !ports.is_empty(),
    }
}

fn inbound_rules(cfg: &InitConfig, out: &mut Script) {
    if !captures_inbound(cfg) {
        return;
    }
    out.line(format!("-A PREROUTING -p tcp -j {INBOUND}"));
    let excluded = excluded_inbound(cfg);
    match &cfg.inbound_ports {
        Selection::All => {
            for port in &excluded {
                out.line(format!("-A {INBOUND} -p tcp --dport {port} -j RETURN"));
            }
            out.line(format!("-A {INBOUND} -p tcp -j {IN_REDIRECT}"));
        }
        Selection::Only(ports) => {
            for port in ports.iter().filter(|p| !excluded.contains(p)) {
                out.line(format!(
                    "-A {INBOUND} -p tcp --dport {port} -j {IN_REDIRECT}"
                ));
            }
        }
    }
}

fn outbound_rules(cfg: &InitConfig, out: &mut Script) {
    out.line(format!("-A OUTPUT -p tcp -j {OUTPUT}"));
    for port in &cfg.exclude_outbound_ports.0 {
        out.line(format!("-A {OUTPUT} -p tcp --dport {port} -j RETURN"));
    }
    out.line(format!(
        "-A {OUTPUT} -o lo -s {INBOUND_PASSTHROUGH_SRC} -j RETURN"
    ));
    for owner in [
        format!("--uid-owner {}", cfg.proxy_uid),
        format!("--gid-owner {}", cfg.proxy_gid),
    ] {
        // The proxy calling its own pod's IP (a service whose endpoint is this
        // pod) goes out over lo; send it through inbound capture so inbound
        // policy applies, as Istio does. Everything else the proxy sends leaves
        // uncaptured, and the app talking to itself over lo is left alone.
        if captures_inbound(cfg) {
            match &cfg.inbound_ports {
                Selection::Only(ports) => {
                    let excluded = excluded_inbound(cfg);
                    for port in ports.iter().filter(|p| !excluded.contains(p)) {
                        out.line(format!(
                            "-A {OUTPUT} ! -d 127.0.0.1/32 -o lo -p tcp --dport {port} -m owner {owner} -j {IN_REDIRECT}"
                        ));
                    }
                }
                Selection::All => out.line(format!(
                    "-A {OUTPUT} ! -d 127.0.0.1/32 -o lo -m owner {owner} -j {IN_REDIRECT}"
                )),
            }
        }
        out.line(format!("-A {OUTPUT} -o lo -m owner ! {owner} -j RETURN"));
        out.line(format!("-A {OUTPUT} -m owner {owner} -j RETURN"));
    }
    out.line(format!("-A {OUTPUT} -d 127.0.0.1/32 -j RETURN"));
    for cidr in v4_only(&cfg.exclude_outbound_cidrs.0) {
        out.line(format!("-A {OUTPUT} -d {cidr} -j RETURN"));
    }
    match &cfg.include_outbound_cidrs {
        Selection::All => out.line(format!("-A {OUTPUT} -j {REDIRECT}")),
        Selection::Only(cidrs) => {
            for cidr in v4_only(cidrs) {
                out.line(format!("-A {OUTPUT} -d {cidr} -j {REDIRECT}"));
            }
        }
    }
}

/// IPv4 entries only: the rules are written with `iptables`, not `ip6tables`.
fn v4_only(cidrs: &[Cidr]) -> impl Iterator<Item = &Cidr> {
    cidrs.iter().filter(|c| c.is_ipv4())
}

/// An `iptables-restore` input for the nat table, built line by line.
struct Script {
    lines: Vec<String>,
}

impl Script {
    fn new() -> Script {
        Script {
            lines: vec!["*nat".to_string()],
        }
    }

    fn line(&mut self, line: String) {
        self.lines.push(line);
    }

    /// Deletes every jump into our chains found in the current table.
    fn remove_jumps(&mut self, current: &NatState) {
        for jump in &current.jumps {
            if let Some(rule) = jump.strip_prefix("-A ") {
                self.lines.push(format!("-D {rule}"));
            }
        }
    }

    fn finish(mut self) -> String {
        self.lines.push("COMMIT".to_string());
        let mut text = self.lines.join("\n");
        text.push('\n');
        text
    }
}
