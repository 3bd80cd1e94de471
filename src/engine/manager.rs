//! The workflow manager (the plan's `WorkflowManager`) and the handle every front end drives
//! the engine through: register and validate workflows, start, query, cancel and resume
//! executions, and subscribe to events.
//!
//! An execution follows `nextSteps` from `initialStep`, one step at a time. Each step is a
//! scheduler task; the worker that finishes a step records it, picks the next step and
//! submits it, so a workflow moves on without a coordinating thread in between.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Receiver;
use parking_lot::RwLock;
use serde_json::Value;

use super::cache::ResultCache;
use super::context::{ContextQuery, ContextRepository, STEP_RESULT_KIND, step_tag, workflow_tag};
use super::events::{Event, EventBus, summarize};
use super::execution::{CurrentStep, Execution, ExecutionSnapshot, ExecutionStatus};
use super::operation::{CancellationToken, OpContext, OpError, ProgressSink, ResolvedInput};
use super::registry::OperationRegistry;
use super::resolve::{evaluate_condition, lookup, parse_result_ref};
use super::scheduler::{Scheduler, TaskInfo, TaskOutcome, TaskSpec, panic_message};
use super::store::{ExecutionRecord, StepRunRecord, StepRunStatus, Store, StoreError};
use super::timer::Timer;
use crate::workflow::validate::{CONTEXT_PREFIX, PARAMETER_PREFIX};
use crate::workflow::{
    DEFAULT_MAX_ITERATIONS, InputSource, ParamMap, Report, StepType, Workflow, WorkflowStep,
};

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Holds the database (`grym.db`), the artifact workspace (`artifacts/`) and the default
    /// output folders of runs (`runs/<execution>/`).
    pub data_dir: PathBuf,
    /// At most this many steps run at once, across all executions.
    pub max_concurrent_tasks: usize,
    /// First retry waits this long; each further retry waits twice as long as the last.
    pub retry_backoff: Duration,
    /// Finished executions kept in memory for queries (older ones are read from the database).
    pub finished_kept: usize,
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            data_dir: data_dir.into(),
            max_concurrent_tasks: 5,
            retry_backoff: Duration::from_millis(200),
            finished_kept: 10_000,
        }
    }

    /// The per-user data folder (`$GRYM_DATA_DIR`, else the platform's data directory).
    pub fn default_data_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("GRYM_DATA_DIR") {
            return PathBuf::from(dir);
        }
        dirs::data_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("grym-synth")
    }
}

/// Why the engine refused a request.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no workflow `{0}` is registered")]
    UnknownWorkflow(String),
    #[error("no execution `{0}`")]
    UnknownExecution(String),
    #[error("workflow `{id}` is invalid:\n{}", format_problems(report))]
    Invalid { id: String, report: Report },
    #[error("run parameter `{name}`: {message}")]
    Parameter { name: String, message: String },
    #[error("execution `{id}` cannot be resumed: {reason}")]
    NotResumable { id: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
}

fn format_problems(report: &Report) -> String {
    report
        .errors()
        .map(|p| format!("  {}: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Optional settings of one execution.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Where `export` writes; default `<data_dir>/runs/<execution-id>`.
    pub output_dir: Option<PathBuf>,
}

struct Inner {
    config: EngineConfig,
    registry: OperationRegistry,
    scheduler: Scheduler,
    store: Arc<Store>,
    cache: ResultCache,
    context: ContextRepository,
    events: EventBus,
    timer: Timer,
    artifact_dir: PathBuf,
    workflows: RwLock<HashMap<String, Arc<Workflow>>>,
    executions: RwLock<HashMap<String, Arc<Execution>>>,
    finished_order: parking_lot::Mutex<std::collections::VecDeque<String>>,
}

/// The engine handle. Clones share one engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Opens the database in `config.data_dir` and starts the worker threads.
    pub fn start(config: EngineConfig, registry: OperationRegistry) -> Result<Engine, EngineError> {
        let io = |path: &Path, e: std::io::Error| EngineError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(&config.data_dir).map_err(|e| io(&config.data_dir, e))?;
        let artifact_dir = config.data_dir.join("artifacts");
        std::fs::create_dir_all(&artifact_dir).map_err(|e| io(&artifact_dir, e))?;
        let store = Arc::new(Store::open(&config.data_dir.join("grym.db"))?);
        let inner = Inner {
            scheduler: Scheduler::new(config.max_concurrent_tasks),
            cache: ResultCache::new(Arc::clone(&store)),
            context: ContextRepository::new(Arc::clone(&store)),
            store,
            registry,
            events: EventBus::default(),
            timer: Timer::new(),
            artifact_dir,
            workflows: RwLock::new(HashMap::new()),
            executions: RwLock::new(HashMap::new()),
            finished_order: parking_lot::Mutex::new(Default::default()),
            config,
        };
        Ok(Engine {
            inner: Arc::new(inner),
        })
    }

    pub fn registry(&self) -> &OperationRegistry {
        &self.inner.registry
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn context(&self) -> &ContextRepository {
        &self.inner.context
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Events from now on: execution and step life cycles, progress and log lines.
    pub fn subscribe(&self) -> Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Validates a workflow against the operation catalog.
    pub fn validate(&self, workflow: &Workflow) -> Report {
        crate::workflow::validate(workflow, Some(&self.inner.registry))
    }

    /// Validates and registers a workflow (replacing one with the same id) and stores it as
    /// a new version when it changed. Returns the validation report (warnings included).
    pub fn register(&self, workflow: Workflow) -> Result<Report, EngineError> {
        let who = workflow.metadata.created_by.clone();
        self.register_as(workflow, &who).map(|(report, _)| report)
    }

    /// [`register`](Self::register), recording `who` made this version; returns the report
    /// and the version number.
    pub fn register_as(&self, workflow: Workflow, who: &str) -> Result<(Report, u32), EngineError> {
        self.register_noted(workflow, who, None)
    }

    /// [`register_as`](Self::register_as) with the version's note written by the caller
    /// instead of summarised from the change.
    pub fn register_noted(
        &self,
        workflow: Workflow,
        who: &str,
        note: Option<&str>,
    ) -> Result<(Report, u32), EngineError> {
        let report = self.validate(&workflow);
        if !report.is_valid() {
            return Err(EngineError::Invalid {
                id: workflow.id.clone(),
                report,
            });
        }
        let previous = self.latest_version(&workflow.id)?.map(|(_, wf)| wf);
        let summary = match &previous {
            Some(before) => {
                crate::workflow::diff::summarize(&crate::workflow::diff::diff(before, &workflow))
            }
            None => "created".to_string(),
        };
        let note = match note {
            Some(note) => format!("{note} ({summary})"),
            None => summary,
        };
        let json = serde_json::to_string(&workflow).map_err(|e| EngineError::Io {
            path: PathBuf::from(&workflow.id),
            message: format!("cannot serialize the workflow: {e}"),
        })?;
        let version = self
            .inner
            .store
            .save_workflow_version(&workflow.id, &json, who, &note)?;
        let id = workflow.id.clone();
        self.inner
            .workflows
            .write()
            .insert(id.clone(), Arc::new(workflow));
        self.inner.events.emit_with(|| Event::WorkflowSaved {
            workflow_id: id,
            version,
            created_by: who.to_string(),
            deleted: false,
        });
        Ok((report, version))
    }

    /// The newest stored version of a workflow that has not been deleted since.
    fn latest_version(&self, id: &str) -> Result<Option<(u32, Workflow)>, EngineError> {
        let latest = self.inner.store.latest_workflow_version(id)?;
        Ok(latest.and_then(|v| {
            serde_json::from_str(&v.definition)
                .ok()
                .map(|wf| (v.version, wf))
        }))
    }

    /// Registers the newest version of every workflow stored in the database (those deleted
    /// stay deleted). Returns how many were loaded.
    pub fn load_saved_workflows(&self) -> Result<usize, EngineError> {
        let ids = self.inner.store.workflow_ids()?;
        let mut loaded = 0;
        for id in ids {
            if let Some((_, wf)) = self.latest_version(&id)? {
                self.inner.workflows.write().insert(id, Arc::new(wf));
                loaded += 1;
            }
        }
        Ok(loaded)
    }

    /// Every stored version of a workflow, oldest first (a deletion is a version with an
    /// empty definition).
    pub fn versions(&self, id: &str) -> Result<Vec<super::store::WorkflowVersion>, EngineError> {
        Ok(self.inner.store.workflow_versions(id)?)
    }

    /// One stored version.
    pub fn version(&self, id: &str, version: u32) -> Result<Workflow, EngineError> {
        let versions = self.inner.store.workflow_versions(id)?;
        let v = versions
            .iter()
            .find(|v| v.version == version)
            .ok_or_else(|| EngineError::UnknownWorkflow(format!("{id} version {version}")))?;
        serde_json::from_str(&v.definition).map_err(|e| EngineError::NotResumable {
            id: id.to_string(),
            reason: format!("version {version} is unreadable: {e}"),
        })
    }

    /// Makes an old version current again, as a new version.
    pub fn rollback(
        &self,
        id: &str,
        version: u32,
        who: &str,
    ) -> Result<(Report, u32), EngineError> {
        let mut wf = self.version(id, version)?;
        wf.metadata.updated_at = chrono::Utc::now();
        self.register_as(wf, who)
    }

    /// Unregisters a workflow and records its deletion as a version; its history stays.
    pub fn delete_workflow(&self, id: &str, who: &str) -> Result<(), EngineError> {
        if self.inner.workflows.write().remove(id).is_none() {
            return Err(EngineError::UnknownWorkflow(id.to_string()));
        }
        let version = self
            .inner
            .store
            .save_workflow_version(id, "", who, "deleted")?;
        self.inner.events.emit_with(|| Event::WorkflowSaved {
            workflow_id: id.to_string(),
            version,
            created_by: who.to_string(),
            deleted: true,
        });
        Ok(())
    }

    pub fn workflow(&self, id: &str) -> Option<Arc<Workflow>> {
        self.inner.workflows.read().get(id).cloned()
    }

    pub fn workflows(&self) -> Vec<Arc<Workflow>> {
        let mut all: Vec<_> = self.inner.workflows.read().values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Starts an execution of a registered workflow. `params` override the workflow's
    /// parameter defaults; a parameter whose default is `null` must be given.
    pub fn start_execution(
        &self,
        workflow_id: &str,
        params: ParamMap,
        options: RunOptions,
    ) -> Result<String, EngineError> {
        let workflow = self
            .workflow(workflow_id)
            .ok_or_else(|| EngineError::UnknownWorkflow(workflow_id.to_string()))?;
        let params = merge_params(&workflow, params)?;
        let id = uuid::Uuid::new_v4().to_string();
        let output_dir = options
            .output_dir
            .unwrap_or_else(|| self.inner.config.data_dir.join("runs").join(&id));
        let started_at = SystemTime::now();
        let execution = Arc::new(Execution::new(
            id.clone(),
            Arc::clone(&workflow),
            params.clone(),
            output_dir.clone(),
            started_at,
        ));
        self.inner.store.record_execution_started(ExecutionRecord {
            id: id.clone(),
            workflow_id: workflow.id.clone(),
            workflow_name: workflow.name.clone(),
            status: ExecutionStatus::Running,
            error: None,
            parameters: Value::Object(params.into_iter().collect()),
            started_at,
            finished_at: None,
            output_dir,
            workflow_json: serde_json::to_string(&*workflow).unwrap_or_default(),
        });
        self.launch(execution, Some(&workflow.initial_step), started_at);
        Ok(id)
    }

    /// Registers `workflow` and starts it.
    pub fn run(
        &self,
        workflow: Workflow,
        params: ParamMap,
        options: RunOptions,
    ) -> Result<String, EngineError> {
        let id = workflow.id.clone();
        self.register(workflow)?;
        self.start_execution(&id, params, options)
    }

    /// An execution of this process, or one recorded in the database.
    pub fn execution(&self, id: &str) -> Result<ExecutionSnapshot, EngineError> {
        if let Some(e) = self.inner.executions.read().get(id) {
            return Ok(e.snapshot());
        }
        let record = self
            .inner
            .store
            .execution(id)?
            .ok_or_else(|| EngineError::UnknownExecution(id.to_string()))?;
        let runs = self.inner.store.step_runs(id)?;
        Ok(snapshot_from_record(record, runs))
    }

    /// Executions of this process, newest first.
    pub fn executions(&self) -> Vec<ExecutionSnapshot> {
        let mut all: Vec<_> = self
            .inner
            .executions
            .read()
            .values()
            .map(|e| e.snapshot())
            .collect();
        all.sort_by_key(|e| std::cmp::Reverse(e.started_at));
        all
    }

    /// Recorded executions of every process, newest first.
    pub fn history(&self, limit: usize) -> Result<Vec<ExecutionRecord>, EngineError> {
        self.inner.store.flush()?;
        Ok(self.inner.store.executions(limit)?)
    }

    /// Blocks until the execution ends (or `timeout` passes) and returns its snapshot.
    pub fn wait(
        &self,
        id: &str,
        timeout: Option<Duration>,
    ) -> Result<ExecutionSnapshot, EngineError> {
        let execution = self.live_execution(id)?;
        execution.wait(timeout);
        Ok(execution.snapshot())
    }

    /// Cancels a running execution: a queued step never starts, a running one is told
    /// through its cancellation token. Returns false when it had already finished.
    pub fn cancel(&self, id: &str) -> Result<bool, EngineError> {
        let execution = self.live_execution(id)?;
        execution.cancel.cancel();
        let (queued_task, running) = {
            let state = execution.state.lock();
            if state.status.is_finished() {
                return Ok(false);
            }
            match &state.current {
                Some(c) => {
                    c.token.cancel();
                    (c.task, true)
                }
                None => (None, false),
            }
        };
        let dequeued = queued_task.is_some_and(|t| self.inner.scheduler.cancel(t));
        if dequeued || !running {
            // Nothing will run to notice the token (the step never started, or the execution
            // waits for a retry): end it here.
            finish_cancelled(&self.inner, &execution);
        }
        Ok(true)
    }

    /// Continues an interrupted (or failed, or cancelled) execution from its last completed
    /// step, with the results it had, under the same id.
    pub fn resume(&self, id: &str) -> Result<(), EngineError> {
        if self.inner.executions.read().get(id).is_some_and(|e| {
            let s = e.state.lock().status;
            !s.is_finished()
        }) {
            return Err(EngineError::NotResumable {
                id: id.into(),
                reason: "it is still running".into(),
            });
        }
        self.inner.store.flush()?;
        let record = self
            .inner
            .store
            .execution(id)?
            .ok_or_else(|| EngineError::UnknownExecution(id.to_string()))?;
        if record.status == ExecutionStatus::Completed {
            return Err(EngineError::NotResumable {
                id: id.into(),
                reason: "it completed".into(),
            });
        }
        let workflow: Workflow =
            serde_json::from_str(&record.workflow_json).map_err(|e| EngineError::NotResumable {
                id: id.into(),
                reason: format!("its recorded workflow is unreadable: {e}"),
            })?;
        let workflow = Arc::new(workflow);
        let runs = self.inner.store.step_runs(id)?;
        let params: ParamMap = match &record.parameters {
            Value::Object(m) => m.clone().into_iter().collect(),
            _ => ParamMap::new(),
        };
        let execution = Arc::new(Execution::new(
            id.to_string(),
            Arc::clone(&workflow),
            params,
            record.output_dir.clone(),
            record.started_at,
        ));
        let next = {
            let mut state = execution.state.lock();
            for run in &runs {
                let visits = state.iterations.entry(run.step_id.clone()).or_insert(0);
                *visits = (*visits).max(run.iteration);
                if run.status == StepRunStatus::Completed
                    && let Some(result) = &run.result
                {
                    state.results.insert(run.step_id.clone(), result.clone());
                }
                state.next_seq = state.next_seq.max(run.seq + 1);
            }
            state.step_runs = runs.clone();
            match runs.last() {
                None => Some(workflow.initial_step.clone()),
                Some(last) if last.status == StepRunStatus::Completed => {
                    let step = workflow.step(&last.step_id);
                    step.and_then(|s| next_step(s, last.branch).map(str::to_string))
                }
                Some(last) => {
                    // Run the unfinished visit again as the same iteration.
                    if let Some(v) = state.iterations.get_mut(&last.step_id) {
                        *v = last.iteration.saturating_sub(1);
                    }
                    Some(last.step_id.clone())
                }
            }
        };
        self.inner
            .store
            .record_execution_status(id, ExecutionStatus::Running, None, None);
        self.launch(execution, next.as_deref(), SystemTime::now());
        Ok(())
    }

    /// Makes an execution live: known to queries, announced, and on its way at `first` (or
    /// completed at once when there is nothing left to run).
    fn launch(&self, execution: Arc<Execution>, first: Option<&str>, at: SystemTime) {
        self.inner
            .executions
            .write()
            .insert(execution.id.clone(), Arc::clone(&execution));
        self.inner.events.emit(Event::ExecutionStarted {
            execution_id: execution.id.clone(),
            workflow_id: execution.workflow.id.clone(),
            at,
        });
        match first {
            Some(step) => schedule_step(&self.inner, &execution, step, 1),
            None => finish(
                &self.inner,
                &execution,
                ExecutionStatus::Completed,
                None,
                None,
            ),
        }
    }

    /// An execution of this process.
    fn live_execution(&self, id: &str) -> Result<Arc<Execution>, EngineError> {
        self.inner
            .executions
            .read()
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::UnknownExecution(id.to_string()))
    }

    /// Scheduler tasks (queued, running and recently finished), newest first.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.inner.scheduler.tasks()
    }

    pub fn task(&self, id: u64) -> Option<TaskInfo> {
        self.inner.scheduler.task(id)
    }

    /// The most steps that ever ran at once.
    pub fn peak_concurrency(&self) -> usize {
        self.inner.scheduler.peak_running()
    }

    /// Blocks until everything recorded so far is in the database.
    pub fn flush(&self) -> Result<(), EngineError> {
        Ok(self.inner.store.flush()?)
    }

    /// Waits for every running execution to end, then commits all records.
    pub fn shutdown(&self) {
        let running: Vec<_> = self.inner.executions.read().values().cloned().collect();
        for e in running {
            e.wait(None);
        }
        self.inner.scheduler.wait_idle();
        let _ = self.inner.store.flush();
    }
}

/// Run parameters: the workflow's defaults overridden by `given`; every `null` default must
/// be given.
fn merge_params(workflow: &Workflow, given: ParamMap) -> Result<ParamMap, EngineError> {
    let mut params = workflow.parameters.clone();
    for (name, value) in given {
        params.insert(name, value);
    }
    for (name, value) in &params {
        if value.is_null() && workflow.parameters.contains_key(name) {
            return Err(EngineError::Parameter {
                name: name.clone(),
                message: format!(
                    "workflow `{}` needs it and it has no default; pass it with --param {name}=…",
                    workflow.id
                ),
            });
        }
    }
    Ok(params)
}

fn snapshot_from_record(record: ExecutionRecord, runs: Vec<StepRunRecord>) -> ExecutionSnapshot {
    let mut results = HashMap::new();
    for run in &runs {
        if let (StepRunStatus::Completed, Some(r)) = (run.status, &run.result) {
            results.insert(run.step_id.clone(), r.clone());
        }
    }
    ExecutionSnapshot {
        id: record.id,
        workflow_id: record.workflow_id,
        status: record.status,
        error: record.error,
        failed_step: runs
            .iter()
            .rev()
            .find(|r| r.status == StepRunStatus::Failed)
            .map(|r| r.step_id.clone()),
        parameters: match record.parameters {
            Value::Object(m) => m.into_iter().collect(),
            _ => ParamMap::new(),
        },
        current_step: None,
        results,
        step_runs: runs,
        started_at: record.started_at,
        finished_at: record.finished_at,
        output_dir: record.output_dir,
    }
}

/// The step control goes to after `step`, given the branch its condition chose.
fn next_step(step: &WorkflowStep, branch: Option<bool>) -> Option<&str> {
    if let Some(taken) = branch {
        let wanted = if taken { "true" } else { "false" };
        if let Some(next) = step
            .next_steps
            .conditional
            .iter()
            .flatten()
            .find(|c| c.condition == wanted)
        {
            return Some(&next.step_id);
        }
    }
    step.next_steps.default.as_deref()
}

/// Queues the next visit (`attempt` 1) or another try of the current visit of `step_id`.
fn schedule_step(inner: &Arc<Inner>, execution: &Arc<Execution>, step_id: &str, attempt: u32) {
    let Some(step) = execution.workflow.step(step_id) else {
        let message = format!("step `{step_id}` does not exist");
        finish(
            inner,
            execution,
            ExecutionStatus::Failed,
            Some(message),
            Some(step_id),
        );
        return;
    };
    if execution.cancel.is_cancelled() {
        finish_cancelled(inner, execution);
        return;
    }
    let mut state = execution.state.lock();
    if state.status.is_finished() {
        return;
    }
    let visits = state.iterations.entry(step_id.to_string()).or_insert(0);
    if attempt == 1 {
        let cap = step.max_iterations.unwrap_or(DEFAULT_MAX_ITERATIONS);
        if *visits >= cap {
            drop(state);
            let message = format!(
                "step `{step_id}` reached its cap of {cap} runs (maxIterations) before the loop's exit condition was met"
            );
            finish(
                inner,
                execution,
                ExecutionStatus::LoopLimit,
                Some(message),
                Some(step_id),
            );
            return;
        }
        *visits += 1;
    }
    let iteration = *visits;
    let seq = state.next_seq;
    state.next_seq += 1;
    let token = CancellationToken::new();
    let settled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    state.current = Some(CurrentStep {
        step_id: step_id.to_string(),
        seq,
        token: token.clone(),
        task: None,
    });
    drop(state);

    let job_inner = Arc::clone(inner);
    let job_execution = Arc::clone(execution);
    let job_step = step_id.to_string();
    let task = inner.scheduler.submit(
        TaskSpec {
            label: format!("{} / {step_id}", execution.workflow.id),
            priority: step.priority.unwrap_or(0),
            dependencies: Vec::new(),
            execution_id: Some(execution.id.clone()),
            step_id: Some(step_id.to_string()),
        },
        Box::new(move || {
            let attempt = Attempt {
                step_id: job_step,
                seq,
                iteration,
                attempt,
                token,
                settled,
            };
            run_attempt(&job_inner, &job_execution, attempt)
        }),
    );
    if let Some(current) = execution.state.lock().current.as_mut()
        && current.seq == seq
    {
        current.task = Some(task);
    }
}

struct Attempt {
    step_id: String,
    seq: u64,
    iteration: u32,
    attempt: u32,
    token: CancellationToken,
    settled: Arc<std::sync::atomic::AtomicBool>,
}

impl Attempt {
    fn settle(&self) -> bool {
        !self.settled.swap(true, std::sync::atomic::Ordering::AcqRel)
    }
}

/// Reports operation progress as events.
struct StepProgress<'a> {
    events: &'a EventBus,
    execution_id: &'a str,
    step_id: &'a str,
}

impl ProgressSink for StepProgress<'_> {
    fn report(&self, fraction: f32, message: &str) {
        self.events.emit(Event::StepProgress {
            execution_id: self.execution_id.to_string(),
            step_id: self.step_id.to_string(),
            fraction: fraction.clamp(0.0, 1.0),
            message: message.to_string(),
        });
    }
}

/// What one attempt produced.
enum StepOutcome {
    Done { result: Value, cached: bool },
    Error(OpError),
}

/// Runs one attempt of a step on a worker thread and moves the execution on.
fn run_attempt(inner: &Arc<Inner>, execution: &Arc<Execution>, attempt: Attempt) -> TaskOutcome {
    let workflow = Arc::clone(&execution.workflow);
    let Some(step) = workflow.step(&attempt.step_id) else {
        return TaskOutcome::Failed("unknown step".into());
    };
    if execution.cancel.is_cancelled() {
        if attempt.settle() {
            finish_cancelled(inner, execution);
        }
        return TaskOutcome::Cancelled;
    }
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let mut run = StepRunRecord {
        seq: attempt.seq,
        step_id: attempt.step_id.clone(),
        iteration: attempt.iteration,
        attempt: attempt.attempt,
        status: StepRunStatus::Running,
        started_at,
        finished_at: None,
        duration_ms: None,
        error: None,
        result: None,
        cached: false,
        branch: None,
    };
    inner.store.record_step_run(&execution.id, run.clone());
    inner.events.emit_with(|| Event::StepStarted {
        execution_id: execution.id.clone(),
        step_id: attempt.step_id.clone(),
        iteration: attempt.iteration,
        attempt: attempt.attempt,
        at: started_at,
    });
    if let Some(seconds) = step.timeout_seconds {
        arm_timeout(inner, execution, &attempt, seconds, run.clone());
    }

    let outcome = execute_step(inner, execution, step, &attempt);

    if !attempt.settle() {
        // The timer settled this attempt (timeout) while the operation ran; its outcome is moot.
        return TaskOutcome::Cancelled;
    }
    run.finished_at = Some(SystemTime::now());
    run.duration_ms = Some(clock.elapsed().as_secs_f64() * 1e3);
    match outcome {
        StepOutcome::Done { result, cached } => {
            complete_step(inner, execution, step, run, result, cached);
            TaskOutcome::Completed
        }
        StepOutcome::Error(OpError::Cancelled) => {
            run.status = StepRunStatus::Cancelled;
            record_run(inner, execution, run);
            finish_cancelled(inner, execution);
            TaskOutcome::Cancelled
        }
        StepOutcome::Error(error) => {
            let message = error.to_string();
            fail_step(
                inner,
                execution,
                step,
                run,
                &attempt,
                &message,
                error.is_transient(),
            );
            TaskOutcome::Failed(message)
        }
    }
}

/// Cancels the attempt and gives up on its worker once its time is up.
fn arm_timeout(
    inner: &Arc<Inner>,
    execution: &Arc<Execution>,
    attempt: &Attempt,
    seconds: f64,
    run: StepRunRecord,
) {
    let inner_t = Arc::clone(inner);
    let execution_t = Arc::clone(execution);
    let settled = Arc::clone(&attempt.settled);
    let token = attempt.token.clone();
    let seq = attempt.seq;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds.clamp(0.001, 1e9));
    let attempt_no = attempt.attempt;
    inner.timer.at(deadline, move || {
        if settled.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return; // finished in time
        }
        token.cancel();
        let task = {
            let state = execution_t.state.lock();
            state
                .current
                .as_ref()
                .filter(|c| c.seq == seq)
                .and_then(|c| c.task)
        };
        if let Some(task) = task {
            inner_t.scheduler.abandon(task, "timed out");
        }
        let Some(step) = execution_t.workflow.step(&run.step_id) else {
            return;
        };
        let mut run = run;
        run.finished_at = Some(SystemTime::now());
        run.duration_ms = Some(seconds * 1e3);
        let message = format!("timed out after {seconds} s (timeoutSeconds)");
        let attempt = Attempt {
            step_id: run.step_id.clone(),
            seq,
            iteration: run.iteration,
            attempt: attempt_no,
            token,
            settled,
        };
        fail_step(&inner_t, &execution_t, step, run, &attempt, &message, false);
    });
}

/// Resolves inputs and parameters, then runs the operation or takes its cached result.
fn execute_step(
    inner: &Arc<Inner>,
    execution: &Arc<Execution>,
    step: &WorkflowStep,
    attempt: &Attempt,
) -> StepOutcome {
    let operation = if step.step_type == StepType::Conditional && step.operation.is_empty() {
        None
    } else {
        match inner.registry.get(step.step_type, &step.operation) {
            Some(op) => Some(op),
            None => {
                return StepOutcome::Error(OpError::invalid(format!(
                    "there is no operation `{}`",
                    step.qualified_operation()
                )));
            }
        }
    };
    let spec = operation.map(|op| op.spec());
    let inputs = match resolve_inputs(inner, execution, step, spec) {
        Ok(i) => i,
        Err(e) => return StepOutcome::Error(OpError::Invalid(e)),
    };
    let Some(operation) = operation else {
        // A conditional step without an operation: its result is what it reads.
        let result = match inputs.as_slice() {
            [one] => one.value.clone(),
            many => Value::Object(
                many.iter()
                    .map(|i| (i.name.clone(), i.value.clone()))
                    .collect(),
            ),
        };
        return StepOutcome::Done {
            result,
            cached: false,
        };
    };
    let spec = operation.spec();
    let mut params = match resolve_params(inner, execution, &step.parameters) {
        Ok(p) => OperationRegistry::effective_params(spec, &p),
        Err(e) => return StepOutcome::Error(OpError::Invalid(e)),
    };
    advance_seed(spec, &mut params, attempt.iteration);
    for (name, value) in &params {
        if let Some(p) = spec.param(name)
            && let Some(problem) = super::registry::param_problem(p, value)
        {
            return StepOutcome::Error(OpError::Invalid(problem));
        }
    }
    let seeded = spec
        .seed_parameter
        .as_ref()
        .is_none_or(|seed| params.get(seed).is_some_and(|v| !v.is_null()));
    let cacheable = step.cache != Some(false) && spec.deterministic && seeded;
    let cache_key = if cacheable {
        inner.cache.key(spec, &inputs, &params).ok()
    } else {
        None
    };
    if let Some(key) = &cache_key
        && let Some(result) = inner.cache.get(key)
    {
        return StepOutcome::Done {
            result,
            cached: true,
        };
    }
    // The output folder is made by the operations that write into it (export), so that runs
    // which write nothing leave no empty folders and steps pay no file-system calls.
    let progress = StepProgress {
        events: &inner.events,
        execution_id: &execution.id,
        step_id: &attempt.step_id,
    };
    let ctx = OpContext {
        inputs: &inputs,
        params: &params,
        progress: &progress,
        cancel: &attempt.token,
        artifact_dir: &inner.artifact_dir,
        output_dir: &execution.output_dir,
    };
    let result = match catch_unwind(AssertUnwindSafe(|| operation.run(&ctx))) {
        Ok(r) => r,
        Err(panic) => Err(OpError::failed(format!(
            "the operation panicked: {}",
            panic_message(&panic)
        ))),
    };
    match result {
        Ok(result) => {
            if let Some(key) = &cache_key {
                inner.cache.put(key, &spec.qualified_name(), &result);
            }
            StepOutcome::Done {
                result,
                cached: false,
            }
        }
        Err(e) => StepOutcome::Error(e),
    }
}

/// A seeded step that a loop brings back runs with `seed + iteration − 1`: each visit is a
/// new take instead of a (cached) copy of the last one, and the run stays reproducible.
fn advance_seed(spec: &super::OperationSpec, params: &mut ParamMap, iteration: u32) {
    let Some(name) = &spec.seed_parameter else {
        return;
    };
    if iteration <= 1 {
        return;
    }
    if let Some(seed) = params.get(name).and_then(Value::as_u64) {
        // Kept within i64 so that the operation reads it as it reads any integer.
        let advanced = seed.wrapping_add(u64::from(iteration - 1)) & i64::MAX as u64;
        params.insert(name.clone(), Value::from(advanced));
    }
}

/// Binds a step's inputs to the operation's declared inputs: by `name` when the input has
/// one, else by position; a variadic last input takes the rest.
fn resolve_inputs(
    inner: &Inner,
    execution: &Execution,
    step: &WorkflowStep,
    spec: Option<&super::OperationSpec>,
) -> Result<Vec<ResolvedInput>, String> {
    let declared = spec.map(|s| s.inputs.as_slice()).unwrap_or_default();
    let mut resolved = Vec::with_capacity(step.inputs.len());
    for (i, input) in step.inputs.iter().enumerate() {
        let name = match (&input.name, declared.get(i), declared.last()) {
            (Some(n), ..) => n.clone(),
            (None, Some(d), _) => d.name.clone(),
            (None, None, Some(last)) if last.variadic => last.name.clone(),
            _ => format!("input{i}"),
        };
        let field = format!("inputs[{i}] (`{}`)", input.key);
        let value = match input.source {
            InputSource::Parameter => match execution.params.get(&input.key) {
                Some(v) if !v.is_null() => v.clone(),
                _ => {
                    return Err(format!(
                        "{field}: run parameter `{}` was not given",
                        input.key
                    ));
                }
            },
            InputSource::PreviousStep => {
                let r = parse_result_ref(&input.key).map_err(|e| format!("{field}: {e}"))?;
                let state = execution.state.lock();
                let result = state.results.get(r.step).ok_or_else(|| {
                    format!(
                        "{field}: step `{}` has not run yet in this execution",
                        r.step
                    )
                })?;
                lookup(result, r.path).cloned().ok_or_else(|| {
                    format!("{field}: the result of `{}` has no `{}`", r.step, r.path)
                })?
            }
            InputSource::Context => {
                read_context(inner, execution, &input.key).map_err(|e| format!("{field}: {e}"))?
            }
        };
        resolved.push(ResolvedInput { name, value });
    }
    Ok(resolved)
}

/// Reads `"<step>.result[.path]"` from this execution's results, else from the newest
/// result of that step recorded in the workflow's context by earlier executions.
fn read_context(inner: &Inner, execution: &Execution, key: &str) -> Result<Value, String> {
    let r = parse_result_ref(key)?;
    let result = execution.state.lock().results.get(r.step).cloned();
    let result = match result {
        Some(v) => v,
        None => {
            let query = ContextQuery {
                tags: vec![workflow_tag(&execution.workflow.id), step_tag(r.step)],
                kind: Some(STEP_RESULT_KIND.into()),
                since: None,
                limit: 1,
            };
            let items = inner.context.query(&query).map_err(|e| e.to_string())?;
            items.into_iter().next().map(|i| i.payload).ok_or_else(|| {
                format!(
                    "no result of step `{}` in this execution or in the context of workflow `{}`",
                    r.step, execution.workflow.id
                )
            })?
        }
    };
    lookup(&result, r.path)
        .cloned()
        .ok_or_else(|| format!("the result of `{}` has no `{}`", r.step, r.path))
}

/// Replaces every parameter string `"context.<step>.result.<path>"` and
/// `"parameter.<name>"` with the value it names.
fn resolve_params(
    inner: &Inner,
    execution: &Execution,
    params: &ParamMap,
) -> Result<ParamMap, String> {
    fn resolve(
        inner: &Inner,
        execution: &Execution,
        name: &str,
        value: &Value,
    ) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) => {
                if let Some(key) = s.strip_prefix(CONTEXT_PREFIX) {
                    read_context(inner, execution, key)
                        .map_err(|e| format!("parameter `{name}` (`{s}`): {e}"))?
                } else if let Some(param) = s.strip_prefix(PARAMETER_PREFIX) {
                    match execution.params.get(param) {
                        Some(v) if !v.is_null() => v.clone(),
                        _ => {
                            return Err(format!(
                                "parameter `{name}` (`{s}`): run parameter `{param}` was not given"
                            ));
                        }
                    }
                } else {
                    value.clone()
                }
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| resolve(inner, execution, name, v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), resolve(inner, execution, name, v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }
    params
        .iter()
        .map(|(name, value)| Ok((name.clone(), resolve(inner, execution, name, value)?)))
        .collect()
}

fn record_run(inner: &Inner, execution: &Execution, run: StepRunRecord) {
    inner.store.record_step_run(&execution.id, run.clone());
    execution.state.lock().step_runs.push(run);
}

/// Records a finished step, evaluates its condition and moves on.
fn complete_step(
    inner: &Arc<Inner>,
    execution: &Arc<Execution>,
    step: &WorkflowStep,
    mut run: StepRunRecord,
    result: Value,
    cached: bool,
) {
    let branch = match &step.condition {
        Some(condition) => match evaluate_condition(condition, &result) {
            Ok(b) => Some(b),
            Err(e) => {
                run.status = StepRunStatus::Failed;
                run.result = Some(result);
                let message = format!("condition: {e}");
                run.error = Some(message.clone());
                record_run(inner, execution, run);
                let message = format!("step `{}`: {message}", step.id);
                finish(
                    inner,
                    execution,
                    ExecutionStatus::Failed,
                    Some(message),
                    Some(&step.id),
                );
                return;
            }
        },
        None => None,
    };
    run.status = StepRunStatus::Completed;
    run.cached = cached;
    run.branch = branch;
    run.result = Some(result.clone());
    let duration_ms = run.duration_ms.unwrap_or(0.0);
    let iteration = run.iteration;
    inner.store.record_step_run(&execution.id, run.clone());
    {
        let mut state = execution.state.lock();
        state.results.insert(step.id.clone(), result.clone());
        state.step_runs.push(run);
    }
    inner.events.emit_with(|| Event::StepFinished {
        execution_id: execution.id.clone(),
        step_id: step.id.clone(),
        iteration,
        summary: summarize(&result),
        duration_ms,
        cached,
        branch,
    });
    match next_step(step, branch) {
        Some(next) => schedule_step(inner, execution, next, 1),
        None => finish(inner, execution, ExecutionStatus::Completed, None, None),
    }
}

/// Records a failed attempt; retries transient failures with back-off, else fails the run.
fn fail_step(
    inner: &Arc<Inner>,
    execution: &Arc<Execution>,
    step: &WorkflowStep,
    mut run: StepRunRecord,
    attempt: &Attempt,
    message: &str,
    transient: bool,
) {
    let will_retry = transient
        && attempt.attempt <= step.retries.unwrap_or(0)
        && !execution.cancel.is_cancelled();
    run.status = StepRunStatus::Failed;
    run.error = Some(message.to_string());
    record_run(inner, execution, run);
    inner.events.emit(Event::StepFailed {
        execution_id: execution.id.clone(),
        step_id: step.id.clone(),
        iteration: attempt.iteration,
        attempt: attempt.attempt,
        error: message.to_string(),
        will_retry,
    });
    if will_retry {
        let delay = inner.config.retry_backoff * 2u32.saturating_pow(attempt.attempt - 1);
        execution.state.lock().current = None;
        let inner_r = Arc::clone(inner);
        let execution_r = Arc::clone(execution);
        let step_id = step.id.clone();
        let next_attempt = attempt.attempt + 1;
        inner.timer.at(Instant::now() + delay, move || {
            schedule_step(&inner_r, &execution_r, &step_id, next_attempt);
        });
    } else {
        let message = format!("step `{}` failed: {message}", step.id);
        finish(
            inner,
            execution,
            ExecutionStatus::Failed,
            Some(message),
            Some(&step.id),
        );
    }
}

/// Ends an execution as cancelled.
fn finish_cancelled(inner: &Arc<Inner>, execution: &Arc<Execution>) {
    finish(
        inner,
        execution,
        ExecutionStatus::Cancelled,
        Some("cancelled".into()),
        None,
    );
}

/// Ends an execution (once; later calls do nothing).
fn finish(
    inner: &Arc<Inner>,
    execution: &Arc<Execution>,
    status: ExecutionStatus,
    error: Option<String>,
    failed_step: Option<&str>,
) {
    let finished_at = SystemTime::now();
    {
        let mut state = execution.state.lock();
        if state.status.is_finished() {
            return;
        }
        state.status = status;
        state.error = error.clone();
        state.failed_step = failed_step.map(str::to_string);
        state.current = None;
        state.finished_at = Some(finished_at);
        inner.store.record_execution_status(
            &execution.id,
            status,
            error.clone(),
            Some(finished_at),
        );
        // Emitted under the state lock so that whoever sees the execution finished has
        // already been sent the event too.
        inner.events.emit(Event::ExecutionFinished {
            execution_id: execution.id.clone(),
            status,
            error,
            at: finished_at,
        });
    }
    execution.finished.notify_all();
    let mut order = inner.finished_order.lock();
    order.push_back(execution.id.clone());
    if order.len() > inner.config.finished_kept {
        let mut executions = inner.executions.write();
        while order.len() > inner.config.finished_kept {
            if let Some(old) = order.pop_front() {
                executions.remove(&old);
            }
        }
    }
}
