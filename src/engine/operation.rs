//! The operation contract (the plan's AudioTaskRouter targets): what an operation declares
//! about itself, and what it is given when it runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::workflow::{ParamMap, StepType};

use super::artifact::AudioArtifact;

/// One runnable operation, e.g. `analysis/features`.
pub trait Operation: Send + Sync + 'static {
    /// What the operation is, takes and returns; drawn by the editor, read by an LLM,
    /// checked by validation.
    fn spec(&self) -> &OperationSpec;

    /// Run once with resolved inputs and parameters (defaults already filled in).
    /// Returns the step's result, a JSON object.
    fn run(&self, ctx: &OpContext<'_>) -> Result<Value, OpError>;
}

/// The declaration of an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationSpec {
    #[serde(rename = "type")]
    pub step_type: StepType,
    pub name: String,
    pub description: String,
    pub inputs: Vec<InputSpec>,
    pub parameters: Vec<ParamSpec>,
    /// Keys of the result object and what they mean.
    #[serde(default)]
    pub outputs: Vec<OutputSpec>,
    /// Name of the parameter that seeds the operation's randomness, if it has any. Such an
    /// operation is cached only when that parameter is set, and a loop's later visits of
    /// its step run with the seed plus the visit number less one (a new take each time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_parameter: Option<String>,
    /// False for operations whose result depends on more than their inputs and parameters
    /// (the wall clock, the network, the run's output folder); those are never cached.
    #[serde(default = "yes")]
    pub deterministic: bool,
}

fn yes() -> bool {
    true
}

impl OperationSpec {
    /// `type/name`.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.step_type, self.name)
    }

    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.parameters.iter().find(|p| p.name == name)
    }
}

/// A named input of an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputSpec {
    pub name: String,
    pub kind: InputKind,
    pub description: String,
    #[serde(default = "yes")]
    pub required: bool,
    /// Accepts any number of values (e.g. `mix`); only the last input may be variadic.
    #[serde(default)]
    pub variadic: bool,
}

/// What an input carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// A path to an audio file, an [`AudioArtifact`], or a result object with an `audio` key.
    Audio,
    /// Any JSON value (e.g. an analysis result).
    Json,
}

/// A result key of an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputSpec {
    pub name: String,
    pub description: String,
}

/// A parameter of an operation: enough to draw an editor widget and to tell an LLM how to
/// call it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParamSpec {
    pub name: String,
    pub kind: ParamKind,
    pub description: String,
    /// Used when the step does not set the parameter. `None` with `required: false` means
    /// "absent is meaningful" (e.g. no seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(default)]
    pub required: bool,
}

/// The type and range of a parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ParamKind {
    Number {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    Integer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
    },
    Boolean,
    String,
    /// One of a fixed set of strings.
    Choice {
        choices: Vec<String>,
    },
    /// A filesystem path; `audio` marks audio files for the editor's file picker.
    Path {
        #[serde(default)]
        audio: bool,
    },
    /// A list of strings (e.g. `focusAreas`).
    StringList,
    /// Any JSON value.
    Json,
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The caller's fault: a bad parameter, a missing input, an unreadable file.
    #[error("{0}")]
    Invalid(String),
    /// A failure worth retrying (a busy device, a flaky download).
    #[error("{0}")]
    Transient(String),
    /// The run was cancelled through its token.
    #[error("cancelled")]
    Cancelled,
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

impl OpError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        OpError::Invalid(msg.into())
    }
    pub fn failed(msg: impl Into<String>) -> Self {
        OpError::Failed(msg.into())
    }
    pub fn is_transient(&self) -> bool {
        matches!(self, OpError::Transient(_))
    }
}

/// A cooperative cancellation flag shared between the engine and a running operation.
#[derive(Debug, Clone, Default)]
pub struct CancellationToken(Arc<AtomicBool>);

impl CancellationToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
    /// The shared flag, for libraries that take a plain `AtomicBool`.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }

    /// `Err(OpError::Cancelled)` once cancelled: `token.check()?` in inner loops.
    pub fn check(&self) -> Result<(), OpError> {
        if self.is_cancelled() {
            Err(OpError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// Receives progress from a running operation.
pub trait ProgressSink: Send + Sync {
    /// `fraction` in [0, 1].
    fn report(&self, fraction: f32, message: &str);
}

/// A sink that drops progress, for direct calls and tests.
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn report(&self, _fraction: f32, _message: &str) {}
}

/// One resolved input value with the name it is bound to.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedInput {
    pub name: String,
    pub value: Value,
}

/// Everything an operation sees while it runs.
pub struct OpContext<'a> {
    /// Inputs in the order the operation declares them; a variadic input appears once per
    /// value.
    pub inputs: &'a [ResolvedInput],
    /// Parameters with the spec's defaults filled in.
    pub params: &'a ParamMap,
    pub progress: &'a dyn ProgressSink,
    pub cancel: &'a CancellationToken,
    /// Folder for intermediate artifacts this step writes (content-addressed workspace).
    pub artifact_dir: &'a Path,
    /// The run's output folder, where `export` writes what the user asked for. It may not
    /// exist yet: an operation that writes there creates it.
    pub output_dir: &'a Path,
}

impl<'a> OpContext<'a> {
    /// All values bound to input `name`.
    pub fn inputs_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a Value> + 's {
        self.inputs
            .iter()
            .filter(move |i| i.name == name)
            .map(|i| &i.value)
    }

    /// The one value bound to a required input.
    pub fn input(&self, name: &str) -> Result<&'a Value, OpError> {
        self.inputs_named(name)
            .next()
            .ok_or_else(|| OpError::invalid(format!("missing input `{name}`")))
    }

    /// An audio input as a file path plus the artifact metadata when it came from a step.
    pub fn audio_input(&self, name: &str) -> Result<(PathBuf, Option<AudioArtifact>), OpError> {
        audio_source(self.input(name)?)
            .map_err(|e| OpError::invalid(format!("input `{name}`: {e}")))
    }

    pub fn param(&self, name: &str) -> Option<&'a Value> {
        self.params.get(name).filter(|v| !v.is_null())
    }

    pub fn f64_param(&self, name: &str) -> Result<f64, OpError> {
        self.param(name)
            .and_then(Value::as_f64)
            .ok_or_else(|| OpError::invalid(format!("parameter `{name}` must be a number")))
    }

    pub fn i64_param(&self, name: &str) -> Result<i64, OpError> {
        self.param(name)
            .and_then(Value::as_i64)
            .ok_or_else(|| OpError::invalid(format!("parameter `{name}` must be an integer")))
    }

    pub fn bool_param(&self, name: &str) -> Result<bool, OpError> {
        self.param(name)
            .and_then(Value::as_bool)
            .ok_or_else(|| OpError::invalid(format!("parameter `{name}` must be true or false")))
    }

    pub fn str_param(&self, name: &str) -> Result<&'a str, OpError> {
        self.param(name)
            .and_then(Value::as_str)
            .ok_or_else(|| OpError::invalid(format!("parameter `{name}` must be a string")))
    }
}

/// Interprets an audio input value: a path string, an artifact object, or a result object
/// whose `audio` key holds an artifact.
pub fn audio_source(value: &Value) -> Result<(PathBuf, Option<AudioArtifact>), String> {
    match value {
        Value::String(p) if !p.is_empty() => Ok((PathBuf::from(p), None)),
        Value::Object(map) => {
            let artifact_value = map.get("audio").unwrap_or(value);
            if let Value::String(p) = artifact_value {
                return Ok((PathBuf::from(p), None));
            }
            let artifact: AudioArtifact = serde_json::from_value(artifact_value.clone())
                .map_err(|e| format!("not an audio artifact ({e})"))?;
            Ok((artifact.path.clone(), Some(artifact)))
        }
        Value::Null => Err("no audio given (the value is null)".to_string()),
        other => Err(format!(
            "expected an audio file path or an audio artifact, got {}",
            json_kind(other)
        )),
    }
}

/// A short name for a JSON value's type, for error messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
