//! What both modes of `local up` do once their processes run: print where
//! the mesh is, stay in the foreground reporting processes that stop, and
//! turn SIGINT (Ctrl-C), SIGTERM (`local down`) and SIGHUP (the terminal
//! went away) into an orderly stop.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use mesh_local::process::{tail, Exited};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// How long processes get between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

/// Stays up until a signal; reports processes that stop on their own
/// (`exited` returns those that stopped since it was last called).
pub async fn foreground(signals: &mut Signals, mut exited: impl FnMut() -> Vec<Exited>) {
    loop {
        tokio::select! {
            name = signals.recv() => {
                eprintln!("{name} received");
                return;
            }
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                for exited in exited() {
                    eprintln!(
                        "warning: {} exited ({}); last lines of {}:\n{}",
                        exited.name,
                        exited.status,
                        exited.log.display(),
                        tail(&exited.log, 10)
                    );
                }
            }
        }
    }
}

/// Tells the user where the mesh is.
pub fn print_ready(ingress_url: &str, debug_address: &dyn std::fmt::Display, state_dir: &Path) {
    println!("local mesh is up: {ingress_url}");
    println!(
        "  config:  {}  (change it with `meshctl apply -f FILE`)",
        state_dir.join("config").display()
    );
    println!("  logs:    {}", state_dir.join("logs").display());
    println!("  pilot:   http://{debug_address}/debug/configz");
    println!("stop it with Ctrl-C or `meshctl local down`");
}

/// SIGINT, SIGTERM and SIGHUP: each stops the mesh.
pub struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    /// Installs the handlers: from now on these signals only reach `recv`.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            hup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
        })
    }

    /// The name of the next signal received.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}
