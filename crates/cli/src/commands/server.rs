//! `kensa server`: the fleet server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

/// Run the fleet server: agents enroll and report to it, machines without an agent are scanned
/// agentless from their disk images, and findings are kept current.
///
/// Every API call needs `Authorization: Bearer TOKEN`. The admin token comes from
/// KENSA_ADMIN_TOKEN or --admin-token-file; otherwise one is generated on first start and the
/// file holding it is printed.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ServerArgs {
    /// Directory for the server's store (created if missing).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Vulnerability database file (default: DIR/vuln.db).
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// File holding the admin token (first line).
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// TOML file of machines without agents, re-read when it changes: `[[machine]]` tables with id,
    /// name, tags, managed (an agent is expected), volumes (disk image paths, or tables with path,
    /// key and key_tags). See README.md, "Fleet server".
    #[arg(long, value_name = "FILE")]
    machines: Option<PathBuf>,
    /// PEM certificate chain: serve HTTPS (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// How often the scheduler looks for work (machines file changes, due agentless scans).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    tick_seconds: u64,
    /// Agentless scans refuse a machine with more volumes than this, reported as
    /// AGENTLESS_INSTANCE_STORAGE_LIMIT_EXCEEDED (Amazon Inspector's limit is 7).
    #[arg(long, value_name = "N", default_value_t = kensa_disk::Limits::default().max_volumes)]
    agentless_max_volumes: usize,
    /// Agentless scans refuse a machine whose volumes hold more than this in all, in bytes or with
    /// a unit: 1200GB, 2TB, 500GiB (Amazon Inspector's limit is 1,200 GB).
    #[arg(long, value_name = "SIZE", default_value_t = kensa_disk::Limits::default().max_total_bytes, value_parser = crate::target::parse_size)]
    agentless_max_disk_size: u64,
}

pub fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let admin_token = match (&args.admin_token_file, std::env::var("KENSA_ADMIN_TOKEN").ok().filter(|t| !t.is_empty())) {
        (Some(f), _) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read admin token file {}", f.display()))?
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string(),
        ),
        (None, env) => env,
    };
    let cfg = kensa_server::ServerConfig {
        data_dir: args.data,
        listen: args.listen,
        vuln_db: args.db,
        admin_token,
        machines_file: args.machines,
        tls: args.tls_cert.zip(args.tls_key),
        tick: Duration::from_secs(args.tick_seconds.max(1)),
        agentless_limits: kensa_disk::Limits {
            max_volumes: args.agentless_max_volumes,
            max_total_bytes: args.agentless_max_disk_size,
            ..kensa_disk::Limits::default()
        },
    };
    let (state, note) = kensa_server::prepare(&cfg)?;
    if let Some(n) = note {
        eprintln!("{n}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    rt.block_on(kensa_server::serve(cfg, state))?;
    Ok(ExitCode::SUCCESS)
}
