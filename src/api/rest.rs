//! The REST endpoints: the plan's workflow, execution and task routes, plus validation,
//! the operation catalog, templates, versions, event streams and artifact download.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_stream::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::security::{Roots, valid_id};
use crate::engine::timefmt::to_rfc3339;
use crate::engine::{Engine, Event, ExecutionSnapshot, OperationSpec, RunOptions, TaskInfo};
use crate::workflow::diff::{Change, diff};
use crate::workflow::{ParamMap, Problem, Workflow, templates};

/// What every handler shares.
pub struct ApiState {
    pub engine: Engine,
    pub roots: Roots,
    pub token: Option<String>,
}

pub type SharedState = Arc<ApiState>;

fn check_id(kind: &str, id: &str) -> ApiResult<()> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "`{id}` is not a valid {kind} id (letters, digits, `-`, `_`, `.`; at most 128)"
        )))
    }
}

/// Who made a change: the `X-Grym-Author` header, else `api`.
fn author(headers: &HeaderMap) -> String {
    headers
        .get("x-grym-author")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 100)
        .unwrap_or("api")
        .to_string()
}

/// Runs a blocking engine call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("the request's worker failed: {e}")))?
}

/// A registered workflow, briefly.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSummary {
    pub id: String,
    pub name: String,
    pub description: String,
    pub steps: usize,
    pub version: String,
}

/// The answer to a create or update.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Saved {
    pub id: String,
    /// The stored version number (unchanged when the body equals the current version).
    pub version: u32,
    /// Warnings and notes from validation.
    pub problems: Vec<Problem>,
}

#[utoipa::path(get, path = "/api/workflows", responses((status = 200, body = Vec<WorkflowSummary>)))]
pub async fn list_workflows(State(state): State<SharedState>) -> Json<Vec<WorkflowSummary>> {
    Json(
        state
            .engine
            .workflows()
            .iter()
            .map(|w| WorkflowSummary {
                id: w.id.clone(),
                name: w.name.clone(),
                description: w.description.clone(),
                steps: w.steps.len(),
                version: w.metadata.version.clone(),
            })
            .collect(),
    )
}

/// Checks the paths a workflow names in `path` parameters against the workspace roots.
fn confine_workflow_paths(state: &ApiState, workflow: &Workflow) -> ApiResult<()> {
    super::security::confine_workflow_paths(&state.engine, &state.roots, workflow)
        .map_err(forbidden)
}

fn forbidden(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden_path", message)
}

async fn save_workflow(
    state: SharedState,
    workflow: Workflow,
    who: String,
) -> ApiResult<(u32, Vec<Problem>)> {
    confine_workflow_paths(&state, &workflow)?;
    blocking(move || {
        let (report, version) = state.engine.register_as(workflow, &who)?;
        Ok((version, report.problems))
    })
    .await
}

#[utoipa::path(post, path = "/api/workflows", request_body = Workflow,
    responses((status = 201, body = Saved), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_workflow(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Json(workflow): Json<Workflow>,
) -> ApiResult<(StatusCode, Json<Saved>)> {
    check_id("workflow", &workflow.id)?;
    if state.engine.workflow(&workflow.id).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "workflow `{}` exists; PUT /api/workflows/{} to update it",
                workflow.id, workflow.id
            ),
        ));
    }
    let id = workflow.id.clone();
    let (version, problems) = save_workflow(state, workflow, author(&headers)).await?;
    Ok((
        StatusCode::CREATED,
        Json(Saved {
            id,
            version,
            problems,
        }),
    ))
}

#[utoipa::path(get, path = "/api/workflows/{id}", responses((status = 200, body = Workflow), (status = 404, body = ErrorBody)))]
pub async fn get_workflow(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Workflow>> {
    check_id("workflow", &id)?;
    state
        .engine
        .workflow(&id)
        .map(|w| Json((*w).clone()))
        .ok_or_else(|| ApiError::not_found(format!("no workflow `{id}`")))
}

#[utoipa::path(put, path = "/api/workflows/{id}", request_body = Workflow,
    responses((status = 200, body = Saved), (status = 422, body = ErrorBody)))]
pub async fn update_workflow(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(workflow): Json<Workflow>,
) -> ApiResult<Json<Saved>> {
    check_id("workflow", &id)?;
    if workflow.id != id {
        return Err(ApiError::bad_request(format!(
            "the body's id `{}` differs from the URL's `{id}`",
            workflow.id
        )));
    }
    let (version, problems) = save_workflow(state, workflow, author(&headers)).await?;
    Ok(Json(Saved {
        id,
        version,
        problems,
    }))
}

#[utoipa::path(delete, path = "/api/workflows/{id}", responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_workflow(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    check_id("workflow", &id)?;
    let who = author(&headers);
    blocking(move || Ok(state.engine.delete_workflow(&id, &who)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The validator's findings.
#[derive(Serialize, ToSchema)]
pub struct ValidationReport {
    pub valid: bool,
    pub problems: Vec<Problem>,
}

#[utoipa::path(post, path = "/api/workflows/validate", request_body = Workflow,
    responses((status = 200, body = ValidationReport)))]
pub async fn validate_workflow(
    State(state): State<SharedState>,
    Json(workflow): Json<Workflow>,
) -> Json<ValidationReport> {
    let report = state.engine.validate(&workflow);
    Json(ValidationReport {
        valid: report.is_valid(),
        problems: report.problems,
    })
}

/// Run parameters for an execution.
#[derive(Deserialize, ToSchema, Default)]
pub struct ExecuteRequest {
    /// Overrides of the workflow's parameters.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: ParamMap,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub execution_id: String,
}

#[utoipa::path(post, path = "/api/workflows/{id}/execute", request_body = ExecuteRequest,
    responses((status = 202, body = Started), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn execute_workflow(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Started>)> {
    check_id("workflow", &id)?;
    let workflow = state
        .engine
        .workflow(&id)
        .ok_or_else(|| ApiError::not_found(format!("no workflow `{id}`")))?;
    // No body, `null` and `{}` all mean "the workflow's defaults".
    let request: Option<ExecuteRequest> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!("the body is not {{\"parameters\": {{…}}}}: {e}"))
        })?
    };
    let mut parameters = request.map(|r| r.parameters).unwrap_or_default();
    confine_audio_parameters(&state, &workflow, &mut parameters)?;
    let execution_id = blocking(move || {
        Ok(state
            .engine
            .start_execution(&id, parameters, RunOptions::default())?)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(Started { execution_id })))
}

/// Run parameters that feed audio inputs must name files inside the workspace roots; they
/// are replaced by their canonical paths.
fn confine_audio_parameters(
    state: &ApiState,
    workflow: &Workflow,
    parameters: &mut ParamMap,
) -> ApiResult<()> {
    super::security::confine_audio_parameters(&state.engine, &state.roots, workflow, parameters)
        .map_err(forbidden)
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// At most this many (default 100).
    pub limit: Option<usize>,
}

/// An execution, briefly.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSummary {
    pub id: String,
    pub workflow_id: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

#[utoipa::path(get, path = "/api/executions", params(ListQuery),
    responses((status = 200, body = Vec<ExecutionSummary>)))]
pub async fn list_executions(
    State(state): State<SharedState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<ExecutionSummary>>> {
    let limit = q.limit.unwrap_or(100).min(10_000);
    blocking(move || {
        // Running executions of this process first (the database may lag a moment).
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for e in state.engine.executions() {
            seen.insert(e.id.clone());
            out.push(ExecutionSummary {
                id: e.id,
                workflow_id: e.workflow_id,
                status: e.status.as_str().into(),
                error: e.error,
                started_at: to_rfc3339(e.started_at),
                finished_at: e.finished_at.map(to_rfc3339),
            });
        }
        for r in state.engine.history(limit)? {
            if seen.insert(r.id.clone()) {
                out.push(ExecutionSummary {
                    id: r.id,
                    workflow_id: r.workflow_id,
                    status: r.status.as_str().into(),
                    error: r.error,
                    started_at: to_rfc3339(r.started_at),
                    finished_at: r.finished_at.map(to_rfc3339),
                });
            }
        }
        out.sort_by(|a, b| b.started_at.cmp(&a.started_at));
        out.truncate(limit);
        Ok(Json(out))
    })
    .await
}

#[utoipa::path(get, path = "/api/executions/{id}",
    responses((status = 200, body = Object, description = "the execution with its results and step runs"), (status = 404, body = ErrorBody)))]
pub async fn get_execution(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ExecutionSnapshot>> {
    check_id("execution", &id)?;
    blocking(move || Ok(Json(state.engine.execution(&id)?))).await
}

#[derive(Serialize, ToSchema)]
pub struct Cancelled {
    /// False when the execution had already finished.
    pub cancelled: bool,
}

#[utoipa::path(delete, path = "/api/executions/{id}",
    responses((status = 200, body = Cancelled), (status = 404, body = ErrorBody)))]
pub async fn cancel_execution(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Cancelled>> {
    check_id("execution", &id)?;
    let cancelled = state.engine.cancel(&id)?;
    Ok(Json(Cancelled { cancelled }))
}

#[utoipa::path(get, path = "/api/tasks", responses((status = 200, body = Object, description = "scheduler tasks, newest first")))]
pub async fn list_tasks(State(state): State<SharedState>) -> Json<Vec<TaskInfo>> {
    Json(state.engine.tasks())
}

#[utoipa::path(get, path = "/api/tasks/{id}", responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn get_task(
    State(state): State<SharedState>,
    Path(id): Path<u64>,
) -> ApiResult<Json<TaskInfo>> {
    state.engine.task(id).map(Json).ok_or_else(|| {
        ApiError::not_found(format!(
            "no task {id} (finished tasks are kept for a while)"
        ))
    })
}

#[derive(Serialize, ToSchema)]
pub struct TaskStatusBody {
    pub id: u64,
    /// pending, queued, running, completed, failed, cancelled or abandoned.
    pub status: String,
}

#[utoipa::path(get, path = "/api/tasks/{id}/status", responses((status = 200, body = TaskStatusBody), (status = 404, body = ErrorBody)))]
pub async fn get_task_status(
    State(state): State<SharedState>,
    Path(id): Path<u64>,
) -> ApiResult<Json<TaskStatusBody>> {
    let task = state
        .engine
        .task(id)
        .ok_or_else(|| ApiError::not_found(format!("no task {id}")))?;
    let status = serde_json::to_value(task.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    Ok(Json(TaskStatusBody { id, status }))
}

#[utoipa::path(get, path = "/api/operations", responses((status = 200, body = Object, description = "the operation catalog with parameter schemas")))]
pub async fn list_operations(State(state): State<SharedState>) -> Json<Vec<OperationSpec>> {
    Json(state.engine.registry().specs().cloned().collect())
}

#[derive(Serialize, ToSchema)]
pub struct TemplateBody {
    pub name: String,
    pub description: String,
    pub workflow: Workflow,
}

#[utoipa::path(get, path = "/api/templates", responses((status = 200, body = Vec<TemplateBody>)))]
pub async fn list_templates() -> ApiResult<Json<Vec<TemplateBody>>> {
    templates::TEMPLATES
        .iter()
        .map(|t| {
            Ok(TemplateBody {
                name: t.name.into(),
                description: t.description.into(),
                workflow: t.load().map_err(|e| ApiError::internal(e.to_string()))?,
            })
        })
        .collect::<ApiResult<_>>()
        .map(Json)
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionBody {
    pub version: u32,
    pub created_at: String,
    pub created_by: String,
    /// What changed against the version before, in a line.
    pub note: String,
    pub deleted: bool,
}

#[utoipa::path(get, path = "/api/workflows/{id}/versions", responses((status = 200, body = Vec<VersionBody>)))]
pub async fn list_versions(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<VersionBody>>> {
    check_id("workflow", &id)?;
    blocking(move || {
        let versions = state.engine.versions(&id)?;
        if versions.is_empty() {
            return Err(ApiError::not_found(format!(
                "no versions of workflow `{id}`"
            )));
        }
        Ok(Json(
            versions
                .into_iter()
                .map(|v| VersionBody {
                    version: v.version,
                    created_at: to_rfc3339(v.created_at),
                    created_by: v.created_by,
                    deleted: v.definition.is_empty(),
                    note: v.note,
                })
                .collect(),
        ))
    })
    .await
}

#[utoipa::path(get, path = "/api/workflows/{id}/versions/{version}", responses((status = 200, body = Workflow), (status = 404, body = ErrorBody)))]
pub async fn get_version(
    State(state): State<SharedState>,
    Path((id, version)): Path<(String, u32)>,
) -> ApiResult<Json<Workflow>> {
    check_id("workflow", &id)?;
    blocking(move || Ok(Json(state.engine.version(&id, version)?))).await
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct DiffQuery {
    /// The version to compare against (default: the one before).
    pub against: Option<u32>,
}

#[utoipa::path(get, path = "/api/workflows/{id}/versions/{version}/diff", params(DiffQuery),
    responses((status = 200, body = Vec<Change>), (status = 404, body = ErrorBody)))]
pub async fn diff_version(
    State(state): State<SharedState>,
    Path((id, version)): Path<(String, u32)>,
    Query(q): Query<DiffQuery>,
) -> ApiResult<Json<Vec<Change>>> {
    check_id("workflow", &id)?;
    blocking(move || {
        let after = state.engine.version(&id, version)?;
        let against = q.against.unwrap_or(version.saturating_sub(1));
        let before = state.engine.version(&id, against)?;
        Ok(Json(diff(&before, &after)))
    })
    .await
}

#[derive(Deserialize, ToSchema)]
pub struct RollbackRequest {
    /// The version to make current again.
    pub version: u32,
}

#[utoipa::path(post, path = "/api/workflows/{id}/rollback", request_body = RollbackRequest,
    responses((status = 200, body = Saved), (status = 404, body = ErrorBody)))]
pub async fn rollback(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<RollbackRequest>,
) -> ApiResult<Json<Saved>> {
    check_id("workflow", &id)?;
    let who = author(&headers);
    blocking(move || {
        let (report, version) = state.engine.rollback(&id, req.version, &who)?;
        Ok(Json(Saved {
            id,
            version,
            problems: report.problems,
        }))
    })
    .await
}

#[utoipa::path(get, path = "/api/artifacts/{hash}", responses((status = 200, description = "the audio file (WAV)"), (status = 404, body = ErrorBody)))]
pub async fn get_artifact(
    State(state): State<SharedState>,
    Path(hash): Path<String>,
) -> ApiResult<Response> {
    if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "an artifact is named by its 64-digit hex hash",
        ));
    }
    let path = state
        .engine
        .config()
        .data_dir
        .join("artifacts")
        .join(format!("{}.wav", hash.to_ascii_lowercase()));
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| ApiError::not_found(format!("no artifact {hash}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "audio/wav"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        Body::from(bytes),
    )
        .into_response())
}

/// Turns the engine's events into a Server-Sent Events stream, optionally of one execution
/// (which then ends with it).
fn event_stream(
    engine: &Engine,
    only: Option<String>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + use<> {
    let events = engine.subscribe();
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(256);
    // crossbeam → tokio: a small thread per stream, ending when the client goes away.
    let spawned = std::thread::Builder::new()
        .name("grym-sse".into())
        .spawn(move || {
            loop {
                match events.recv_timeout(Duration::from_millis(500)) {
                    Ok(event) => {
                        if only
                            .as_deref()
                            .is_some_and(|id| event.execution_id() != Some(id))
                        {
                            continue;
                        }
                        let last =
                            only.is_some() && matches!(event, Event::ExecutionFinished { .. });
                        if tx.blocking_send(event).is_err() || last {
                            return;
                        }
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                        if tx.is_closed() {
                            return;
                        }
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start an event stream: {e}");
    }
    ReceiverStream::new(rx).map(|event| {
        let name = serde_json::to_value(&event)
            .ok()
            .and_then(|v| v.get("event").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| "event".into());
        Ok(SseEvent::default()
            .event(name)
            .json_data(&event)
            .unwrap_or_else(|_| SseEvent::default().data("{}")))
    })
}

#[utoipa::path(get, path = "/api/events", responses((status = 200, description = "text/event-stream of every engine event")))]
pub async fn all_events(
    State(state): State<SharedState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    Sse::new(event_stream(&state.engine, None)).keep_alive(KeepAlive::default())
}

#[utoipa::path(get, path = "/api/executions/{id}/events", responses((status = 200, description = "text/event-stream of one execution's events, ending when it finishes")))]
pub async fn execution_events(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    check_id("execution", &id)?;
    // Subscribe first, then look: an execution that finishes in between is not missed.
    let stream = event_stream(&state.engine, Some(id.clone()));
    let snapshot = state.engine.execution(&id)?;
    if snapshot.status.is_finished() {
        let event = Event::ExecutionFinished {
            execution_id: id,
            status: snapshot.status,
            error: snapshot.error,
            at: snapshot.finished_at.unwrap_or(snapshot.started_at),
        };
        let once = tokio_stream::once(Ok::<_, Infallible>(
            SseEvent::default()
                .event("execution_finished")
                .json_data(&event)
                .unwrap_or_default(),
        ));
        return Ok(Sse::new(once).into_response());
    }
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Counts of executions by status, for a quick look at the server.
#[utoipa::path(get, path = "/api/health", responses((status = 200, body = Object)))]
pub async fn health(State(state): State<SharedState>) -> Json<HashMap<String, Value>> {
    let mut out = HashMap::new();
    out.insert("status".into(), Value::from("ok"));
    out.insert("version".into(), Value::from(env!("CARGO_PKG_VERSION")));
    out.insert(
        "operations".into(),
        Value::from(state.engine.registry().len()),
    );
    out.insert(
        "workflows".into(),
        Value::from(state.engine.workflows().len()),
    );
    Json(out)
}
