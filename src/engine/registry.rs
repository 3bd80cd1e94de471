//! The operation registry (the plan's AudioTaskRouter): finds the operation a step names and
//! checks steps against the operations' declarations.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::workflow::validate::{PARAMETER_PREFIX, is_runtime_reference, step_field};
use crate::workflow::{
    InputSource, ParamMap, Problem, StepCatalog, StepType, Workflow, WorkflowStep,
};

use super::operation::{InputKind, Operation, OperationSpec, ParamKind, ParamSpec, json_kind};

/// Every operation a program has, by qualified name (`analysis/features`).
#[derive(Clone, Default)]
pub struct OperationRegistry {
    operations: BTreeMap<String, Arc<dyn Operation>>,
}

impl OperationRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an operation, replacing one of the same name.
    pub fn register(&mut self, operation: Arc<dyn Operation>) {
        let name = operation.spec().qualified_name();
        self.operations.insert(name, operation);
    }

    pub fn with(mut self, operation: impl Operation) -> Self {
        self.register(Arc::new(operation));
        self
    }

    pub fn get(&self, step_type: StepType, name: &str) -> Option<&Arc<dyn Operation>> {
        self.operations.get(&format!("{step_type}/{name}"))
    }

    pub fn get_qualified(&self, qualified: &str) -> Option<&Arc<dyn Operation>> {
        self.operations.get(qualified)
    }

    /// The catalog, sorted by qualified name.
    pub fn specs(&self) -> impl Iterator<Item = &OperationSpec> {
        self.operations.values().map(|op| op.spec())
    }

    /// The run parameters of `workflow` that name files: those read by audio inputs, and
    /// those that path parameters read through `"parameter.<name>"`. In first-use order,
    /// without repeats.
    pub fn file_parameters(&self, workflow: &Workflow) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut add = |name: &str| {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        };
        for step in workflow.steps.values() {
            let Some(op) = self.get(step.step_type, &step.operation) else {
                continue;
            };
            let declared = &op.spec().inputs;
            for (i, input) in step.inputs.iter().enumerate() {
                if input.source != InputSource::Parameter {
                    continue;
                }
                let spec = match &input.name {
                    Some(n) => declared.iter().find(|d| &d.name == n),
                    None => declared
                        .get(i)
                        .or_else(|| declared.last().filter(|d| d.variadic)),
                };
                if spec.is_some_and(|s| s.kind == InputKind::Audio) {
                    add(&input.key);
                }
            }
            for (name, value) in &step.parameters {
                let is_path = op
                    .spec()
                    .param(name)
                    .is_some_and(|p| matches!(p.kind, ParamKind::Path { .. }));
                if let (true, Some(param)) = (
                    is_path,
                    value
                        .as_str()
                        .and_then(|s| s.strip_prefix(PARAMETER_PREFIX)),
                ) {
                    add(param);
                }
            }
        }
        names
    }

    pub fn len(&self) -> usize {
        self.operations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// The parameters a step runs with: its own, with the spec's defaults filled in.
    pub fn effective_params(spec: &OperationSpec, params: &ParamMap) -> ParamMap {
        let mut out = params.clone();
        for p in &spec.parameters {
            if let Some(default) = &p.default
                && !out.contains_key(&p.name)
            {
                out.insert(p.name.clone(), default.clone());
            }
        }
        out
    }
}

impl StepCatalog for OperationRegistry {
    fn check_step(&self, step: &WorkflowStep, out: &mut Vec<Problem>) {
        if step.step_type == StepType::Conditional && step.operation.is_empty() {
            return;
        }
        if step.operation.trim().is_empty() {
            return; // reported as missing-operation
        }
        let Some(op) = self.get(step.step_type, &step.operation) else {
            let same_name: Vec<String> = self
                .specs()
                .filter(|s| s.name == step.operation)
                .map(OperationSpec::qualified_name)
                .collect();
            let hint = if let Some(other) = same_name.first() {
                format!(
                    "`{}` is a {} operation: set the step's type to `{}`",
                    step.operation,
                    other.split('/').next().unwrap_or_default(),
                    other.split('/').next().unwrap_or_default()
                )
            } else {
                let names: Vec<&str> = self
                    .specs()
                    .filter(|s| s.step_type == step.step_type)
                    .map(|s| s.name.as_str())
                    .collect();
                if names.is_empty() {
                    format!("this program has no {} operations", step.step_type)
                } else {
                    format!(
                        "the {} operations are: {}",
                        step.step_type,
                        names.join(", ")
                    )
                }
            };
            out.push(
                Problem::error(
                    "unknown-operation",
                    Some(&step.id),
                    step_field(&step.id, "operation"),
                    format!("there is no operation `{}`", step.qualified_operation()),
                )
                .with_hint(hint),
            );
            return;
        };
        let spec = op.spec();
        for (name, value) in &step.parameters {
            let field = step_field(&step.id, &format!("parameters.{name}"));
            match spec.param(name) {
                None => {
                    let known: Vec<&str> =
                        spec.parameters.iter().map(|p| p.name.as_str()).collect();
                    out.push(
                        Problem::warning(
                            "unknown-parameter",
                            Some(&step.id),
                            field,
                            format!(
                                "`{}` has no parameter `{name}`; it is ignored",
                                spec.qualified_name()
                            ),
                        )
                        .with_hint(if known.is_empty() {
                            "the operation takes no parameters".to_string()
                        } else {
                            format!("its parameters are: {}", known.join(", "))
                        }),
                    );
                }
                Some(p) => {
                    if let Some(message) = param_problem(p, value) {
                        out.push(
                            Problem::error("invalid-parameter", Some(&step.id), field, message)
                                .with_hint(p.description.clone()),
                        );
                    }
                }
            }
        }
        for p in spec.parameters.iter().filter(|p| p.required) {
            if !step.parameters.contains_key(&p.name) && p.default.is_none() {
                out.push(
                    Problem::error(
                        "missing-parameter",
                        Some(&step.id),
                        step_field(&step.id, &format!("parameters.{}", p.name)),
                        format!("`{}` needs parameter `{}`", spec.qualified_name(), p.name),
                    )
                    .with_hint(p.description.clone()),
                );
            }
        }
        let required_inputs = spec.inputs.iter().filter(|i| i.required).count();
        let variadic = spec.inputs.last().is_some_and(|i| i.variadic);
        if step.inputs.len() < required_inputs {
            let names: Vec<&str> = spec.inputs.iter().map(|i| i.name.as_str()).collect();
            out.push(Problem::error(
                "missing-input",
                Some(&step.id),
                step_field(&step.id, "inputs"),
                format!(
                    "`{}` needs {required_inputs} input(s) ({}), the step gives {}",
                    spec.qualified_name(),
                    names.join(", "),
                    step.inputs.len()
                ),
            ));
        } else if !variadic && step.inputs.len() > spec.inputs.len() && !spec.inputs.is_empty() {
            out.push(Problem::warning(
                "extra-input",
                Some(&step.id),
                step_field(&step.id, "inputs"),
                format!(
                    "`{}` takes {} input(s); the step gives {}, and the extra ones are passed along unnamed",
                    spec.qualified_name(),
                    spec.inputs.len(),
                    step.inputs.len()
                ),
            ));
        }
        for (i, input) in step.inputs.iter().enumerate() {
            if let Some(name) = &input.name
                && !spec.inputs.iter().any(|s| &s.name == name)
            {
                out.push(Problem::error(
                    "unknown-input",
                    Some(&step.id),
                    step_field(&step.id, &format!("inputs[{i}].name")),
                    format!("`{}` has no input `{name}`", spec.qualified_name()),
                ));
            }
        }
    }
}

/// Why `value` does not fit `spec`, if it does not. Strings that read the context
/// (`context.<step>.result…`) or a run parameter (`parameter.<name>`) are resolved at run
/// time and pass.
pub fn param_problem(spec: &ParamSpec, value: &Value) -> Option<String> {
    if let Value::String(s) = value
        && is_runtime_reference(s)
    {
        return None;
    }
    if value.is_null() {
        return spec
            .required
            .then(|| format!("`{}` is required and cannot be null", spec.name));
    }
    let wrong = |expected: &str| {
        Some(format!(
            "`{}` must be {expected}, not {}",
            spec.name,
            json_kind(value)
        ))
    };
    match &spec.kind {
        ParamKind::Number { min, max } => {
            let Some(x) = value.as_f64() else {
                return wrong("a number");
            };
            range_problem(&spec.name, x, *min, *max)
        }
        ParamKind::Integer { min, max } => {
            let Some(x) = value.as_i64() else {
                return if value.is_number() {
                    Some(format!(
                        "`{}` must be a whole number, not {value}",
                        spec.name
                    ))
                } else {
                    wrong("a whole number")
                };
            };
            range_problem(
                &spec.name,
                x as f64,
                min.map(|m| m as f64),
                max.map(|m| m as f64),
            )
        }
        ParamKind::Boolean => (!value.is_boolean()).then(|| {
            format!(
                "`{}` must be true or false, not {}",
                spec.name,
                json_kind(value)
            )
        }),
        ParamKind::String | ParamKind::Path { .. } => {
            if value.is_string() {
                None
            } else {
                wrong("a string")
            }
        }
        ParamKind::Choice { choices } => match value.as_str() {
            Some(s) if choices.iter().any(|c| c == s) => None,
            Some(s) => Some(format!(
                "`{}` must be one of {}, not \"{s}\"",
                spec.name,
                choices
                    .iter()
                    .map(|c| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => wrong("a string"),
        },
        ParamKind::StringList => match value {
            Value::String(_) => None,
            Value::Array(items) if items.iter().all(Value::is_string) => None,
            _ => wrong("a list of strings"),
        },
        ParamKind::Json => None,
    }
}

fn range_problem(name: &str, x: f64, min: Option<f64>, max: Option<f64>) -> Option<String> {
    if !x.is_finite() {
        return Some(format!("`{name}` must be a finite number"));
    }
    match (min, max) {
        (Some(lo), Some(hi)) if x < lo || x > hi => {
            Some(format!("`{name}` must be between {lo} and {hi}, not {x}"))
        }
        (Some(lo), None) if x < lo => Some(format!("`{name}` must be at least {lo}, not {x}")),
        (None, Some(hi)) if x > hi => Some(format!("`{name}` must be at most {hi}, not {x}")),
        _ => None,
    }
}
