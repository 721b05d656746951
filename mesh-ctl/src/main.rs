//! `meshctl`, the mesh's command-line interface.
//!
//! It sits outside the flow of DESIGN.md and drives it: `analyze` runs
//! mesh-api's loading and validation offline, `local up/down` starts and
//! stops a whole mesh on this machine (pilot, ingress gateway, apps and
//! their sidecars), and `apply`/`delete` change the running local mesh's
//! config directory, which pilot watches.

mod analyze;
mod apply;
mod config;
mod docs;
mod local;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The mesh's command-line interface.
#[derive(Parser, Debug)]
#[command(name = "meshctl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print meshctl's version.
    Version,
    /// Validate config files offline (Istio YAML); exit 1 on errors.
    Analyze {
        /// Files or directories (their *.yaml / *.yml files) to check together.
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Also read subdirectories of the given directories.
        #[arg(short = 'R', long)]
        recursive: bool,
    },
    /// Run a mesh on this machine, without Kubernetes.
    Local {
        #[command(subcommand)]
        command: local::LocalCommand,
    },
    /// Add or replace objects in the running local mesh's config.
    Apply {
        /// The YAML file with the objects.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// State directory of the local mesh.
        #[arg(long, default_value_os_t = local::default_state_dir())]
        state_dir: PathBuf,
    },
    /// Remove the objects a file names from the running local mesh's config.
    Delete {
        /// The YAML file naming the objects.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// State directory of the local mesh.
        #[arg(long, default_value_os_t = local::default_state_dir())]
        state_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Version => {
            println!("meshctl {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Analyze { files, recursive } => analyze::run(&files, recursive),
        Command::Local { command } => local::run(command),
        Command::Apply { file, state_dir } => apply::apply(&file, &state_dir),
        Command::Delete { file, state_dir } => apply::delete(&file, &state_dir),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs of meshctl itself go to stderr, quiet unless `RUST_LOG` asks.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_local_up_flags() {
        let cli = Cli::try_parse_from([
            "meshctl",
            "local",
            "up",
            "-f",
            "samples/postcard",
            "--ingress-port",
            "18080",
            "--xds-port",
            "18010",
        ])
        .unwrap();
        match cli.command {
            Command::Local {
                command: local::LocalCommand::Up(args),
            } => {
                assert_eq!(args.ingress_port, 18080);
                assert_eq!(args.xds_port, 18010);
                assert_eq!(args.debug_port, 15014);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn analyze_needs_a_file() {
        assert!(Cli::try_parse_from(["meshctl", "analyze"]).is_err());
    }
}
