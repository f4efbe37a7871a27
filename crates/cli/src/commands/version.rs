//! `kensa version compare`: one comparison, or a batch file of them.

use std::cmp::Ordering;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use kensa_version::Scheme;

#[derive(Subcommand, Debug)]
pub enum VersionCommand {
    /// Compare two versions: prints `<`, `=` or `>` (A relative to B).
    ///
    /// Exit code 0 on success, 2 when a version is invalid for the ecosystem.
    /// With --batch, reads tab-separated rows `A<TAB>B` from FILE (`-` for stdin; a header row
    /// starting `a<TAB>b` is skipped) and prints one line per row: `<`, `=`, `>` or `error: <reason>`.
    #[command(verbatim_doc_comment)]
    Compare {
        /// The packaging system whose ordering to use.
        #[arg(long, short, value_enum)]
        ecosystem: EcosystemArg,
        /// Read pairs from this tab-separated file instead of A and B.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["a", "b"])]
        batch: Option<PathBuf>,
        /// First version.
        #[arg(required_unless_present = "batch", allow_hyphen_values = true)]
        a: Option<String>,
        /// Second version.
        #[arg(required_unless_present = "batch", allow_hyphen_values = true)]
        b: Option<String>,
    },
}

/// Ecosystems as named on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EcosystemArg {
    /// rpm [EPOCH:]VERSION[-RELEASE] (rpmvercmp): RHEL, Fedora, SUSE, Amazon Linux, ...
    Rpm,
    /// dpkg [EPOCH:]UPSTREAM[-REVISION]: Debian, Ubuntu
    Deb,
    /// apk-tools: Alpine
    Apk,
    /// PEP 440 (as pip's `packaging` orders it): Python packages
    Pypi,
    /// SemVer 2.0 as node-semver orders it; npm's loose forms (v1.2.3, =1.2.3, 1.2.3beta) are accepted
    Npm,
    /// Maven ComparableVersion: Java packages
    Maven,
    /// Go module versions (v1.2.3, v1.2.3+incompatible, pseudo-versions); a version without the v prefix is invalid
    Go,
}

impl From<EcosystemArg> for Scheme {
    fn from(e: EcosystemArg) -> Scheme {
        match e {
            EcosystemArg::Rpm => Scheme::Rpm,
            EcosystemArg::Deb => Scheme::Deb,
            EcosystemArg::Apk => Scheme::Apk,
            EcosystemArg::Pypi => Scheme::Pypi,
            EcosystemArg::Npm => Scheme::Npm,
            EcosystemArg::Maven => Scheme::Maven,
            EcosystemArg::Go => Scheme::Go,
        }
    }
}

fn sign(o: Ordering) -> &'static str {
    match o {
        Ordering::Less => "<",
        Ordering::Equal => "=",
        Ordering::Greater => ">",
    }
}

pub fn run(cmd: VersionCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        VersionCommand::Compare { ecosystem, batch: Some(file), .. } => {
            let scheme = Scheme::from(ecosystem);
            let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                let f = std::fs::File::open(&file).with_context(|| format!("cannot open batch file {}", file.display()))?;
                Box::new(std::io::BufReader::new(f))
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            for (i, line) in reader.split(b'\n').enumerate() {
                let line = line.with_context(|| format!("reading {}", file.display()))?;
                let line = String::from_utf8_lossy(&line);
                let line = line.strip_suffix('\r').unwrap_or(&line);
                let mut fields = line.split('\t');
                let (a, b) = (fields.next().unwrap_or(""), fields.next());
                if i == 0 && a == "a" && b == Some("b") {
                    continue; // header row
                }
                match b {
                    None => writeln!(out, "error: row {} has no tab-separated second version", i + 1)?,
                    Some(b) => match kensa_version::compare(scheme, a, b) {
                        Ok(o) => writeln!(out, "{}", sign(o))?,
                        Err(e) => writeln!(out, "error: {e}")?,
                    },
                }
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        VersionCommand::Compare { ecosystem, a, b, .. } => {
            let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
            match kensa_version::compare(ecosystem.into(), &a, &b) {
                Ok(o) => {
                    println!("{}", sign(o));
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(super::EXIT_ERROR))
                }
            }
        }
    }
}
