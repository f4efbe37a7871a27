//! Coverage: which method monitors each machine and, when none does, why — as Inspector's
//! ListCoverage reports it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::settings::{ScanMode, Settings};
use crate::store::MachineRow;

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

/// Decides a machine's coverage at time `now` (seconds since the epoch).
pub fn evaluate(m: &MachineRow, settings: &Settings, now: i64) -> CoveredResource {
    let mut out = CoveredResource {
        resource_id: m.id.clone(),
        resource_type: "MACHINE",
        name: m.name.clone(),
        scan_type: None,
        scan_mode: None,
        scan_status: status("INACTIVE", "NO_INVENTORY", None),
        last_scanned_at: m.inventory_at.map(rfc3339),
        tags: m.tags.clone(),
        os: m.os.clone(),
    };
    if is_excluded(&m.tags) {
        out.scan_status = status("INACTIVE", "EXCLUDED_BY_TAG", Some(format!("tagged {EXCLUSION_TAG}")));
        return out;
    }
    let stale_after = i64::from(settings.stale_after_seconds);
    let agent_fresh = m.agent_last_seen.map(|t| now - t <= stale_after);
    let hybrid_possible = settings.scan_mode == ScanMode::Hybrid && !m.volumes.is_empty();
    let inventory_is_agentless = m.inventory_scan_type.as_deref() == Some("AGENTLESS");

    match agent_fresh {
        Some(true) => {
            out.scan_mode = Some("AGENT_BASED");
            out.scan_type = Some("AGENT");
            out.scan_status = match (&m.inventory_at, &m.os) {
                (None, _) => status("ACTIVE", "PENDING_INITIAL_SCAN", None),
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
        Some(false) if !hybrid_possible => {
            out.scan_type = Some("AGENT");
            out.scan_mode = Some("AGENT_BASED");
            let since = m.agent_last_seen.map(rfc3339).unwrap_or_default();
            out.scan_status = status("INACTIVE", "STALE_INVENTORY", Some(format!("the agent has not reported since {since}")));
            out
        }
        _ if settings.scan_mode == ScanMode::AgentBased || m.volumes.is_empty() => {
            out.scan_status = status("INACTIVE", "UNMANAGED_EC2_INSTANCE", Some("no agent reports for this machine and it has no volumes for agentless scanning".into()));
            if settings.scan_mode == ScanMode::AgentBased && !m.volumes.is_empty() {
                out.scan_status.message = Some("no agent reports for this machine and the scan mode is AGENT_BASED".into());
            }
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
                }
            }
            out
        }
    }
}

/// Whether the scheduler should scan this machine agentless now.
pub fn agentless_due(m: &MachineRow, settings: &Settings, now: i64) -> bool {
    if settings.scan_mode != ScanMode::Hybrid || m.volumes.is_empty() || is_excluded(&m.tags) {
        return false;
    }
    let stale_after = i64::from(settings.stale_after_seconds);
    if m.agent_last_seen.is_some_and(|t| now - t <= stale_after) {
        return false;
    }
    let interval = i64::from(settings.agentless_interval_hours) * 3600;
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

    #[test]
    fn decisions() {
        let s = Settings::default();
        let now = 1_000_000;
        let mut m = machine();
        m.agent_last_seen = Some(now - 60);
        assert_eq!(evaluate(&m, &s, now).scan_status.reason, "PENDING_INITIAL_SCAN");
        m.inventory_at = Some(now - 60);
        m.inventory_scan_type = Some("AGENT".into());
        m.os = debian();
        let c = evaluate(&m, &s, now);
        assert_eq!((c.scan_type, c.scan_status.reason.as_str()), (Some("AGENT"), "SUCCESSFUL"));
        // Stale without volumes.
        let late = now + 91 * 60;
        assert_eq!(evaluate(&m, &s, late).scan_status.reason, "STALE_INVENTORY");
        // Stale with volumes: agentless takes over.
        m.volumes = vol();
        assert!(agentless_due(&m, &s, late));
        assert_eq!(evaluate(&m, &s, late).scan_mode, Some("AGENTLESS"));
        m.inventory_scan_type = Some("AGENTLESS".into());
        m.agentless_attempt_at = Some(late);
        let c = evaluate(&m, &s, late + 1);
        assert_eq!((c.scan_type, c.scan_status.reason.as_str()), (Some("AGENTLESS"), "SUCCESSFUL"));
        // Excluded wins over everything.
        m.tags.insert(EXCLUSION_TAG.into(), String::new());
        assert_eq!(evaluate(&m, &s, late).scan_status.reason, "EXCLUDED_BY_TAG");
        assert!(!agentless_due(&m, &s, late));
    }

    #[test]
    fn unmanaged_and_errors() {
        let s = Settings::default();
        let mut m = machine();
        m.origin = "provider".into();
        assert_eq!(evaluate(&m, &s, 10).scan_status.reason, "UNMANAGED_EC2_INSTANCE");
        m.volumes = vol();
        assert_eq!(evaluate(&m, &s, 10).scan_status.reason, "PENDING_INITIAL_SCAN");
        m.agentless_error = Some(AgentlessError { reason: "AGENTLESS_INSTANCE_STORAGE_LIMIT_EXCEEDED".into(), message: "9 volumes".into() });
        let c = evaluate(&m, &s, 10);
        assert_eq!((c.scan_status.status_code, c.scan_status.reason.as_str()), ("INACTIVE", "AGENTLESS_INSTANCE_STORAGE_LIMIT_EXCEEDED"));
        let agent_only = Settings { scan_mode: ScanMode::AgentBased, ..Settings::default() };
        m.agentless_error = None;
        assert_eq!(evaluate(&m, &agent_only, 10).scan_status.reason, "UNMANAGED_EC2_INSTANCE");
    }
}
