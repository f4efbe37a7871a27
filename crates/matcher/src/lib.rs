//! The matcher: every package of an [`Inventory`] against the vulnerability database, with the
//! exact OSV range semantics of [`osv`], giving Inspector-shaped [`Finding`]s.
//!
//! Rules beyond plain OSV evaluation (each tested in `tests/`):
//! - **Distribution advisories** apply by the detected OS and release ([`ecosystem::os_ecosystems`]).
//!   Debian, Ubuntu and Alpine advisories name source packages: a binary matches through its source
//!   name and source version ([`ecosystem::lookup_key`]).
//! - **RHEL module streams**: a modular rpm (one with a modularity label, or `.module` in its
//!   release) only matches advisory entries whose fixed version is itself a module build, and only
//!   for its own `name:stream` when the advisory names streams (Red Hat CSAF: `ecosystem_specific.module`;
//!   AlmaLinux OSV: `php:8.1` in the summary). When one advisory covers several streams, entries
//!   whose upstream version starts with a numeric stream (`8.1` -> `8.1.32`) are preferred, so a
//!   newer stream's fix never flags an older stream. Non-modular rpms never match module builds'
//!   entries and vice versa.
//! - **Kernels on a live host**: when the running kernel release is known, findings on installed
//!   kernels that are not running are kept as `INFORMATIONAL` with a note.
//! - **OS-owned language packages** (`owned_by` set) are matched through their OS package only,
//!   unless [`MatchOptions::include_os_owned`].
//! - Entries a publisher marks `not_affected` never match; `affected`/`will_not_fix` entries give
//!   findings with `fixAvailable: NO` and the vendor status.
//! - One finding per advisory record and package instance; several entries of one record for the
//!   same package combine with "any", and the nearest fixed version above the installed one is
//!   reported.

pub mod ecosystem;
pub mod finding;
pub mod osv;

use std::collections::{BTreeMap, HashMap};

use kensa_inventory::{Inventory, Package, PackageType};
use kensa_version::Scheme;
use kensa_vulndb::{Affected, SeverityKind, Status, VulnDb, Vulnerability};

pub use finding::*;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Db(#[from] kensa_vulndb::Error),
}

/// How to match.
#[derive(Clone, Debug, Default)]
pub struct MatchOptions {
    /// Also match language packages whose files an OS package owns (normally matched through the
    /// OS package only, as OS advisories cover them).
    pub include_os_owned: bool,
    /// The running kernel's release (`uname -r`) when the target is the live host.
    pub running_kernel: Option<String>,
}

/// What matching found.
#[derive(Clone, Debug, Default)]
pub struct MatchResult {
    pub findings: Vec<Finding>,
    /// The distribution ecosystems that were consulted.
    pub os_ecosystems: Vec<String>,
    /// Packages or advisory entries that could not be evaluated (unparseable versions, an
    /// undetected OS), one line each.
    pub warnings: Vec<String>,
    /// Packages matched (after skipping OS-owned language packages).
    pub packages_matched: usize,
}

/// Matches `inv` against `db`. `progress(done, total)` is called after each package.
pub fn match_inventory(db: &VulnDb, inv: &Inventory, opts: &MatchOptions, progress: &mut dyn FnMut(usize, usize)) -> Result<MatchResult, Error> {
    let _snapshot = db.read_snapshot()?;
    let mut out = MatchResult::default();
    let has_os_packages = inv.packages.iter().any(|p| p.package_type.is_os());
    if has_os_packages {
        match &inv.os {
            Some(os) => {
                let available: Vec<String> = db.ecosystems()?.into_iter().map(|(e, _)| e).collect();
                out.os_ecosystems = ecosystem::os_ecosystems(os, &available);
                // A database without this distribution's advisories would make every OS package
                // look clean: say so.
                if !out.os_ecosystems.iter().any(|e| available.contains(e)) {
                    let which = if out.os_ecosystems.is_empty() { "none known".to_string() } else { out.os_ecosystems.join(", ") };
                    out.warnings.push(format!(
                        "the database has no advisories for {} {} (ecosystems: {which}): OS packages were not checked",
                        os.id, os.version_id
                    ));
                }
            }
            None => out.warnings.push("the operating system was not detected: OS packages were not matched".into()),
        }
    }
    let os_id = inv.os.as_ref().map(|o| o.id.as_str()).unwrap_or("");
    let mut records = RecordCache::default();
    let total = inv.packages.len();
    for (i, p) in inv.packages.iter().enumerate() {
        progress(i, total);
        if p.owned_by.is_some() && !p.package_type.is_os() && !opts.include_os_owned {
            continue;
        }
        out.packages_matched += 1;
        let (ecosystems, name, version): (Vec<&str>, &str, &str) = if p.package_type.is_os() {
            let (n, v) = ecosystem::lookup_key(p);
            (out.os_ecosystems.iter().map(String::as_str).collect(), n, v)
        } else {
            match ecosystem::language_ecosystem(p.package_type) {
                Some(e) => (vec![e], p.name.as_str(), ecosystem::comparable_version(p)),
                None => continue,
            }
        };
        // An installed version its own scheme rejects (`(devel)` Go builds) cannot be matched:
        // say so once, not once per advisory.
        if let Some(scheme) = ecosystems.first().and_then(|e| ecosystem::ecosystem_scheme(e)) {
            if let Err(e) = kensa_version::Version::parse(scheme, version) {
                if !(scheme == Scheme::Npm && osv::pad_semver(version).is_some()) {
                    out.warnings.push(format!("{} {name} {version} ({}): not matched: {e}", p.package_type.as_str(), p.path()));
                    continue;
                }
            }
        }
        let mut by_id: BTreeMap<String, Vec<Affected>> = BTreeMap::new();
        for eco in &ecosystems {
            for a in db.affected(eco, name)? {
                by_id.entry(a.vuln_id.clone()).or_default().push(a);
            }
        }
        for (id, entries) in by_id {
            let record = records.get(db, &id)?;
            let entries = select_entries(p, entries, record.as_ref());
            let mut matched: Vec<(&Affected, osv::RangeMatch)> = Vec::new();
            for a in &entries {
                let Some(scheme) = ecosystem::ecosystem_scheme(&a.ecosystem) else { continue };
                match osv::evaluate(a, scheme, version) {
                    Ok(Some(m)) => matched.push((a, m)),
                    Ok(None) => {}
                    Err(e) => out.warnings.push(format!("{id}: {} {name} {version}: cannot compare version {:?}: {}", a.ecosystem, e.version, e.reason)),
                }
            }
            if matched.is_empty() {
                continue;
            }
            let scheme = ecosystem::ecosystem_scheme(&matched[0].0.ecosystem).unwrap_or(Scheme::Rpm);
            let finding = build_finding(db, &mut records, p, os_id, scheme, &id, &matched, record.as_ref(), opts)?;
            out.findings.push(finding);
        }
    }
    progress(total, total);
    Ok(out)
}

#[derive(Default)]
struct RecordCache {
    records: HashMap<String, Option<Vulnerability>>,
}

impl RecordCache {
    fn get(&mut self, db: &VulnDb, id: &str) -> Result<Option<Vulnerability>, Error> {
        if let Some(v) = self.records.get(id) {
            return Ok(v.clone());
        }
        let v = db.vulnerability(id)?;
        self.records.insert(id.to_string(), v.clone());
        Ok(v)
    }
}

/// Is this advisory entry for a module build (`...module_el9.5.0+156+9f1cd3fd`, `module+el8...`)?
fn is_module_entry(a: &Affected) -> bool {
    a.ecosystem_specific.as_ref().and_then(|e| e.get("module")).is_some()
        || a.ranges.iter().flat_map(|r| r.events.iter()).any(|e| match e {
            kensa_vulndb::Event::Fixed(v) | kensa_vulndb::Event::Introduced(v) | kensa_vulndb::Event::LastAffected(v) => is_module_release(v),
            kensa_vulndb::Event::Limit(_) => false,
        })
}

fn is_module_release(v: &str) -> bool {
    v.contains(".module_el") || v.contains(".module+el") || v.contains(".module_")
}

/// The `name:stream` of a modular package (from `name:stream:version:context`).
fn package_stream(p: &Package) -> Option<(String, String)> {
    let label = p.modularity_label.as_deref()?;
    let mut it = label.split(':');
    let (n, s) = (it.next()?, it.next()?);
    (!n.is_empty() && !s.is_empty()).then(|| (n.to_string(), s.to_string()))
}

/// Streams an advisory names: CSAF's `ecosystem_specific.module` (`nodejs:18`), or `name:stream`
/// words in an AlmaLinux/Rocky summary (`Moderate: php:8.1 security update`).
fn advisory_streams(entries: &[Affected], record: Option<&Vulnerability>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = entries
        .iter()
        .filter_map(|a| a.ecosystem_specific.as_ref()?.get("module")?.as_str().map(str::to_string))
        .filter_map(|m| m.split_once(':').map(|(n, s)| (n.to_string(), s.to_string())))
        .collect();
    if out.is_empty() {
        if let Some(summary) = record.and_then(|r| r.summary.as_deref()) {
            // Skip the `Important:` severity prefix, then take every `name:stream` word.
            let text = match summary.split_once(": ") {
                Some((sev, rest)) if Severity::from_vendor(sev).is_some() => rest,
                _ => summary,
            };
            for word in text.split(|c: char| c.is_whitespace() || c == ',') {
                if let Some((n, s)) = word.split_once(':') {
                    let ok = |x: &str| !x.is_empty() && x.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'));
                    if ok(n) && ok(s) {
                        out.push((n.to_string(), s.to_string()));
                    }
                }
            }
        }
    }
    out
}

/// The entries of one record that can apply to `p`: `not_affected` statements never do; for rpm,
/// the module-stream rules of the crate docs.
fn select_entries(p: &Package, entries: Vec<Affected>, record: Option<&Vulnerability>) -> Vec<Affected> {
    let mut entries: Vec<Affected> = entries.into_iter().filter(|a| a.status != Status::NotAffected).collect();
    if p.package_type != PackageType::Rpm {
        return entries;
    }
    let pkg_modular = p.modularity_label.as_deref().is_some_and(|l| !l.is_empty()) || is_module_release(&p.version);
    if !pkg_modular {
        entries.retain(|a| !is_module_entry(a));
        return entries;
    }
    entries.retain(is_module_entry);
    let Some((mname, stream)) = package_stream(p) else { return entries };
    let csaf_module = |a: &Affected| a.ecosystem_specific.as_ref().and_then(|e| e.get("module")).and_then(|m| m.as_str()).map(str::to_string);
    if entries.iter().any(|a| csaf_module(a).is_some()) {
        let want = format!("{mname}:{stream}");
        entries.retain(|a| csaf_module(a).is_none() || csaf_module(a).as_deref() == Some(want.as_str()));
        return entries;
    }
    let streams = advisory_streams(&entries, record);
    if !streams.is_empty() && !streams.iter().any(|(n, s)| *n == mname && *s == stream) {
        return Vec::new();
    }
    if streams.len() > 1 && stream.chars().all(|c| c.is_ascii_digit() || c == '.') {
        let upstream_matches = |a: &Affected| {
            a.fixed_versions().iter().any(|f| {
                let evr = f.split_once(':').map(|(_, r)| r).unwrap_or(f);
                let ver = evr.split('-').next().unwrap_or(evr);
                ver == stream || ver.starts_with(&format!("{stream}."))
            })
        };
        if entries.iter().any(upstream_matches) {
            entries.retain(upstream_matches);
        }
    }
    entries
}

fn is_kernel_instance(p: &Package) -> bool {
    match p.package_type {
        PackageType::Rpm => {
            (p.name == "kernel" || p.name.starts_with("kernel-"))
                && !matches!(
                    p.name.as_str(),
                    "kernel-headers" | "kernel-tools" | "kernel-tools-libs" | "kernel-tools-libs-devel" | "kernel-srpm-macros" | "kernel-abi-stablelists" | "kernel-abi-whitelists" | "kernel-firmware"
                )
        }
        PackageType::Deb => ["linux-image-", "linux-modules-", "linux-headers-", "linux-image-unsigned-"]
            .iter()
            .any(|pre| p.name.strip_prefix(pre).is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))),
        _ => false,
    }
}

/// Does kernel package `p` belong to the running kernel `release` (`uname -r`)?
pub fn is_running_kernel(p: &Package, release: &str) -> bool {
    match p.package_type {
        PackageType::Rpm => {
            let vr = p.version.split_once(':').map(|(_, r)| r).unwrap_or(&p.version);
            let with_arch = match &p.arch {
                Some(a) => format!("{vr}.{a}"),
                None => vr.to_string(),
            };
            // Variant kernels append `+debug`, `+rt`, `+64k` to the release.
            release == with_arch || release.split('+').next() == Some(with_arch.as_str())
        }
        PackageType::Deb => p.name.ends_with(release),
        _ => true,
    }
}

fn package_manager(p: &Package) -> &'static str {
    match p.package_type {
        PackageType::Rpm | PackageType::Deb | PackageType::Apk => "OS",
        PackageType::Pypi => "PYTHONPKG",
        PackageType::Npm => "NODEPKG",
        PackageType::Maven if p.path().ends_with("pom.xml") => "POM",
        PackageType::Maven => "JAR",
        PackageType::Golang => "GOBINARY",
        PackageType::Cargo => "CARGOLOCK",
    }
}

/// The command (or action) that fixes `p` for its package manager.
pub fn remediation_command(p: &Package, os_id: &str, vuln_id: &str, fixed: Option<&str>) -> String {
    let name = &p.name;
    let Some(fixed) = fixed else {
        return match p.package_type {
            PackageType::Rpm | PackageType::Deb | PackageType::Apk => format!("No fixed version of {name} is available yet; apply the vendor's mitigation or remove the package."),
            _ => format!("No fixed version of {name} is available yet."),
        };
    };
    match p.package_type {
        PackageType::Rpm => {
            let errata = ["ALSA-", "ALBA-", "ALEA-", "RHSA-", "RHBA-", "RHEA-", "RLSA-", "RLBA-", "ELSA-"].iter().any(|x| vuln_id.starts_with(x));
            match os_id {
                "amzn" => format!("yum update {name}"),
                "sles" | "sled" | "sles_sap" | "opensuse-leap" | "opensuse-tumbleweed" => format!("zypper update {name}"),
                "mariner" | "azurelinux" => format!("tdnf update {name}"),
                _ if errata => format!("dnf upgrade --advisory={vuln_id}"),
                _ => format!("dnf upgrade {name}"),
            }
        }
        PackageType::Deb => format!("apt-get install --only-upgrade {name}"),
        PackageType::Apk => format!("apk upgrade {name}"),
        PackageType::Pypi => format!("pip install '{name}>={fixed}'"),
        PackageType::Npm => format!("npm install {name}@{fixed}"),
        PackageType::Maven => format!("Update the dependency {name} to version {fixed} or later."),
        PackageType::Golang if name == "stdlib" => format!("Rebuild the binary with Go {} or later.", fixed.trim_start_matches('v')),
        PackageType::Golang => format!("go get {name}@v{}", fixed.trim_start_matches('v')),
        PackageType::Cargo => format!("cargo update -p {name} --precise {fixed}"),
    }
}

fn cvss_version(vector: &str, kind: SeverityKind) -> String {
    match kind {
        SeverityKind::CvssV2 => "2.0".into(),
        SeverityKind::CvssV4 => "4.0".into(),
        _ => vector.strip_prefix("CVSS:").and_then(|r| r.split('/').next()).unwrap_or("3.1").to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
fn build_finding(
    db: &VulnDb,
    records: &mut RecordCache,
    p: &Package,
    os_id: &str,
    scheme: Scheme,
    id: &str,
    matched: &[(&Affected, osv::RangeMatch)],
    record: Option<&Vulnerability>,
    opts: &MatchOptions,
) -> Result<Finding, Error> {
    // The nearest fix above the installed version among the entries that matched.
    let mut fixed_in: Option<String> = None;
    for (_, m) in matched {
        if let Some(f) = &m.fixed_in {
            let nearer = match &fixed_in {
                None => true,
                Some(cur) => kensa_version::compare(scheme, f, cur).map(|o| o.is_lt()).unwrap_or(false),
            };
            if nearer {
                fixed_in = Some(f.clone());
            }
        }
    }
    let vendor_status = if fixed_in.is_some() {
        "fixed"
    } else if matched.iter().any(|(a, _)| a.status == Status::WillNotFix) {
        "will_not_fix"
    } else {
        "affected"
    };
    let empty = Vulnerability::default();
    let rec = record.unwrap_or(&empty);
    let mut related: Vec<String> = Vec::new();
    for a in rec.aliases.iter().chain(rec.related.iter()) {
        if a != id && !related.contains(a) {
            related.push(a.clone());
        }
    }
    let cves: Vec<String> = std::iter::once(id.to_string()).chain(related.iter().cloned()).filter(|x| x.starts_with("CVE-")).collect();

    // CVSS: the record's own, else its CVEs' (e.g. NVD records for an ALSA's CVEs).
    let severities = kensa_vulndb::search::scores_with(&rec.severities, cves.iter().map(String::as_str).filter(|c| *c != id), |cve| records.get(db, cve))?;
    let cvss: Vec<Cvss> = severities
        .iter()
        .filter(|s| s.kind != SeverityKind::Other)
        .filter_map(|s| Some(Cvss { base_score: s.base_score?, scoring_vector: s.vector.clone(), source: s.source.clone(), version: cvss_version(&s.vector, s.kind) }))
        .collect();
    let pick = |v3: bool| {
        let mut c: Vec<&Cvss> = cvss.iter().filter(|c| if v3 { c.version.starts_with('3') } else { c.version.starts_with('4') }).collect();
        c.sort_by_key(|c| if c.source.contains("nvd") { 0 } else { 1 });
        c.first().cloned().cloned()
    };
    let primary = pick(true).or_else(|| pick(false));
    let vendor_severity = rec.vendor_severity.clone().or_else(|| {
        let s = rec.summary.as_deref()?;
        let (sev, _) = s.split_once(": ")?;
        Severity::from_vendor(sev).map(|_| sev.to_string())
    });
    let mut severity = match (&primary, &vendor_severity) {
        (Some(c), _) => Severity::from_cvss(c.base_score),
        (None, Some(v)) => Severity::from_vendor(v).unwrap_or(Severity::Untriaged),
        (None, None) => Severity::Untriaged,
    };
    let mut note = None;
    if let Some(release) = &opts.running_kernel {
        if is_kernel_instance(p) && !is_running_kernel(p, release) {
            note = Some(format!("installed kernel that is not running (running: {release}); informational until it is booted"));
            severity = Severity::Informational;
        }
    }
    let mut kev = None;
    let mut epss: Option<kensa_vulndb::Epss> = None;
    for cve in &cves {
        if kev.is_none() {
            kev = db.kev(cve)?;
        }
        if let Some(e) = db.epss(cve)? {
            if !epss.as_ref().is_some_and(|cur| e.score <= cur.score) {
                epss = Some(e);
            }
        }
    }
    let remediation = remediation_command(p, os_id, id, fixed_in.as_deref());
    let fix_available = if fixed_in.is_some() { FixAvailable::Yes } else { FixAvailable::No };
    let source_name = p.source_name.clone().filter(|s| *s != p.name && matches!(p.package_type, PackageType::Deb | PackageType::Apk));
    let description = rec.details.clone().or_else(|| rec.summary.clone()).unwrap_or_else(|| format!("{id} affects {}.", p.name));
    let recommendation_text = match &fixed_in {
        Some(f) => format!("Upgrade {} to {f} or later: {remediation}", p.name),
        None if vendor_status == "will_not_fix" => format!("The vendor will not fix {id} in {}; mitigate or remove the package.", p.name),
        None => format!("No fix for {id} in {} is available yet.", p.name),
    };
    Ok(Finding {
        kind: "PACKAGE_VULNERABILITY".into(),
        title: format!("{id} - {}", p.name),
        description,
        severity,
        status: FindingStatus::Active,
        inspector_score: primary.as_ref().map(|c| c.base_score),
        inspector_score_details: primary.as_ref().map(|c| InspectorScoreDetails {
            adjusted_cvss: AdjustedCvss {
                score: c.base_score,
                score_source: c.source.clone(),
                scoring_vector: c.scoring_vector.clone(),
                version: c.version.clone(),
                adjustments: Vec::new(),
                cvss_source: Some(c.source.clone()),
            },
        }),
        epss: epss.map(|e| EpssScore { score: e.score, percentile: Some(e.percentile) }),
        exploit_available: if kev.is_some() { "YES" } else { "NO" }.into(),
        exploitability_details: kev.map(|k| ExploitabilityDetails {
            last_known_exploit_at: k.date_added,
            kev_cve: k.cve_id,
            required_action: k.required_action,
            due_date: k.due_date,
            known_ransomware_campaign_use: k.known_ransomware_campaign_use,
        }),
        fix_available,
        remediation: Remediation { recommendation: Recommendation { text: recommendation_text, url: rec.source_url.clone() } },
        package_vulnerability_details: PackageVulnerabilityDetails {
            vulnerability_id: id.to_string(),
            related_vulnerabilities: related,
            source: matched[0].0.source.clone(),
            source_url: rec.source_url.clone(),
            vendor_severity,
            vendor_created_at: rec.published.clone(),
            vendor_updated_at: rec.modified.clone(),
            reference_urls: rec.references.iter().map(|r| r.url.clone()).collect(),
            cvss,
            vulnerable_packages: vec![VulnerablePackage {
                name: p.name.clone(),
                version: p.version.clone(),
                epoch: p.epoch.unwrap_or(0),
                release: p.release.clone(),
                arch: p.arch.clone(),
                package_manager: package_manager(p).into(),
                file_path: Some(p.path().to_string()).filter(|s| !s.is_empty()),
                fixed_in_version: fixed_in.clone().unwrap_or_else(|| "NotAvailable".into()),
                remediation,
                purl: p.purl.clone(),
                source_package_name: source_name,
                ecosystem: matched[0].0.ecosystem.clone(),
            }],
        },
        vendor_status: vendor_status.into(),
        note,
    })
}
