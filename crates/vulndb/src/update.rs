//! `kensa db update`: downloads the public feeds and swaps a freshly built database in.
//!
//! The current database (if any) is copied to `<db>.new-<pid>` beside it; each feed is fetched
//! with a conditional request (the ETag / Last-Modified stored in the `feeds` table), verified
//! (published checksums; archives and documents must parse whole), and imported into the copy;
//! the copy is integrity-checked and renamed over the database. Any failure removes the copy, so
//! a failed, partial or corrupt download never replaces a good database.
//!
//! Transient failures (connection errors, timeouts, HTTP 5xx and 429) are retried with
//! exponential backoff.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::import::{import_document_bytes, ImportReport, MAX_DOCUMENT_BYTES};
use crate::{Error, FeedState, Result, VulnDb};

/// Default public locations. Each is overridable (flags, or the env variables in brackets).
pub const OSV_BASE: &str = "https://osv-vulnerabilities.storage.googleapis.com"; // [KENSA_OSV_URL]
pub const NVD_BASE: &str = "https://nvd.nist.gov/feeds/json/cve/2.0"; // [KENSA_NVD_URL]
pub const KEV_URL: &str = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"; // [KENSA_KEV_URL]
pub const EPSS_URL: &str = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"; // [KENSA_EPSS_URL]
pub const DEBIAN_URL: &str = "https://security-tracker.debian.org/tracker/data/json"; // [KENSA_DEBIAN_URL]
pub const REDHAT_BASE: &str = "https://security.access.redhat.com/data/csaf/v2/vex"; // [KENSA_REDHAT_URL]
pub const NVD_API_URL: &str = "https://services.nvd.nist.gov/rest/json/cves/2.0"; // [KENSA_NVD_API_URL]

/// OSV ecosystems fetched by default: the Linux distributions and language ecosystems kensa
/// scans.
pub const DEFAULT_OSV_ECOSYSTEMS: &[&str] = &[
    "AlmaLinux", "Alpine", "Debian", "Red Hat", "Rocky Linux", "Ubuntu", "PyPI", "npm", "Maven", "Go", "crates.io",
    "RubyGems", "NuGet", "Packagist",
];

/// Which feeds to fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feed {
    Osv,
    /// NVD JSON 2.0 feed files (yearly + modified, with `.meta` checksums).
    Nvd,
    /// The NVD CVE API 2.0, paged; after the first run only CVEs modified since the last run
    /// (`lastModStartDate`, 120-day windows). An API key (`NVD_API_KEY`) raises the rate limit.
    NvdApi,
    Kev,
    Epss,
    Debian,
    /// Red Hat CSAF VEX, one file per CVE listed in `changes.csv`; opt-in because a first sync
    /// is tens of thousands of requests (OSV's `Red Hat` ecosystem carries the same data).
    Redhat,
}

impl Feed {
    pub const DEFAULT: &'static [Feed] = &[Feed::Osv, Feed::Nvd, Feed::Kev, Feed::Epss, Feed::Debian];
}

#[derive(Clone, Debug)]
pub struct UpdateConfig {
    pub db_path: PathBuf,
    pub feeds: Vec<Feed>,
    pub osv_base: String,
    pub osv_ecosystems: Vec<String>,
    pub nvd_base: String,
    /// NVD yearly feeds to fetch (plus `modified`); default 2002..=this year.
    pub nvd_years: Vec<u32>,
    pub kev_url: String,
    pub epss_url: String,
    pub debian_url: String,
    pub redhat_base: String,
    pub nvd_api_url: String,
    /// Sent as the `apiKey` header; default `$NVD_API_KEY`.
    pub nvd_api_key: Option<String>,
    /// Pause between API pages (NVD asks for 6 s without a key, 0.6 s with one).
    pub nvd_api_delay: Duration,
    /// Attempts per request (>= 1).
    pub attempts: u32,
    /// First retry delay; doubled each retry.
    pub backoff: Duration,
    pub timeout: Duration,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

impl UpdateConfig {
    /// The official locations, with the `KENSA_*_URL` environment overrides applied.
    pub fn new(db_path: PathBuf) -> UpdateConfig {
        let this_year = crate::now_rfc3339()[..4].parse().unwrap_or(2026);
        UpdateConfig {
            db_path,
            feeds: Feed::DEFAULT.to_vec(),
            osv_base: env_or("KENSA_OSV_URL", OSV_BASE),
            osv_ecosystems: DEFAULT_OSV_ECOSYSTEMS.iter().map(|s| s.to_string()).collect(),
            nvd_base: env_or("KENSA_NVD_URL", NVD_BASE),
            nvd_years: (2002..=this_year).collect(),
            kev_url: env_or("KENSA_KEV_URL", KEV_URL),
            epss_url: env_or("KENSA_EPSS_URL", EPSS_URL),
            debian_url: env_or("KENSA_DEBIAN_URL", DEBIAN_URL),
            redhat_base: env_or("KENSA_REDHAT_URL", REDHAT_BASE),
            nvd_api_url: env_or("KENSA_NVD_API_URL", NVD_API_URL),
            nvd_api_key: std::env::var("NVD_API_KEY").ok().filter(|k| !k.is_empty()),
            nvd_api_delay: if std::env::var_os("NVD_API_KEY").is_some() { Duration::from_millis(600) } else { Duration::from_secs(6) },
            attempts: 4,
            backoff: Duration::from_secs(2),
            timeout: Duration::from_secs(900),
            progress: true,
        }
    }
}

/// What an update did per feed.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateReport {
    /// Feeds downloaded and imported.
    pub updated: Vec<String>,
    /// Feeds the server said were unchanged (HTTP 304).
    pub unchanged: Vec<String>,
    pub import: ImportReport,
}

/// One fetched body, or `None` for 304 Not Modified.
struct Fetched {
    body: Vec<u8>,
    etag: Option<String>,
    last_modified: Option<String>,
}

struct Client {
    agent: ureq::Agent,
    attempts: u32,
    backoff: Duration,
    bar: indicatif::ProgressBar,
}

impl Client {
    fn new(cfg: &UpdateConfig) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout))
            .timeout_connect(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .user_agent(concat!("kensa/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let bar = if cfg.progress {
            let b = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
            b.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg:40!} {bytes:>10} {bytes_per_sec:>12}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            b
        } else {
            indicatif::ProgressBar::hidden()
        };
        Client { agent, attempts: cfg.attempts.max(1), backoff: cfg.backoff, bar }
    }

    /// GET with retries. `previous` supplies the validators for a conditional request.
    fn get(&self, url: &str, previous: Option<&FeedState>) -> Result<Option<Fetched>> {
        self.get_with(url, previous, &[])
    }

    fn get_with(&self, url: &str, previous: Option<&FeedState>, headers: &[(&str, &str)]) -> Result<Option<Fetched>> {
        let mut delay = self.backoff;
        let mut last_err = String::new();
        for attempt in 1..=self.attempts {
            if attempt > 1 {
                tracing::warn!("{url}: {last_err}; retrying in {delay:?} (attempt {attempt}/{})", self.attempts);
                std::thread::sleep(delay);
                delay *= 2;
            }
            let mut req = self.agent.get(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(p) = previous {
                if let Some(etag) = &p.etag {
                    req = req.header("If-None-Match", etag);
                }
                if let Some(lm) = &p.last_modified {
                    req = req.header("If-Modified-Since", lm);
                }
            }
            let resp = match req.call() {
                Ok(r) => r,
                Err(e) => {
                    last_err = e.to_string();
                    continue;
                }
            };
            let status = resp.status().as_u16();
            if status == 304 {
                return Ok(None);
            }
            if status >= 500 || status == 429 {
                last_err = format!("HTTP {status}");
                continue;
            }
            if status != 200 {
                return Err(Error::Http { url: url.into(), reason: format!("HTTP {status}") });
            }
            let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from);
            let etag = header("etag");
            let last_modified = header("last-modified");
            let expected_len = header("content-length").and_then(|v| v.parse::<u64>().ok());
            self.bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
            self.bar.set_position(0);
            let mut reader = resp.into_body().into_with_config().limit(MAX_DOCUMENT_BYTES).reader();
            let mut body = Vec::new();
            let mut chunk = vec![0u8; 64 * 1024];
            let read_result: std::io::Result<()> = loop {
                match reader.read(&mut chunk) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        body.extend_from_slice(&chunk[..n]);
                        self.bar.inc(n as u64);
                    }
                    Err(e) => break Err(e),
                }
            };
            if let Err(e) = read_result {
                last_err = format!("download interrupted: {e}");
                continue;
            }
            if let Some(n) = expected_len {
                if body.len() as u64 != n {
                    last_err = format!("truncated download: {} of {n} bytes", body.len());
                    continue;
                }
            }
            return Ok(Some(Fetched { body, etag, last_modified }));
        }
        Err(Error::Http { url: url.into(), reason: format!("{last_err} (after {} attempts)", self.attempts) })
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The temporary file the update builds, removed unless it was renamed into place.
struct TempDb(PathBuf);

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(self.0.with_extension("new-journal"));
    }
}

/// Runs an update. On success the database at `cfg.db_path` is replaced atomically; on failure
/// it is left exactly as it was.
pub fn update(cfg: &UpdateConfig) -> Result<UpdateReport> {
    let dir = cfg.db_path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = TempDb(dir.join(format!(
        "{}.new-{}",
        cfg.db_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "vuln.db".into()),
        std::process::id()
    )));
    let _ = std::fs::remove_file(&tmp.0);
    if cfg.db_path.is_file() {
        // Start from the current data so unchanged feeds (304) keep their records. A current
        // file we cannot read is rebuilt from scratch.
        match VulnDb::open(&cfg.db_path).and_then(|db| db.verify()) {
            Ok(()) => {
                std::fs::copy(&cfg.db_path, &tmp.0).map_err(|e| Error::io(&tmp.0, e))?;
            }
            Err(e) => tracing::warn!("{}: {e}; building a new database", cfg.db_path.display()),
        }
    }
    let mut db = VulnDb::create(&tmp.0)?;
    let client = Client::new(cfg);
    let mut report = UpdateReport::default();
    for feed in &cfg.feeds {
        match feed {
            Feed::Osv => {
                for eco in &cfg.osv_ecosystems {
                    let url = format!("{}/{}/all.zip", cfg.osv_base.trim_end_matches('/'), encode_path(eco));
                    fetch_and_import(&client, &mut db, &format!("osv:{eco}"), &url, None, &mut report)?;
                }
            }
            Feed::Nvd => {
                let base = cfg.nvd_base.trim_end_matches('/');
                let names: Vec<String> = cfg.nvd_years.iter().map(|y| y.to_string()).chain(["modified".to_string()]).collect();
                for n in names {
                    let url = format!("{base}/nvdcve-2.0-{n}.json.gz");
                    let meta_url = format!("{base}/nvdcve-2.0-{n}.meta");
                    fetch_and_import(&client, &mut db, &format!("nvd:{n}"), &url, Some(Checksum::NvdMeta(meta_url)), &mut report)?;
                }
            }
            Feed::NvdApi => update_nvd_api(&client, &mut db, cfg, &mut report)?,
            Feed::Kev => fetch_and_import(&client, &mut db, "kev", &cfg.kev_url, None, &mut report)?,
            Feed::Epss => fetch_and_import(&client, &mut db, "epss", &cfg.epss_url, None, &mut report)?,
            Feed::Debian => fetch_and_import(&client, &mut db, "debian-tracker", &cfg.debian_url, None, &mut report)?,
            Feed::Redhat => update_redhat(&client, &mut db, cfg, &mut report)?,
        }
    }
    client.bar.finish_and_clear();
    {
        let mut w = db.writer()?;
        w.set_meta("last_update", &crate::now_rfc3339())?;
        w.commit()?;
    }
    db.verify()?;
    drop(db);
    std::fs::rename(&tmp.0, &cfg.db_path).map_err(|e| Error::io(&cfg.db_path, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(report)
}

/// Percent-encodes an OSV ecosystem name for a URL path (`Red Hat` -> `Red%20Hat`).
fn encode_path(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

enum Checksum {
    /// NVD's `.meta` file: `sha256:<hex>` of the uncompressed JSON.
    NvdMeta(String),
    /// A `.sha256` file (`<hex>  <name>`) of the downloaded bytes.
    Sha256File(String),
}

fn fetch_and_import(
    client: &Client,
    db: &mut VulnDb,
    name: &str,
    url: &str,
    checksum: Option<Checksum>,
    report: &mut UpdateReport,
) -> Result<()> {
    let previous = db.feed(name)?;
    let Some(fetched) = client.get(url, previous.as_ref().filter(|p| p.url.as_deref() == Some(url)))? else {
        tracing::info!("{name}: not modified");
        report.unchanged.push(name.to_string());
        return Ok(());
    };
    let digest = match checksum {
        None => sha256_hex(&fetched.body),
        Some(Checksum::NvdMeta(meta_url)) => {
            let meta = client.get(&meta_url, None)?.ok_or_else(|| Error::Http { url: meta_url.clone(), reason: "no body".into() })?;
            let text = String::from_utf8_lossy(&meta.body);
            let expected = text
                .lines()
                .find_map(|l| l.strip_prefix("sha256:"))
                .map(|s| s.trim().to_ascii_lowercase())
                .ok_or_else(|| Error::format(&meta_url, "no sha256 line"))?;
            let plain = if fetched.body.starts_with(&[0x1f, 0x8b]) {
                let mut out = Vec::new();
                flate2::read::MultiGzDecoder::new(&fetched.body[..])
                    .take(MAX_DOCUMENT_BYTES)
                    .read_to_end(&mut out)
                    .map_err(|e| Error::format(url, format!("corrupt gzip data: {e}")))?;
                out
            } else {
                fetched.body.clone()
            };
            let actual = sha256_hex(&plain);
            if actual != expected {
                return Err(Error::format(url, format!("checksum mismatch: {meta_url} says {expected}, got {actual}")));
            }
            actual
        }
        Some(Checksum::Sha256File(sum_url)) => {
            let sum = client.get(&sum_url, None)?.ok_or_else(|| Error::Http { url: sum_url.clone(), reason: "no body".into() })?;
            let expected = String::from_utf8_lossy(&sum.body).split_whitespace().next().unwrap_or("").to_ascii_lowercase();
            let actual = sha256_hex(&fetched.body);
            if actual != expected {
                return Err(Error::format(url, format!("checksum mismatch: {sum_url} says {expected}, got {actual}")));
            }
            actual
        }
    };
    let mut w = db.writer()?;
    let imported = import_document_bytes(&mut w, url, fetched.body)?;
    // A feed is one published unit: if the document itself could not be read (rather than some
    // records in it), the download is corrupt.
    if imported.total() == 0 && imported.skipped > 0 {
        return Err(Error::format(url, format!("corrupt feed: {}", imported.warnings.join("; "))));
    }
    w.set_feed(&FeedState {
        name: name.to_string(),
        url: Some(url.to_string()),
        etag: fetched.etag,
        last_modified: fetched.last_modified,
        sha256: Some(digest),
        updated_at: crate::now_rfc3339(),
        records: imported.total(),
    })?;
    w.commit()?;
    tracing::info!("{name}: {} records", imported.total());
    report.updated.push(name.to_string());
    report.import.merge(imported);
    Ok(())
}

/// Red Hat CSAF VEX: `changes.csv` lists `"YYYY/cve-....json","timestamp"` rows; files changed
/// since the last run are fetched and verified against their `.sha256` files.
fn update_redhat(client: &Client, db: &mut VulnDb, cfg: &UpdateConfig, report: &mut UpdateReport) -> Result<()> {
    let base = cfg.redhat_base.trim_end_matches('/');
    let since = db.meta("redhat_vex_since")?;
    let changes_url = format!("{base}/changes.csv");
    let Some(changes) = client.get(&changes_url, None)? else { return Ok(()) };
    let text = String::from_utf8_lossy(&changes.body);
    let mut newest = since.clone();
    for line in text.lines() {
        let mut cols = line.split(',').map(|c| c.trim().trim_matches('"'));
        let (Some(path), Some(ts)) = (cols.next(), cols.next()) else { continue };
        if !path.ends_with(".json") || since.as_deref().is_some_and(|s| ts <= s) {
            continue;
        }
        let url = format!("{base}/{path}");
        fetch_and_import(client, db, &format!("redhat:{path}"), &url, Some(Checksum::Sha256File(format!("{url}.sha256"))), report)?;
        if newest.as_deref().is_none_or(|n| ts > n) {
            newest = Some(ts.to_string());
        }
    }
    if let Some(n) = newest {
        let mut w = db.writer()?;
        w.set_meta("redhat_vex_since", &n)?;
        w.commit()?;
    }
    Ok(())
}

/// `kensa db import`: imports local files (any format [`crate::import`] recognises) into a copy
/// of the database and swaps it in, like [`update`]. An unreadable input leaves the database as
/// it was; malformed records are skipped and reported.
pub fn import_files(db_path: &Path, paths: &[PathBuf]) -> Result<ImportReport> {
    let dir = db_path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = TempDb(dir.join(format!(
        "{}.new-{}",
        db_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "vuln.db".into()),
        std::process::id()
    )));
    let _ = std::fs::remove_file(&tmp.0);
    if db_path.is_file() {
        VulnDb::open(db_path)?.verify()?;
        std::fs::copy(db_path, &tmp.0).map_err(|e| Error::io(&tmp.0, e))?;
    }
    let mut db = VulnDb::create(&tmp.0)?;
    let mut report = ImportReport::default();
    for p in paths {
        report.merge(crate::import::import_path(&mut db, p)?);
    }
    db.verify()?;
    drop(db);
    std::fs::rename(&tmp.0, db_path).map_err(|e| Error::io(db_path, e))?;
    Ok(report)
}

/// `2026-01-02T03:04:05Z` -> `2026-01-02T03:04:05.000%2B00:00`, the form the NVD API takes.
fn nvd_api_date(rfc3339: &str) -> String {
    format!("{}.000%2B00:00", rfc3339.trim_end_matches('Z'))
}

/// NVD CVE API 2.0: every page of `resultsPerPage=2000`; incremental after the first run.
fn update_nvd_api(client: &Client, db: &mut VulnDb, cfg: &UpdateConfig, report: &mut UpdateReport) -> Result<()> {
    const PAGE: u64 = 2000;
    const WINDOW_DAYS: i64 = 120;
    let started = crate::now_rfc3339();
    let base = cfg.nvd_api_url.trim_end_matches('/');
    // Query windows: everything on the first run, else [last run, now] in 120-day pieces.
    let mut windows: Vec<Option<(String, String)>> = Vec::new();
    match db.meta("nvd_api_last_run")? {
        None => windows.push(None),
        Some(last) => {
            let to_secs = |s: &str| crate::days_from_rfc3339(s).map(|d| d * 86_400 + time_of_day(s));
            let (Some(mut from), Some(end)) = (to_secs(&last), to_secs(&started)) else {
                return Err(Error::format("meta nvd_api_last_run", format!("unreadable timestamp {last:?}")));
            };
            while from < end {
                let to = (from + WINDOW_DAYS * 86_400).min(end);
                windows.push(Some((crate::rfc3339_from_unix(from), crate::rfc3339_from_unix(to))));
                from = to;
            }
        }
    }
    let key_header: Vec<(&str, &str)> = cfg.nvd_api_key.as_deref().map(|k| vec![("apiKey", k)]).unwrap_or_default();
    let mut records = 0;
    let mut first_request = true;
    for window in windows {
        let mut start = 0u64;
        loop {
            let mut url = format!("{base}?resultsPerPage={PAGE}&startIndex={start}");
            if let Some((from, to)) = &window {
                url.push_str(&format!("&lastModStartDate={}&lastModEndDate={}", nvd_api_date(from), nvd_api_date(to)));
            }
            if !first_request {
                std::thread::sleep(cfg.nvd_api_delay);
            }
            first_request = false;
            let page = client
                .get_with(&url, None, &key_header)?
                .ok_or_else(|| Error::Http { url: url.clone(), reason: "unexpected 304".into() })?;
            let doc: serde_json::Value =
                serde_json::from_slice(&page.body).map_err(|e| Error::format(&url, format!("corrupt NVD API page: {e}")))?;
            let total = doc.get("totalResults").and_then(serde_json::Value::as_u64).ok_or_else(|| Error::format(&url, "no totalResults"))?;
            let count = doc.get("vulnerabilities").and_then(serde_json::Value::as_array).map(Vec::len).unwrap_or(0) as u64;
            let mut w = db.writer()?;
            let imported = import_document_bytes(&mut w, &url, page.body)?;
            w.commit()?;
            records += imported.total();
            report.import.merge(imported);
            start += count;
            if count == 0 || start >= total {
                break;
            }
        }
    }
    let mut w = db.writer()?;
    w.set_meta("nvd_api_last_run", &started)?;
    w.set_feed(&FeedState { name: "nvd-api".into(), url: Some(base.to_string()), updated_at: started, records, ..Default::default() })?;
    w.commit()?;
    report.updated.push("nvd-api".into());
    Ok(())
}

/// Seconds since midnight of an RFC 3339 UTC timestamp (0 when absent).
fn time_of_day(s: &str) -> i64 {
    let part = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok()).unwrap_or(0);
    part(11..13) * 3600 + part(14..16) * 60 + part(17..19)
}
