//! Optimisation from results: a study runs a workflow again and again with different values
//! of its tunable run parameters, scores each run by a figure of its results, and proposes
//! the next values from what it has seen — a seeded random or grid start, then a
//! tree-structured Parzen estimator. Trials are ordinary executions started through the
//! engine, so they run in parallel under the scheduler's limit, reuse cached steps, and are
//! recorded in history; every trial is also stored with its study, so a study survives a
//! restart and can be continued.

mod rng;
pub mod space;
pub mod tpe;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value;

use self::rng::Rng;
use self::space::SearchSpace;
use self::tpe::Tpe;
use super::operation::CancellationToken;
use super::resolve::{lookup, parse_result_ref};
use super::store::{StoreError, StudyRecord, TrialRecord, TrialState};
use super::{Engine, EngineError, Event, ExecutionSnapshot, ExecutionStatus, RunOptions};
use crate::workflow::{Direction, Optimization, ParamMap, Tunable};

/// Trials a study runs when neither the caller nor the workflow names a budget.
pub const DEFAULT_BUDGET: u32 = 20;

#[derive(Debug, thiserror::Error)]
pub enum OptimizeError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no study `{0}`")]
    UnknownStudy(String),
    #[error("workflow `{workflow}` cannot be optimised:\n{}", problems.join("\n"))]
    Invalid {
        workflow: String,
        problems: Vec<String>,
    },
}

/// What a new study tunes, on top of the workflow's own `optimization` section.
#[derive(Debug, Clone, Default)]
pub struct StudyDefinition {
    /// Added to, or replacing, the section's tunables.
    pub tune: IndexMap<String, Tunable>,
    /// Replaces the section's objective.
    pub objective: Option<String>,
    pub direction: Option<Direction>,
    /// Run parameters every trial shares; naming one the section tunes pins it.
    pub fixed: ParamMap,
    /// Seeds the start design and the sampler (default: from the clock).
    pub seed: Option<u64>,
}

/// How the first trials are chosen, before there is anything to learn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartDesign {
    #[default]
    Random,
    /// A full-factorial grid in seeded random order.
    Grid,
}

/// How one call of [`Study::run`] proceeds.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Trials to start in this call (default: the workflow's budget, else 20).
    pub budget: Option<u32>,
    /// Trials in flight at once (each is an execution; the scheduler's limit still holds).
    pub parallel: usize,
    /// Trials of the start design before the estimator takes over (default: 2 per tuned
    /// parameter plus one, between 3 and 10).
    pub startup: Option<u32>,
    pub start: StartDesign,
    /// Stop after this many finished trials in a row without improvement (default: the
    /// workflow's `patience`; none: use the whole budget).
    pub patience: Option<u32>,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            budget: None,
            parallel: 2,
            startup: None,
            start: StartDesign::Random,
            patience: None,
        }
    }
}

/// Why [`Study::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum StopReason {
    /// Every trial of the budget ran.
    Budget,
    /// `patience` finished trials in a row did not improve on the best.
    NoImprovement {
        trials: u32,
    },
    Cancelled,
}

/// What a study reports as it goes.
#[derive(Debug, Clone)]
pub enum StudyEvent {
    TrialStarted(TrialRecord),
    TrialFinished(TrialRecord),
}

/// A study of one workflow: its record, its trials so far and its sampler.
pub struct Study {
    engine: Engine,
    record: StudyRecord,
    space: SearchSpace,
    trials: Vec<TrialRecord>,
}

impl Study {
    /// Starts a new study of a registered workflow and records it.
    pub fn create(
        engine: &Engine,
        workflow_id: &str,
        definition: StudyDefinition,
    ) -> Result<Study, OptimizeError> {
        let workflow = engine
            .workflow(workflow_id)
            .ok_or_else(|| EngineError::UnknownWorkflow(workflow_id.to_string()))?;
        let mut optimization = workflow.optimization.clone().unwrap_or(Optimization {
            objective: String::new(),
            direction: Direction::Maximize,
            parameters: IndexMap::new(),
            budget: None,
            patience: None,
        });
        // A value fixed by the caller pins a parameter the section would tune.
        for name in definition.fixed.keys() {
            optimization.parameters.shift_remove(name);
        }
        let conflicts: Vec<String> = definition
            .tune
            .keys()
            .filter(|name| definition.fixed.contains_key(*name))
            .map(|name| format!("  parameters.{name}: `{name}` is both tuned and fixed"))
            .collect();
        optimization.parameters.extend(definition.tune);
        if let Some(objective) = definition.objective {
            optimization.objective = objective;
        }
        if let Some(direction) = definition.direction {
            optimization.direction = direction;
        }
        // Checked as part of the workflow, so the problems read as in any other report.
        let mut candidate = (*workflow).clone();
        candidate.optimization = Some(optimization.clone());
        let mut problems: Vec<String> = engine
            .validate(&candidate)
            .errors()
            .filter(|p| p.field.starts_with("optimization"))
            .map(|p| format!("  {}: {}", p.field, p.message))
            .collect();
        if optimization.objective.is_empty() {
            problems.push(
                "  optimization.objective: no objective: name one (`<step>.result.<path>`)".into(),
            );
        }
        problems.extend(conflicts);
        if !problems.is_empty() {
            return Err(OptimizeError::Invalid {
                workflow: workflow_id.to_string(),
                problems,
            });
        }
        let seed = definition.seed.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        let record = StudyRecord {
            id: uuid::Uuid::new_v4().to_string(),
            workflow_id: workflow_id.to_string(),
            optimization,
            fixed: Value::Object(definition.fixed.into_iter().collect()),
            seed,
            created_at: SystemTime::now(),
        };
        engine.store().save_study(&record)?;
        Ok(Study {
            engine: engine.clone(),
            space: SearchSpace::new(&record.optimization.parameters),
            record,
            trials: Vec::new(),
        })
    }

    /// Reopens a recorded study to continue it. Trials that were running when their process
    /// ended are marked interrupted.
    pub fn open(engine: &Engine, study_id: &str) -> Result<Study, OptimizeError> {
        let store = engine.store();
        let record = store
            .study(study_id)?
            .ok_or_else(|| OptimizeError::UnknownStudy(study_id.to_string()))?;
        if engine.workflow(&record.workflow_id).is_none() {
            engine.load_saved_workflows()?;
        }
        let mut trials = store.trials(study_id)?;
        for trial in trials.iter_mut().filter(|t| t.state == TrialState::Running) {
            trial.state = TrialState::Interrupted;
            trial.error = Some("the process running it ended".into());
            store.save_trial(trial)?;
        }
        Ok(Study {
            engine: engine.clone(),
            space: SearchSpace::new(&record.optimization.parameters),
            record,
            trials,
        })
    }

    pub fn record(&self) -> &StudyRecord {
        &self.record
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn trials(&self) -> &[TrialRecord] {
        &self.trials
    }

    /// The completed trial with the best score.
    pub fn best(&self) -> Option<&TrialRecord> {
        best_of(&self.trials, self.record.direction())
    }

    /// Runs trials until the budget is spent, the score stops improving, or `cancel` is
    /// set (running trials are then cancelled and recorded so). `on_event` hears of every
    /// trial as it starts and finishes.
    pub fn run(
        &mut self,
        settings: &RunSettings,
        cancel: &CancellationToken,
        mut on_event: impl FnMut(&StudyEvent),
    ) -> Result<StopReason, OptimizeError> {
        let opt = &self.record.optimization;
        let budget = settings.budget.or(opt.budget).unwrap_or(DEFAULT_BUDGET);
        let patience = settings.patience.or(opt.patience);
        let direction = opt.direction;
        let dims = self.space.dimensions.len() as u32;
        let startup = settings.startup.unwrap_or((2 * dims + 1).clamp(3, 10)) as usize;
        let parallel = settings.parallel.max(1);
        let mut design_rng = Rng::new(self.record.seed);
        let start_points = match settings.start {
            StartDesign::Grid => self.space.grid_points(startup, &mut design_rng),
            StartDesign::Random => (0..startup)
                .map(|_| self.space.random_point(&mut design_rng))
                .collect(),
        };
        // Continuing a study must not replay the proposals it made before.
        let mut rng = Rng::new(self.record.seed ^ ((self.trials.len() as u64 + 1) << 32));
        let events = self.engine.subscribe();
        let mut in_flight: HashMap<String, usize> = HashMap::new();
        let mut started = 0u32;
        let mut since_improvement = 0u32;
        let mut best = self.best().and_then(|t| t.score);
        let mut stop: Option<StopReason> = None;
        let mut last_poll = Instant::now();
        loop {
            if cancel.is_cancelled() && stop.is_none() {
                stop = Some(StopReason::Cancelled);
                for execution in in_flight.keys() {
                    let _ = self.engine.cancel(execution);
                }
            }
            while stop.is_none()
                && !cancel.is_cancelled()
                && started < budget
                && in_flight.len() < parallel
            {
                started += 1;
                let point = match start_points.get(self.trials.len()) {
                    Some(p) => p.clone(),
                    None => Tpe::default().propose(
                        &self.space,
                        &self.observations(in_flight.values().copied()),
                        direction,
                        &mut rng,
                    ),
                };
                let index = self.start_trial(&point)?;
                let trial = &self.trials[index];
                on_event(&StudyEvent::TrialStarted(trial.clone()));
                match trial.execution_id.clone() {
                    Some(execution) => {
                        in_flight.insert(execution, index);
                    }
                    None => {
                        on_event(&StudyEvent::TrialFinished(trial.clone()));
                        since_improvement += 1;
                    }
                }
            }
            if stop.is_none() && started >= budget && in_flight.is_empty() {
                stop = Some(StopReason::Budget);
            }
            if in_flight.is_empty() {
                break;
            }
            let mut finished: Vec<String> = Vec::new();
            match events.recv_timeout(Duration::from_millis(100)) {
                Ok(Event::ExecutionFinished { execution_id, .. })
                    if in_flight.contains_key(&execution_id) =>
                {
                    finished.push(execution_id);
                }
                _ => {}
            }
            // Events are the fast path; a slow poll makes sure no trial waits forever.
            if last_poll.elapsed() > Duration::from_secs(1) {
                last_poll = Instant::now();
                for execution in in_flight.keys() {
                    if self
                        .engine
                        .execution(execution)
                        .is_ok_and(|s| s.status.is_finished())
                        && !finished.contains(execution)
                    {
                        finished.push(execution.clone());
                    }
                }
            }
            for execution in finished {
                let Some(index) = in_flight.remove(&execution) else {
                    continue;
                };
                let snapshot = self.engine.wait(&execution, Some(Duration::from_secs(5)))?;
                self.finish_trial(index, &snapshot)?;
                let trial = &self.trials[index];
                on_event(&StudyEvent::TrialFinished(trial.clone()));
                match (trial.score, best) {
                    (Some(score), Some(b)) if !direction.better(score, b) => since_improvement += 1,
                    (Some(score), _) => {
                        best = Some(score);
                        since_improvement = 0;
                    }
                    (None, _) => since_improvement += 1,
                }
                if stop.is_none()
                    && let Some(p) = patience
                    && since_improvement >= p
                {
                    stop = Some(StopReason::NoImprovement { trials: p });
                }
            }
        }
        Ok(stop.unwrap_or(StopReason::Budget))
    }

    /// Points and scores of the completed trials, with trials still running counted at the
    /// worst score seen (the "constant liar"), so parallel proposals spread out instead of
    /// piling onto one spot.
    fn observations(&self, running: impl Iterator<Item = usize>) -> Vec<(Vec<f64>, f64)> {
        let mut observations: Vec<(Vec<f64>, f64)> = self
            .trials
            .iter()
            .filter(|t| t.state == TrialState::Completed)
            .filter_map(|t| Some((self.space.point_of(&t.params)?, t.score?)))
            .collect();
        let worst = observations.iter().map(|o| o.1).reduce(|a, b| {
            if self.record.direction().better(a, b) {
                b
            } else {
                a
            }
        });
        if let Some(worst) = worst {
            for index in running {
                if let Some(point) = self.space.point_of(&self.trials[index].params) {
                    observations.push((point, worst));
                }
            }
        }
        observations
    }

    /// Records a new trial at `point` and starts its execution; a trial the engine refuses
    /// is recorded as failed. Returns its index.
    fn start_trial(&mut self, point: &[f64]) -> Result<usize, OptimizeError> {
        let tuned = self.space.params_at(point);
        let mut params: ParamMap = self
            .record
            .fixed
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        params.extend(tuned.clone());
        let number = self.trials.last().map_or(1, |t| t.number + 1);
        let mut trial = TrialRecord {
            study_id: self.record.id.clone(),
            number,
            state: TrialState::Running,
            params: Value::Object(tuned.into_iter().collect()),
            score: None,
            execution_id: None,
            error: None,
            started_at: SystemTime::now(),
            finished_at: None,
        };
        match self
            .engine
            .start_execution(&self.record.workflow_id, params, RunOptions::default())
        {
            Ok(execution) => trial.execution_id = Some(execution),
            Err(e) => {
                trial.state = TrialState::Failed;
                trial.error = Some(e.to_string());
                trial.finished_at = Some(SystemTime::now());
            }
        }
        self.engine.store().save_trial(&trial)?;
        self.trials.push(trial);
        Ok(self.trials.len() - 1)
    }

    /// Scores a finished trial from its execution's results and records it.
    fn finish_trial(
        &mut self,
        index: usize,
        snapshot: &ExecutionSnapshot,
    ) -> Result<(), OptimizeError> {
        let objective = self.record.optimization.objective.clone();
        let trial = &mut self.trials[index];
        trial.finished_at = snapshot.finished_at.or(Some(SystemTime::now()));
        match snapshot.status {
            // A loop that ran out of iterations still produced a result worth scoring.
            ExecutionStatus::Completed | ExecutionStatus::LoopLimit => {
                match objective_value(&objective, snapshot) {
                    Ok(score) => {
                        trial.state = TrialState::Completed;
                        trial.score = Some(score);
                    }
                    Err(e) => {
                        trial.state = TrialState::Failed;
                        trial.error = Some(e);
                    }
                }
            }
            ExecutionStatus::Cancelled => {
                trial.state = TrialState::Cancelled;
                trial.error = snapshot.error.clone();
            }
            _ => {
                trial.state = TrialState::Failed;
                trial.error = Some(
                    snapshot
                        .error
                        .clone()
                        .unwrap_or_else(|| format!("the execution ended {}", snapshot.status)),
                );
            }
        }
        self.engine.store().save_trial(trial)?;
        Ok(())
    }

    /// Stores the workflow with the best trial's values as its parameter defaults, as a new
    /// version. Returns the version and the trial, or `None` when no trial has a score.
    pub fn apply_best(&self, who: &str) -> Result<Option<(u32, TrialRecord)>, OptimizeError> {
        let Some(best) = self.best().cloned() else {
            return Ok(None);
        };
        let workflow = self
            .engine
            .workflow(&self.record.workflow_id)
            .ok_or_else(|| EngineError::UnknownWorkflow(self.record.workflow_id.clone()))?;
        let mut workflow = (*workflow).clone();
        if let Value::Object(values) = &best.params {
            for (name, value) in values {
                workflow.parameters.insert(name.clone(), value.clone());
            }
        }
        workflow.metadata.updated_at = chrono::Utc::now();
        let note = format!(
            "parameters from optimisation study {}, trial {} (score {})",
            self.record.id,
            best.number,
            best.score.map_or_else(String::new, |s| format!("{s:.4}"))
        );
        let (_, version) = self.engine.register_noted(workflow, who, Some(&note))?;
        Ok(Some((version, best)))
    }
}

/// The completed trial with the best score.
pub fn best_of(trials: &[TrialRecord], direction: Direction) -> Option<&TrialRecord> {
    trials
        .iter()
        .filter(|t| t.state == TrialState::Completed)
        .filter(|t| t.score.is_some_and(f64::is_finite))
        .reduce(|a, b| match (a.score, b.score) {
            (Some(sa), Some(sb)) if direction.better(sb, sa) => b,
            _ => a,
        })
}

/// The objective's value in an execution's results.
fn objective_value(objective: &str, snapshot: &ExecutionSnapshot) -> Result<f64, String> {
    let r = parse_result_ref(objective)?;
    let result = snapshot
        .results
        .get(r.step)
        .ok_or_else(|| format!("objective `{objective}`: step `{}` did not run", r.step))?;
    let value = lookup(result, r.path).ok_or_else(|| {
        format!(
            "objective `{objective}`: the result of `{}` has no `{}`",
            r.step, r.path
        )
    })?;
    match value {
        Value::Number(n) => n
            .as_f64()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("objective `{objective}` is not a finite number")),
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        other => Err(format!(
            "objective `{objective}` is {}, not a number",
            super::operation::json_kind(other)
        )),
    }
}
