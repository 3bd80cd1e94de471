//! The workflow data model, exactly the plan's schema plus a few documented, optional
//! additions. Field names serialize as in the plan (camelCase, `type`, `previous_step`),
//! so the plan's example JSON loads verbatim.

use std::fmt;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The schema version this build writes and the newest it reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A free-form JSON object: step parameters, workflow parameters, results.
pub type ParamMap = IndexMap<String, Value>;

/// A whole workflow: the plan's `Workflow` interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workflow {
    /// Version of this file format. Absent in files written before versioning (read as 1);
    /// a file from a newer build is refused instead of being misread.
    #[serde(default = "default_schema_version")]
    pub schema_version: u32,
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub initial_step: String,
    /// Steps keyed by id, in file order. Duplicate keys are an error, never a silent overwrite.
    #[serde(deserialize_with = "deserialize_unique_steps")]
    pub steps: IndexMap<String, WorkflowStep>,
    /// Run parameters and their defaults (`null` = must be supplied at run time).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: ParamMap,
    pub metadata: Metadata,
    /// What `optimize` may tune and what it should improve; the engine ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimization: Option<super::optimization::Optimization>,
    /// Node positions for the editor; the engine ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
}

fn default_schema_version() -> u32 {
    1
}

/// Who made the workflow and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub created_by: String,
    /// The workflow's own version (the user's, e.g. "1.0.0"), not the file schema's.
    #[serde(default)]
    pub version: String,
}

impl Metadata {
    /// Metadata for a workflow created now by `who`.
    pub fn new_now(who: &str) -> Self {
        let now = Utc::now();
        Metadata {
            created_at: now,
            updated_at: now,
            created_by: who.to_string(),
            version: "1.0.0".to_string(),
        }
    }
}

/// The plan's `WorkflowStep`, plus optional scheduling fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowStep {
    pub id: String,
    #[serde(rename = "type")]
    pub step_type: StepType,
    /// Operation name within the step's type, e.g. `features` for `analysis/features`.
    /// Conditional steps may leave it empty: they only evaluate their condition.
    #[serde(default)]
    pub operation: String,
    #[serde(default)]
    pub inputs: Vec<StepInput>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: ParamMap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    #[serde(default)]
    pub next_steps: NextSteps,
    /// Scheduling priority; higher runs first when workers are scarce. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Wall-clock limit for one attempt of this step, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    /// How many times a transient failure is retried (with backoff). Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// How many times this step may run in one execution (loop cap). When absent the
    /// engine's default cap applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_iterations: Option<u32>,
    /// Whether the result may be reused from the cache when nothing it depends on changed.
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
}

impl WorkflowStep {
    /// A step with no inputs, parameters or successors.
    pub fn new(id: &str, step_type: StepType, operation: &str) -> Self {
        WorkflowStep {
            id: id.to_string(),
            step_type,
            operation: operation.to_string(),
            inputs: Vec::new(),
            parameters: ParamMap::new(),
            condition: None,
            next_steps: NextSteps::default(),
            priority: None,
            timeout_seconds: None,
            retries: None,
            max_iterations: None,
            cache: None,
        }
    }

    /// The qualified operation name, `type/operation`.
    pub fn qualified_operation(&self) -> String {
        format!("{}/{}", self.step_type, self.operation)
    }

    /// Every step this one can go to next, in declaration order (default first).
    pub fn successors(&self) -> impl Iterator<Item = &str> {
        self.next_steps.default.as_deref().into_iter().chain(
            self.next_steps
                .conditional
                .iter()
                .flatten()
                .map(|c| c.step_id.as_str()),
        )
    }
}

/// The four kinds of step.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum StepType {
    Analysis,
    Generation,
    Conditional,
    Transformation,
}

impl StepType {
    pub const ALL: [StepType; 4] = [
        StepType::Analysis,
        StepType::Generation,
        StepType::Conditional,
        StepType::Transformation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepType::Analysis => "analysis",
            StepType::Generation => "generation",
            StepType::Conditional => "conditional",
            StepType::Transformation => "transformation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        StepType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for StepType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a step input comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepInput {
    pub source: InputSource,
    /// `parameter`: a run parameter name. `previous_step`: `"<step>.result"` with an optional
    /// deeper path (`"<step>.result.qualityScore"`). `context`: a context query, see the engine.
    pub key: String,
    /// Binds the input to the operation's input of this name; without it inputs bind by
    /// position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl StepInput {
    pub fn new(source: InputSource, key: &str) -> Self {
        StepInput {
            source,
            key: key.to_string(),
            name: None,
        }
    }

    /// For `previous_step` inputs: the step id the key names (the part before the first dot).
    pub fn referenced_step(&self) -> Option<&str> {
        match self.source {
            InputSource::PreviousStep => Some(self.key.split('.').next().unwrap_or(&self.key)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputSource {
    Parameter,
    PreviousStep,
    Context,
}

impl InputSource {
    pub fn as_str(self) -> &'static str {
        match self {
            InputSource::Parameter => "parameter",
            InputSource::PreviousStep => "previous_step",
            InputSource::Context => "context",
        }
    }
}

/// The plan's step condition. `left_operand` is a path into the step's own result
/// (`result.qualityScore`); the outcome selects the `"true"` or `"false"` branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    pub operator: ConditionOperator,
    pub left_operand: String,
    #[schema(value_type = Object)]
    pub right_operand: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConditionOperator {
    Equals,
    Contains,
    GreaterThan,
    LessThan,
}

impl ConditionOperator {
    pub const ALL: [ConditionOperator; 4] = [
        ConditionOperator::Equals,
        ConditionOperator::Contains,
        ConditionOperator::GreaterThan,
        ConditionOperator::LessThan,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConditionOperator::Equals => "equals",
            ConditionOperator::Contains => "contains",
            ConditionOperator::GreaterThan => "greater_than",
            ConditionOperator::LessThan => "less_than",
        }
    }
}

/// Where control goes after a step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NextSteps {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditional: Option<Vec<ConditionalNext>>,
}

impl NextSteps {
    pub fn is_terminal(&self) -> bool {
        self.default.is_none() && self.conditional.as_ref().is_none_or(|c| c.is_empty())
    }
}

/// One branch of a conditional step: `condition` is `"true"` or `"false"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConditionalNext {
    pub condition: String,
    pub step_id: String,
}

/// Editor-only node placement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Layout {
    /// Canvas position of each step's node, by step id.
    #[serde(default)]
    pub nodes: IndexMap<String, NodePosition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodePosition {
    pub x: f32,
    pub y: f32,
}

fn deserialize_unique_steps<'de, D>(d: D) -> Result<IndexMap<String, WorkflowStep>, D::Error>
where
    D: Deserializer<'de>,
{
    struct UniqueSteps;
    impl<'de> serde::de::Visitor<'de> for UniqueSteps {
        type Value = IndexMap<String, WorkflowStep>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of step id to step")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut steps = IndexMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if steps.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!(
                        "duplicate step id `{key}`"
                    )));
                }
                let step: WorkflowStep = map.next_value()?;
                steps.insert(key, step);
            }
            Ok(steps)
        }
    }
    d.deserialize_map(UniqueSteps)
}

impl Workflow {
    /// An empty workflow with one step to start from.
    pub fn new(id: &str, name: &str, first: WorkflowStep) -> Self {
        let initial = first.id.clone();
        let mut steps = IndexMap::new();
        steps.insert(initial.clone(), first);
        Workflow {
            schema_version: SCHEMA_VERSION,
            id: id.to_string(),
            name: name.to_string(),
            description: String::new(),
            initial_step: initial,
            steps,
            parameters: ParamMap::new(),
            metadata: Metadata::new_now("grym-synth"),
            optimization: None,
            layout: None,
        }
    }

    pub fn step(&self, id: &str) -> Option<&WorkflowStep> {
        self.steps.get(id)
    }
}
