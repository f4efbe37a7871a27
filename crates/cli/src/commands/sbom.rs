//! `kensa sbom TARGET`: the inventory of a target as an SBOM (CycloneDX, SPDX or kensa JSON).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use kensa_inventory::lang::{DeepInspection, DeepInspectionMode};
use kensa_sbom::{DocumentInfo, Format};

use super::{EXIT_OK, EXIT_PARTIAL};
use crate::target::{open_target, TargetKind};

/// List everything installed in a target as a software bill of materials.
///
/// TARGET is a directory holding a root filesystem, `/` for this host, a container image
/// archive (`docker save` tarball, OCI image layout directory or tar), or a virtual machine disk
/// image (raw, qcow2, VMDK, VHD, VHDX; GPT/MBR/LVM; ext4 or xfs, read without mounting); the kind is
/// detected from the content, or forced with a prefix: `dir:PATH`, `image:PATH`, `vm:PATH`.
///
/// Exit codes: 0 success; 2 the target cannot be opened; 3 the SBOM was written but some package
/// database could not be read (a warning on stderr names it).
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct SbomArgs {
    /// What to inventory: a directory, `/`, an image archive or a disk image (optionally `dir:` /
    /// `image:` / `vm:` prefixed).
    pub target: String,
    #[command(flatten)]
    pub disk: crate::target::DiskArgs,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = FormatArg::CyclonedxJson)]
    pub format: FormatArg,
    /// Write to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Where to look for language packages (Python, npm, Java, Go, Rust): `all` paths; `agent`:
    /// Amazon Inspector's paths /usr/lib, /usr/lib64, /usr/local/lib, /usr/local/lib64 plus each
    /// --path; `off`: none. Default: `agent` for the live host `/`, `all` for anything else.
    #[arg(long, value_enum, value_name = "MODE")]
    pub deep_inspection: Option<DeepInspectionArg>,
    /// Another directory to inspect in `agent` mode (repeatable, at most 5): absolute, no `..`,
    /// letters, digits, `_`, `-` and one `.` per component, at most 512 characters.
    #[arg(long = "path", value_name = "DIR")]
    pub paths: Vec<String>,
    /// When done, print one line to stderr: bytes read from the target (disk images) and their
    /// share of what the image files allocate, blocks fetched, files opened and the elapsed time.
    #[arg(long)]
    pub stats: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeepInspectionArg {
    /// every path except /proc, /sys, /dev and container runtime storage
    All,
    /// /usr/lib, /usr/lib64, /usr/local/lib, /usr/local/lib64 and the --path directories
    Agent,
    /// no language packages
    Off,
}

/// The deep-inspection policy for a target: validated custom paths, mode defaulting by target kind.
pub fn deep_inspection_policy(mode: Option<DeepInspectionArg>, paths: &[String], live_host: bool) -> anyhow::Result<DeepInspection> {
    let mode = match mode.unwrap_or(if live_host { DeepInspectionArg::Agent } else { DeepInspectionArg::All }) {
        DeepInspectionArg::All => DeepInspectionMode::All,
        DeepInspectionArg::Agent => DeepInspectionMode::Agent,
        DeepInspectionArg::Off => DeepInspectionMode::Off,
    };
    if !paths.is_empty() && mode != DeepInspectionMode::Agent {
        anyhow::bail!("--path only applies to --deep-inspection agent (the default for the live host only)");
    }
    Ok(DeepInspection::new(mode, paths.to_vec())?)
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// CycloneDX 1.6 JSON
    CyclonedxJson,
    /// SPDX 2.3 JSON
    SpdxJson,
    /// kensa's own JSON: every package with every field, and the warnings
    Json,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::CyclonedxJson => Format::CycloneDxJson,
            FormatArg::SpdxJson => Format::SpdxJson,
            FormatArg::Json => Format::Json,
        }
    }
}

pub fn run(args: SbomArgs) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let target = open_target(&args.target, &args.disk)?;
    let deep_inspection = deep_inspection_policy(args.deep_inspection, &args.paths, target.kind == TargetKind::Host)?;
    for w in &target.warnings {
        eprintln!("warning: {w}");
    }
    let opts = kensa_inventory::ScanOptions { target_name: Some(target.name.clone()), deep_inspection, ..Default::default() };
    let inv = kensa_inventory::scan(&target.root, &opts);
    for w in &inv.warnings {
        eprintln!("warning: {}: {}: {}", w.cataloger, w.path, w.message);
    }
    let doc = DocumentInfo::new(env!("CARGO_PKG_VERSION"));
    let format = Format::from(args.format);
    match &args.output {
        Some(path) => {
            let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = BufWriter::new(file);
            kensa_sbom::write(format, &inv, &doc, &mut out).with_context(|| format!("writing {}", path.display()))?;
            out.flush().with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            kensa_sbom::write(format, &inv, &doc, &mut out).context("writing to standard output")?;
            out.flush().context("writing to standard output")?;
        }
    }
    if args.stats {
        eprintln!("{}", stats_line(&target.root, started.elapsed()));
    }
    Ok(ExitCode::from(if inv.is_partial() { EXIT_PARTIAL } else { EXIT_OK }))
}

/// The `--stats` line: I/O counters where the source keeps them (disk images), and elapsed time.
pub fn stats_line(root: &kensa_fs::Root, elapsed: std::time::Duration) -> String {
    match root.stats() {
        Some(s) => {
            let mib = |b: u64| b as f64 / (1 << 20) as f64;
            let share = match s.allocated_bytes {
                0 => String::new(),
                a => format!(", {:.1}% of the {:.1} MiB the image files allocate", 100.0 * s.bytes_read as f64 / a as f64, mib(a)),
            };
            format!(
                "stats: {} bytes read ({:.1} MiB{share}), {} blocks fetched, {} files opened, {:.3} s elapsed",
                s.bytes_read,
                mib(s.bytes_read),
                s.blocks_fetched,
                s.files_opened,
                elapsed.as_secs_f64()
            )
        }
        None => format!("stats: bytes read not tracked for this target, {:.3} s elapsed", elapsed.as_secs_f64()),
    }
}
