//! `kensa scan TARGET`: inventory a target, match it against the vulnerability database, report
//! findings (Inspector-shaped) as a table, JSON, SARIF or CycloneDX.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use kensa_matcher::{MatchOptions, Severity};
use kensa_report::filter::Filters;
use kensa_report::{DatabaseInfo, Format, ScanReport};

use super::{EXIT_ERROR, EXIT_OK, EXIT_PARTIAL};
use crate::target::{open_target, TargetKind};

/// Find vulnerable packages in a target.
///
/// TARGET is a directory holding a root filesystem, `/` for this host, a container image
/// archive (`docker save` tarball, OCI layout) or a disk image; a prefix forces the kind
/// (`dir:`, `image:`, `host:`). kensa reads the OS and language packages, matches each against
/// the local vulnerability database (see `kensa db update`) and prints one finding per
/// vulnerability and affected package, with the fixed version and the command that installs it.
///
/// Examples:
///   kensa db update && kensa scan /
///   kensa scan --format sarif --output kensa.sarif ./rootfs
///   kensa scan --severity CRITICAL,HIGH --ignore-unfixed --exit-code 1 image.tar
///
/// Ignore file (--ignore-file, default ./.kensaignore when present): one rule per line,
/// `ID [PACKAGE...] [exp:YYYY-MM-DD] [# reason]`, or YAML
/// `vulnerabilities: [{id, packages, expires, reason}]`. Ignored findings and findings a VEX
/// document (--vex, OpenVEX or CycloneDX) marks not_affected/fixed are suppressed: listed with
/// status SUPPRESSED in JSON, left out of the table, SARIF and CycloneDX, never counted for
/// --exit-code.
///
/// Exit codes: 0 success; N (--exit-code N) active findings remain after the filters; 2 invalid
/// input, unreadable target or no vulnerability database; 3 the scan completed but some package
/// database could not be read.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ScanArgs {
    /// What to scan: a directory, `/`, an image archive or a disk image.
    pub target: String,
    #[command(flatten)]
    pub disk: crate::target::DiskArgs,
    /// The vulnerability database. Default: $XDG_CACHE_HOME/kensa/vuln.db (~/.cache/kensa/vuln.db).
    #[arg(long, value_name = "PATH", env = "KENSA_DB")]
    pub db: Option<PathBuf>,
    /// Run `kensa db update` before scanning (downloads the public feeds).
    #[arg(long)]
    pub update_db: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    /// Write to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Where to look for language packages: `all` paths, `agent` (Amazon Inspector's /usr/lib,
    /// /usr/lib64, /usr/local/lib, /usr/local/lib64 plus each --path) or `off`. Default: `agent`
    /// for the live host `/`, `all` for anything else.
    #[arg(long, value_enum, value_name = "MODE")]
    pub deep_inspection: Option<super::sbom::DeepInspectionArg>,
    /// Another directory to inspect in `agent` mode (repeatable, at most 5; absolute, no `..`).
    #[arg(long = "path", value_name = "DIR")]
    pub paths: Vec<String>,
    /// Only report these severities (comma-separated: CRITICAL,HIGH,MEDIUM,LOW,INFORMATIONAL,UNTRIAGED).
    #[arg(long, short, value_delimiter = ',', value_name = "LIST")]
    pub severity: Vec<String>,
    /// Exit with this code when findings remain after the filters (e.g. 1 to fail a CI job).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub exit_code: u8,
    /// Leave out vulnerabilities that have no fixed version yet.
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// Ignore rules (see above). Default: ./.kensaignore when it exists.
    #[arg(long, value_name = "FILE")]
    pub ignore_file: Option<PathBuf>,
    /// OpenVEX or CycloneDX VEX document; not_affected/fixed statements suppress findings. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub vex: Vec<PathBuf>,
    /// Also match language packages that an OS package installed (normally covered by the OS
    /// package's advisories).
    #[arg(long)]
    pub include_os_owned: bool,
    /// No progress bar on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// When done, print one line to stderr: bytes read from the target (disk images) and their
    /// share of what the image files allocate, blocks fetched, files opened and the elapsed time.
    #[arg(long)]
    pub stats: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// Findings grouped by package, with a summary line
    Table,
    /// kensa JSON: Inspector-shaped findings plus target, OS and database information
    Json,
    /// SARIF 2.1.0 (GitHub code scanning and other SARIF viewers)
    Sarif,
    /// CycloneDX 1.6 JSON: the inventory with its vulnerabilities
    CyclonedxJson,
}

fn today() -> String {
    kensa_vulndb::now_rfc3339()[..10].to_string()
}

pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let db_path = args.db.clone().unwrap_or_else(kensa_vulndb::default_path);
    let mut severities = Vec::new();
    for s in &args.severity {
        match Severity::parse(s) {
            Some(sev) => severities.push(sev),
            None => bail!("--severity: unknown severity {s:?} (expected CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL or UNTRIAGED)"),
        }
    }
    let ignore_path = args.ignore_file.clone().or_else(|| Some(PathBuf::from(".kensaignore")).filter(|p| p.is_file()));
    let ignore_rules = match &ignore_path {
        Some(p) => kensa_report::filter::read_ignore_file(p)?,
        None => Vec::new(),
    };
    let mut vex = Vec::new();
    for v in &args.vex {
        vex.extend(kensa_report::filter::read_vex(v)?);
    }
    if args.update_db {
        let mut cfg = kensa_vulndb::update::UpdateConfig::new(db_path.clone());
        cfg.progress = !args.no_progress && std::io::stderr().is_terminal();
        kensa_vulndb::update::update(&cfg).with_context(|| format!("updating the vulnerability database {}", db_path.display()))?;
    }
    let db = match kensa_vulndb::VulnDb::open(&db_path) {
        Ok(db) => db,
        Err(kensa_vulndb::Error::Missing(p)) => {
            eprintln!(
                "error: no vulnerability database at {p}.\n\
                 Download one with `kensa db update` (or scan with `--update-db`); offline, build one from \
                 feed files with `kensa db import FILE...`. `--db PATH` or KENSA_DB selects another file."
            );
            return Ok(ExitCode::from(EXIT_ERROR));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot open the vulnerability database {}", db_path.display())),
    };

    let target = open_target(&args.target, &args.disk)?;
    let deep_inspection = super::sbom::deep_inspection_policy(args.deep_inspection, &args.paths, target.kind == TargetKind::Host)?;
    for w in &target.warnings {
        eprintln!("warning: {w}");
    }
    let show_progress = !args.no_progress && std::io::stderr().is_terminal();
    let spinner = show_progress.then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_message(format!("reading packages in {}", target.name));
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    });
    let opts = kensa_inventory::ScanOptions { target_name: Some(target.name.clone()), deep_inspection, ..Default::default() };
    let inv = kensa_inventory::scan(&target.root, &opts);
    let running_kernel = if target.kind == TargetKind::Host {
        std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    } else {
        None
    };
    let match_opts = MatchOptions { include_os_owned: args.include_os_owned, running_kernel };
    if let Some(pb) = &spinner {
        pb.finish_and_clear();
    }
    let bar = show_progress.then(|| {
        let pb = indicatif::ProgressBar::new(inv.packages.len() as u64);
        pb.set_style(indicatif::ProgressStyle::with_template("matching {bar:30} {pos}/{len} packages").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()));
        pb
    });
    let mut progress = |done: usize, _total: usize| {
        if let Some(pb) = &bar {
            pb.set_position(done as u64);
        }
    };
    let matched = kensa_matcher::match_inventory(&db, &inv, &match_opts, &mut progress).context("matching packages against the vulnerability database")?;
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let filters = Filters { severities, ignore_unfixed: args.ignore_unfixed, ignore_rules, vex, today: today() };
    let findings = filters.apply(matched.findings);
    let mut warnings: Vec<String> = inv.warnings.iter().map(|w| format!("{}: {}: {}", w.cataloger, w.path, w.message)).collect();
    warnings.extend(matched.warnings);
    let report = ScanReport {
        target: inv.target.clone(),
        os: inv.os.clone(),
        database: DatabaseInfo { path: db_path.display().to_string(), last_update: db.meta("last_update")?, os_ecosystems: matched.os_ecosystems },
        packages: inv.packages.len(),
        packages_matched: matched.packages_matched,
        findings,
        warnings,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let format = match args.format {
        FormatArg::Table => Format::Table,
        FormatArg::Json => Format::Json,
        FormatArg::Sarif => Format::Sarif,
        FormatArg::CyclonedxJson => Format::CycloneDxJson,
    };
    match &args.output {
        Some(path) => {
            let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = BufWriter::new(file);
            kensa_report::write(format, &report, &inv, false, &mut out).with_context(|| format!("writing {}", path.display()))?;
            out.flush().with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            let mut out = BufWriter::new(stdout.lock());
            let written = kensa_report::write(format, &report, &inv, color, &mut out).and_then(|_| out.flush());
            match written {
                // `kensa scan / | head`: the reader left; not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other.context("writing to standard output")?,
            }
        }
    }
    if format != Format::Table {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
    }
    if args.stats {
        eprintln!("{}", super::sbom::stats_line(&target.root, started.elapsed()));
    }
    if args.exit_code != 0 && report.active().next().is_some() {
        return Ok(ExitCode::from(args.exit_code));
    }
    Ok(ExitCode::from(if inv.is_partial() { EXIT_PARTIAL } else { EXIT_OK }))
}
