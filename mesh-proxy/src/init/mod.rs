//! `mesh-proxy init`, the istio-init equivalent: the step before the sidecar
//! starts, which writes the iptables nat rules of the pod's network namespace
//! so that the app's outbound TCP reaches the proxy on 15001 and inbound TCP
//! reaches it on 15006 (DESIGN.md, "Capture"); the proxy then reads the
//! original destination with SO_ORIGINAL_DST.
//!
//! It works on the current network namespace and needs CAP_NET_ADMIN. The
//! rules are applied in one `iptables-restore --noflush` transaction: our
//! chains are (re)declared and flushed and our old jumps deleted in the same
//! input, so a second run replaces the first and a failed run changes nothing.
//! [`cleanup`] deletes exactly our jumps and chains. Only IPv4 is captured
//! (`iptables`, not `ip6tables`); IPv6 entries in CIDR lists are ignored.
//!
//! ```text
//! let cfg = InitConfig { proxy_uid: 1337, ..InitConfig::default() };
//! mesh_proxy::init::run(&cfg)?;   // or cfg.cleanup = true
//! ```

mod config;
mod rules;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::process::{Command, Stdio};

pub use config::{Cidr, InitConfig, List, Selection};
pub use rules::{INBOUND, IN_REDIRECT, OUTPUT, OWN_CHAINS, PROXY_PORTS, REDIRECT};

use rules::NatState;

const IPTABLES_SAVE: &str = "iptables-save";
const IPTABLES_RESTORE: &str = "iptables-restore";

/// Why `init` could not read or write the rules.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The iptables tool could not be started (not installed, not on PATH).
    #[error("cannot run {program}: {source} (is iptables installed?)")]
    Spawn {
        /// The program that failed to start.
        program: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The iptables tool ran and failed (no CAP_NET_ADMIN, rejected rule).
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        /// The program that failed.
        program: &'static str,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Two capture settings contradict each other.
    #[error("invalid init config: {0}")]
    Config(String),
}

/// Does what the flags say: installs capture, or with `--cleanup` calls
/// [`cleanup`]. With `--dry-run` it prints the `iptables-restore` input on
/// stdout and changes nothing.
pub fn run(cfg: &InitConfig) -> Result<(), InitError> {
    if cfg.cleanup {
        return cleanup(cfg);
    }
    validate(cfg)?;
    for cidr in cfg
        .exclude_outbound_cidrs
        .0
        .iter()
        .chain(match &cfg.include_outbound_cidrs {
            Selection::All => &[][..],
            Selection::Only(cidrs) => cidrs,
        })
        .filter(|c| !c.is_ipv4())
    {
        tracing::warn!(%cidr, "IPv6 is not captured; ignoring this CIDR");
    }
    let (current, note) = current_state(cfg.dry_run)?;
    let script = rules::install_script(cfg, &current);
    if cfg.dry_run {
        print!("{note}{script}");
        return Ok(());
    }
    restore(&script)?;
    tracing::info!(
        inbound = cfg.inbound_capture_port,
        outbound = cfg.outbound_capture_port,
        uid = cfg.proxy_uid,
        "iptables capture installed"
    );
    Ok(())
}

/// Removes the jumps to our chains and the chains themselves, leaving every
/// other rule alone. Doing it when nothing is installed is not an error.
pub fn cleanup(cfg: &InitConfig) -> Result<(), InitError> {
    let (current, note) = current_state(cfg.dry_run)?;
    let Some(script) = rules::cleanup_script(&current) else {
        if cfg.dry_run {
            println!("{note}# nothing to remove");
        }
        tracing::info!("no iptables capture rules to remove");
        return Ok(());
    };
    if cfg.dry_run {
        print!("{note}{script}");
        return Ok(());
    }
    restore(&script)?;
    tracing::info!("iptables capture removed");
    Ok(())
}

fn validate(cfg: &InitConfig) -> Result<(), InitError> {
    if cfg.inbound_capture_port == 0 || cfg.outbound_capture_port == 0 {
        return Err(InitError::Config("capture ports must not be 0".into()));
    }
    if cfg.inbound_capture_port == cfg.outbound_capture_port {
        return Err(InitError::Config(format!(
            "inbound and outbound capture ports are both {}",
            cfg.inbound_capture_port
        )));
    }
    Ok(())
}

/// Reads our part of the nat table. A dry run may be made without iptables or
/// privileges; it then assumes nothing is installed and says so in a comment.
fn current_state(dry_run: bool) -> Result<(NatState, String), InitError> {
    match save() {
        Ok(text) => Ok((NatState::parse(&text), String::new())),
        Err(e) if dry_run => Ok((
            NatState::default(),
            format!("# {IPTABLES_SAVE} unavailable ({e}); assuming no earlier rules\n"),
        )),
        Err(e) => Err(e),
    }
}

fn save() -> Result<String, InitError> {
    let out = Command::new(IPTABLES_SAVE)
        .args(["-t", "nat"])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| InitError::Spawn {
            program: IPTABLES_SAVE,
            source,
        })?;
    if !out.status.success() {
        return Err(InitError::Failed {
            program: IPTABLES_SAVE,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn restore(script: &str) -> Result<(), InitError> {
    let spawn_err = |source| InitError::Spawn {
        program: IPTABLES_RESTORE,
        source,
    };
    let mut child = Command::new(IPTABLES_RESTORE)
        .arg("--noflush")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A write error means the tool exited early; its status says why.
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if !out.status.success() {
        return Err(InitError::Failed {
            program: IPTABLES_RESTORE,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}
