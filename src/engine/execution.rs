//! One run of a workflow (the plan's `WorkflowExecution`): its state while it runs and the
//! snapshot callers see.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::operation::CancellationToken;
use super::scheduler::TaskId;
use super::store::StepRunRecord;
use crate::workflow::{ParamMap, Workflow};

/// Where an execution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    Running,
    /// Reached a step with no next step.
    Completed,
    /// A step failed (after its retries) or a condition could not be evaluated.
    Failed,
    Cancelled,
    /// A step reached its `maxIterations`: the loop it is in ended without its exit
    /// condition being met.
    LoopLimit,
    /// The process running it ended; it can be resumed from its last completed step.
    Interrupted,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "running",
            ExecutionStatus::Completed => "completed",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Cancelled => "cancelled",
            ExecutionStatus::LoopLimit => "loop_limit",
            ExecutionStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" | "pending" => ExecutionStatus::Running,
            "completed" => ExecutionStatus::Completed,
            "failed" => ExecutionStatus::Failed,
            "cancelled" => ExecutionStatus::Cancelled,
            "loop_limit" => ExecutionStatus::LoopLimit,
            "interrupted" => ExecutionStatus::Interrupted,
            _ => return None,
        })
    }

    pub fn is_finished(self) -> bool {
        self != ExecutionStatus::Running
    }
}

impl std::fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What callers see of an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSnapshot {
    pub id: String,
    pub workflow_id: String,
    pub status: ExecutionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The step that failed or hit its loop cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    pub parameters: ParamMap,
    /// The step running now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_step: Option<String>,
    /// The latest result of every step that has run.
    pub results: HashMap<String, Value>,
    /// Every attempt of every visit of every step, in order.
    pub step_runs: Vec<StepRunRecord>,
    #[serde(with = "crate::engine::timefmt")]
    pub started_at: SystemTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, with = "crate::engine::timefmt::option")]
    pub finished_at: Option<SystemTime>,
    pub output_dir: PathBuf,
}

impl ExecutionSnapshot {
    pub fn duration(&self) -> Option<Duration> {
        self.finished_at?.duration_since(self.started_at).ok()
    }
}

/// The step an execution is on.
pub(crate) struct CurrentStep {
    pub step_id: String,
    pub seq: u64,
    pub token: CancellationToken,
    pub task: Option<TaskId>,
}

pub(crate) struct ExecutionState {
    pub status: ExecutionStatus,
    pub error: Option<String>,
    pub failed_step: Option<String>,
    pub results: HashMap<String, Value>,
    /// Visits per step so far.
    pub iterations: HashMap<String, u32>,
    pub step_runs: Vec<StepRunRecord>,
    pub next_seq: u64,
    pub current: Option<CurrentStep>,
    pub finished_at: Option<SystemTime>,
}

/// A running or finished execution.
pub(crate) struct Execution {
    pub id: String,
    pub workflow: Arc<Workflow>,
    pub params: ParamMap,
    pub output_dir: PathBuf,
    pub started_at: SystemTime,
    pub cancel: CancellationToken,
    pub state: Mutex<ExecutionState>,
    pub finished: Condvar,
}

impl Execution {
    pub fn new(
        id: String,
        workflow: Arc<Workflow>,
        params: ParamMap,
        output_dir: PathBuf,
        started_at: SystemTime,
    ) -> Self {
        Execution {
            id,
            workflow,
            params,
            output_dir,
            started_at,
            cancel: CancellationToken::new(),
            state: Mutex::new(ExecutionState {
                status: ExecutionStatus::Running,
                error: None,
                failed_step: None,
                results: HashMap::new(),
                iterations: HashMap::new(),
                step_runs: Vec::new(),
                next_seq: 1,
                current: None,
                finished_at: None,
            }),
            finished: Condvar::new(),
        }
    }

    pub fn snapshot(&self) -> ExecutionSnapshot {
        let state = self.state.lock();
        ExecutionSnapshot {
            id: self.id.clone(),
            workflow_id: self.workflow.id.clone(),
            status: state.status,
            error: state.error.clone(),
            failed_step: state.failed_step.clone(),
            parameters: self.params.clone(),
            current_step: state.current.as_ref().map(|c| c.step_id.clone()),
            results: state.results.clone(),
            step_runs: state.step_runs.clone(),
            started_at: self.started_at,
            finished_at: state.finished_at,
            output_dir: self.output_dir.clone(),
        }
    }

    /// Blocks until the execution has finished or `timeout` passes; returns its status.
    pub fn wait(&self, timeout: Option<Duration>) -> ExecutionStatus {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let mut state = self.state.lock();
        while !state.status.is_finished() {
            match deadline {
                Some(d) => {
                    if self.finished.wait_until(&mut state, d).timed_out() {
                        break;
                    }
                }
                None => self.finished.wait(&mut state),
            }
        }
        state.status
    }
}
