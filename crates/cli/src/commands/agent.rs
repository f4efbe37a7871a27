//! `kensa agent`: reports this machine's inventory to a kensa server.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// Report this machine's inventory to a kensa server, now and every interval.
///
/// The first run enrolls with a one-time token (an admin creates it with
/// `POST /api/v1/enrollment-tokens`); the per-agent credential it receives is kept in the state
/// directory and used from then on. The interval comes from the server: 30 minutes by default,
/// never shorter.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct AgentArgs {
    /// Server URL, e.g. http://127.0.0.1:8443
    #[arg(long, value_name = "URL")]
    server: String,
    /// One-time enrollment token (needed on the first run only).
    #[arg(long, value_name = "TOKEN", env = "KENSA_ENROLL_TOKEN")]
    enroll_token: Option<String>,
    /// Root filesystem to inventory (e.g. /host when the agent runs in a container).
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Where the agent keeps its credential.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/kensa-agent")]
    state_dir: PathBuf,
    /// Machine name (default: the root's /etc/hostname, else /etc/machine-id).
    #[arg(long)]
    name: Option<String>,
    /// Tag the machine (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// CA certificates (PEM) to trust for an HTTPS server with a private certificate.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Report once and exit (for cron jobs and tests).
    #[arg(long)]
    once: bool,
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("tag {s:?} must be KEY=VALUE")),
    }
}

pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let cfg = kensa_agent::AgentConfig {
        server: args.server,
        enroll_token: args.enroll_token,
        root: args.root,
        state_dir: args.state_dir,
        name: args.name,
        tags: args.tags.into_iter().collect::<BTreeMap<_, _>>(),
        ca_cert: args.ca_cert,
    };
    let mut agent = kensa_agent::Agent::start(cfg)?;
    if args.once {
        let outcome = agent.cycle()?;
        match outcome {
            kensa_agent::CycleOutcome::SentInventory { packages } => eprintln!("machine {}: sent inventory ({packages} packages)", agent.machine_id()),
            kensa_agent::CycleOutcome::Heartbeat => eprintln!("machine {}: inventory unchanged, heartbeat sent", agent.machine_id()),
        }
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("machine {}: reporting every {} minutes", agent.machine_id(), agent.interval().as_secs() / 60);
    agent.run()
}
