//! Running the open workflow: starts executions through the engine on a background thread,
//! reads the engine's event stream every frame (never blocking), and keeps what the live
//! panel and the node badges show. Also past executions from the engine's history.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, TryRecvError};
use egui::{Color32, RichText, Ui};
use serde_json::Value;

use crate::engine::events::summarize;
use crate::engine::{
    Engine, Event, ExecutionRecord, ExecutionSnapshot, ExecutionStatus, LogLevel, RunOptions,
    StepRunRecord, StepRunStatus,
};
use crate::workflow::{ParamMap, Workflow};

/// What [`RunState::open_past`] takes for the most recent recorded execution.
pub const LATEST: &str = "latest";

/// What a node's badge shows.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeStatus {
    Pending,
    Running {
        fraction: Option<f32>,
        message: String,
        iteration: u32,
    },
    Done,
    Cached,
    Failed(String),
    /// The execution ended without reaching the step.
    Skipped,
    Cancelled,
}

impl NodeStatus {
    pub fn label(&self) -> String {
        match self {
            NodeStatus::Pending => "pending".into(),
            NodeStatus::Running {
                iteration,
                fraction,
                ..
            } => {
                let mut s = "running".to_string();
                if *iteration > 1 {
                    s.push_str(&format!(" (iteration {iteration})"));
                }
                if let Some(f) = fraction {
                    s.push_str(&format!(" {:.0}%", f * 100.0));
                }
                s
            }
            NodeStatus::Done => "done".into(),
            NodeStatus::Cached => "cached".into(),
            NodeStatus::Failed(_) => "failed".into(),
            NodeStatus::Skipped => "skipped".into(),
            NodeStatus::Cancelled => "cancelled".into(),
        }
    }

    pub fn detail(&self) -> String {
        match self {
            NodeStatus::Failed(e) => e.clone(),
            NodeStatus::Running { message, .. } if !message.is_empty() => message.clone(),
            other => other.label(),
        }
    }
}

/// One attempt of one visit of a step, as the run panel lists it.
#[derive(Debug, Clone)]
pub struct StepRunRow {
    pub step_id: String,
    pub iteration: u32,
    pub attempt: u32,
    pub status: NodeStatus,
    pub started: Option<Instant>,
    /// Wall-clock start and end, for the timeline (the end is unknown while it runs).
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub duration_ms: Option<f64>,
    pub error: Option<String>,
    /// The result with long arrays cut short, for listing.
    pub summary: Option<Value>,
    /// The whole result, once the execution has finished and been read back from the
    /// engine (events carry only the summary).
    pub result: Option<Value>,
    pub branch: Option<bool>,
}

impl StepRunRow {
    /// The row of a recorded step run.
    pub fn from_record(r: &StepRunRecord) -> StepRunRow {
        let status = match r.status {
            StepRunStatus::Running => NodeStatus::Running {
                fraction: None,
                message: String::new(),
                iteration: r.iteration,
            },
            StepRunStatus::Completed if r.cached => NodeStatus::Cached,
            StepRunStatus::Completed => NodeStatus::Done,
            StepRunStatus::Failed => NodeStatus::Failed(r.error.clone().unwrap_or_default()),
            StepRunStatus::Cancelled | StepRunStatus::Interrupted => NodeStatus::Cancelled,
        };
        StepRunRow {
            step_id: r.step_id.clone(),
            iteration: r.iteration,
            attempt: r.attempt,
            status,
            started: None,
            started_at: Some(r.started_at),
            finished_at: r.finished_at,
            duration_ms: r.duration_ms,
            error: r.error.clone(),
            summary: r.result.as_ref().map(summarize),
            result: r.result.clone(),
            branch: r.branch,
        }
    }

    /// The whole result where it is known, else the summary.
    pub fn best_result(&self) -> Option<&Value> {
        self.result.as_ref().or(self.summary.as_ref())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Idle,
    /// Registering and starting (on a background thread).
    Starting,
    Running,
    Finished(ExecutionStatus),
    /// A past execution loaded from the history.
    Past(ExecutionStatus),
}

pub struct RunState {
    events: Option<Receiver<Event>>,
    start: Option<Receiver<Result<String, String>>>,
    history_rx: Option<Receiver<Result<Vec<ExecutionRecord>, String>>>,
    past_rx: Option<Receiver<Result<ExecutionSnapshot, String>>>,
    /// The whole record of the live execution, read back once it has finished.
    finished_rx: Option<Receiver<Result<ExecutionSnapshot, String>>>,
    pub execution_id: Option<String>,
    /// When the shown execution started (wall clock): the timeline's zero.
    pub execution_started_at: Option<SystemTime>,
    /// Counts changes to `rows`, so views derived from them know when to rebuild.
    pub revision: u64,
    pub phase: Phase,
    pub statuses: HashMap<String, NodeStatus>,
    pub rows: Vec<StepRunRow>,
    pub log: Vec<(LogLevel, String)>,
    pub error: Option<String>,
    pub history: Vec<ExecutionRecord>,
    pub history_error: Option<String>,
    /// The parameters of the shown execution (what its `parameter` inputs read).
    pub parameters: ParamMap,
    started_at: Option<Instant>,
    finished_after: Option<Duration>,
    cancel_requested: bool,
    /// The execution finished and its record has not been asked for yet.
    read_back_due: bool,
    /// Events that came before the start thread told us the execution id.
    buffered: Vec<Event>,
}

impl RunState {
    pub fn new(engine: Option<&Engine>) -> Self {
        RunState {
            events: engine.map(Engine::subscribe),
            start: None,
            history_rx: None,
            past_rx: None,
            finished_rx: None,
            execution_id: None,
            execution_started_at: None,
            revision: 0,
            phase: Phase::Idle,
            statuses: HashMap::new(),
            rows: Vec::new(),
            log: Vec::new(),
            error: None,
            history: Vec::new(),
            history_error: None,
            parameters: ParamMap::new(),
            started_at: None,
            finished_after: None,
            cancel_requested: false,
            read_back_due: false,
            buffered: Vec::new(),
        }
    }

    pub fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Starting | Phase::Running)
    }

    /// Whether something is waited for (the UI should keep repainting).
    pub fn is_busy(&self) -> bool {
        self.is_active()
            || self.history_rx.is_some()
            || self.past_rx.is_some()
            || self.finished_rx.is_some()
    }

    /// Starts running `workflow` with `params` (registration and start happen on a thread).
    pub fn start(&mut self, engine: &Engine, workflow: Workflow, params: ParamMap) {
        self.statuses = workflow
            .steps
            .keys()
            .map(|k| (k.clone(), NodeStatus::Pending))
            .collect();
        self.rows.clear();
        self.revision += 1;
        self.log.clear();
        self.error = None;
        self.execution_id = None;
        self.execution_started_at = None;
        self.finished_rx = None;
        self.buffered.clear();
        self.cancel_requested = false;
        self.read_back_due = false;
        self.phase = Phase::Starting;
        self.started_at = Some(Instant::now());
        self.finished_after = None;
        self.parameters = params.clone();
        let (tx, rx) = crossbeam_channel::bounded(1);
        let engine = engine.clone();
        std::thread::spawn(move || {
            let result = engine
                .run(workflow, params, RunOptions::default())
                .map_err(|e| e.to_string());
            let _ = tx.send(result);
        });
        self.start = Some(rx);
    }

    /// Asks the engine to cancel the running execution (on a thread: never blocks the UI).
    pub fn cancel(&mut self, engine: &Engine) {
        self.cancel_requested = true;
        if let Some(id) = self.execution_id.clone() {
            let engine = engine.clone();
            std::thread::spawn(move || {
                if let Err(e) = engine.cancel(&id) {
                    tracing::warn!("cancel {id}: {e}");
                }
            });
        }
    }

    /// Reads whatever arrived since the last frame.
    pub fn poll(&mut self, engine: Option<&Engine>) {
        if let Some(rx) = &self.start {
            match rx.try_recv() {
                Ok(Ok(id)) => {
                    self.start = None;
                    self.execution_id = Some(id);
                    if self.phase == Phase::Starting {
                        self.phase = Phase::Running;
                    }
                    for event in std::mem::take(&mut self.buffered) {
                        self.apply(event);
                    }
                    if self.cancel_requested
                        && let Some(engine) = engine
                    {
                        self.cancel(engine);
                    }
                }
                Ok(Err(message)) => {
                    self.start = None;
                    self.error = Some(message);
                    self.phase = Phase::Idle;
                    self.statuses.clear();
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => {
                    self.start = None;
                    self.error = Some("the engine thread ended without starting the run".into());
                    self.phase = Phase::Idle;
                }
            }
        }
        let mut incoming = Vec::new();
        if let Some(rx) = &self.events {
            while let Ok(event) = rx.try_recv() {
                incoming.push(event);
            }
        }
        for event in incoming {
            match (&self.execution_id, event.execution_id()) {
                (Some(mine), Some(theirs)) if mine == theirs => self.apply(event),
                (None, Some(_)) if self.phase == Phase::Starting => self.buffered.push(event),
                _ => {}
            }
        }
        if self.read_back_due
            && let Some(engine) = engine
        {
            self.read_back_due = false;
            self.read_back(engine);
        }
        if let Some(rx) = &self.history_rx
            && let Ok(result) = rx.try_recv()
        {
            self.history_rx = None;
            match result {
                Ok(h) => {
                    self.history = h;
                    self.history_error = None;
                }
                Err(e) => self.history_error = Some(e),
            }
        }
        if let Some(rx) = &self.past_rx
            && let Ok(result) = rx.try_recv()
        {
            self.past_rx = None;
            match result {
                Ok(snapshot) => self.show_snapshot(snapshot),
                Err(e) => self.error = Some(e),
            }
        }
        if let Some(rx) = &self.finished_rx
            && let Ok(result) = rx.try_recv()
        {
            self.finished_rx = None;
            match result {
                Ok(snapshot) if self.execution_id.as_deref() == Some(snapshot.id.as_str()) => {
                    self.adopt_record(&snapshot);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("reading the finished execution back: {e}"),
            }
        }
    }

    /// Replaces the live rows with the engine's record of the finished execution: whole
    /// results (events carry shortened ones) and the engine's own times.
    fn adopt_record(&mut self, snapshot: &ExecutionSnapshot) {
        self.rows = snapshot
            .step_runs
            .iter()
            .map(StepRunRow::from_record)
            .collect();
        self.execution_started_at = Some(snapshot.started_at);
        self.revision += 1;
    }

    /// Reads the finished execution back from the engine (on a thread).
    fn read_back(&mut self, engine: &Engine) {
        let Some(id) = self.execution_id.clone() else {
            return;
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        let engine = engine.clone();
        std::thread::spawn(move || {
            let _ = tx.send(engine.execution(&id).map_err(|e| e.to_string()));
        });
        self.finished_rx = Some(rx);
    }

    fn row_mut(&mut self, step: &str, iteration: u32) -> Option<&mut StepRunRow> {
        self.rows
            .iter_mut()
            .rev()
            .find(|r| r.step_id == step && r.iteration == iteration)
    }

    fn apply(&mut self, event: Event) {
        self.revision += 1;
        match event {
            Event::ExecutionStarted { at, .. } => {
                self.execution_started_at = Some(at);
                if self.phase == Phase::Starting {
                    self.phase = Phase::Running;
                }
            }
            Event::StepStarted {
                step_id,
                iteration,
                attempt,
                at,
                ..
            } => {
                let status = NodeStatus::Running {
                    fraction: None,
                    message: String::new(),
                    iteration,
                };
                self.statuses.insert(step_id.clone(), status.clone());
                self.rows.push(StepRunRow {
                    step_id,
                    iteration,
                    attempt,
                    status,
                    started: Some(Instant::now()),
                    started_at: Some(at),
                    finished_at: None,
                    duration_ms: None,
                    error: None,
                    summary: None,
                    result: None,
                    branch: None,
                });
            }
            Event::StepProgress {
                step_id,
                fraction,
                message,
                ..
            } => {
                let iteration = match self.statuses.get(&step_id) {
                    Some(NodeStatus::Running { iteration, .. }) => *iteration,
                    _ => 1,
                };
                let status = NodeStatus::Running {
                    fraction: Some(fraction.clamp(0.0, 1.0)),
                    message,
                    iteration,
                };
                if let Some(row) = self.row_mut(&step_id, iteration) {
                    row.status = status.clone();
                }
                self.statuses.insert(step_id, status);
            }
            Event::StepFinished {
                step_id,
                iteration,
                summary,
                duration_ms,
                cached,
                branch,
                ..
            } => {
                let status = if cached {
                    NodeStatus::Cached
                } else {
                    NodeStatus::Done
                };
                let took = Duration::from_secs_f64(duration_ms.max(0.0) / 1e3);
                if let Some(row) = self.row_mut(&step_id, iteration) {
                    row.status = status.clone();
                    row.duration_ms = Some(duration_ms);
                    row.finished_at = row.started_at.map(|s| s + took);
                    row.summary = Some(summary);
                    row.branch = branch;
                } else {
                    // Cached results finish without a start event.
                    let now = SystemTime::now();
                    self.rows.push(StepRunRow {
                        step_id: step_id.clone(),
                        iteration,
                        attempt: 1,
                        status: status.clone(),
                        started: None,
                        started_at: Some(now.checked_sub(took).unwrap_or(now)),
                        finished_at: Some(now),
                        duration_ms: Some(duration_ms),
                        error: None,
                        summary: Some(summary),
                        result: None,
                        branch,
                    });
                }
                self.statuses.insert(step_id, status);
            }
            Event::StepFailed {
                step_id,
                iteration,
                error,
                will_retry,
                ..
            } => {
                if let Some(row) = self.row_mut(&step_id, iteration) {
                    row.status = NodeStatus::Failed(error.clone());
                    row.error = Some(error.clone());
                    row.duration_ms = row.started.map(|s| s.elapsed().as_secs_f64() * 1e3);
                    row.finished_at = Some(SystemTime::now());
                }
                if !will_retry {
                    self.statuses.insert(step_id, NodeStatus::Failed(error));
                }
            }
            Event::ExecutionFinished { status, error, .. } => {
                self.phase = Phase::Finished(status);
                self.read_back_due = true;
                self.finished_after = self.started_at.map(|s| s.elapsed());
                if let Some(e) = error
                    && status != ExecutionStatus::Completed
                {
                    self.error = Some(e);
                }
                let end = if status == ExecutionStatus::Cancelled {
                    NodeStatus::Cancelled
                } else {
                    NodeStatus::Skipped
                };
                for s in self.statuses.values_mut() {
                    match s {
                        NodeStatus::Pending => *s = NodeStatus::Skipped,
                        NodeStatus::Running { .. } => *s = end.clone(),
                        _ => {}
                    }
                }
                let now = SystemTime::now();
                for row in &mut self.rows {
                    if matches!(row.status, NodeStatus::Running { .. }) {
                        row.status = end.clone();
                        row.finished_at.get_or_insert(now);
                    }
                }
            }
            Event::Log { level, message, .. } => self.log.push((level, message)),
            // The editor follows workflow versions elsewhere (the API link).
            Event::WorkflowSaved { .. } => {}
        }
    }

    /// Loads the engine's recorded executions (on a thread).
    pub fn refresh_history(&mut self, engine: &Engine) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let engine = engine.clone();
        std::thread::spawn(move || {
            let _ = tx.send(engine.history(50).map_err(|e| e.to_string()));
        });
        self.history_rx = Some(rx);
    }

    /// Loads one past execution into the run panel (on a thread); `latest` loads the most
    /// recent one in the history.
    pub fn open_past(&mut self, engine: &Engine, id: &str) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let engine = engine.clone();
        let id = id.to_string();
        std::thread::spawn(move || {
            let id = if id == LATEST {
                match engine.history(1) {
                    Ok(records) => match records.into_iter().next() {
                        Some(r) => r.id,
                        None => {
                            let _ = tx.send(Err("no execution has been recorded yet".into()));
                            return;
                        }
                    },
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                }
            } else {
                id
            };
            let _ = tx.send(engine.execution(&id).map_err(|e| e.to_string()));
        });
        self.past_rx = Some(rx);
    }

    /// Shows a recorded execution (a past one, or any snapshot) in the run panel and the
    /// timeline.
    pub fn show_snapshot(&mut self, snapshot: ExecutionSnapshot) {
        self.execution_id = Some(snapshot.id.clone());
        self.phase = Phase::Past(snapshot.status);
        self.error = snapshot.error.clone();
        self.parameters = snapshot.parameters.clone();
        self.log.clear();
        self.started_at = None;
        self.finished_after = snapshot.duration();
        self.finished_rx = None;
        self.read_back_due = false;
        self.statuses.clear();
        self.adopt_record(&snapshot);
        for row in &self.rows {
            self.statuses
                .insert(row.step_id.clone(), row.status.clone());
        }
    }

    fn elapsed(&self) -> Option<Duration> {
        self.finished_after
            .or_else(|| self.started_at.map(|s| s.elapsed()))
    }
}

/// What the run panel asks the app to do.
#[derive(Debug, Clone, PartialEq)]
pub enum RunPanelAction {
    Cancel,
    RefreshHistory,
    OpenPast(String),
    Select(String),
    /// Show the step's audio (its input and output) in the audio panel.
    ShowAudio(String),
    /// Show the result of this row (an index into `rows`) in the timeline's result view.
    ShowResult(usize),
}

fn phase_text(phase: &Phase) -> (String, Color32) {
    match phase {
        Phase::Idle => ("not run yet".into(), Color32::GRAY),
        Phase::Starting => ("starting…".into(), Color32::LIGHT_BLUE),
        Phase::Running => ("running".into(), Color32::LIGHT_BLUE),
        Phase::Finished(s) => (
            s.as_str().to_string(),
            if *s == ExecutionStatus::Completed {
                super::theme::TRUE
            } else {
                super::theme::ERROR
            },
        ),
        Phase::Past(s) => (format!("past run: {}", s.as_str()), Color32::GRAY),
    }
}

/// The live run panel: execution status, Cancel, step runs, log, history.
pub fn show(ui: &mut Ui, run: &RunState) -> Vec<RunPanelAction> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        ui.strong("Run");
        let (text, color) = phase_text(&run.phase);
        ui.label(RichText::new(text).color(color));
        if let Some(id) = &run.execution_id {
            ui.weak(short_id(id));
        }
        if let Some(e) = run.elapsed() {
            ui.weak(format!("{:.1} s", e.as_secs_f64()));
        }
        if run.is_active() && ui.button("Cancel").clicked() {
            actions.push(RunPanelAction::Cancel);
        }
        if ui
            .button("Refresh history")
            .on_hover_text("Load past executions from the engine's history")
            .clicked()
        {
            actions.push(RunPanelAction::RefreshHistory);
        }
    });
    if let Some(e) = &run.error {
        ui.label(RichText::new(e).color(super::theme::ERROR));
    }
    egui::ScrollArea::vertical()
        .id_salt("run-rows")
        .max_height(ui.available_height() - 30.0)
        .show(ui, |ui| {
            egui::Grid::new("run-grid")
                .striped(true)
                .num_columns(6)
                .show(ui, |ui| {
                    ui.strong("step");
                    ui.strong("iteration");
                    ui.strong("attempt");
                    ui.strong("status");
                    ui.strong("time");
                    ui.strong("result / error");
                    ui.end_row();
                    for (index, row) in run.rows.iter().enumerate() {
                        if ui.link(&row.step_id).clicked() {
                            actions.push(RunPanelAction::Select(row.step_id.clone()));
                        }
                        ui.label(row.iteration.to_string());
                        ui.label(row.attempt.to_string());
                        ui.horizontal(|ui| {
                            super::theme::status_badge(ui, &row.status);
                        });
                        let ms = row.duration_ms.or_else(|| {
                            matches!(row.status, NodeStatus::Running { .. })
                                .then(|| row.started.map(|s| s.elapsed().as_secs_f64() * 1e3))
                                .flatten()
                        });
                        ui.label(ms.map(|m| format!("{m:.0} ms")).unwrap_or_default());
                        if let Some(e) = &row.error {
                            ui.label(RichText::new(e).color(super::theme::ERROR));
                        } else if let Some(summary) = &row.summary {
                            let has_audio = !super::audio::result_audio(summary).is_empty();
                            let mut text = summary.to_string();
                            if let Some(b) = row.branch {
                                text = format!("→ {b}  {text}");
                            }
                            if text.chars().count() > 90 {
                                text = text.chars().take(90).collect::<String>() + "…";
                            }
                            ui.horizontal(|ui| {
                                if ui
                                    .small_button("📊 view")
                                    .on_hover_text("Show this result drawn, next to the timeline")
                                    .clicked()
                                {
                                    actions.push(RunPanelAction::ShowResult(index));
                                }
                                if has_audio
                                    && ui
                                        .small_button("🔊 waveform")
                                        .on_hover_text("Show this step's audio")
                                        .clicked()
                                {
                                    actions.push(RunPanelAction::ShowAudio(row.step_id.clone()));
                                }
                                ui.label(RichText::new(text).monospace().small())
                                    .on_hover_text(
                                        serde_json::to_string_pretty(summary).unwrap_or_default(),
                                    );
                            });
                        } else {
                            ui.label("");
                        }
                        ui.end_row();
                    }
                });
            if !run.log.is_empty() {
                egui::CollapsingHeader::new(format!("Log ({})", run.log.len()))
                    .id_salt("run-log")
                    .show(ui, |ui| {
                        for (level, line) in &run.log {
                            let color = match level {
                                LogLevel::Info => Color32::GRAY,
                                LogLevel::Warning => super::theme::WARNING,
                                LogLevel::Error => super::theme::ERROR,
                            };
                            ui.label(RichText::new(line).color(color).small());
                        }
                    });
            }
            egui::CollapsingHeader::new("Past executions")
                .id_salt("run-history")
                .show(ui, |ui| {
                    if let Some(e) = &run.history_error {
                        ui.label(RichText::new(e).color(super::theme::ERROR));
                    }
                    for record in &run.history {
                        let when = chrono::DateTime::<chrono::Local>::from(record.started_at)
                            .format("%Y-%m-%d %H:%M:%S");
                        let text = format!(
                            "{when}  {}  {}  {}",
                            record.workflow_name,
                            record.status.as_str(),
                            short_id(&record.id)
                        );
                        if ui.link(text).clicked() {
                            actions.push(RunPanelAction::OpenPast(record.id.clone()));
                        }
                    }
                    if run.history.is_empty() {
                        ui.weak("No recorded executions loaded (press Refresh history).");
                    }
                });
        });
    actions
}

fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}
