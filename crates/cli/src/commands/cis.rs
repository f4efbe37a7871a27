//! `kensa cis`: CIS benchmark scans with SCAP Security Guide content (XCCDF 1.2 + OVAL 5.11).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};

#[derive(Subcommand, Debug)]
pub enum CisCommand {
    /// List the benchmarks and profiles of a SCAP source datastream (id, title, rule count).
    ///
    /// Example: kensa cis profiles /usr/share/xml/scap/ssg/content/ssg-rhel9-ds.xml
    Profiles {
        /// SCAP 1.3 source datastream (e.g. ssg-rhel9-ds.xml from scap-security-guide).
        datastream: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check a machine against one benchmark profile and report each rule's result.
    ///
    /// TARGET is a directory holding a root filesystem (offline: nothing in it is executed, its
    /// absolute symlinks stay inside it) or `/` for the running host. Results use XCCDF's values:
    /// pass, fail, error, unknown, notapplicable, notchecked, notselected, informational, fixed.
    ///
    /// Example: kensa cis scan --content ssg-rhel9-ds.xml --profile cis_server_l1 /mnt/rootfs
    Scan(ScanArgs),
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// SCAP 1.3 source datastream (or a bare XCCDF 1.2 benchmark).
    #[arg(long, value_name = "DATASTREAM")]
    content: PathBuf,
    /// Profile id, full (xccdf_org.ssgproject.content_profile_cis) or short (cis).
    #[arg(long)]
    profile: String,
    /// XCCDF tailoring file whose profiles may extend the datastream's.
    #[arg(long, value_name = "FILE")]
    tailoring: Option<PathBuf>,
    /// Benchmark id, when the datastream holds several.
    #[arg(long)]
    benchmark: Option<String>,
    /// What to check: a root filesystem directory, `/` for this host, or a VM disk image or
    /// snapshot (raw, qcow2, VMDK, VHD, VHDX; read without mounting). `dir:` / `vm:` prefixes force the kind.
    target: String,
    #[command(flatten)]
    disk: crate::target::DiskArgs,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Table,
    Json,
    Html,
    Csv,
}

pub fn run(cmd: CisCommand) -> Result<ExitCode> {
    match cmd {
        CisCommand::Profiles { datastream, json } => {
            let ds = kensa_cis::DataStream::load(&datastream)?;
            let list = kensa_cis::list_profiles(&ds)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for b in list {
                    println!("{}  {}", b.id, b.title);
                    for p in b.profiles {
                        println!("  {:<60} {:>5} rules  {}", p.id, p.rule_count, p.title);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CisCommand::Scan(a) => scan(a),
    }
}

fn scan(a: ScanArgs) -> Result<ExitCode> {
    let target = crate::target::open_target(&a.target, &a.disk)?;
    let live = match target.kind {
        crate::target::TargetKind::Host => true,
        crate::target::TargetKind::Dir | crate::target::TargetKind::Disk => false,
        // A container image is not a machine: CIS benchmarks check a booted system's settings.
        crate::target::TargetKind::Image => bail!("{} is a container image; CIS scans take a root filesystem directory, a disk image or /", target.name),
    };
    for w in &target.warnings {
        eprintln!("warning: {w}");
    }
    let root = target.root;
    let ds = kensa_cis::DataStream::load(&a.content)?;
    let tailoring = match &a.tailoring {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading tailoring file {}", p.display()))?),
        None => None,
    };
    let opts = kensa_cis::ScanOptions { profile: a.profile, benchmark: a.benchmark, tailoring, max_items_per_test: None };
    let report = kensa_cis::scan(&ds, &opts, root, live)?;
    let text = match a.format {
        Format::Table => kensa_cis::report::table(&report),
        Format::Json => kensa_cis::report::json(&report),
        Format::Html => kensa_cis::report::html(&report),
        Format::Csv => kensa_cis::report::csv(&report),
    };
    match &a.output {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => print!("{text}"),
    }
    // Rules whose checks could not run (error) make the results partial.
    if report.rules.iter().any(|r| r.result == "error") {
        return Ok(ExitCode::from(super::EXIT_PARTIAL));
    }
    Ok(ExitCode::SUCCESS)
}
