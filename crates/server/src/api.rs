//! The HTTP API (`/api/v1`). Every call needs `Authorization: Bearer TOKEN`; errors are JSON
//! `{"code", "message"}`; bad input is a 4xx, never a 5xx.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::coverage;
use crate::settings::Settings;
use crate::store::{self, Principal};
use crate::AppState;

/// Largest request body accepted (compressed).
pub const MAX_BODY: usize = 64 << 20;
/// Largest inventory accepted after decompression.
pub const MAX_INVENTORY: u64 = 512 << 20;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }
    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }
    fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDeniedException", message)
    }
    fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {e}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerException", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"code": self.code, "message": self.message}))).into_response()
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::internal(format!("store: {e}"))
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::internal(format!("{e:#}"))
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn bearer(headers: &HeaderMap) -> ApiResult<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "UnauthorizedException", "missing Authorization: Bearer TOKEN header"))?;
    let value = value.to_str().map_err(|_| ApiError::new(StatusCode::UNAUTHORIZED, "UnauthorizedException", "Authorization header is not text"))?;
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "UnauthorizedException", "Authorization header must be `Bearer TOKEN`"))
}

fn authenticate(state: &AppState, headers: &HeaderMap) -> ApiResult<Principal> {
    let token = bearer(headers)?;
    let conn = state.db.lock().expect("store lock poisoned");
    store::principal(&conn, token)?.ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "UnauthorizedException", "unknown or revoked token"))
}

fn require_admin(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    match authenticate(state, headers)? {
        Principal::Admin => Ok(()),
        Principal::Agent { .. } => Err(ApiError::forbidden("this call needs the admin token")),
    }
}

/// Admin, or the agent of machine `id`.
fn require_machine_writer(state: &AppState, headers: &HeaderMap, id: &str) -> ApiResult<Principal> {
    let p = authenticate(state, headers)?;
    match &p {
        Principal::Admin => Ok(p),
        Principal::Agent { machine_id } if machine_id == id => Ok(p),
        Principal::Agent { machine_id } => Err(ApiError::forbidden(format!("agent of machine {machine_id} may not write machine {id}"))),
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/v1/enrollment-tokens", post(create_enrollment_token))
        .route("/api/v1/agents/enroll", post(enroll))
        .route("/api/v1/agents/config", get(agent_config))
        .route("/api/v1/machines", get(list_machines))
        .route("/api/v1/machines/{id}", get(get_machine))
        .route("/api/v1/machines/{id}/tags", put(put_tags))
        .route("/api/v1/machines/{id}/inventory", put(put_inventory).get(get_inventory))
        .route("/api/v1/machines/{id}/heartbeat", post(heartbeat))
        .route("/api/v1/settings", get(get_settings).put(put_settings))
        .route("/api/v1/coverage", get(list_coverage))
        .route("/api/v1/coverage/statistics", get(coverage_statistics))
        .route("/api/v1/findings", get(list_findings))
        .route("/api/v1/machines/{id}/sbom", get(machine_sbom))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .fallback(|| async { ApiError::not_found("no such API route") })
        .with_state(state)
}

async fn create_enrollment_token(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    require_admin(&state, &headers)?;
    let token = store::new_token("kensa_enroll");
    store::insert_token(&state.db.lock().expect("store lock poisoned"), &token, "enrollment", None)?;
    Ok((StatusCode::CREATED, Json(json!({"token": token}))))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnrollRequest {
    /// The machine's name: `--name`, else the hostname / machine-id of the inventoried root.
    name: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn validate_machine_id(id: &str) -> ApiResult<()> {
    if id.is_empty() || id.len() > 256 || id.contains('/') || id.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!("invalid machine name {id:?}: 1-256 characters, no '/' or control characters")));
    }
    Ok(())
}

fn validate_tags(tags: &BTreeMap<String, String>) -> ApiResult<()> {
    if tags.len() > 50 {
        return Err(ApiError::bad_request("at most 50 tags per machine"));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 {
            return Err(ApiError::bad_request(format!("invalid tag {k:?}: keys 1-128 characters, values at most 256")));
        }
    }
    Ok(())
}

async fn enroll(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> ApiResult<Json<serde_json::Value>> {
    let token = bearer(&headers)?.to_string();
    let req: EnrollRequest = parse_json(&body)?;
    validate_machine_id(&req.name)?;
    validate_tags(&req.tags)?;
    let conn = state.db.lock().expect("store lock poisoned");
    if !store::consume_enrollment(&conn, &token)? {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "UnauthorizedException", "unknown or already used enrollment token"));
    }
    let credential = store::new_token("kensa_agent");
    store::upsert_agent_machine(&conn, &req.name, &req.name, &req.tags)?;
    store::insert_token(&conn, &credential, "agent", Some(&req.name))?;
    let settings = crate::load_settings(&conn);
    Ok(Json(json!({"machineId": req.name, "credential": credential, "config": agent_config_json(&settings)})))
}

fn agent_config_json(s: &Settings) -> serde_json::Value {
    json!({
        "intervalMinutes": s.agent_interval_minutes,
        "deepInspection": {"enabled": s.deep_inspection.enabled, "customPaths": s.deep_inspection.custom_paths},
    })
}

async fn agent_config(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Json<serde_json::Value>> {
    authenticate(&state, &headers)?;
    let s = crate::load_settings(&state.db.lock().expect("store lock poisoned"));
    Ok(Json(agent_config_json(&s)))
}

/// Parses a query string; unknown or malformed parameters are a 400 naming them.
fn parse_query<T: serde::de::DeserializeOwned>(q: Option<String>) -> ApiResult<T> {
    serde_urlencoded::from_str(q.as_deref().unwrap_or("")).map_err(|e| ApiError::bad_request(format!("invalid query parameters: {e}")))
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

async fn list_machines(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let machines = store::machines(&state.db.lock().expect("store lock poisoned"))?;
    Ok(Json(json!({"machines": machines})))
}

async fn get_machine(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<serde_json::Value>> {
    require_machine_writer(&state, &headers, &id)?;
    let m = store::machine(&state.db.lock().expect("store lock poisoned"), &id)?.ok_or_else(|| ApiError::not_found(format!("no machine {id}")))?;
    Ok(Json(serde_json::to_value(m).map_err(ApiError::internal)?))
}

async fn put_tags(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Tags {
        tags: BTreeMap<String, String>,
    }
    let t: Tags = parse_json(&body)?;
    validate_tags(&t.tags)?;
    if !store::set_tags(&state.db.lock().expect("store lock poisoned"), &id, &t.tags)? {
        return Err(ApiError::not_found(format!("no machine {id}")));
    }
    state.changed.notify_one();
    Ok(Json(json!({"machineId": id, "tags": t.tags})))
}

/// Decompresses a body sent with `Content-Encoding: gzip`, capped at `MAX_INVENTORY` bytes.
fn decode_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Vec<u8>> {
    let gz = headers.get(axum::http::header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).map(|v| v.eq_ignore_ascii_case("gzip")).unwrap_or(false);
    if !gz {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_INVENTORY + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request(format!("body is not valid gzip: {e}")))?;
    if out.len() as u64 > MAX_INVENTORY {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "ValidationException", format!("inventory larger than {MAX_INVENTORY} bytes")));
    }
    Ok(out)
}

async fn put_inventory(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> ApiResult<Json<serde_json::Value>> {
    let principal = require_machine_writer(&state, &headers, &id)?;
    let raw = decode_body(&headers, &body)?;
    let inv: kensa_inventory::Inventory = parse_json(&raw)?;
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&raw))
    };
    let state2 = state.clone();
    let id2 = id.clone();
    let agent = matches!(principal, Principal::Agent { .. });
    let findings = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        let mut conn = state2.db.lock().expect("store lock poisoned");
        if store::machine(&conn, &id2)?.is_none() {
            anyhow::bail!(NotFound(format!("no machine {id2}")));
        }
        if agent {
            store::touch_agent(&conn, &id2)?;
        }
        store::put_inventory(&mut conn, &id2, &inv, &sha, "AGENT")?;
        drop(conn);
        state2.rematch_machine(&id2)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| match e.downcast::<NotFound>() {
        Ok(NotFound(m)) => ApiError::not_found(m),
        Err(e) => ApiError::from(e),
    })?;
    let s = crate::load_settings(&state.db.lock().expect("store lock poisoned"));
    Ok(Json(json!({"machineId": id, "inventorySha256": sha_of(&state, &id)?, "activeFindings": findings, "config": agent_config_json(&s)})))
}

#[derive(Debug)]
struct NotFound(String);
impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for NotFound {}

fn sha_of(state: &AppState, id: &str) -> ApiResult<Option<String>> {
    Ok(store::machine(&state.db.lock().expect("store lock poisoned"), id)?.and_then(|m| m.inventory_sha256))
}

async fn get_inventory(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let inv = store::inventory(&state.db.lock().expect("store lock poisoned"), &id)?.ok_or_else(|| ApiError::not_found(format!("no inventory for machine {id}")))?;
    Ok(Json(serde_json::to_value(inv).map_err(ApiError::internal)?))
}

async fn heartbeat(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> ApiResult<Json<serde_json::Value>> {
    require_machine_writer(&state, &headers, &id)?;
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Beat {
        inventory_sha256: Option<String>,
    }
    let beat: Beat = if body.is_empty() { Beat::default() } else { parse_json(&body)? };
    let conn = state.db.lock().expect("store lock poisoned");
    let m = store::machine(&conn, &id)?.ok_or_else(|| ApiError::not_found(format!("no machine {id}")))?;
    store::touch_agent(&conn, &id)?;
    let day = 24 * 3600;
    let inventory_needed = m.inventory_sha256.is_none()
        || beat.inventory_sha256 != m.inventory_sha256
        || m.inventory_scan_type.as_deref() != Some("AGENT")
        || m.inventory_at.is_none_or(|t| store::now() - t >= day);
    let s = crate::load_settings(&conn);
    Ok(Json(json!({"machineId": id, "inventoryNeeded": inventory_needed, "config": agent_config_json(&s)})))
}

async fn get_settings(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Json<Settings>> {
    require_admin(&state, &headers)?;
    Ok(Json(crate::load_settings(&state.db.lock().expect("store lock poisoned"))))
}

async fn put_settings(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> ApiResult<Json<Settings>> {
    require_admin(&state, &headers)?;
    let s: Settings = parse_json(&body)?;
    s.validate().map_err(ApiError::bad_request)?;
    store::put_setting(&state.db.lock().expect("store lock poisoned"), "settings", &serde_json::to_string(&s).map_err(ApiError::internal)?)?;
    state.changed.notify_one();
    Ok(Json(s))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CoverageQuery {
    /// Only machines with this scan status reason.
    reason: Option<String>,
    status_code: Option<String>,
    scan_type: Option<String>,
}

fn coverage_now(state: &AppState) -> ApiResult<Vec<coverage::CoveredResource>> {
    let conn = state.db.lock().expect("store lock poisoned");
    let s = crate::load_settings(&conn);
    let now = store::now();
    Ok(store::machines(&conn)?.iter().map(|m| coverage::evaluate(m, &s, now)).collect())
}

async fn list_coverage(State(state): State<Arc<AppState>>, headers: HeaderMap, RawQuery(q): RawQuery) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let q: CoverageQuery = parse_query(q)?;
    let mut all = coverage_now(&state)?;
    all.retain(|c| {
        q.reason.as_ref().is_none_or(|r| &c.scan_status.reason == r)
            && q.status_code.as_ref().is_none_or(|s| c.scan_status.status_code == s)
            && q.scan_type.as_ref().is_none_or(|t| c.scan_type == Some(t.as_str()))
    });
    Ok(Json(json!({"coveredResources": all})))
}

async fn coverage_statistics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    Ok(Json(coverage::statistics(&coverage_now(&state)?)))
}

async fn list_findings(State(state): State<Arc<AppState>>, headers: HeaderMap, RawQuery(q): RawQuery) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&state, &headers)?;
    let q: crate::findings::FindingQuery = parse_query(q)?;
    let conn = state.db.lock().expect("store lock poisoned");
    crate::findings::query(&conn, &q).map(Json).map_err(ApiError::bad_request)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SbomQuery {
    /// cyclonedx-json (default), spdx-json or json.
    format: Option<String>,
}

async fn machine_sbom(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    require_admin(&state, &headers)?;
    let q: SbomQuery = parse_query(q)?;
    let format: kensa_sbom::Format = q.format.as_deref().unwrap_or("cyclonedx-json").parse().map_err(ApiError::bad_request)?;
    let inv = store::inventory(&state.db.lock().expect("store lock poisoned"), &id)?.ok_or_else(|| ApiError::not_found(format!("no inventory for machine {id}")))?;
    let mut out = Vec::new();
    kensa_sbom::write(format, &inv, &kensa_sbom::DocumentInfo::new(env!("CARGO_PKG_VERSION")), &mut out).map_err(ApiError::internal)?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], out).into_response())
}
