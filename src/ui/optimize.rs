//! The optimisation panel: runs a study of the open workflow on a background thread and
//! shows its trials as they finish — a table and a score-per-trial plot with the best so
//! far — with cancel, past studies of the workflow, and "apply best" as a new version.

use crossbeam_channel::{Receiver, TryRecvError};
use egui::{Color32, RichText, Ui};
use serde_json::Value;

use crate::engine::Engine;
use crate::engine::operation::CancellationToken;
use crate::engine::optimize::{
    RunSettings, StartDesign, StopReason, Study, StudyDefinition, StudyEvent, best_of,
};
use crate::engine::store::{StudyRecord, TrialRecord, TrialState};
use crate::workflow::{ParamMap, Workflow};

/// What the panel asks of the editor.
#[derive(Debug, Clone, PartialEq)]
pub enum OptimizeAction {
    Start,
    Cancel,
    ApplyBest,
    /// Show a trial's execution in the run panel.
    OpenExecution(String),
    LoadStudy(String),
    RefreshStudies,
}

/// A recorded study and its trials, read on a thread.
type LoadedStudy = (StudyRecord, Vec<TrialRecord>);

enum Message {
    Created(StudyRecord),
    Trial(TrialRecord),
    Finished(Result<StopReason, String>),
}

/// A study on screen: live, or reopened from the database.
#[derive(Default)]
pub struct StudyView {
    pub record: Option<StudyRecord>,
    pub trials: Vec<TrialRecord>,
    pub stop: Option<StopReason>,
    /// The workflow version the best values were stored as.
    pub applied: Option<u32>,
}

impl StudyView {
    pub fn best(&self) -> Option<&TrialRecord> {
        let direction = self.record.as_ref()?.direction();
        best_of(&self.trials, direction)
    }

    fn upsert(&mut self, trial: TrialRecord) {
        match self.trials.iter_mut().find(|t| t.number == trial.number) {
            Some(t) => *t = trial,
            None => {
                self.trials.push(trial);
                self.trials.sort_by_key(|t| t.number);
            }
        }
    }
}

pub struct OptimizePanel {
    pub budget: u32,
    pub parallel: usize,
    /// Empty: the workflow's own patience (if any).
    pub patience: String,
    /// Empty: from the clock.
    pub seed: String,
    pub grid: bool,
    pub view: StudyView,
    pub studies: Vec<StudyRecord>,
    pub error: Option<String>,
    /// The workflow whose studies `studies` lists.
    listed_for: Option<String>,
    job: Option<(Receiver<Message>, CancellationToken)>,
    studies_rx: Option<Receiver<Result<Vec<StudyRecord>, String>>>,
    loading_rx: Option<Receiver<Result<LoadedStudy, String>>>,
}

impl Default for OptimizePanel {
    fn default() -> Self {
        OptimizePanel {
            budget: 20,
            parallel: 2,
            patience: String::new(),
            seed: String::new(),
            grid: false,
            view: StudyView::default(),
            studies: Vec::new(),
            error: None,
            listed_for: None,
            job: None,
            studies_rx: None,
            loading_rx: None,
        }
    }
}

impl OptimizePanel {
    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    /// Whether something is awaited (the UI should keep repainting).
    pub fn is_busy(&self) -> bool {
        self.job.is_some() || self.studies_rx.is_some() || self.loading_rx.is_some()
    }

    /// Starts a study of `workflow` with `fixed` run parameters (registration, the study and
    /// its trials all run on a thread).
    pub fn start(&mut self, engine: &Engine, workflow: Workflow, fixed: ParamMap) {
        if self.is_running() {
            return;
        }
        let settings = RunSettings {
            budget: Some(self.budget.max(1)),
            parallel: self.parallel.max(1),
            startup: None,
            start: if self.grid {
                StartDesign::Grid
            } else {
                StartDesign::Random
            },
            patience: self.patience.trim().parse().ok(),
        };
        let definition = StudyDefinition {
            fixed,
            seed: self.seed.trim().parse().ok(),
            ..Default::default()
        };
        self.view = StudyView::default();
        self.error = None;
        let (tx, rx) = crossbeam_channel::unbounded();
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let engine = engine.clone();
        std::thread::spawn(move || {
            let id = workflow.id.clone();
            let outcome = (|| -> Result<StopReason, String> {
                engine.register(workflow).map_err(|e| e.to_string())?;
                let mut study =
                    Study::create(&engine, &id, definition).map_err(|e| e.to_string())?;
                let _ = tx.send(Message::Created(study.record().clone()));
                study
                    .run(&settings, &token, |event| {
                        let trial = match event {
                            StudyEvent::TrialStarted(t) | StudyEvent::TrialFinished(t) => t,
                        };
                        let _ = tx.send(Message::Trial(trial.clone()));
                    })
                    .map_err(|e| e.to_string())
            })();
            let _ = tx.send(Message::Finished(outcome));
        });
        self.job = Some((rx, cancel));
    }

    pub fn cancel(&mut self) {
        if let Some((_, token)) = &self.job {
            token.cancel();
        }
    }

    /// Lists the studies of workflow `id` the first time the panel shows it, and then
    /// opens the newest, so the panel opens on the last study.
    pub fn ensure_listed(&mut self, engine: &Engine, id: &str) {
        if self.listed_for.as_deref() != Some(id) && !self.is_running() {
            self.view = StudyView::default();
            self.studies.clear();
            self.refresh_studies(engine, id);
        }
    }

    /// Lists the recorded studies of workflow `id`.
    pub fn refresh_studies(&mut self, engine: &Engine, id: &str) {
        self.listed_for = Some(id.to_string());
        let (tx, rx) = crossbeam_channel::bounded(1);
        let engine = engine.clone();
        let id = id.to_string();
        std::thread::spawn(move || {
            let _ = tx.send(engine.store().studies(Some(&id)).map_err(|e| e.to_string()));
        });
        self.studies_rx = Some(rx);
    }

    /// Shows a recorded study.
    pub fn load_study(&mut self, engine: &Engine, study_id: &str) {
        if self.is_running() {
            return;
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let engine = engine.clone();
        let id = study_id.to_string();
        std::thread::spawn(move || {
            let store = engine.store();
            let loaded = (|| {
                let record = store
                    .study(&id)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("no study `{id}`"))?;
                let trials = store.trials(&id).map_err(|e| e.to_string())?;
                Ok((record, trials))
            })();
            let _ = tx.send(loaded);
        });
        self.loading_rx = Some(rx);
    }

    /// Reads whatever arrived since the last frame.
    pub fn poll(&mut self, engine: Option<&Engine>) {
        if let Some((rx, _)) = &self.job {
            loop {
                match rx.try_recv() {
                    Ok(Message::Created(record)) => self.view.record = Some(record),
                    Ok(Message::Trial(trial)) => self.view.upsert(trial),
                    Ok(Message::Finished(outcome)) => {
                        match outcome {
                            Ok(stop) => self.view.stop = Some(stop),
                            Err(e) => self.error = Some(e),
                        }
                        self.job = None;
                        break;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.job = None;
                        break;
                    }
                }
            }
        }
        if let Some(rx) = &self.studies_rx
            && let Ok(result) = rx.try_recv()
        {
            self.studies_rx = None;
            match result {
                Ok(studies) => {
                    self.studies = studies;
                    if self.view.record.is_none()
                        && let (Some(engine), Some(newest)) = (engine, self.studies.first())
                    {
                        let id = newest.id.clone();
                        self.load_study(engine, &id);
                    }
                }
                Err(e) => self.error = Some(e),
            }
        }
        if let Some(rx) = &self.loading_rx
            && let Ok(result) = rx.try_recv()
        {
            match result {
                Ok((record, trials)) => {
                    self.view = StudyView {
                        record: Some(record),
                        trials,
                        stop: None,
                        applied: None,
                    };
                }
                Err(e) => self.error = Some(e),
            }
            self.loading_rx = None;
        }
    }
}

/// The run parameters a study does not tune (they need values, as in the run dialog).
pub fn untuned_parameters(workflow: &Workflow) -> Vec<String> {
    workflow
        .parameters
        .keys()
        .filter(|k| {
            workflow
                .optimization
                .as_ref()
                .is_none_or(|o| !o.parameters.contains_key(*k))
        })
        .cloned()
        .collect()
}

fn format_value(v: &Value) -> String {
    match v {
        Value::Number(n) if !n.is_i64() => n.as_f64().map_or(n.to_string(), |f| format!("{f:.4}")),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn state_color(state: TrialState) -> Color32 {
    match state {
        TrialState::Completed => super::theme::TRUE,
        TrialState::Running => Color32::LIGHT_BLUE,
        TrialState::Failed | TrialState::Interrupted => super::theme::ERROR,
        TrialState::Cancelled => Color32::GRAY,
    }
}

/// Draws the panel for `workflow`; `fixed` holds the typed values of the parameters it does
/// not tune.
pub fn show(
    ui: &mut Ui,
    panel: &mut OptimizePanel,
    workflow: &Workflow,
    fixed: &mut [(String, String)],
) -> Vec<OptimizeAction> {
    let mut actions = Vec::new();
    let Some(opt) = &workflow.optimization else {
        ui.label(
            "This workflow has no optimization section. Add one (objective and tunable \
             parameters, see the README) to tune it here or with `grym-synth optimize`.",
        );
        return actions;
    };
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(format!("{} {}", opt.direction.as_str(), opt.objective)).strong());
        ui.label("tuning");
        for (name, tunable) in &opt.parameters {
            ui.label(RichText::new(format!("{name} {}", describe(tunable))).monospace());
        }
    });
    ui.horizontal_wrapped(|ui| {
        let running = panel.is_running();
        ui.add_enabled_ui(!running, |ui| {
            ui.label("Budget");
            ui.add(egui::DragValue::new(&mut panel.budget).range(1..=10_000));
            ui.label("Parallel");
            ui.add(egui::DragValue::new(&mut panel.parallel).range(1..=64));
            ui.label("Patience");
            ui.add(egui::TextEdit::singleline(&mut panel.patience).desired_width(40.0))
                .on_hover_text(
                    "stop after this many trials without improvement (empty: the workflow's)",
                );
            ui.label("Seed");
            ui.add(egui::TextEdit::singleline(&mut panel.seed).desired_width(80.0));
            ui.checkbox(&mut panel.grid, "Grid start");
        });
        if running {
            if ui.button("Cancel study").clicked() {
                actions.push(OptimizeAction::Cancel);
            }
            ui.spinner();
        } else if ui.button("▶ Optimise").clicked() {
            actions.push(OptimizeAction::Start);
        }
        let can_apply = !running && panel.view.best().is_some() && panel.view.applied.is_none();
        if ui
            .add_enabled(can_apply, egui::Button::new("Apply best"))
            .on_hover_text(
                "store the workflow with the best trial's values as its defaults, as a new version",
            )
            .clicked()
        {
            actions.push(OptimizeAction::ApplyBest);
        }
        ui.menu_button("Past studies", |ui| {
            if ui.button("Refresh").clicked() {
                actions.push(OptimizeAction::RefreshStudies);
            }
            for s in &panel.studies {
                let when = crate::engine::timefmt::to_rfc3339(s.created_at);
                let label = format!(
                    "{} {}",
                    when.get(..16).unwrap_or(&when).replace('T', " "),
                    s.id.get(..8).unwrap_or(&s.id)
                );
                if ui.button(label).clicked() {
                    actions.push(OptimizeAction::LoadStudy(s.id.clone()));
                    ui.close();
                }
            }
        });
    });
    if !fixed.is_empty() {
        ui.horizontal_wrapped(|ui| {
            ui.label("Fixed:");
            for (name, text) in fixed.iter_mut() {
                let label = ui.label(name.as_str());
                ui.add(egui::TextEdit::singleline(text).desired_width(160.0))
                    .labelled_by(label.id);
            }
        });
    }
    if let Some(e) = &panel.error {
        ui.colored_label(super::theme::ERROR, e);
    }
    let view = &panel.view;
    let best = view.best().map(|t| t.number);
    ui.horizontal(|ui| {
        if let Some(r) = &view.record {
            ui.label(RichText::new(format!("study {}", r.id)).small());
        }
        let done = view
            .trials
            .iter()
            .filter(|t| t.state != TrialState::Running)
            .count();
        ui.label(format!("{done} of {} trials finished", view.trials.len()));
        if let Some(b) = view.best() {
            ui.label(
                RichText::new(format!(
                    "best: trial {} = {:.4}",
                    b.number,
                    b.score.unwrap_or(f64::NAN)
                ))
                .color(super::theme::TRUE),
            );
        }
        match view.stop {
            Some(StopReason::Budget) => {
                ui.label("budget spent");
            }
            Some(StopReason::NoImprovement { trials }) => {
                ui.label(format!("stopped: no improvement in {trials} trials"));
            }
            Some(StopReason::Cancelled) => {
                ui.label("cancelled");
            }
            None => {}
        }
        if let Some(v) = view.applied {
            ui.label(format!("applied as version {v}"));
        }
    });
    ui.columns(2, |cols| {
        score_plot(&mut cols[0], view);
        trials_table(&mut cols[1], view, best, &mut actions);
    });
    actions
}

fn describe(tunable: &crate::workflow::Tunable) -> String {
    use crate::workflow::Tunable;
    match tunable {
        Tunable::Range { min, max, log } => {
            format!("{min}..{max}{}", if *log { " (log)" } else { "" })
        }
        Tunable::Integer { min, max } => format!("{min}..{max} (int)"),
        Tunable::Choice(values) => values
            .iter()
            .map(format_value)
            .collect::<Vec<_>>()
            .join("|"),
    }
}

/// Score per trial (points) and the best so far (a step line).
fn score_plot(ui: &mut Ui, view: &StudyView) {
    use egui_plot::{Legend, Line, Plot, PlotPoints, Points};
    let Some(direction) = view.record.as_ref().map(StudyRecord::direction) else {
        ui.label("No study yet.");
        return;
    };
    let scored: Vec<[f64; 2]> = view
        .trials
        .iter()
        .filter_map(|t| Some([t.number as f64, t.score?]))
        .collect();
    let mut best_line = Vec::with_capacity(scored.len());
    let mut best: Option<f64> = None;
    for &[n, s] in &scored {
        if best.is_none_or(|b| direction.better(s, b)) {
            best = Some(s);
        }
        if let Some(b) = best {
            best_line.push([n, b]);
        }
    }
    Plot::new("optimisation-scores")
        .legend(Legend::default())
        .height(ui.available_height().max(160.0))
        .x_axis_label("trial")
        .y_axis_label("score")
        .allow_scroll(false)
        .show(ui, |plot| {
            plot.points(
                Points::new("score", PlotPoints::from(scored))
                    .radius(3.5)
                    .color(Color32::LIGHT_BLUE),
            );
            plot.line(
                Line::new("best so far", PlotPoints::from(best_line)).color(super::theme::TRUE),
            );
        });
}

fn trials_table(
    ui: &mut Ui,
    view: &StudyView,
    best: Option<u32>,
    actions: &mut Vec<OptimizeAction>,
) {
    let names: Vec<String> = view
        .record
        .as_ref()
        .map(|r| r.optimization.parameters.keys().cloned().collect())
        .unwrap_or_default();
    egui::ScrollArea::both()
        .id_salt("optimisation-trials")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            egui::Grid::new("optimisation-trials-grid")
                .striped(true)
                .num_columns(3 + names.len())
                .show(ui, |ui| {
                    ui.strong("trial");
                    ui.strong("state");
                    ui.strong("score");
                    for n in &names {
                        ui.strong(n);
                    }
                    ui.end_row();
                    for t in &view.trials {
                        let label = if Some(t.number) == best {
                            RichText::new(format!("★ {}", t.number)).color(super::theme::TRUE)
                        } else {
                            RichText::new(t.number.to_string())
                        };
                        let response = ui.add(egui::Button::new(label).frame(false));
                        let response = match &t.error {
                            Some(e) => response.on_hover_text(e),
                            None => response.on_hover_text("show this trial's execution"),
                        };
                        if response.clicked()
                            && let Some(id) = &t.execution_id
                        {
                            actions.push(OptimizeAction::OpenExecution(id.clone()));
                        }
                        ui.colored_label(state_color(t.state), t.state.as_str());
                        ui.label(
                            t.score
                                .map_or_else(|| "—".to_string(), |s| format!("{s:.4}")),
                        );
                        for n in &names {
                            ui.label(t.params.get(n).map(format_value).unwrap_or_default());
                        }
                        ui.end_row();
                    }
                });
        });
}
