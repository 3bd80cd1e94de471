//! The Model Context Protocol server (`grym-synth mcp`): tools over stdio with which an LLM
//! reads the operation catalog and the workflow schema, drafts and validates a workflow,
//! saves it, runs it, follows its execution and reads the results.
//!
//! Every failure a model can act on (a bad argument, an unknown id, a path outside the
//! workspace roots, an invalid workflow) comes back as a tool result with `isError: true`
//! and a message that says what to do, never as a protocol error.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use utoipa::OpenApi;

use super::security::{self, Roots, valid_id};
use crate::engine::operation::CancellationToken;
use crate::engine::optimize::{RunSettings, Study, StudyDefinition, best_of};
use crate::engine::store::TrialState;
use crate::engine::timefmt::to_rfc3339;
use crate::engine::{Engine, EngineError, ExecutionSnapshot, RunOptions};
use crate::workflow::file::{FileError, Format, parse_str};
use crate::workflow::{ParamMap, Problem, StepType, Workflow, templates};

/// Longest a `wait_for_execution` call may block.
pub const MAX_WAIT_SECONDS: f64 = 600.0;

/// Who the versions saved through this server are recorded as.
const AUTHOR: &str = "mcp";

/// A tool's failure: the message the model reads.
type ToolResult = Result<Value, String>;

/// The server: the engine and the folders audio paths must stay inside.
#[derive(Clone)]
pub struct McpServer {
    engine: Engine,
    roots: Roots,
    /// Studies started here and still running: their cancellation tokens.
    studies: std::sync::Arc<parking_lot::Mutex<BTreeMap<String, CancellationToken>>>,
}

impl McpServer {
    pub fn new(engine: Engine, roots: &[PathBuf]) -> Self {
        McpServer {
            engine,
            roots: Roots::new(roots),
            studies: Default::default(),
        }
    }

    /// Runs one tool; `Err` is a message for the model.
    pub async fn call(&self, name: &str, args: &JsonObject) -> ToolResult {
        match name {
            "list_operations" => self.list_operations(args),
            "get_workflow_schema" => get_workflow_schema(),
            "list_templates" => list_templates(),
            "get_template" => get_template(args),
            "validate_workflow" => self.validate_workflow(args),
            "save_workflow" => self.save_workflow(args).await,
            "list_workflows" => Ok(self.list_workflows()),
            "get_workflow" => self.get_workflow(args).await,
            "run_workflow" => self.run_workflow(args).await,
            "get_execution" => self.get_execution(args).await,
            "wait_for_execution" => self.wait_for_execution(args).await,
            "cancel_execution" => self.cancel_execution(args).await,
            "optimize_workflow" => self.optimize_workflow(args).await,
            "get_study" => self.get_study(args).await,
            "cancel_study" => self.cancel_study(args),
            other => Err(format!(
                "there is no tool `{other}`; the tools are: {}",
                tools()
                    .iter()
                    .map(|t| t.name.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    fn list_operations(&self, args: &JsonObject) -> ToolResult {
        let filter = match optional_str(args, "type")? {
            Some(t) => Some(StepType::parse(t).ok_or_else(|| {
                format!(
                    "`type` is `{t}`; it must be one of analysis, generation, conditional, transformation"
                )
            })?),
            None => None,
        };
        let operations: Vec<Value> = self
            .engine
            .registry()
            .specs()
            .filter(|s| filter.is_none_or(|t| s.step_type == t))
            .map(|spec| {
                let mut v = serde_json::to_value(spec).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut v {
                    map.insert("qualifiedName".into(), json!(spec.qualified_name()));
                }
                v
            })
            .collect();
        Ok(json!({
            "count": operations.len(),
            "operations": operations,
            "usage": "In a workflow step, `type` is the operation's type and `operation` its name \
                      (e.g. type \"analysis\", operation \"features\"). Bind the step's `inputs` \
                      to the operation's inputs in order, or by `name`; put its parameters in the \
                      step's `parameters` object (omitted ones take their defaults). The result \
                      keys under `outputs` are what `<step>.result.<key>` paths and conditions read.",
        }))
    }

    fn validate_workflow(&self, args: &JsonObject) -> ToolResult {
        let workflow = match workflow_argument(args)? {
            Ok(w) => w,
            Err(unreadable) => {
                return Ok(json!({
                    "valid": false,
                    "problems": [unreadable],
                    "next": "The workflow does not parse. Fix the field named in the problem and call validate_workflow again; get_workflow_schema shows the shape.",
                }));
            }
        };
        let report = self.engine.validate(&workflow);
        let mut problems: Vec<Value> = report.problems.iter().map(problem_json).collect();
        let mut valid = report.is_valid();
        if let Err(e) = security::confine_workflow_paths(&self.engine, &self.roots, &workflow) {
            valid = false;
            problems.push(json!({
                "severity": "error",
                "code": "path-outside-roots",
                "field": "",
                "message": e,
                "text": format!("{e}. Fix: name a file inside the workspace roots ({}).", self.roots_text()),
            }));
        }
        let next = if valid {
            "The workflow is valid. Call save_workflow with it, then run_workflow with its id."
        } else {
            "Fix every problem with severity \"error\" (each `text` says where and how), then call validate_workflow again."
        };
        Ok(json!({ "valid": valid, "problems": problems, "next": next }))
    }

    async fn save_workflow(&self, args: &JsonObject) -> ToolResult {
        let workflow = match workflow_argument(args)? {
            Ok(w) => w,
            Err(unreadable) => {
                return Err(format!(
                    "the workflow does not parse: {}",
                    unreadable["text"].as_str().unwrap_or("unreadable")
                ));
            }
        };
        if !valid_id(&workflow.id) {
            return Err(format!(
                "id: `{}` is not a valid workflow id. Fix: use letters, digits, `-`, `_` or `.` (at most 128 characters).",
                workflow.id
            ));
        }
        security::confine_workflow_paths(&self.engine, &self.roots, &workflow).map_err(|e| {
            format!(
                "{e}. Fix: name a file inside the workspace roots ({}).",
                self.roots_text()
            )
        })?;
        let id = workflow.id.clone();
        let required: Vec<String> = workflow
            .parameters
            .iter()
            .filter(|(_, v)| v.is_null())
            .map(|(k, _)| k.clone())
            .collect();
        let parameters = workflow.parameters.clone();
        let engine = self.engine.clone();
        let saved = blocking(move || engine.register_as(workflow, AUTHOR)).await?;
        let (report, version) = match saved {
            Ok(saved) => saved,
            Err(EngineError::Invalid { report, .. }) => {
                let lines: Vec<String> = report
                    .problems
                    .iter()
                    .filter(|p| p.severity == crate::workflow::Severity::Error)
                    .map(problem_text)
                    .collect();
                return Err(format!(
                    "workflow `{id}` was not saved because it is invalid:\n- {}\nFix these and call save_workflow again (validate_workflow checks a draft without saving).",
                    lines.join("\n- ")
                ));
            }
            Err(e) => return Err(format!("workflow `{id}` was not saved: {e}")),
        };
        let warnings: Vec<String> = report.problems.iter().map(problem_text).collect();
        Ok(json!({
            "id": id,
            "version": version,
            "warnings": warnings,
            "parameters": parameters,
            "requiredParameters": required,
            "next": format!(
                "Call run_workflow with id \"{id}\" and `parameters` for the run (required: {}).",
                if required.is_empty() { "none".to_string() } else { required.join(", ") }
            ),
        }))
    }

    fn list_workflows(&self) -> Value {
        let workflows: Vec<Value> = self
            .engine
            .workflows()
            .iter()
            .map(|w| {
                json!({
                    "id": w.id,
                    "name": w.name,
                    "description": w.description,
                    "steps": w.steps.len(),
                    "initialStep": w.initial_step,
                    "parameters": w.parameters,
                })
            })
            .collect();
        json!({ "count": workflows.len(), "workflows": workflows })
    }

    async fn get_workflow(&self, args: &JsonObject) -> ToolResult {
        let id = required_id(args, "id", "workflow")?;
        let workflow = self.engine.workflow(&id).ok_or_else(|| {
            format!("no workflow `{id}` is saved; list_workflows shows the saved ones")
        })?;
        let engine = self.engine.clone();
        let versions = blocking(move || engine.versions(&id)).await?;
        let version = versions.ok().and_then(|v| v.last().map(|v| v.version));
        Ok(json!({ "workflow": *workflow, "version": version }))
    }

    async fn run_workflow(&self, args: &JsonObject) -> ToolResult {
        let id = required_id(args, "id", "workflow")?;
        let workflow = self.engine.workflow(&id).ok_or_else(|| {
            format!("no workflow `{id}` is saved; save it with save_workflow first (list_workflows shows the saved ones)")
        })?;
        let mut parameters: ParamMap = match args.get("parameters") {
            None | Some(Value::Null) => ParamMap::new(),
            Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Some(other) => {
                return Err(format!(
                    "`parameters` must be an object of run parameters, not {other}"
                ));
            }
        };
        security::confine_audio_parameters(&self.engine, &self.roots, &workflow, &mut parameters)
            .map_err(|e| {
            format!(
                "{e}. Fix: audio files must lie inside the workspace roots ({}); give a path relative to the first root or an absolute path inside one.",
                self.roots_text()
            )
        })?;
        let engine = self.engine.clone();
        let started =
            blocking(move || engine.start_execution(&id, parameters, RunOptions::default()))
                .await?;
        let execution_id = started.map_err(|e| format!("the run did not start: {e}"))?;
        Ok(json!({
            "executionId": execution_id,
            "status": "running",
            "next": format!("Call wait_for_execution with executionId \"{execution_id}\" to block until it finishes, or get_execution to look without waiting."),
        }))
    }

    async fn get_execution(&self, args: &JsonObject) -> ToolResult {
        let id = execution_id(args)?;
        let engine = self.engine.clone();
        let snapshot = blocking(move || engine.execution(&id)).await?;
        snapshot
            .map(|s| execution_json(&s, false))
            .map_err(|e| e.to_string())
    }

    async fn wait_for_execution(&self, args: &JsonObject) -> ToolResult {
        let id = execution_id(args)?;
        let seconds = match args.get("timeoutSeconds") {
            None | Some(Value::Null) => 60.0,
            Some(v) => v
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| {
                    format!(
                        "`timeoutSeconds` must be a number from 0 to {MAX_WAIT_SECONDS}, not {v}"
                    )
                })?,
        };
        if seconds > MAX_WAIT_SECONDS {
            return Err(format!(
                "`timeoutSeconds` is {seconds}; at most {MAX_WAIT_SECONDS} is allowed. Call again to keep waiting."
            ));
        }
        let engine = self.engine.clone();
        let snapshot = blocking(move || {
            match engine.wait(&id, Some(Duration::from_secs_f64(seconds))) {
                // Not of this process: the recorded one is as finished as it will get here.
                Err(EngineError::UnknownExecution(_)) => engine.execution(&id),
                other => other,
            }
        })
        .await?;
        let snapshot = snapshot.map_err(|e| e.to_string())?;
        let timed_out = !snapshot.status.is_finished();
        Ok(execution_json(&snapshot, timed_out))
    }

    async fn cancel_execution(&self, args: &JsonObject) -> ToolResult {
        let id = execution_id(args)?;
        let engine = self.engine.clone();
        let outcome = blocking(move || {
            let cancelled = engine.cancel(&id)?;
            let snapshot = engine.execution(&id)?;
            Ok::<_, EngineError>((cancelled, snapshot))
        })
        .await?;
        let (cancelled, snapshot) = outcome.map_err(|e| e.to_string())?;
        Ok(json!({
            "cancelled": cancelled,
            "status": snapshot.status.as_str(),
            "note": if cancelled {
                "Cancellation was requested; a running step stops at its next check. wait_for_execution shows the final state."
            } else {
                "The execution had already finished; nothing was cancelled."
            },
        }))
    }

    async fn optimize_workflow(&self, args: &JsonObject) -> ToolResult {
        let id = required_id(args, "id", "workflow")?;
        let workflow = self.engine.workflow(&id).ok_or_else(|| {
            format!("no workflow `{id}` is saved; save it with save_workflow first")
        })?;
        let mut fixed: ParamMap = match args.get("parameters") {
            None | Some(Value::Null) => ParamMap::new(),
            Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Some(other) => {
                return Err(format!(
                    "`parameters` must be an object of fixed run parameters, not {other}"
                ));
            }
        };
        security::confine_audio_parameters(&self.engine, &self.roots, &workflow, &mut fixed)
            .map_err(|e| {
                format!(
                    "{e}. Fix: audio files must lie inside the workspace roots ({}).",
                    self.roots_text()
                )
            })?;
        let mut definition = StudyDefinition {
            fixed,
            objective: optional_str(args, "objective")?.map(str::to_string),
            ..Default::default()
        };
        if let Some(tune) = args.get("tune").filter(|v| !v.is_null()) {
            definition.tune = serde_json::from_value(tune.clone()).map_err(|e| {
                format!(
                    "`tune` must map run parameter names to {{\"range\": {{\"min\": .., \"max\": .., \"log\": false}}}}, {{\"integer\": {{\"min\": .., \"max\": ..}}}} or {{\"choice\": [..]}}: {e}"
                )
            })?;
        }
        if let Some(d) = optional_str(args, "direction")? {
            definition.direction = Some(
                crate::workflow::Direction::parse(d)
                    .ok_or_else(|| format!("`direction` is `{d}`; write maximize or minimize"))?,
            );
        }
        let number = |key: &str| -> Result<Option<u64>, String> {
            match args.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| format!("`{key}` must be a whole number, not {v}")),
            }
        };
        let settings = RunSettings {
            budget: number("budget")?.map(|b| b.clamp(1, 1000) as u32),
            parallel: number("parallel")?.map_or(2, |p| p.clamp(1, 16) as usize),
            patience: number("patience")?.map(|p| p as u32),
            ..Default::default()
        };
        definition.seed = number("seed")?;
        let engine = self.engine.clone();
        let created = blocking(move || Study::create(&engine, &id, definition)).await?;
        let mut study = created.map_err(|e| format!("{e}"))?;
        let study_id = study.id().to_string();
        let token = CancellationToken::new();
        self.studies.lock().insert(study_id.clone(), token.clone());
        let running = std::sync::Arc::clone(&self.studies);
        let key = study_id.clone();
        std::thread::Builder::new()
            .name("grym-study".into())
            .spawn(move || {
                if let Err(e) = study.run(&settings, &token, |_| {}) {
                    tracing::error!("study {key}: {e}");
                }
                running.lock().remove(&key);
            })
            .map_err(|e| format!("the study could not start: {e}"))?;
        Ok(json!({
            "studyId": study_id,
            "status": "running",
            "next": format!("Call get_study with studyId \"{study_id}\" to follow its trials; cancel_study stops it."),
        }))
    }

    async fn get_study(&self, args: &JsonObject) -> ToolResult {
        let id = required_id(args, "studyId", "study")?;
        let engine = self.engine.clone();
        let key = id.clone();
        let loaded = blocking(move || {
            let store = engine.store();
            Ok::<_, crate::engine::store::StoreError>((store.study(&key)?, store.trials(&key)?))
        })
        .await?;
        let (record, trials) = loaded.map_err(|e| e.to_string())?;
        let record = record.ok_or_else(|| format!("no study `{id}`"))?;
        let running = self.studies.lock().contains_key(&id);
        let best = best_of(&trials, record.direction()).cloned();
        let finished = trials
            .iter()
            .filter(|t| t.state != TrialState::Running)
            .count();
        Ok(json!({
            "studyId": id,
            "workflowId": record.workflow_id,
            "objective": record.optimization.objective,
            "direction": record.direction().as_str(),
            "running": running,
            "trialsFinished": finished,
            "trials": trials.iter().map(|t| json!({
                "number": t.number,
                "state": t.state.as_str(),
                "params": t.params,
                "score": t.score,
                "executionId": t.execution_id,
                "error": t.error,
            })).collect::<Vec<_>>(),
            "best": best.map(|b| json!({"number": b.number, "score": b.score, "params": b.params, "executionId": b.execution_id})),
            "next": if running {
                "The study is still running: call get_study again later."
            } else {
                "The study has ended. Put the best params into the workflow's parameter defaults and save_workflow to keep them."
            },
        }))
    }

    fn cancel_study(&self, args: &JsonObject) -> ToolResult {
        let id = required_id(args, "studyId", "study")?;
        match self.studies.lock().get(&id) {
            Some(token) => {
                token.cancel();
                Ok(
                    json!({"cancelled": true, "note": "Running trials are being cancelled; get_study shows the final state."}),
                )
            }
            None => Ok(
                json!({"cancelled": false, "note": "The study is not running in this server (finished, or never started here)."}),
            ),
        }
    }

    fn roots_text(&self) -> String {
        if self.roots.list().is_empty() {
            return "none is configured".into();
        }
        self.roots
            .list()
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs a blocking engine call off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("the tool's worker failed: {e}"))
}

fn optional_str<'a>(args: &'a JsonObject, key: &str) -> Result<Option<&'a str>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("`{key}` must be a string, not {other}")),
    }
}

fn required_str<'a>(args: &'a JsonObject, key: &str) -> Result<&'a str, String> {
    optional_str(args, key)?.ok_or_else(|| format!("the argument `{key}` is required"))
}

fn required_id(args: &JsonObject, key: &str, kind: &str) -> Result<String, String> {
    let id = required_str(args, key)?;
    if valid_id(id) {
        Ok(id.to_string())
    } else {
        Err(format!(
            "`{id}` is not a valid {kind} id (letters, digits, `-`, `_`, `.`; at most 128 characters)"
        ))
    }
}

/// `executionId` (or `id`).
fn execution_id(args: &JsonObject) -> Result<String, String> {
    let key = if args.contains_key("executionId") {
        "executionId"
    } else if args.contains_key("id") {
        "id"
    } else {
        "executionId"
    };
    required_id(args, key, "execution")
}

/// A problem as one line a model can act on: `<field>: <message>. Fix: <hint>`.
fn problem_text(p: &Problem) -> String {
    let message = p.message.trim_end_matches('.');
    let mut text = if p.field.is_empty() {
        message.to_string()
    } else {
        format!("{}: {message}", p.field)
    };
    text.push('.');
    if let Some(hint) = &p.hint {
        text.push_str(" Fix: ");
        text.push_str(hint);
    }
    text
}

fn problem_json(p: &Problem) -> Value {
    let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.insert("text".into(), json!(problem_text(p)));
    }
    v
}

/// The `workflow` argument, parsed: `Ok(Err(problem))` when it does not parse (a finding for
/// the model, as a problem object), `Err` when the argument is missing or of the wrong type.
fn workflow_argument(args: &JsonObject) -> Result<Result<Workflow, Value>, String> {
    let text = match args.get("workflow") {
        None | Some(Value::Null) => {
            return Err("the argument `workflow` is required: the workflow as a JSON object (get_workflow_schema shows its shape)".into());
        }
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(map)) => pretty(complete_draft(map)),
            Ok(_) => {
                return Ok(Err(unreadable(
                    "the workflow string is JSON but not an object".into(),
                )));
            }
            Err(e) => {
                return Ok(Err(unreadable(format!(
                    "the workflow string is not valid JSON: {e}"
                ))));
            }
        },
        Some(Value::Object(map)) => pretty(complete_draft(map.clone())),
        Some(other) => {
            return Err(format!(
                "`workflow` must be a JSON object (or a string holding one), not {other}"
            ));
        }
    };
    Ok(parse_str(&text, Format::Json).map_err(|e| {
        unreadable(match e {
            FileError::Parse {
                location: Some(at),
                message,
                ..
            } => format!("{message}, at `{}`", at.source_line.trim()),
            FileError::Parse { message, .. } => message,
            other => other.to_string(),
        })
    }))
}

/// Indented, so that a parse error's line and excerpt point at one field.
fn pretty(map: JsonObject) -> String {
    let value = Value::Object(map);
    serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string())
}

fn unreadable(message: String) -> Value {
    json!({
        "severity": "error",
        "code": "unreadable",
        "field": "",
        "message": message,
        "text": format!("{message}. Fix: correct the JSON so that it matches the schema from get_workflow_schema (unknown fields are refused; step types and input sources are snake_case, other keys camelCase)."),
    })
}

/// Fills in what a draft may leave out: `metadata` (now, by `mcp`) and each step's `id`
/// (its key in `steps`).
fn complete_draft(mut map: JsonObject) -> JsonObject {
    if !map.contains_key("metadata") {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        map.insert(
            "metadata".into(),
            json!({"createdAt": now, "updatedAt": now, "createdBy": AUTHOR}),
        );
    }
    if let Some(Value::Object(steps)) = map.get_mut("steps") {
        for (key, step) in steps.iter_mut() {
            if let Value::Object(step) = step
                && !step.contains_key("id")
            {
                step.insert("id".into(), Value::String(key.clone()));
            }
        }
    }
    map
}

/// An execution as a model reads it: status, the failure, what each step did, and results.
fn execution_json(s: &ExecutionSnapshot, timed_out: bool) -> Value {
    let step_runs: Vec<Value> = s
        .step_runs
        .iter()
        .map(|r| {
            let mut v = json!({
                "step": r.step_id,
                "iteration": r.iteration,
                "attempt": r.attempt,
                "status": serde_json::to_value(r.status).unwrap_or(Value::Null),
                "cached": r.cached,
            });
            if let Some(d) = r.duration_ms {
                v["durationMs"] = json!((d * 10.0).round() / 10.0);
            }
            if let Some(b) = r.branch {
                v["branch"] = json!(b.to_string());
            }
            if let Some(e) = &r.error {
                v["error"] = json!(e);
            }
            v
        })
        .collect();
    let results: BTreeMap<&String, &Value> = s.results.iter().collect();
    let finished = s.status.is_finished();
    let next = if !finished {
        if timed_out {
            "Still running after the wait; call wait_for_execution again (or cancel_execution)."
        } else {
            "Still running; call wait_for_execution to block until it finishes."
        }
    } else if s.status == crate::engine::ExecutionStatus::Completed {
        "Completed. `results` holds each step's latest result; files written by export steps are under `outputDir` (their result's `path`)."
    } else {
        "Did not complete. Read `error` and `failedStep`, fix the workflow (or the run parameters), save it and run again."
    };
    let mut v = json!({
        "executionId": s.id,
        "workflowId": s.workflow_id,
        "status": s.status.as_str(),
        "finished": finished,
        "parameters": s.parameters,
        "startedAt": to_rfc3339(s.started_at),
        "outputDir": s.output_dir,
        "stepRuns": step_runs,
        "results": results,
        "next": next,
    });
    if timed_out {
        v["timedOut"] = json!(true);
    }
    if let Some(e) = &s.error {
        v["error"] = json!(e);
    }
    if let Some(step) = &s.failed_step {
        v["failedStep"] = json!(step);
    }
    if let Some(step) = &s.current_step {
        v["currentStep"] = json!(step);
    }
    if let Some(t) = s.finished_at {
        v["finishedAt"] = json!(to_rfc3339(t));
    }
    if let Some(d) = s.duration() {
        v["durationMs"] = json!(d.as_millis() as u64);
    }
    v
}

const WORKFLOW_GUIDE: &str = "\
A workflow is a graph of steps. `initialStep` names the first step; each step's `nextSteps` \
says where control goes after it (`default`, or `conditional` branches); a step with no next \
steps ends the run. `steps` is an object keyed by step id (a step's `id` must equal its key; \
it may be left out and is then filled in, as is `metadata`).\n\
Each step runs one operation: `type` (analysis, generation, conditional, transformation) and \
`operation` (its name) as list_operations shows them. `parameters` holds the operation's \
parameters (kinds, ranges, choices and defaults in list_operations); omitted ones take their \
defaults.\n\
Inputs (`inputs`, bound to the operation's inputs in order, or by `name`): \
{\"source\": \"parameter\", \"key\": \"audioFile\"} reads the run parameter `audioFile` (declare \
it in the workflow's `parameters` object, with a default or null = must be given at run time; \
audio files must lie inside the server's workspace roots); \
{\"source\": \"previous_step\", \"key\": \"<step>.result\"} reads an earlier step's whole result \
(an audio result feeds an audio input directly), or a part of it with a deeper path \
(\"<step>.result.rms\", \"<step>.result.onsets.times[2]\"); \
{\"source\": \"context\", \"key\": \"<step>.result.<path>\"} is like previous_step but falls back \
to the stored result of that step from earlier runs of the workflow.\n\
A step parameter given as the string \"context.<step>.result.<path>\" is replaced at run time \
by that value (e.g. \"gainDb\": \"context.measure.result.gainDb\"); the string \
\"parameter.<name>\" is replaced by the run parameter <name>, which the workflow must declare \
(e.g. \"prompt\": \"parameter.prompt\").\n\
Conditions: a step may have `condition` {\"operator\": equals|contains|greater_than|less_than, \
\"leftOperand\": \"result.<key>\" (a path into this step's own result), \"rightOperand\": <JSON \
value>}; its `nextSteps.conditional` is a list of {\"condition\": \"true\"|\"false\", \"stepId\": \
<step>} choosing the branch by the outcome, with `default` as the fallback.\n\
Loops: a next step may point back to an earlier step; each step runs at most `maxIterations` \
times per execution (default 5), after which the run fails at that step, so loops need a \
condition that leaves them. Optional per step: `retries`, `timeoutSeconds`, `priority`, \
`cache` (false to always recompute).\n\
Workflow `parameters` are the run parameters with their defaults; run_workflow's `parameters` \
override them.";

/// The JSON schema of a workflow, from the OpenAPI document, with the explanation above.
fn get_workflow_schema() -> ToolResult {
    let doc = super::ApiDoc::openapi();
    let components = doc
        .components
        .ok_or("the API document has no component schemas")?;
    let all = serde_json::to_value(&components.schemas)
        .map_err(|e| format!("cannot serialize the schemas: {e}"))?;
    let Value::Object(all) = all else {
        return Err("the component schemas are not an object".into());
    };
    let mut defs = serde_json::Map::new();
    let mut pending = vec!["Workflow".to_string()];
    while let Some(name) = pending.pop() {
        if defs.contains_key(&name) {
            continue;
        }
        let Some(schema) = all.get(&name) else {
            continue;
        };
        let mut schema = schema.clone();
        rewrite_refs(&mut schema, &mut pending);
        defs.insert(name, schema);
    }
    let mut root = defs
        .remove("Workflow")
        .ok_or("the API document has no `Workflow` schema")?;
    if let Value::Object(map) = &mut root {
        map.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        map.insert("$defs".into(), Value::Object(defs));
    }
    Ok(json!({ "schema": root, "guide": WORKFLOW_GUIDE }))
}

/// `#/components/schemas/X` → `#/$defs/X`, noting each `X` met.
fn rewrite_refs(value: &mut Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/components/schemas/")
            {
                found.push(name.to_string());
                *r = format!("#/$defs/{name}");
            }
            for v in map.values_mut() {
                rewrite_refs(v, found);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_refs(v, found)),
        _ => {}
    }
}

fn list_templates() -> ToolResult {
    let list: Vec<Value> = templates::TEMPLATES
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description}))
        .collect();
    Ok(json!({
        "templates": list,
        "next": "Call get_template with a name to read the whole workflow.",
    }))
}

fn get_template(args: &JsonObject) -> ToolResult {
    let name = required_str(args, "name")?;
    let template = templates::find(name).ok_or_else(|| {
        format!(
            "no template `{name}`; the templates are: {}",
            templates::TEMPLATES
                .iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let workflow = template.load().map_err(|e| e.to_string())?;
    Ok(json!({
        "name": template.name,
        "description": template.description,
        "workflow": workflow,
        "next": "Adapt it (give it your own `id`), check it with validate_workflow and store it with save_workflow.",
    }))
}

fn schema(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

fn no_arguments() -> JsonObject {
    schema(json!({"type": "object", "properties": {}, "additionalProperties": false}))
}

fn workflow_property(purpose: &str) -> Value {
    json!({
        "type": ["object", "string"],
        "description": format!("The workflow {purpose}: a JSON object as get_workflow_schema describes (or a string holding that JSON). `metadata` and each step's `id` may be left out.")
    })
}

fn execution_id_schema() -> JsonObject {
    schema(json!({
        "type": "object",
        "properties": {"executionId": {"type": "string", "description": "The id run_workflow returned."}},
        "required": ["executionId"],
    }))
}

/// The tools, each described for the model that reads them.
pub fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "list_operations",
            "List the operations workflow steps can run. For each: `type` and `name` (a step's `type` and \
             `operation`), a description, `inputs` (name, kind audio/json, required, variadic: what the \
             step's `inputs` bind to, in order), `parameters` (name, kind with its range or choices, \
             default, description: what the step's `parameters` may set) and `outputs` (the keys of its \
             result, which later steps and conditions read as `<step>.result.<key>`). Call this first \
             when designing a workflow; optional `type` narrows the list.",
            schema(json!({
                "type": "object",
                "properties": {"type": {"type": "string", "enum": ["analysis", "generation", "conditional", "transformation"],
                    "description": "Only operations of this step type."}},
            })),
        ),
        Tool::new(
            "get_workflow_schema",
            "Get the JSON schema of a workflow (`schema`, JSON Schema with `$defs`) and a `guide` explaining \
             how steps connect: run parameters, `previous_step` inputs (\"<step>.result\" or \
             \"<step>.result.<path>\"), `context` inputs, \"context.<step>.result.<path>\" parameter \
             strings, conditions (leftOperand \"result.<key>\", branches \"true\"/\"false\") and \
             maxIterations for loops. Read it before writing a workflow.",
            no_arguments(),
        ),
        Tool::new(
            "list_templates",
            "List the built-in workflow templates (name and description). Use get_template to read one \
             as a starting point.",
            no_arguments(),
        ),
        Tool::new(
            "get_template",
            "Get a built-in template's whole workflow by `name` (from list_templates), to adapt and save \
             under your own id.",
            schema(json!({
                "type": "object",
                "properties": {"name": {"type": "string", "description": "The template's name, e.g. \"audio-enhancement\"."}},
                "required": ["name"],
            })),
        ),
        Tool::new(
            "validate_workflow",
            "Check a draft workflow without saving it. Returns `valid` (true when no problem has severity \
             \"error\") and `problems`, each with severity (error, warning, info), code, step, field \
             (path from the workflow root, e.g. \"steps.norm.nextSteps.default\"), message, hint and \
             `text`, a line \"<field>: <message>. Fix: <hint>\". Fix every error and validate again \
             before save_workflow; warnings are worth reading.",
            schema(json!({
                "type": "object",
                "properties": {"workflow": workflow_property("to check")},
                "required": ["workflow"],
            })),
        ),
        Tool::new(
            "save_workflow",
            "Validate and store a workflow under its `id`, as a new version when one with that id exists \
             (every version is kept). An invalid workflow is refused with its problems. Returns `id`, \
             `version`, `warnings`, the workflow's run `parameters` and `requiredParameters` (those \
             without a default, which run_workflow must give). Then call run_workflow.",
            schema(json!({
                "type": "object",
                "properties": {"workflow": workflow_property("to store")},
                "required": ["workflow"],
            })),
        ),
        Tool::new(
            "list_workflows",
            "List the saved workflows: id, name, description, step count, initial step and run parameters \
             with their defaults (null = required at run time).",
            no_arguments(),
        ),
        Tool::new(
            "get_workflow",
            "Get a saved workflow's whole definition by `id`, with its latest stored `version`; edit it \
             and save_workflow again to make a new version.",
            schema(json!({
                "type": "object",
                "properties": {"id": {"type": "string", "description": "The workflow's id."}},
                "required": ["id"],
            })),
        ),
        Tool::new(
            "run_workflow",
            "Start an execution of a saved workflow and return at once with its `executionId`. \
             `parameters` override the workflow's run parameters (those whose default is null must be \
             given). Audio file paths must lie inside the server's workspace roots: give them relative \
             to the first root or as absolute paths inside one; others are refused. Then call \
             wait_for_execution (or get_execution) with the executionId.",
            schema(json!({
                "type": "object",
                "properties": {
                    "id": {"type": "string", "description": "The saved workflow's id."},
                    "parameters": {"type": "object", "description": "Run parameters by name, e.g. {\"audioFile\": \"chord.wav\"}.",
                        "additionalProperties": true},
                },
                "required": ["id"],
            })),
        ),
        Tool::new(
            "get_execution",
            "Look at an execution without waiting: `status` (running, completed, failed, cancelled, ...), \
             `finished`, `error` and `failedStep` when it failed, `currentStep`, `stepRuns` (each step's \
             visits and attempts: status, duration, cached, branch taken, error), `results` (each step's \
             latest result object, keyed by step id), `outputDir` (where export steps write) and `next`, \
             what to do now.",
            execution_id_schema(),
        ),
        Tool::new(
            "wait_for_execution",
            "Block until an execution finishes or `timeoutSeconds` pass (default 60, at most 600), then \
             return the same as get_execution; `timedOut` is true when it is still running (call again \
             to keep waiting). A failed run names the failed step and the error to fix.",
            schema(json!({
                "type": "object",
                "properties": {
                    "executionId": {"type": "string", "description": "The id run_workflow returned."},
                    "timeoutSeconds": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS, "default": 60,
                        "description": "How long to wait at most."},
                },
                "required": ["executionId"],
            })),
        ),
        Tool::new(
            "optimize_workflow",
            "Tune a saved workflow's run parameters to improve a figure of its results, in the background; \
             returns `studyId` at once. Each trial is an ordinary execution with its own run parameters \
             (seeded random start, then a tree-structured Parzen estimator). The workflow's \
             `optimization` section names the `objective` (\"<step>.result.<path>\", e.g. \
             \"evaluate.result.qualityScore\") and the tunable run parameters; `objective`, `direction` \
             and `tune` here add to or replace them. Steps read tuned values through parameter inputs or \
             \"parameter.<name>\" strings. `parameters` fixes the other run parameters (audio paths \
             inside the workspace roots). Then call get_study.",
            schema(json!({
                "type": "object",
                "properties": {
                    "id": {"type": "string", "description": "The saved workflow's id."},
                    "objective": {"type": "string", "description": "\"<step>.result.<path>\" of a number to improve."},
                    "direction": {"type": "string", "enum": ["maximize", "minimize"]},
                    "tune": {"type": "object", "additionalProperties": true,
                        "description": "Run parameter name → {\"range\": {\"min\": 1, \"max\": 5, \"log\": false}} | {\"integer\": {\"min\": 10, \"max\": 50}} | {\"choice\": [\"a\", \"b\"]}."},
                    "parameters": {"type": "object", "additionalProperties": true, "description": "Fixed run parameters for every trial."},
                    "budget": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "Trials to run (default: the section's budget, else 20)."},
                    "parallel": {"type": "integer", "minimum": 1, "maximum": 16, "default": 2},
                    "patience": {"type": "integer", "minimum": 1, "description": "Stop after this many trials without improvement."},
                    "seed": {"type": "integer", "minimum": 0},
                },
                "required": ["id"],
            })),
        ),
        Tool::new(
            "get_study",
            "Follow an optimisation study: `running`, every trial (number, state, tuned params, score, \
             executionId, error) and `best`. An execution of a trial can be read with get_execution.",
            schema(json!({
                "type": "object",
                "properties": {"studyId": {"type": "string", "description": "The id optimize_workflow returned."}},
                "required": ["studyId"],
            })),
        ),
        Tool::new(
            "cancel_study",
            "Stop a running study started by this server; its running trials are cancelled and recorded.",
            schema(json!({
                "type": "object",
                "properties": {"studyId": {"type": "string"}},
                "required": ["studyId"],
            })),
        ),
        Tool::new(
            "cancel_execution",
            "Cancel a running execution: queued steps never start and the running one is told to stop. \
             Returns `cancelled` (false when it had already finished) and the `status` now.",
            execution_id_schema(),
        ),
    ]
}

fn tool_result(outcome: ToolResult) -> CallToolResult {
    match outcome {
        Ok(value) => CallToolResult::structured(value),
        Err(message) => CallToolResult::error(vec![ContentBlock::text(message)]),
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("grym-synth", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "grym-synth designs and runs audio pipelines. To build one: list_operations and \
                 get_workflow_schema, draft a workflow, validate_workflow until valid, save_workflow, \
                 run_workflow, wait_for_execution, and read `results`.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        let outcome = self.call(&request.name, &args).await;
        Ok(tool_result(outcome).into())
    }
}

/// Serves the tools on stdin/stdout until the client closes the connection.
pub fn serve_stdio(engine: Engine, roots: &[PathBuf]) -> anyhow::Result<()> {
    let server = McpServer::new(engine, roots);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("grym-mcp")
        .build()?;
    runtime.block_on(async move {
        let running = server
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| anyhow::anyhow!("the MCP session did not start: {e}"))?;
        running
            .waiting()
            .await
            .map_err(|e| anyhow::anyhow!("the MCP session failed: {e}"))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_an_object_schema_and_a_description() {
        let tools = tools();
        assert_eq!(tools.len(), 15);
        for t in &tools {
            assert_eq!(
                t.input_schema.get("type"),
                Some(&json!("object")),
                "{}",
                t.name
            );
            assert!(
                t.description.as_ref().is_some_and(|d| d.len() > 60),
                "{}",
                t.name
            );
        }
    }

    #[test]
    fn the_workflow_schema_resolves_its_references() {
        let v = get_workflow_schema().unwrap();
        let defs = v["schema"]["$defs"].as_object().unwrap();
        assert!(defs.contains_key("WorkflowStep"), "{defs:?}");
        let text = v["schema"].to_string();
        assert!(!text.contains("#/components/"));
        for r in text.split("\"#/$defs/").skip(1) {
            let name = r.split('"').next().unwrap();
            assert!(defs.contains_key(name), "dangling reference {name}");
        }
    }

    #[test]
    fn problems_read_as_fixes() {
        let p = Problem {
            severity: crate::workflow::Severity::Error,
            code: "unknown-next-step".into(),
            step: Some("a".into()),
            field: "steps.a.nextSteps.default".into(),
            message: "no step `bb`".into(),
            hint: Some("did you mean `b`?".into()),
        };
        assert_eq!(
            problem_text(&p),
            "steps.a.nextSteps.default: no step `bb`. Fix: did you mean `b`?"
        );
    }

    #[test]
    fn drafts_get_metadata_and_step_ids() {
        let draft = schema(json!({"id": "x", "steps": {"a": {"type": "analysis"}}}));
        let done = complete_draft(draft);
        assert!(done["metadata"]["createdAt"].is_string());
        assert_eq!(done["steps"]["a"]["id"], json!("a"));
    }
}
