//! Coverage: which method monitors each machine and, when none does, why — as Inspector's
//! ListCoverage reports it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::provider::{MachineProvider, ManagedStatus};
use crate::settings::{ScanMode, Settings};
use crate::store::MachineRow;
use crate::AppState;

/// The tag whose presence (any value) excludes a machine, or a volume key, from scanning.
pub const EXCLUSION_TAG: &str = "InspectorEc2Exclusion";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanStatus {
    pub status_code: &'static str,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CoveredResource {
    pub resource_id: String,
    pub resource_type: &'static str,
    pub name: Option<String>,
    /// AGENT or AGENTLESS: the method whose inventory is current; null when not covered.
    pub scan_type: Option<&'static str>,
    /// The method applied to the machine: AGENT_BASED or AGENTLESS (null when none applies).
    pub scan_mode: Option<&'static str>,
    pub scan_status: ScanStatus,
    /// RFC 3339 time of the inventory findings are based on.
    pub last_scanned_at: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub os: Option<kensa_inventory::OsInfo>,
}

fn status(code: &'static str, reason: &str, message: Option<String>) -> ScanStatus {
    ScanStatus { status_code: code, reason: reason.to_string(), message }
}

/// OS families kensa has advisories for. Anything else is UNSUPPORTED_OS.
pub fn os_supported(os: &kensa_inventory::OsInfo) -> bool {
    let ids = std::iter::once(os.id.as_str()).chain(os.id_like.iter().map(|s| s.as_str()));
    let known = [
        "rhel", "centos", "rocky", "almalinux", "ol", "fedora", "amzn", "debian", "ubuntu", "alpine", "sles", "opensuse-leap", "opensuse",
        "suse", "mariner", "azurelinux",
    ];
    ids.into_iter().any(|id| known.contains(&id))
}

pub fn is_excluded(tags: &BTreeMap<String, String>) -> bool {
    tags.contains_key(EXCLUSION_TAG)
}

/// What the machine's provider says about it now, looked up before evaluating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// The server runs without a provider (no `--machines`).
    NoProvider,
    /// The provider lists the machine, managed or not.
    Listed(ManagedStatus),
    /// The provider does not list it (removed from the machines file, or known only from its agent).
    NotListed,
    /// The provider could not answer (logged); decisions fall back on what the store holds.
    Unknown,
}

/// Asks the provider about each machine. A failing provider is logged once per call, not per
/// machine.
pub fn listings(provider: Option<&dyn MachineProvider>, machines: &[MachineRow]) -> Vec<Listing> {
    let Some(p) = provider else { return vec![Listing::NoProvider; machines.len()] };
    let mut failure = None;
    let out = machines
        .iter()
        .map(|m| match p.managed_status(&m.id) {
            Ok(Some(status)) => Listing::Listed(status),
            Ok(None) => Listing::NotListed,
            Err(e) => {
                failure.get_or_insert(e);
                Listing::Unknown
            }
        })
        .collect();
    if let Some(e) = failure {
        tracing::warn!("{}: managed status unavailable: {e:#}", p.describe());
    }
    out
}

/// Coverage of every machine, asking the server's provider about each.
pub fn evaluate_all(state: &AppState, machines: &[MachineRow], settings: &Settings, now: i64) -> Vec<CoveredResource> {
    let listings = listings(state.provider.as_deref(), machines);
    machines.iter().zip(listings).map(|(m, l)| evaluate(m, l, settings, now)).collect()
}

/// Whether an agentless scan can cover the machine: hybrid mode, volumes, and a provider that
/// still lists it (or could not say).
fn agentless_path(m: &MachineRow, listing: Listing, settings: &Settings) -> bool {
    settings.scan_mode == ScanMode::Hybrid && !m.volumes.is_empty() && matches!(listing, Listing::Listed(_) | Listing::Unknown)
}

/// Decides a machine's coverage at time `now` (seconds since the epoch), as Inspector does: an
/// agent that reports wins; otherwise (no agent, or a stale one) HYBRID mode scans the volumes
/// agentless; otherwise the machine is not covered, with `NO_INVENTORY` when it is managed (an
/// agent is expected) and `UNMANAGED_EC2_INSTANCE` when it is not.
pub fn evaluate(m: &MachineRow, listing: Listing, settings: &Settings, now: i64) -> CoveredResource {
    let mut out = CoveredResource {
        resource_id: m.id.clone(),
        resource_type: "MACHINE",
        name: m.name.clone(),
        scan_type: None,
        scan_mode: None,
        scan_status: status("INACTIVE", "NO_INVENTORY", None),
        last_scanned_at: m.matched_at.map(rfc3339),
        tags: m.tags.clone(),
        os: m.os.clone(),
    };
    if is_excluded(&m.tags) {
        out.scan_status = status("INACTIVE", "EXCLUDED_BY_TAG", Some(format!("tagged {EXCLUSION_TAG}")));
        return out;
    }
    let stale_after = i64::from(settings.stale_after_seconds);
    let agent_fresh = m.agent_last_seen.map(|t| now - t <= stale_after);
    let agentless = agentless_path(m, listing, settings);
    let inventory_is_agentless = m.inventory_scan_type.as_deref() == Some("AGENTLESS");

    match agent_fresh {
        Some(true) => {
            out.scan_mode = Some("AGENT_BASED");
            out.scan_type = Some("AGENT");
            out.scan_status = match (&m.inventory_at, &m.os) {
                (None, _) => status("ACTIVE", "PENDING_INITIAL_SCAN", None),
                // Stored, waiting for the background matcher.
                _ if m.matched_at.is_none() => status("ACTIVE", "PENDING_INITIAL_SCAN", Some("inventory received; matching it".into())),
                (Some(_), Some(os)) if !os_supported(os) => {
                    status("INACTIVE", "UNSUPPORTED_OS", Some(format!("no vulnerability data for OS {} {}", os.id, os.version_id)))
                }
                (Some(_), None) => status("INACTIVE", "UNSUPPORTED_OS", Some("the operating system could not be identified".into())),
                _ => status("ACTIVE", "SUCCESSFUL", None),
            };
            if inventory_is_agentless {
                // The agent came back but has not sent its inventory yet.
                out.scan_status = status("ACTIVE", "PENDING_INITIAL_SCAN", Some("agent reporting; waiting for its first inventory".into()));
            }
            out
        }
        Some(false) if !agentless => {
            out.scan_type = Some("AGENT");
            out.scan_mode = Some("AGENT_BASED");
            let since = m.agent_last_seen.map(rfc3339).unwrap_or_default();
            out.scan_status = status("INACTIVE", "STALE_INVENTORY", Some(format!("the agent has not reported since {since}")));
            out
        }
        None if listing == Listing::NotListed && m.origin == "provider" => {
            out.scan_status = status("INACTIVE", "RESOURCE_TERMINATED", Some("the provider no longer lists this machine".into()));
            out
        }
        None if !agentless => {
            if listing == Listing::Listed(ManagedStatus::Managed) {
                // Inspector: SSM-managed but no inventory collected yet.
                out.scan_mode = Some("AGENT_BASED");
                out.scan_status = status(
                    "INACTIVE",
                    "NO_INVENTORY",
                    Some("the machine is managed (an agent is expected) but no agent has reported; enroll it with `kensa agent --enroll-token`".into()),
                );
                return out;
            }
            let why = if m.volumes.is_empty() {
                "it has no volumes for agentless scanning"
            } else if settings.scan_mode == ScanMode::AgentBased {
                "the scan mode is AGENT_BASED"
            } else if listing == Listing::NoProvider {
                "no provider is configured to snapshot its volumes (start the server with --machines)"
            } else {
                "the provider no longer lists it for agentless scanning"
            };
            out.scan_status = status("INACTIVE", "UNMANAGED_EC2_INSTANCE", Some(format!("no agent reports for this machine and {why}")));
            out
        }
        _ => {
            // Agentless: no agent, or a stale one, and snapshot sources exist (HYBRID).
            out.scan_mode = Some("AGENTLESS");
            if let Some(err) = &m.agentless_error {
                out.scan_status = status("INACTIVE", &err.reason, Some(err.message.clone()));
            } else if inventory_is_agentless && m.inventory_at.is_some() {
                out.scan_type = Some("AGENTLESS");
                out.scan_status = match &m.os {
                    Some(os) if os_supported(os) => status("ACTIVE", "SUCCESSFUL", None),
                    Some(os) => status("INACTIVE", "UNSUPPORTED_OS", Some(format!("no vulnerability data for OS {} {}", os.id, os.version_id))),
                    None => status("INACTIVE", "UNSUPPORTED_OS", Some("no operating system found on the volumes".into())),
                };
            } else {
                out.scan_status = status("ACTIVE", "PENDING_INITIAL_SCAN", None);
                if m.agent_last_seen.is_some() {
                    out.scan_status.message = Some("the agent's inventory is stale; an agentless scan is pending".into());
                } else if listing == Listing::Listed(ManagedStatus::Managed) {
                    out.scan_status.message = Some("managed, but no agent has reported yet; an agentless scan is pending".into());
                }
            }
            out
        }
    }
}

/// A failed agentless scan is retried after at most this long (Inspector looks for newly eligible
/// instances hourly), so a fixed volume or machines file does not wait a whole interval.
pub const AGENTLESS_RETRY_SECONDS: i64 = 3600;

/// Whether the scheduler should scan this machine agentless now.
pub fn agentless_due(m: &MachineRow, listing: Listing, settings: &Settings, now: i64) -> bool {
    if !agentless_path(m, listing, settings) || is_excluded(&m.tags) {
        return false;
    }
    let stale_after = i64::from(settings.stale_after_seconds);
    if m.agent_last_seen.is_some_and(|t| now - t <= stale_after) {
        return false;
    }
    let mut interval = i64::from(settings.agentless_interval_hours) * 3600;
    if m.agentless_error.is_some() {
        interval = interval.min(AGENTLESS_RETRY_SECONDS);
    }
    match m.agentless_attempt_at {
        None => true,
        Some(t) => {
            // An agent that went stale after the last agentless attempt needs a scan now.
            let took_over = m.agent_last_seen.is_some_and(|a| a > t);
            took_over || now - t >= interval
        }
    }
}

/// Seconds since the epoch as RFC 3339 UTC (the SBOM writer's formatter: one implementation).
pub use kensa_sbom::rfc3339;

/// Coverage statistics grouped by status code and reason.
pub fn statistics(resources: &[CoveredResource]) -> serde_json::Value {
    let mut by: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in resources {
        *by.entry((r.scan_status.status_code.to_string(), r.scan_status.reason.clone())).or_default() += 1;
    }
    let counts: Vec<_> = by
        .into_iter()
        .map(|((code, reason), count)| serde_json::json!({"groupKey": {"scanStatusCode": code, "scanStatusReason": reason}, "count": count}))
        .collect();
    serde_json::json!({"totalCounts": resources.len(), "countsByGroup": counts})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AgentlessError, Volume};

    fn machine() -> MachineRow {
        MachineRow { id: "m".into(), origin: "agent".into(), ..Default::default() }
    }
    fn debian() -> Option<kensa_inventory::OsInfo> {
        Some(kensa_inventory::OsInfo { id: "debian".into(), version_id: "12".into(), ..Default::default() })
    }
    fn vol() -> Vec<Volume> {
        vec![Volume { path: "/d.img".into(), key: None, key_tags: Default::default() }]
    }

    #[test]
    fn rfc3339_formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    fn reason(m: &MachineRow, l: Listing, s: &Settings, now: i64) -> String {
        evaluate(m, l, s, now).scan_status.reason
    }

    #[test]
    fn decisions() {
        let s = Settings::default();
        let now = 1_000_000;
        let mut m = machine();
        m.agent_last_seen = Some(now - 60);
        assert_eq!(reason(&m, Listing::NotListed, &s, now), "PENDING_INITIAL_SCAN");
        m.inventory_at = Some(now - 60);
        m.matched_at = Some(now - 60);
        m.inventory_scan_type = Some("AGENT".into());
        m.os = debian();
        let c = evaluate(&m, Listing::NotListed, &s, now);
        assert_eq!((c.scan_type, c.scan_status.reason.as_str()), (Some("AGENT"), "SUCCESSFUL"));
        // An agent that reports wins over a provider that says unmanaged.
        assert_eq!(reason(&m, Listing::Listed(ManagedStatus::Unmanaged), &s, now), "SUCCESSFUL");
        // Stale without volumes.
        let late = now + 91 * 60;
        assert_eq!(reason(&m, Listing::NotListed, &s, late), "STALE_INVENTORY");
        // Stale with volumes: agentless takes over while the provider lists the machine.
        m.volumes = vol();
        let listed = Listing::Listed(ManagedStatus::Unmanaged);
        assert!(agentless_due(&m, listed, &s, late));
        assert_eq!(evaluate(&m, listed, &s, late).scan_mode, Some("AGENTLESS"));
        // Volumes the provider no longer lists are not scanned.
        assert!(!agentless_due(&m, Listing::NotListed, &s, late));
        assert!(!agentless_due(&m, Listing::NoProvider, &s, late));
        assert_eq!(reason(&m, Listing::NotListed, &s, late), "STALE_INVENTORY");
        m.inventory_scan_type = Some("AGENTLESS".into());
        m.agentless_attempt_at = Some(late);
        let c = evaluate(&m, listed, &s, late + 1);
        assert_eq!((c.scan_type, c.scan_status.reason.as_str()), (Some("AGENTLESS"), "SUCCESSFUL"));
        assert!(!agentless_due(&m, listed, &s, late + 23 * 3600));
        assert!(agentless_due(&m, listed, &s, late + 24 * 3600));
        // Excluded wins over everything.
        m.tags.insert(EXCLUSION_TAG.into(), String::new());
        assert_eq!(reason(&m, listed, &s, late), "EXCLUDED_BY_TAG");
        assert!(!agentless_due(&m, listed, &s, late));
    }

    #[test]
    fn unmanaged_and_errors() {
        let s = Settings::default();
        let unmanaged = Listing::Listed(ManagedStatus::Unmanaged);
        let mut m = machine();
        m.origin = "provider".into();
        assert_eq!(reason(&m, unmanaged, &s, 10), "UNMANAGED_EC2_INSTANCE");
        m.volumes = vol();
        assert_eq!(reason(&m, unmanaged, &s, 10), "PENDING_INITIAL_SCAN");
        // A provider that cannot answer does not stop agentless scans of the stored volumes.
        assert!(agentless_due(&m, Listing::Unknown, &s, 10));
        m.agentless_error = Some(AgentlessError { reason: "AGENTLESS_INSTANCE_STORAGE_LIMIT_EXCEEDED".into(), message: "9 volumes".into() });
        m.agentless_attempt_at = Some(10);
        let c = evaluate(&m, unmanaged, &s, 10);
        assert_eq!((c.scan_status.status_code, c.scan_status.reason.as_str()), ("INACTIVE", "AGENTLESS_INSTANCE_STORAGE_LIMIT_EXCEEDED"));
        // A failed scan is retried within the hour, not after the 24-hour interval.
        assert!(!agentless_due(&m, unmanaged, &s, 10 + AGENTLESS_RETRY_SECONDS - 1));
        assert!(agentless_due(&m, unmanaged, &s, 10 + AGENTLESS_RETRY_SECONDS));
        let agent_only = Settings { scan_mode: ScanMode::AgentBased, ..Settings::default() };
        m.agentless_error = None;
        let c = evaluate(&m, unmanaged, &agent_only, 10);
        assert_eq!(c.scan_status.reason, "UNMANAGED_EC2_INSTANCE");
        assert!(c.scan_status.message.unwrap().contains("AGENT_BASED"));
        let c = evaluate(&m, Listing::NoProvider, &s, 10);
        assert_eq!(c.scan_status.reason, "UNMANAGED_EC2_INSTANCE");
        assert!(c.scan_status.message.unwrap().contains("--machines"));
    }

    /// Inspector: an SSM-managed instance without inventory is NO_INVENTORY; an unmanaged one is
    /// UNMANAGED_EC2_INSTANCE. In HYBRID mode both are scanned agentless when they have volumes.
    #[test]
    fn managed_status_decides_the_reason_without_agent_or_agentless_path() {
        let s = Settings::default();
        let agent_only = Settings { scan_mode: ScanMode::AgentBased, ..Settings::default() };
        let (managed, unmanaged) = (Listing::Listed(ManagedStatus::Managed), Listing::Listed(ManagedStatus::Unmanaged));
        let mut m = machine();
        m.origin = "provider".into();
        let c = evaluate(&m, managed, &s, 10);
        assert_eq!((c.scan_status.status_code, c.scan_status.reason.as_str(), c.scan_mode), ("INACTIVE", "NO_INVENTORY", Some("AGENT_BASED")));
        assert!(c.scan_status.message.unwrap().contains("kensa agent"));
        assert_eq!(reason(&m, unmanaged, &s, 10), "UNMANAGED_EC2_INSTANCE");
        m.volumes = vol();
        assert_eq!(reason(&m, managed, &agent_only, 10), "NO_INVENTORY");
        assert_eq!(reason(&m, unmanaged, &agent_only, 10), "UNMANAGED_EC2_INSTANCE");
        for listing in [managed, unmanaged] {
            let c = evaluate(&m, listing, &s, 10);
            assert_eq!((c.scan_mode, c.scan_status.reason.as_str()), (Some("AGENTLESS"), "PENDING_INITIAL_SCAN"), "{listing:?}");
            assert!(agentless_due(&m, listing, &s, 10));
        }
        // Once its agent reports, the machine is agent-covered whatever the provider said.
        m.agent_last_seen = Some(5);
        let c = evaluate(&m, unmanaged, &agent_only, 10);
        assert_eq!((c.scan_type, c.scan_status.reason.as_str()), (Some("AGENT"), "PENDING_INITIAL_SCAN"));
    }

    /// A provider machine that is no longer listed is RESOURCE_TERMINATED and no longer scanned;
    /// an agent machine the provider does not know is unaffected.
    #[test]
    fn removed_provider_machines_are_terminated() {
        let s = Settings::default();
        let mut m = machine();
        m.origin = "provider".into();
        m.volumes = vol();
        let c = evaluate(&m, Listing::NotListed, &s, 10);
        assert_eq!((c.scan_status.status_code, c.scan_status.reason.as_str()), ("INACTIVE", "RESOURCE_TERMINATED"));
        assert!(!agentless_due(&m, Listing::NotListed, &s, 10));
        let mut a = machine();
        a.agent_last_seen = Some(5);
        assert_eq!(reason(&a, Listing::NotListed, &s, 10), "PENDING_INITIAL_SCAN");
    }

    #[test]
    fn listings_ask_the_provider() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("machines.toml");
        std::fs::write(&path, "[[machine]]\nid = \"a\"\nmanaged = true\n[[machine]]\nid = \"b\"\n").unwrap();
        let provider = crate::provider::FileProvider::new(&path);
        let rows: Vec<MachineRow> = ["a", "b", "c"].iter().map(|id| MachineRow { id: id.to_string(), ..Default::default() }).collect();
        let got = listings(Some(&provider), &rows);
        assert_eq!(got, [Listing::Listed(ManagedStatus::Managed), Listing::Listed(ManagedStatus::Unmanaged), Listing::NotListed]);
        assert_eq!(listings(None, &rows), [Listing::NoProvider; 3]);
        let missing = crate::provider::FileProvider::new(dir.path().join("missing.toml"));
        assert_eq!(listings(Some(&missing), &rows), [Listing::Unknown; 3]);
    }
}
