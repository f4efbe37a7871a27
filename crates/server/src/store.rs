//! The server's embedded store: one SQLite file in the data directory, WAL mode, synchronous=FULL
//! so that whatever the API acknowledged survives a crash.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: tokens, machines, inventories, findings, settings
    r#"
    CREATE TABLE tokens(
        hash TEXT PRIMARY KEY,              -- sha256 of the token; tokens themselves are never stored
        kind TEXT NOT NULL CHECK (kind IN ('admin', 'enrollment', 'agent')),
        machine_id TEXT,                    -- agent credentials: the one machine they may write
        created_at INTEGER NOT NULL,
        used_at INTEGER                     -- enrollment tokens are one-time
    );
    CREATE TABLE machines(
        id TEXT PRIMARY KEY,
        name TEXT,
        origin TEXT NOT NULL CHECK (origin IN ('agent', 'provider')),
        tags TEXT NOT NULL DEFAULT '{}',    -- JSON object of strings
        volumes TEXT NOT NULL DEFAULT '[]', -- JSON: provider volumes (agentless sources)
        os TEXT,                            -- JSON OsInfo from the last inventory
        created_at INTEGER NOT NULL,
        agent_last_seen INTEGER,            -- last enrollment/heartbeat/inventory from its agent
        inventory_at INTEGER,               -- when the current inventory was taken
        inventory_sha256 TEXT,
        inventory_scan_type TEXT,           -- AGENT or AGENTLESS: how the current inventory was taken
        agentless_attempt_at INTEGER,
        agentless_error TEXT                -- JSON {reason, message} of the last failed agentless scan
    );
    CREATE TABLE inventories(
        machine_id TEXT PRIMARY KEY REFERENCES machines(id) ON DELETE CASCADE,
        data BLOB NOT NULL                  -- gzip-compressed JSON Inventory
    );
    CREATE TABLE findings(
        machine_id TEXT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
        finding_key TEXT NOT NULL,          -- vulnerability id + package instance
        vulnerability_id TEXT NOT NULL,
        package_name TEXT NOT NULL,
        severity TEXT NOT NULL,
        fix_available TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'SUPPRESSED', 'CLOSED')),
        first_observed INTEGER NOT NULL,
        last_observed INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        inspector_score REAL,
        epss_score REAL,
        data TEXT NOT NULL,                 -- the finding's JSON
        PRIMARY KEY (machine_id, finding_key)
    );
    CREATE INDEX findings_by_vuln ON findings(vulnerability_id);
    CREATE INDEX findings_by_status ON findings(status, severity);
    CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
    "#,
    // 2: one machine's open findings without visiting other machines' rows. Without it SQLite
    // answers `machine_id = ? AND status = 'ACTIVE'` through findings_by_status, reading every
    // active finding of the fleet on each report (quadratic in fleet size; found by fleet_load).
    r#"
    CREATE INDEX findings_by_machine ON findings(machine_id, status);
    "#,
    // 3: reports are acknowledged once stored and matched in the background. `pending_match` is
    // written in the inventory's transaction, so an acknowledged report survives a crash and is
    // matched after the restart; `inventory_generation` tells the matcher whether the row it
    // drains is the inventory it matched. Findings keep their vulnerability-level JSON (title,
    // description, CVSS, EPSS, references: the same for every machine) once in `finding_details`;
    // a row keeps only its machine's part, and `content_hash` lets an unchanged finding be skipped.
    r#"
    ALTER TABLE machines ADD COLUMN inventory_generation INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE machines ADD COLUMN matched_at INTEGER;  -- when findings were last computed
    -- Stores before 3 matched on receipt and on database changes.
    UPDATE machines SET matched_at = COALESCE((SELECT MAX(last_observed) FROM findings WHERE machine_id = machines.id), inventory_at);
    CREATE TABLE pending_match(
        machine_id TEXT PRIMARY KEY REFERENCES machines(id) ON DELETE CASCADE,
        generation INTEGER NOT NULL,        -- machines.inventory_generation it was queued for
        queued_at INTEGER NOT NULL
    );
    CREATE TABLE finding_details(
        hash TEXT PRIMARY KEY,              -- sha256 of data
        data TEXT NOT NULL                  -- vulnerability-level part of a finding's JSON
    );
    ALTER TABLE findings ADD COLUMN details_hash TEXT;  -- NULL: `data` is the whole finding (before 3)
    ALTER TABLE findings ADD COLUMN content_hash TEXT;
    "#,
    // 4: the tags each source last declared, so a tag removed at the source (the machines file, an
    // agent's --tag) is removed from the machine; API-set tags of other keys stay. Stores before 4
    // kept no record: a provider machine's current tags are taken as its provider's.
    r#"
    ALTER TABLE machines ADD COLUMN provider_tags TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE machines ADD COLUMN agent_tags TEXT NOT NULL DEFAULT '{}';
    UPDATE machines SET provider_tags = tags WHERE origin = 'provider';
    "#,
];

type Tags = std::collections::BTreeMap<String, String>;

/// A machine's tags after a source (provider or agent) declares `declared`, having declared
/// `previous` last time: the keys it used to set go, then what it sets now is applied.
fn retag(current: &Tags, previous: &Tags, declared: &Tags) -> Tags {
    let mut tags: Tags = current.iter().filter(|(k, _)| !previous.contains_key(*k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    tags.extend(declared.iter().map(|(k, v)| (k.clone(), v.clone())));
    tags
}

fn tags_json(tags: &Tags) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "{}".into())
}

pub fn open(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path).map_err(|e| anyhow::anyhow!("cannot open server store {}: {e}", path.display()))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    migrate(&conn).map_err(|e| anyhow::anyhow!("server store {}: {e}", path.display()))?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> anyhow::Result<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
    if version > MIGRATIONS.len() {
        anyhow::bail!("schema version {version} is newer than this kensa ({}); upgrade kensa", MIGRATIONS.len());
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Kinds of bearer tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Agent { machine_id: String },
}

pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// A new random token (256 bits, hex) with a readable prefix naming its kind.
pub fn new_token(prefix: &str) -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the OS random number generator failed");
    format!("{prefix}_{}", hex::encode(b))
}

pub fn insert_token(conn: &Connection, token: &str, kind: &str, machine_id: Option<&str>) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO tokens(hash, kind, machine_id, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![token_hash(token), kind, machine_id, now()],
    )?;
    Ok(())
}

/// Resolves a bearer token to who holds it. Enrollment tokens are not principals.
pub fn principal(conn: &Connection, token: &str) -> rusqlite::Result<Option<Principal>> {
    let row: Option<(String, Option<String>)> = conn
        .query_row("SELECT kind, machine_id FROM tokens WHERE hash = ?1", [token_hash(token)], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((k, _)) if k == "admin" => Some(Principal::Admin),
        Some((k, Some(m))) if k == "agent" => Some(Principal::Agent { machine_id: m }),
        _ => None,
    })
}

/// Consumes a one-time enrollment token; false when it is unknown or already used.
pub fn consume_enrollment(conn: &Connection, token: &str) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "UPDATE tokens SET used_at = ?2 WHERE hash = ?1 AND kind = 'enrollment' AND used_at IS NULL",
        params![token_hash(token), now()],
    )?;
    Ok(n == 1)
}

/// One provider volume: a disk image or snapshot file standing for a machine's volume.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub key_tags: std::collections::BTreeMap<String, String>,
}

/// A machine row.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineRow {
    pub id: String,
    pub name: Option<String>,
    pub origin: String,
    pub tags: std::collections::BTreeMap<String, String>,
    pub volumes: Vec<Volume>,
    pub os: Option<kensa_inventory::OsInfo>,
    pub created_at: i64,
    pub agent_last_seen: Option<i64>,
    pub inventory_at: Option<i64>,
    pub inventory_sha256: Option<String>,
    pub inventory_scan_type: Option<String>,
    pub agentless_attempt_at: Option<i64>,
    pub agentless_error: Option<AgentlessError>,
    /// When the findings were last computed (None: the inventory is not matched yet).
    pub matched_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentlessError {
    pub reason: String,
    pub message: String,
}

const MACHINE_COLS: &str = "id, name, origin, tags, volumes, os, created_at, agent_last_seen, inventory_at, inventory_sha256, inventory_scan_type, agentless_attempt_at, agentless_error, matched_at";

fn machine_from_row(r: &rusqlite::Row) -> rusqlite::Result<MachineRow> {
    let json = |i: usize| -> rusqlite::Result<Option<String>> { r.get(i) };
    Ok(MachineRow {
        id: r.get(0)?,
        name: r.get(1)?,
        origin: r.get(2)?,
        tags: json(3)?.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default(),
        volumes: json(4)?.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default(),
        os: json(5)?.and_then(|s| serde_json::from_str(&s).ok()),
        created_at: r.get(6)?,
        agent_last_seen: r.get(7)?,
        inventory_at: r.get(8)?,
        inventory_sha256: r.get(9)?,
        inventory_scan_type: r.get(10)?,
        agentless_attempt_at: r.get(11)?,
        agentless_error: json(12)?.and_then(|s| serde_json::from_str(&s).ok()),
        matched_at: r.get(13)?,
    })
}

pub fn machines(conn: &Connection) -> rusqlite::Result<Vec<MachineRow>> {
    let mut st = conn.prepare(&format!("SELECT {MACHINE_COLS} FROM machines ORDER BY id"))?;
    let rows = st.query_map([], machine_from_row)?;
    rows.collect()
}

pub fn machine(conn: &Connection, id: &str) -> rusqlite::Result<Option<MachineRow>> {
    conn.query_row(&format!("SELECT {MACHINE_COLS} FROM machines WHERE id = ?1"), [id], machine_from_row).optional()
}

/// Creates or updates an agent machine at enrollment. The agent's tags replace the ones it
/// declared at its previous enrollment; tags from other sources stay.
pub fn upsert_agent_machine(conn: &Connection, id: &str, name: &str, tags: &Tags) -> rusqlite::Result<()> {
    let existing: Option<(String, String)> =
        conn.query_row("SELECT tags, agent_tags FROM machines WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
    match existing {
        Some((current, previous)) => {
            let merged = retag(&serde_json::from_str(&current).unwrap_or_default(), &serde_json::from_str(&previous).unwrap_or_default(), tags);
            conn.execute(
                "UPDATE machines SET name = ?2, tags = ?3, agent_tags = ?4, agent_last_seen = ?5 WHERE id = ?1",
                params![id, name, tags_json(&merged), tags_json(tags), now()],
            )?;
        }
        None => {
            conn.execute(
                "INSERT INTO machines(id, name, origin, tags, agent_tags, created_at, agent_last_seen) VALUES (?1, ?2, 'agent', ?3, ?3, ?4, ?4)",
                params![id, name, tags_json(tags), now()],
            )?;
        }
    }
    Ok(())
}

/// Makes the provider's machine list current: new machines are added, known ones get the
/// provider's name, tags and volumes. A tag the provider no longer sets is removed (taking
/// `InspectorEc2Exclusion` out of the machines file brings the machine back); tags set through
/// the API are kept where the provider does not set the same key. A machine with an inventory
/// whose exclusion changed is queued for a re-match (closing or re-opening its findings) in the
/// same transaction; their ids are returned for the matcher.
pub fn sync_provider_machines(conn: &mut Connection, list: &[crate::provider::ProvidedMachine]) -> rusqlite::Result<Vec<String>> {
    let mut rematch = Vec::new();
    let tx = conn.transaction()?;
    for m in list {
        let volumes = serde_json::to_string(&m.volumes).unwrap_or_else(|_| "[]".into());
        let existing: Option<(String, String, bool)> = tx
            .query_row("SELECT tags, provider_tags, inventory_at IS NOT NULL FROM machines WHERE id = ?1", [&m.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        match existing {
            Some((current, previous, has_inventory)) => {
                let current: Tags = serde_json::from_str(&current).unwrap_or_default();
                let merged = retag(&current, &serde_json::from_str(&previous).unwrap_or_default(), &m.tags);
                if has_inventory && crate::coverage::is_excluded(&current) != crate::coverage::is_excluded(&merged) {
                    queue_for_match(&tx, &m.id)?;
                    rematch.push(m.id.clone());
                }
                tx.execute(
                    "UPDATE machines SET name = COALESCE(?2, name), tags = ?3, provider_tags = ?4, volumes = ?5 WHERE id = ?1",
                    params![m.id, m.name, tags_json(&merged), tags_json(&m.tags), volumes],
                )?;
            }
            None => {
                tx.execute(
                    "INSERT INTO machines(id, name, origin, tags, provider_tags, volumes, created_at) VALUES (?1, ?2, 'provider', ?3, ?3, ?4, ?5)",
                    params![m.id, m.name, tags_json(&m.tags), volumes, now()],
                )?;
            }
        }
    }
    tx.commit()?;
    Ok(rematch)
}

pub fn set_tags(conn: &Connection, id: &str, tags: &std::collections::BTreeMap<String, String>) -> rusqlite::Result<bool> {
    let n = conn.execute("UPDATE machines SET tags = ?2 WHERE id = ?1", params![id, serde_json::to_string(tags).unwrap_or_default()])?;
    Ok(n == 1)
}

pub fn touch_agent(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute("UPDATE machines SET agent_last_seen = ?2 WHERE id = ?1", params![id, now()])?;
    Ok(())
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// An inventory ready to store: validated, serialized and compressed before the store lock is
/// taken (the lock is held only for the write).
pub struct EncodedInventory {
    pub blob: Vec<u8>,
    pub os_json: Option<String>,
}

impl EncodedInventory {
    pub fn new(inv: &kensa_inventory::Inventory) -> anyhow::Result<Self> {
        Ok(EncodedInventory { blob: gzip(&serde_json::to_vec(inv)?), os_json: inv.os.as_ref().map(serde_json::to_string).transpose()? })
    }
}

/// Stores a machine's current inventory (replacing the previous one) and queues it for matching
/// in the same transaction. Returns its generation.
pub fn put_inventory(conn: &mut Connection, id: &str, inv: &kensa_inventory::Inventory, sha256: &str, scan_type: &str) -> anyhow::Result<i64> {
    put_encoded_inventory(conn, id, &EncodedInventory::new(inv)?, sha256, scan_type, false)
}

/// [`put_inventory`] of an already encoded inventory; `agent_seen` also records the agent's
/// contact (one transaction, one fsync per report). Fails when the machine is unknown.
pub fn put_encoded_inventory(conn: &mut Connection, id: &str, inv: &EncodedInventory, sha256: &str, scan_type: &str, agent_seen: bool) -> anyhow::Result<i64> {
    let t = now();
    let tx = conn.transaction()?;
    let generation: Option<i64> = tx
        .query_row(
            "UPDATE machines SET os = ?2, inventory_at = ?3, inventory_sha256 = ?4, inventory_scan_type = ?5,
             inventory_generation = inventory_generation + 1, agent_last_seen = CASE WHEN ?6 THEN ?3 ELSE agent_last_seen END
             WHERE id = ?1 RETURNING inventory_generation",
            params![id, inv.os_json, t, sha256, scan_type, agent_seen],
            |r| r.get(0),
        )
        .optional()?;
    let Some(generation) = generation else { anyhow::bail!(UnknownMachine(id.to_string())) };
    tx.execute("INSERT OR REPLACE INTO inventories(machine_id, data) VALUES (?1, ?2)", params![id, inv.blob])?;
    tx.execute("INSERT OR REPLACE INTO pending_match(machine_id, generation, queued_at) VALUES (?1, ?2, ?3)", params![id, generation, t])?;
    tx.commit()?;
    Ok(generation)
}

/// The machine named in a write does not exist.
#[derive(Debug)]
pub struct UnknownMachine(pub String);
impl std::fmt::Display for UnknownMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no machine {}", self.0)
    }
}
impl std::error::Error for UnknownMachine {}

pub fn inventory(conn: &Connection, id: &str) -> anyhow::Result<Option<kensa_inventory::Inventory>> {
    let blob: Option<Vec<u8>> = conn.query_row("SELECT data FROM inventories WHERE machine_id = ?1", [id], |r| r.get(0)).optional()?;
    blob.map(|b| decode_inventory(&b)).transpose()
}

/// Decompresses and parses a stored inventory (done outside the store lock by the matcher).
pub fn decode_inventory(blob: &[u8]) -> anyhow::Result<kensa_inventory::Inventory> {
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(blob), &mut json)?;
    Ok(serde_json::from_slice(&json)?)
}

/// What the matcher needs of one machine, read in one go: its tags, its compressed inventory and
/// the inventory's generation.
pub struct MatchInput {
    pub tags: std::collections::BTreeMap<String, String>,
    pub inventory: Option<Vec<u8>>,
    pub generation: i64,
}

pub fn match_input(conn: &Connection, id: &str) -> rusqlite::Result<Option<MatchInput>> {
    conn.query_row(
        "SELECT m.tags, i.data, m.inventory_generation FROM machines m LEFT JOIN inventories i ON i.machine_id = m.id WHERE m.id = ?1",
        [id],
        |r| {
            let tags: String = r.get(0)?;
            Ok(MatchInput { tags: serde_json::from_str(&tags).unwrap_or_default(), inventory: r.get(1)?, generation: r.get(2)? })
        },
    )
    .optional()
}

/// Queues one machine's stored inventory for re-matching (durably; a row already there stays).
pub fn queue_for_match(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO pending_match(machine_id, generation, queued_at) SELECT id, inventory_generation, ?2 FROM machines WHERE id = ?1",
        params![id, now()],
    )?;
    Ok(())
}

/// Queues every machine with an inventory for re-matching and records `setting = value`, in one
/// transaction. Machines already pending keep their row. Returns the machines queued.
pub fn queue_all_for_rematch(conn: &mut Connection, setting: &str, value: &str) -> rusqlite::Result<Vec<String>> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT OR IGNORE INTO pending_match(machine_id, generation, queued_at) SELECT id, inventory_generation, ?1 FROM machines WHERE inventory_at IS NOT NULL",
        [now()],
    )?;
    let ids = {
        let mut st = tx.prepare("SELECT id FROM machines WHERE inventory_at IS NOT NULL ORDER BY id")?;
        let rows = st.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()?
    };
    put_setting(&tx, setting, value)?;
    tx.commit()?;
    Ok(ids)
}

/// Machines whose stored inventory still waits for matching, oldest first.
pub fn pending_matches(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare("SELECT machine_id FROM pending_match ORDER BY queued_at, machine_id")?;
    let rows = st.query_map([], |r| r.get(0))?;
    rows.collect()
}

pub fn set_agentless_result(conn: &Connection, id: &str, error: Option<&AgentlessError>) -> rusqlite::Result<()> {
    let err = error.map(|e| serde_json::to_string(e).unwrap_or_default());
    conn.execute("UPDATE machines SET agentless_attempt_at = ?2, agentless_error = ?3 WHERE id = ?1", params![id, now(), err])?;
    Ok(())
}

pub fn get_setting(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()
}

pub fn put_setting(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?1, ?2)", params![key, value])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-match queries on one machine's findings must use a per-machine index: a plan through
    /// findings_by_status reads the whole fleet's findings on every match.
    #[test]
    fn per_machine_finding_queries_use_the_machine_index() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("server.db")).unwrap();
        for sql in [
            "SELECT COUNT(*) FROM findings WHERE machine_id = ?1 AND status = 'ACTIVE'",
            "SELECT finding_key FROM findings WHERE machine_id = ?1 AND status != 'CLOSED'",
            "SELECT finding_key, status, content_hash FROM findings WHERE machine_id = ?1",
            "UPDATE findings SET status = 'CLOSED' WHERE machine_id = ?1 AND status != 'CLOSED' AND finding_key NOT IN (SELECT value FROM json_each('[]'))",
        ] {
            let plan: Vec<String> = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap().query_map(["m"], |r| r.get(3)).unwrap().map(Result::unwrap).collect();
            // Either index that starts with machine_id (the primary key's is the other).
            assert!(plan.iter().any(|p| p.contains("findings_by_machine") || p.contains("sqlite_autoindex_findings_1")), "{sql}: {plan:?}");
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// A tag removed at its source leaves the machine; API-set tags of other keys stay.
    #[test]
    fn tags_follow_their_source() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("server.db")).unwrap();
        let provided = |t: Tags| crate::provider::ProvidedMachine { id: "vm".into(), name: None, tags: t, volumes: Vec::new() };
        sync_provider_machines(&mut conn, &[provided(tags(&[("env", "prod"), ("InspectorEc2Exclusion", "")]))]).unwrap();
        assert_eq!(machine(&conn, "vm").unwrap().unwrap().tags, tags(&[("env", "prod"), ("InspectorEc2Exclusion", "")]));
        // An admin adds a tag through the API.
        let mut with_owner = machine(&conn, "vm").unwrap().unwrap().tags;
        with_owner.insert("owner".into(), "ops".into());
        assert!(set_tags(&conn, "vm", &with_owner).unwrap());
        // The exclusion tag is taken out of the machines file and env changes.
        // No inventory yet: nothing to re-match.
        assert_eq!(sync_provider_machines(&mut conn, &[provided(tags(&[("env", "staging")]))]).unwrap(), Vec::<String>::new());
        assert_eq!(machine(&conn, "vm").unwrap().unwrap().tags, tags(&[("env", "staging"), ("owner", "ops")]));
        // With an inventory, a change of exclusion queues a durable re-match; other changes do not.
        conn.execute("UPDATE machines SET inventory_at = 1 WHERE id = 'vm'", []).unwrap();
        assert_eq!(sync_provider_machines(&mut conn, &[provided(tags(&[("env", "prod")]))]).unwrap(), Vec::<String>::new());
        assert_eq!(sync_provider_machines(&mut conn, &[provided(tags(&[("InspectorEc2Exclusion", "yes")]))]).unwrap(), vec!["vm".to_string()]);
        assert_eq!(pending_matches(&conn).unwrap(), vec!["vm".to_string()]);

        upsert_agent_machine(&conn, "a1", "a1", &tags(&[("role", "web"), ("tier", "1")])).unwrap();
        upsert_agent_machine(&conn, "a1", "a1", &tags(&[("role", "db")])).unwrap();
        assert_eq!(machine(&conn, "a1").unwrap().unwrap().tags, tags(&[("role", "db")]));
    }
}
