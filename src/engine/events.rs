//! What the engine tells the world: one event stream that the editor's live panel, the REST
//! API's event stream and the CLI's progress bar all read.

use std::time::SystemTime;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One thing that happened in the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    ExecutionStarted {
        execution_id: String,
        workflow_id: String,
        #[serde(with = "crate::engine::timefmt")]
        at: SystemTime,
    },
    StepStarted {
        execution_id: String,
        step_id: String,
        iteration: u32,
        attempt: u32,
        #[serde(with = "crate::engine::timefmt")]
        at: SystemTime,
    },
    StepProgress {
        execution_id: String,
        step_id: String,
        fraction: f32,
        message: String,
    },
    StepFinished {
        execution_id: String,
        step_id: String,
        iteration: u32,
        /// The result with large arrays shortened, for display.
        summary: Value,
        duration_ms: f64,
        cached: bool,
        /// The branch a condition chose, if the step has one.
        #[serde(skip_serializing_if = "Option::is_none")]
        branch: Option<bool>,
    },
    StepFailed {
        execution_id: String,
        step_id: String,
        iteration: u32,
        attempt: u32,
        error: String,
        /// Whether the engine will try the step again.
        will_retry: bool,
    },
    ExecutionFinished {
        execution_id: String,
        status: super::ExecutionStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(with = "crate::engine::timefmt")]
        at: SystemTime,
    },
    /// A workflow was stored as a new version (saved, updated, rolled back or deleted),
    /// by the editor, the API or a study.
    WorkflowSaved {
        workflow_id: String,
        version: u32,
        created_by: String,
        /// The version records a deletion.
        deleted: bool,
    },
    Log {
        #[serde(skip_serializing_if = "Option::is_none")]
        execution_id: Option<String>,
        level: LogLevel,
        message: String,
    },
}

impl Event {
    /// The execution the event concerns, if any.
    pub fn execution_id(&self) -> Option<&str> {
        match self {
            Event::ExecutionStarted { execution_id, .. }
            | Event::StepStarted { execution_id, .. }
            | Event::StepProgress { execution_id, .. }
            | Event::StepFinished { execution_id, .. }
            | Event::StepFailed { execution_id, .. }
            | Event::ExecutionFinished { execution_id, .. } => Some(execution_id),
            Event::Log { execution_id, .. } => execution_id.as_deref(),
            Event::WorkflowSaved { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Info,
    Warning,
    Error,
}

/// Fans events out to every subscriber; a subscriber that hangs up is dropped.
#[derive(Default)]
pub struct EventBus {
    subscribers: Mutex<Vec<Sender<Event>>>,
}

impl EventBus {
    pub fn subscribe(&self) -> Receiver<Event> {
        let (tx, rx) = crossbeam_channel::unbounded();
        self.subscribers.lock().push(tx);
        rx
    }

    pub fn emit(&self, event: Event) {
        let mut subscribers = self.subscribers.lock();
        match subscribers.len() {
            0 => {}
            1 => {
                if subscribers[0].send(event).is_err() {
                    subscribers.clear();
                }
            }
            _ => subscribers.retain(|s| s.send(event.clone()).is_ok()),
        }
    }

    /// Builds and sends the event only when someone listens.
    pub fn emit_with(&self, event: impl FnOnce() -> Event) {
        if self.has_subscribers() {
            self.emit(event());
        }
    }

    pub fn has_subscribers(&self) -> bool {
        !self.subscribers.lock().is_empty()
    }
}

/// Shortens a result for display in events: long arrays become their first items and a
/// count, so that a frame-embedding matrix never floods the event stream.
pub fn summarize(value: &Value) -> Value {
    const KEEP: usize = 16;
    match value {
        Value::Array(items) if items.len() > KEEP => {
            let mut short: Vec<Value> = items[..KEEP].iter().map(summarize).collect();
            short.push(Value::String(format!("… {} more", items.len() - KEEP)));
            Value::Array(short)
        }
        Value::Array(items) => Value::Array(items.iter().map(summarize).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), summarize(v))).collect())
        }
        other => other.clone(),
    }
}
