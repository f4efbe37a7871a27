//! `kensa`: the one command-line entry point. Each subcommand lives in `commands/`.

mod commands;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// kensa (検査, "inspection") finds vulnerable packages and misconfigurations on Linux machines.
///
/// It reads a machine's package databases and language packages straight from its files — a
/// directory holding a root filesystem, the live host (`/`), a container image archive or a disk
/// image — matches them against a local vulnerability database built from public feeds, and reports
/// findings. It never runs anything from the target.
#[derive(Parser, Debug)]
#[command(name = "kensa", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace). KENSA_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    #[command(about = "Find vulnerable packages in a root filesystem, /, a container image or a disk image")]
    Scan(commands::scan::ScanArgs),
    #[command(about = "List everything installed in a target as an SBOM (CycloneDX, SPDX or JSON)")]
    Sbom(commands::sbom::SbomArgs),
    /// Build, update, inspect and search the local vulnerability database.
    #[command(subcommand)]
    Db(commands::db::DbCommand),
    /// CIS benchmark scans with SCAP Security Guide content (XCCDF 1.2 + OVAL 5.11), like OpenSCAP.
    #[command(subcommand)]
    Cis(commands::cis::CisCommand),
    /// Run the fleet server (agents, agentless scans of disk images, coverage, findings).
    Server(commands::server::ServerArgs),
    /// Report this machine's inventory to a kensa server on an interval.
    Agent(commands::agent::AgentArgs),
    /// Work with package versions the way each packaging system orders them.
    #[command(subcommand)]
    Version(commands::version::VersionCommand),
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KENSA_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Version(cmd) => commands::version::run(cmd),
        Command::Cis(cmd) => commands::cis::run(cmd),
        Command::Sbom(args) => commands::sbom::run(args),
        Command::Db(cmd) => commands::db::run(cmd),
        Command::Scan(args) => commands::scan::run(args),
        Command::Server(args) => commands::server::run(args),
        Command::Agent(args) => commands::agent::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(commands::EXIT_ERROR)
        }
    }
}
