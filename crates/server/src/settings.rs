//! Fleet scanning settings, modelled on Inspector's "EC2 scanning settings".

use serde::{Deserialize, Serialize};

/// How machines are scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScanMode {
    /// Agent where one reports, agentless from snapshots otherwise.
    Hybrid,
    /// Agents only: machines without an agent are not covered.
    AgentBased,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeepInspectionSettings {
    pub enabled: bool,
    /// Up to 5 extra absolute paths agents inspect besides /usr/lib, /usr/lib64, /usr/local/lib,
    /// /usr/local/lib64.
    #[serde(default)]
    pub custom_paths: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    pub scan_mode: ScanMode,
    pub deep_inspection: DeepInspectionSettings,
    /// How often agents report, in minutes: at least 30 (the default), never shorter.
    pub agent_interval_minutes: u32,
    /// How often machines without an agent are scanned from snapshots, in hours (24).
    pub agentless_interval_hours: u32,
    /// An agent that has not reported for this many seconds has a stale inventory (default: three
    /// agent intervals).
    pub stale_after_seconds: u32,
}

pub const MIN_AGENT_INTERVAL_MINUTES: u32 = 30;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            scan_mode: ScanMode::Hybrid,
            deep_inspection: DeepInspectionSettings { enabled: true, custom_paths: Vec::new() },
            agent_interval_minutes: MIN_AGENT_INTERVAL_MINUTES,
            agentless_interval_hours: 24,
            stale_after_seconds: 3 * 60 * MIN_AGENT_INTERVAL_MINUTES,
        }
    }
}

impl Settings {
    /// Checks every field; the message names the field and the rule.
    pub fn validate(&self) -> Result<(), String> {
        if self.agent_interval_minutes < MIN_AGENT_INTERVAL_MINUTES {
            return Err(format!("agentIntervalMinutes must be at least {MIN_AGENT_INTERVAL_MINUTES} (got {})", self.agent_interval_minutes));
        }
        if self.agent_interval_minutes > 7 * 24 * 60 {
            return Err("agentIntervalMinutes must be at most 10080 (7 days)".into());
        }
        if self.agentless_interval_hours == 0 || self.agentless_interval_hours > 24 * 30 {
            return Err("agentlessIntervalHours must be between 1 and 720".into());
        }
        if self.stale_after_seconds == 0 {
            return Err("staleAfterSeconds must be positive".into());
        }
        if self.deep_inspection.custom_paths.len() > 5 {
            return Err(format!("deepInspection.customPaths holds at most 5 paths (got {})", self.deep_inspection.custom_paths.len()));
        }
        for p in &self.deep_inspection.custom_paths {
            kensa_inventory::lang::validate_custom_path(p).map_err(|e| format!("deepInspection.customPaths: {e}"))?;
        }
        Ok(())
    }
}
