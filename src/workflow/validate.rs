//! Workflow validation: every problem at once, each with a severity, a stable code, the
//! step and the field path it concerns. Never panics.

use serde::{Deserialize, Serialize};

use super::model::{Workflow, WorkflowStep};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding of the validator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub severity: Severity,
    /// Stable, kebab-case identifier of the rule (e.g. `unknown-next-step`).
    pub code: String,
    /// The step the problem concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Path of the offending field from the workflow root, e.g.
    /// `steps.evaluate-result.nextSteps.conditional[1].stepId`.
    pub field: String,
    /// What is wrong, in a sentence.
    pub message: String,
    /// How to fix it, when there is an obvious fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Problem {
    pub fn error(code: &str, step: Option<&str>, field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            code: code.to_string(),
            step: step.map(str::to_string),
            field: field.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(code: &str, step: Option<&str>, field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(code, step, field, message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The field path of a step's field: `steps.<id>.<field>`.
pub fn step_field(step_id: &str, field: &str) -> String {
    if field.is_empty() {
        format!("steps.{step_id}")
    } else {
        format!("steps.{step_id}.{field}")
    }
}

/// Knows the operations a program has and checks a step against them: that its operation
/// exists for its type and that its parameters fit the operation's schema. The engine's
/// operation registry implements it; the workflow layer only calls it.
pub trait StepCatalog {
    /// Appends the problems of `step` to `out`.
    fn check_step(&self, step: &WorkflowStep, out: &mut Vec<Problem>);
}

/// The outcome of validating a workflow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn is_valid(&self) -> bool {
        !self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Warning)
    }
}

/// Validates the workflow's structure, and each step against `catalog` when one is given.
pub fn validate(workflow: &Workflow, catalog: Option<&dyn StepCatalog>) -> Report {
    let mut problems = Vec::new();
    if let Some(catalog) = catalog {
        for step in workflow.steps.values() {
            catalog.check_step(step, &mut problems);
        }
    }
    Report { problems }
}
