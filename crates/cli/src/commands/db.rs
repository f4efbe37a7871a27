//! `kensa db`: build, update, inspect and search the local vulnerability database.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use kensa_vulndb::update::{Feed, UpdateConfig};
use kensa_vulndb::VulnDb;
use serde_json::json;

use super::{EXIT_ERROR, EXIT_PARTIAL};

/// Exit code of `kensa db search` when the id is not in the database.
pub const EXIT_NOT_FOUND: u8 = 1;

#[derive(Args, Debug)]
pub struct DbLocation {
    /// The database file. Default: $XDG_CACHE_HOME/kensa/vuln.db (~/.cache/kensa/vuln.db).
    #[arg(long, value_name = "PATH", env = "KENSA_DB")]
    db: Option<PathBuf>,
}

impl DbLocation {
    fn path(&self) -> PathBuf {
        self.db.clone().unwrap_or_else(kensa_vulndb::default_path)
    }
}

#[derive(Subcommand, Debug)]
// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum DbCommand {
    /// Download the public vulnerability feeds and rebuild the database.
    ///
    /// Fetches OSV (per-ecosystem all.zip), NVD (JSON 2.0 yearly feeds, checked against their
    /// .meta sha256), CISA KEV, EPSS and the Debian security tracker; with `--source redhat`
    /// also Red Hat CSAF VEX files. Unchanged feeds are skipped (ETag / Last-Modified).
    /// The new data is built in a copy and swapped in only when every download succeeded and
    /// verified, so an interrupted or corrupt download never damages the current database.
    /// Every URL can point at a mirror (flags or KENSA_*_URL variables).
    #[command(verbatim_doc_comment)]
    Update(UpdateArgs),
    /// Import local feed files (air-gapped use); the format is recognised from the content.
    ///
    /// Accepts OSV JSON/YAML records, directories of them, osv.dev all.zip files, tar.gz
    /// archives, NVD API 2.0 JSON, Red Hat CSAF VEX, CISA KEV JSON, EPSS CSV(.gz), the
    /// Debian tracker JSON and DSA/DLA lists, RustSec advisories, Node.js security-wg and
    /// victims-cve-db files. Malformed records are skipped with a warning (exit code 3).
    #[command(verbatim_doc_comment)]
    Import {
        #[command(flatten)]
        location: DbLocation,
        /// Files, directories or archives to import.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Show the database's feeds, record counts and age.
    Status {
        #[command(flatten)]
        location: DbLocation,
        /// Warn when the last update is older than this many days.
        #[arg(long, default_value_t = 7, value_name = "DAYS")]
        max_age: u32,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Show everything known about one vulnerability (CVE, GHSA, ALSA, RHSA, PYSEC, RUSTSEC,
    /// DSA ... or any alias).
    ///
    /// Exit code 1 when the id is not in the database.
    Search {
        #[command(flatten)]
        location: DbLocation,
        /// The vulnerability id.
        id: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum SourceArg {
    Osv,
    /// NVD JSON 2.0 feed files (yearly + modified)
    Nvd,
    /// NVD CVE API 2.0 (paged; incremental after the first run; NVD_API_KEY raises the rate limit)
    NvdApi,
    Kev,
    Epss,
    Debian,
    Redhat,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    location: DbLocation,
    /// Feeds to fetch (comma-separated). Default: osv,nvd,kev,epss,debian. `nvd-api` instead of
    /// `nvd` uses the NVD CVE API 2.0 (set NVD_API_KEY for its higher rate limit).
    #[arg(long, value_enum, value_delimiter = ',')]
    source: Vec<SourceArg>,
    /// OSV ecosystems to fetch (comma-separated, as osv.dev names them). Default: AlmaLinux,
    /// Alpine, Debian, Red Hat, Rocky Linux, Ubuntu, PyPI, npm, Maven, Go, crates.io, RubyGems,
    /// NuGet, Packagist.
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    osv_ecosystem: Vec<String>,
    /// NVD yearly feeds to fetch, as FIRST-LAST (default: 2002 to this year).
    #[arg(long, value_name = "FIRST-LAST")]
    nvd_years: Option<String>,
    /// OSV bucket base URL [default: https://osv-vulnerabilities.storage.googleapis.com].
    #[arg(long, env = "KENSA_OSV_URL", value_name = "URL")]
    osv_url: Option<String>,
    /// NVD JSON 2.0 feed base URL [default: https://nvd.nist.gov/feeds/json/cve/2.0].
    #[arg(long, env = "KENSA_NVD_URL", value_name = "URL")]
    nvd_url: Option<String>,
    /// NVD CVE API 2.0 URL [default: https://services.nvd.nist.gov/rest/json/cves/2.0].
    #[arg(long, env = "KENSA_NVD_API_URL", value_name = "URL")]
    nvd_api_url: Option<String>,
    /// CISA KEV catalog URL.
    #[arg(long, env = "KENSA_KEV_URL", value_name = "URL")]
    kev_url: Option<String>,
    /// EPSS CSV URL [default: https://epss.empiricalsecurity.com/epss_scores-current.csv.gz].
    #[arg(long, env = "KENSA_EPSS_URL", value_name = "URL")]
    epss_url: Option<String>,
    /// Debian security tracker JSON URL.
    #[arg(long, env = "KENSA_DEBIAN_URL", value_name = "URL")]
    debian_url: Option<String>,
    /// Red Hat CSAF VEX base URL [default: https://security.access.redhat.com/data/csaf/v2/vex].
    #[arg(long, env = "KENSA_REDHAT_URL", value_name = "URL")]
    redhat_url: Option<String>,
    /// Attempts per download (retries with exponential backoff on 5xx, 429 and timeouts).
    #[arg(long, default_value_t = 4)]
    attempts: u32,
    /// Seconds before the first retry (doubled each time).
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    retry_delay: f64,
    /// Never draw a progress bar.
    #[arg(long)]
    no_progress: bool,
}

pub fn run(cmd: DbCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DbCommand::Update(args) => update(args),
        DbCommand::Import { location, paths } => import(location.path(), paths),
        DbCommand::Status { location, max_age, format } => status(location.path(), max_age, format),
        DbCommand::Search { location, id, format } => search(location.path(), &id, format),
    }
}

fn update(args: UpdateArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = UpdateConfig::new(args.location.path());
    if !args.source.is_empty() {
        cfg.feeds = args
            .source
            .iter()
            .map(|s| match s {
                SourceArg::Osv => Feed::Osv,
                SourceArg::Nvd => Feed::Nvd,
                SourceArg::NvdApi => Feed::NvdApi,
                SourceArg::Kev => Feed::Kev,
                SourceArg::Epss => Feed::Epss,
                SourceArg::Debian => Feed::Debian,
                SourceArg::Redhat => Feed::Redhat,
            })
            .collect();
    }
    if !args.osv_ecosystem.is_empty() {
        cfg.osv_ecosystems = args.osv_ecosystem;
    }
    if let Some(y) = &args.nvd_years {
        let (a, b) = y.split_once('-').unwrap_or((y, y));
        let (a, b): (u32, u32) = (a.trim().parse().context("--nvd-years")?, b.trim().parse().context("--nvd-years")?);
        if a > b {
            anyhow::bail!("--nvd-years: {a} is after {b}");
        }
        cfg.nvd_years = (a..=b).collect();
    }
    for (field, value) in [
        (&mut cfg.osv_base, args.osv_url),
        (&mut cfg.nvd_base, args.nvd_url),
        (&mut cfg.nvd_api_url, args.nvd_api_url),
        (&mut cfg.kev_url, args.kev_url),
        (&mut cfg.epss_url, args.epss_url),
        (&mut cfg.debian_url, args.debian_url),
        (&mut cfg.redhat_base, args.redhat_url),
    ] {
        if let Some(v) = value {
            *field = v;
        }
    }
    cfg.attempts = args.attempts.max(1);
    cfg.backoff = std::time::Duration::from_secs_f64(args.retry_delay.max(0.0));
    cfg.progress = !args.no_progress;
    let report = kensa_vulndb::update::update(&cfg).with_context(|| {
        format!("update failed; the database at {} was left unchanged", cfg.db_path.display())
    })?;
    eprintln!(
        "updated {} feed(s), {} unchanged; {} records imported, {} withdrawn, {} skipped -> {}",
        report.updated.len(),
        report.unchanged.len(),
        report.import.total(),
        report.import.withdrawn,
        report.import.skipped,
        cfg.db_path.display()
    );
    Ok(ExitCode::from(if report.import.skipped > 0 { EXIT_PARTIAL } else { 0 }))
}

fn import(db_path: PathBuf, paths: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    for p in &paths {
        if !p.exists() {
            eprintln!("error: {}: no such file or directory", p.display());
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    }
    let report = kensa_vulndb::update::import_files(&db_path, &paths)
        .with_context(|| format!("import failed; the database at {} was left unchanged", db_path.display()))?;
    for w in &report.warnings {
        eprintln!("warning: skipped {w}");
    }
    let per_format: Vec<String> = report.imported.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "imported {} records ({}), {} withdrawn, {} skipped -> {}",
        report.total(),
        if per_format.is_empty() { "none".to_string() } else { per_format.join(", ") },
        report.withdrawn,
        report.skipped,
        db_path.display()
    );
    Ok(ExitCode::from(if report.skipped > 0 { EXIT_PARTIAL } else { 0 }))
}

fn status(db_path: PathBuf, max_age: u32, format: Format) -> anyhow::Result<ExitCode> {
    let db = VulnDb::open(&db_path)?;
    let counts = db.counts()?;
    let feeds = db.feeds()?;
    let last = db.meta("last_update")?;
    let age_days = last.as_deref().and_then(kensa_vulndb::days_from_rfc3339).zip(kensa_vulndb::days_from_rfc3339(&kensa_vulndb::now_rfc3339())).map(|(a, b)| b - a);
    let stale = age_days.is_none_or(|d| d > i64::from(max_age));
    if format == Format::Json {
        let out = json!({
            "path": db_path.display().to_string(),
            "schemaVersion": db.schema_version()?,
            "lastUpdate": last,
            "ageDays": age_days,
            "stale": stale,
            "counts": counts,
            "ecosystems": db.ecosystems()?.into_iter().map(|(e, n)| json!({"ecosystem": e, "affected": n})).collect::<Vec<_>>(),
            "feeds": feeds,
            "epssScoreDate": db.meta("epss_score_date")?,
            "kevCatalogVersion": db.meta("kev_catalog_version")?,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("database:     {} (schema {})", db_path.display(), db.schema_version()?);
        println!("last update:  {}", last.as_deref().unwrap_or("never"));
        println!("records:      {} vulnerabilities, {} affected packages, {} KEV, {} EPSS", counts.vulnerabilities, counts.affected, counts.kev, counts.epss);
        for (source, n) in &counts.by_source {
            println!("  {source:<22} {n}");
        }
        println!("feeds:");
        // Red Hat VEX is tracked per file: show one summary line for it.
        let (per_file, whole): (Vec<_>, Vec<_>) = feeds.iter().partition(|f| f.name.starts_with("redhat:"));
        for f in whole {
            println!("  {:<30} {:>8} records  {}", f.name, f.records, f.updated_at);
        }
        if let Some(latest) = per_file.iter().map(|f| f.updated_at.as_str()).max() {
            let records: u64 = per_file.iter().map(|f| f.records).sum();
            println!("  {:<30} {:>8} records  {latest}  ({} files)", "redhat-csaf-vex", records, per_file.len());
        }
    }
    if stale {
        eprintln!(
            "warning: the vulnerability data is {} (limit {max_age} days); run `kensa db update`",
            age_days.map(|d| format!("{d} days old")).unwrap_or_else(|| "of unknown age".into())
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn search(db_path: PathBuf, id: &str, format: Format) -> anyhow::Result<ExitCode> {
    let db = VulnDb::open(&db_path)?;
    let Some(v) = db.vulnerability(id)? else {
        eprintln!("{id}: not found in the vulnerability database {} (try `kensa db update`)", db_path.display());
        return Ok(ExitCode::from(EXIT_NOT_FOUND));
    };
    let out = kensa_vulndb::search::search_json(&db, &v)?;
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}  ({})", v.id, out["source"].as_str().unwrap_or(""));
    if let Some(s) = &v.summary {
        println!("{s}");
    }
    if let Some(d) = &v.details {
        println!("\n{}\n", d.trim());
    }
    let field = |label: &str, value: String| println!("{label:<14} {value}");
    if !v.cwes.is_empty() {
        field("CWEs:", v.cwes.join(", "));
    }
    for s in &kensa_vulndb::search::scores(&db, &v)? {
        let score = s.base_score.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into());
        field(&format!("{:?}:", s.kind), format!("{score}  {}  ({})", s.vector, s.source));
    }
    if let Some(sev) = &v.vendor_severity {
        field("Severity:", sev.clone());
    }
    if let Some(e) = out["epss"].as_object() {
        field("EPSS:", format!("{} (percentile {})", e["score"], e["percentile"]));
    }
    if let Some(k) = out["cisaData"].as_object() {
        field("CISA KEV:", format!("added {}, due {}, ransomware use: {}", k["dateAdded"].as_str().unwrap_or(""), k["dateDue"].as_str().unwrap_or(""), k["knownRansomwareCampaignUse"].as_str().unwrap_or("")));
        field("", format!("action: {}", k["action"].as_str().unwrap_or("")));
    }
    if let Some(p) = &v.published {
        field("Published:", p.clone());
    }
    if let Some(m) = &v.modified {
        field("Modified:", m.clone());
    }
    if !v.aliases.is_empty() {
        field("Aliases:", v.aliases.join(", "));
    }
    if !v.affected.is_empty() {
        println!("\nAffected packages:");
        println!("  {:<40} {:<30} {:<13} fixed in", "ecosystem", "package", "status");
        for a in &v.affected {
            let fixed = a.fixed_versions();
            println!("  {:<40} {:<30} {:<13} {}", a.ecosystem, a.name, a.status.as_str(), if fixed.is_empty() { "-".into() } else { fixed.join(", ") });
        }
    }
    if !v.references.is_empty() {
        println!("\nReferences:");
        for r in &v.references {
            println!("  {}", r.url);
        }
    }
    Ok(ExitCode::SUCCESS)
}
