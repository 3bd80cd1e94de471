//! Workflow validation: every problem at once, each with a severity, a stable code, the
//! step and the field path it concerns. Never panics.

use serde::{Deserialize, Serialize};

use std::collections::HashSet;

use indexmap::IndexMap;
use serde_json::Value;

use super::graph::ControlGraph;
use super::model::{ConditionOperator, InputSource, StepType, Workflow, WorkflowStep};

/// How many times a step may run in one execution when it sets no `maxIterations`.
pub const DEFAULT_MAX_ITERATIONS: u32 = 5;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The workflow cannot run as written.
    Error,
    /// It runs, but probably not as meant.
    Warning,
    /// Worth knowing: a default that applies, a choice the engine makes.
    Info,
}

/// One finding of the validator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    pub fn error(
        code: &str,
        step: Option<&str>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            severity: Severity::Error,
            code: code.to_string(),
            step: step.map(str::to_string),
            field: field.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(
        code: &str,
        step: Option<&str>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(code, step, field, message)
        }
    }

    pub fn info(
        code: &str,
        step: Option<&str>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            severity: Severity::Info,
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
        self.with_severity(Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.with_severity(Severity::Warning)
    }

    pub fn with_severity(&self, severity: Severity) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(move |p| p.severity == severity)
    }
}

/// A reference from one step to another step's result, found in an input or a parameter.
struct Reference<'a> {
    /// The referenced step.
    target: &'a str,
    /// What follows the step id, e.g. `result.qualityScore`.
    rest: &'a str,
    field: String,
    /// Whether the reference reads a result the engine hands over directly (an input), as
    /// opposed to a context look-up.
    is_input: bool,
}

/// The prefix of a parameter string that reads another step's result from the context.
pub const CONTEXT_PREFIX: &str = "context.";

/// The prefix of a parameter string that reads a run parameter (`"parameter.prompt"`), so
/// one run parameter can set a value in many steps, and optimisation can tune it.
pub const PARAMETER_PREFIX: &str = "parameter.";

/// Whether a step parameter value is a reference resolved at run time.
pub fn is_runtime_reference(s: &str) -> bool {
    s.starts_with(CONTEXT_PREFIX) || s.starts_with(PARAMETER_PREFIX)
}

/// Splits `"<step>.<rest>"` at the first dot.
fn split_reference(key: &str) -> (&str, &str) {
    key.split_once('.').unwrap_or((key, ""))
}

/// Validates the workflow's structure, and each step against `catalog` when one is given.
pub fn validate(workflow: &Workflow, catalog: Option<&dyn StepCatalog>) -> Report {
    let mut problems = Vec::new();
    let graph = ControlGraph::new(workflow);

    check_workflow_fields(workflow, &mut problems);
    for (key, step) in &workflow.steps {
        check_step_fields(workflow, key, step, &mut problems);
    }
    let references = collect_references(workflow);
    check_references(workflow, &graph, &references, &mut problems);
    check_control_flow(workflow, &graph, &references, &mut problems);
    super::optimization::check(workflow, &mut problems);
    if let Some(catalog) = catalog {
        for step in workflow.steps.values() {
            catalog.check_step(step, &mut problems);
        }
    }
    problems.sort_by_key(|p| p.severity);
    Report { problems }
}

fn check_workflow_fields(workflow: &Workflow, out: &mut Vec<Problem>) {
    if workflow.id.trim().is_empty() {
        out.push(Problem::error(
            "missing-id",
            None,
            "id",
            "the workflow has no id",
        ));
    }
    if workflow.steps.is_empty() {
        out.push(
            Problem::error("no-steps", None, "steps", "the workflow has no steps")
                .with_hint("add at least one step and name it in initialStep"),
        );
    }
    if workflow.initial_step.trim().is_empty() {
        out.push(
            Problem::error(
                "missing-initial-step",
                None,
                "initialStep",
                "initialStep is empty",
            )
            .with_hint("name the step the workflow starts with"),
        );
    } else if !workflow.steps.contains_key(&workflow.initial_step) {
        out.push(
            Problem::error(
                "unknown-initial-step",
                None,
                "initialStep",
                format!(
                    "initialStep names `{}`, which is not a step",
                    workflow.initial_step
                ),
            )
            .with_hint(suggest_step(workflow, &workflow.initial_step)),
        );
    }
}

fn check_step_fields(workflow: &Workflow, key: &str, step: &WorkflowStep, out: &mut Vec<Problem>) {
    if step.id != key {
        out.push(
            Problem::error(
                "step-id-mismatch",
                Some(key),
                step_field(key, "id"),
                format!("the step stored under `{key}` says its id is `{}`", step.id),
            )
            .with_hint(format!(
                "make the id `{key}`, or store the step under `{}`",
                step.id
            )),
        );
    }
    if key.is_empty() || key.contains('.') || key.chars().any(char::is_whitespace) {
        out.push(Problem::error(
            "invalid-step-id",
            Some(key),
            step_field(key, "id"),
            format!("step id `{key}` must be non-empty without dots or spaces (dots separate result paths)"),
        ));
    }
    if step.step_type != StepType::Conditional && step.operation.trim().is_empty() {
        out.push(Problem::error(
            "missing-operation",
            Some(key),
            step_field(key, "operation"),
            format!("the {} step has no operation", step.step_type),
        ));
    }
    if let Some(t) = step.timeout_seconds
        && !(t.is_finite() && t > 0.0)
    {
        out.push(Problem::error(
            "invalid-timeout",
            Some(key),
            step_field(key, "timeoutSeconds"),
            format!("timeoutSeconds must be a positive number of seconds, not {t}"),
        ));
    }
    if step.max_iterations == Some(0) {
        out.push(Problem::error(
            "invalid-max-iterations",
            Some(key),
            step_field(key, "maxIterations"),
            "maxIterations must be at least 1",
        ));
    }

    for (i, input) in step.inputs.iter().enumerate() {
        if input.source == InputSource::Parameter && !workflow.parameters.contains_key(&input.key) {
            out.push(
                Problem::error(
                    "undeclared-parameter",
                    Some(key),
                    step_field(key, &format!("inputs[{i}].key")),
                    format!(
                        "the input reads run parameter `{}`, which the workflow does not declare",
                        input.key
                    ),
                )
                .with_hint(format!(
                    "add `{}` to the workflow's parameters (null if it must be given at run time)",
                    input.key
                )),
            );
        }
    }
    for (name, value) in &step.parameters {
        visit_strings(value, &mut |s| {
            if let Some(param) = s.strip_prefix(PARAMETER_PREFIX)
                && !workflow.parameters.contains_key(param)
            {
                out.push(
                    Problem::error(
                        "undeclared-parameter",
                        Some(key),
                        step_field(key, &format!("parameters.{name}")),
                        format!(
                            "`{s}` reads run parameter `{param}`, which the workflow does not declare"
                        ),
                    )
                    .with_hint(format!(
                        "add `{param}` to the workflow's parameters (null if it must be given at run time)"
                    )),
                );
            }
        });
    }

    check_condition(key, step, out);
}

fn check_condition(key: &str, step: &WorkflowStep, out: &mut Vec<Problem>) {
    let branches = step.next_steps.conditional.as_deref().unwrap_or_default();
    match (&step.condition, branches.is_empty()) {
        (None, false) => out.push(
            Problem::error(
                "branches-without-condition",
                Some(key),
                step_field(key, "nextSteps.conditional"),
                "the step has conditional next steps but no condition to choose between them",
            )
            .with_hint("add a condition, or use nextSteps.default"),
        ),
        (Some(_), true) => out.push(
            Problem::error(
                "condition-without-branches",
                Some(key),
                step_field(key, "condition"),
                "the step has a condition but no conditional next steps to take",
            )
            .with_hint("add nextSteps.conditional entries for \"true\" and \"false\""),
        ),
        (None, true) if step.step_type == StepType::Conditional => out.push(Problem::error(
            "conditional-without-condition",
            Some(key),
            step_field(key, "condition"),
            "a conditional step needs a condition",
        )),
        _ => {}
    }
    let mut seen = Vec::new();
    for (i, branch) in branches.iter().enumerate() {
        let field = step_field(key, &format!("nextSteps.conditional[{i}].condition"));
        if branch.condition != "true" && branch.condition != "false" {
            out.push(
                Problem::error(
                    "invalid-branch-condition",
                    Some(key),
                    field,
                    format!("branch condition `{}` is neither \"true\" nor \"false\"", branch.condition),
                )
                .with_hint("a branch is taken when the step's condition evaluates to \"true\" or \"false\""),
            );
        } else if seen.contains(&branch.condition.as_str()) {
            out.push(Problem::error(
                "duplicate-branch",
                Some(key),
                field,
                format!("there is more than one \"{}\" branch", branch.condition),
            ));
        } else {
            seen.push(branch.condition.as_str());
        }
    }
    if let Some(condition) = &step.condition {
        let left = &condition.left_operand;
        if left != "result" && !left.starts_with("result.") {
            out.push(
                Problem::error(
                    "invalid-condition-operand",
                    Some(key),
                    step_field(key, "condition.leftOperand"),
                    format!("leftOperand `{left}` is not a path into the step's result"),
                )
                .with_hint("write it as `result` or `result.<key>`, e.g. `result.qualityScore`"),
            );
        }
        let numeric = matches!(
            condition.operator,
            ConditionOperator::GreaterThan | ConditionOperator::LessThan
        );
        if numeric && !condition.right_operand.is_number() {
            out.push(Problem::error(
                "invalid-condition-operand",
                Some(key),
                step_field(key, "condition.rightOperand"),
                format!(
                    "{} compares numbers, but rightOperand is {}",
                    condition.operator.as_str(),
                    condition.right_operand
                ),
            ));
        }
    }
}

fn collect_references(workflow: &Workflow) -> Vec<(String, Reference<'_>)> {
    let mut refs = Vec::new();
    for (key, step) in &workflow.steps {
        for (i, input) in step.inputs.iter().enumerate() {
            if input.source == InputSource::PreviousStep {
                let (target, rest) = split_reference(&input.key);
                refs.push((
                    key.clone(),
                    Reference {
                        target,
                        rest,
                        field: step_field(key, &format!("inputs[{i}].key")),
                        is_input: true,
                    },
                ));
            }
        }
        for (name, value) in &step.parameters {
            let field = step_field(key, &format!("parameters.{name}"));
            visit_strings(value, &mut |s| {
                if let Some(path) = s.strip_prefix(CONTEXT_PREFIX) {
                    let (target, rest) = split_reference(path);
                    refs.push((
                        key.clone(),
                        Reference {
                            target,
                            rest,
                            field: field.clone(),
                            is_input: false,
                        },
                    ));
                }
            });
        }
    }
    refs
}

fn visit_strings<'a>(value: &'a Value, f: &mut impl FnMut(&'a str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|v| visit_strings(v, f)),
        Value::Object(map) => map.values().for_each(|v| visit_strings(v, f)),
        _ => {}
    }
}

fn check_references(
    workflow: &Workflow,
    graph: &ControlGraph,
    references: &[(String, Reference<'_>)],
    out: &mut Vec<Problem>,
) {
    for (reader, r) in references {
        let Some(target) = graph.node(r.target) else {
            out.push(
                Problem::error(
                    "unknown-step-reference",
                    Some(reader),
                    r.field.clone(),
                    format!("reads the result of `{}`, which is not a step", r.target),
                )
                .with_hint(suggest_step(workflow, r.target)),
            );
            continue;
        };
        if r.rest != "result" && !r.rest.starts_with("result.") {
            out.push(
                Problem::error(
                    "invalid-step-reference",
                    Some(reader),
                    r.field.clone(),
                    format!("`{}.{}` does not name a result", r.target, r.rest),
                )
                .with_hint(format!(
                    "write `{0}.result` or `{0}.result.<key>`",
                    r.target
                )),
            );
            continue;
        }
        let Some(reader_node) = graph.node(reader) else {
            continue;
        };
        let Some(start) = graph.node(&workflow.initial_step) else {
            continue;
        };
        // An unreachable reader gets its own warning; only judge the order on live paths.
        if graph.reachable_from(start, reader_node)
            && !(graph.reachable_from(start, target) && graph.reaches(target, reader_node))
        {
            out.push(
                Problem::error(
                    "reference-before-run",
                    Some(reader),
                    r.field.clone(),
                    format!(
                        "reads the result of `{}`, which cannot have run before `{reader}` on any path",
                        r.target
                    ),
                )
                .with_hint(format!("reorder nextSteps so that `{}` runs before `{reader}`", r.target)),
            );
        }
    }
}

fn check_control_flow(
    workflow: &Workflow,
    graph: &ControlGraph,
    references: &[(String, Reference<'_>)],
    out: &mut Vec<Problem>,
) {
    for (key, step) in &workflow.steps {
        if let Some(next) = &step.next_steps.default
            && !workflow.steps.contains_key(next)
        {
            out.push(
                Problem::error(
                    "unknown-next-step",
                    Some(key),
                    step_field(key, "nextSteps.default"),
                    format!("nextSteps.default names `{next}`, which is not a step"),
                )
                .with_hint(suggest_step(workflow, next)),
            );
        }
        for (i, branch) in step.next_steps.conditional.iter().flatten().enumerate() {
            if !workflow.steps.contains_key(&branch.step_id) {
                out.push(
                    Problem::error(
                        "unknown-next-step",
                        Some(key),
                        step_field(key, &format!("nextSteps.conditional[{i}].stepId")),
                        format!(
                            "the \"{}\" branch goes to `{}`, which is not a step",
                            branch.condition, branch.step_id
                        ),
                    )
                    .with_hint(suggest_step(workflow, &branch.step_id)),
                );
            }
        }
    }

    for members in graph.loops() {
        let ids: Vec<&str> = members.iter().map(|&n| graph.id(n)).collect();
        let first = ids[0];
        let cycle = ids.join(" → ");
        if !graph.loop_has_exit(&members) {
            out.push(
                Problem::error(
                    "cycle-without-exit",
                    Some(first),
                    step_field(first, "nextSteps"),
                    format!("the loop {cycle} has no conditional exit: once entered it never ends"),
                )
                .with_hint("give one step of the loop a condition with a branch that leaves it"),
            );
        } else if members
            .iter()
            .all(|&n| workflow.steps[n].max_iterations.is_none())
        {
            // The engine caps every loop, so an uncapped loop is safe; say which cap applies.
            out.push(
                Problem::info(
                    "loop-without-cap",
                    Some(first),
                    step_field(first, "maxIterations"),
                    format!(
                        "the loop {cycle} sets no maxIterations, so the engine's default cap of {DEFAULT_MAX_ITERATIONS} runs per step applies"
                    ),
                )
                .with_hint(format!("set maxIterations on `{first}` to choose the cap")),
            );
        }
    }

    let Some(start) = graph.node(&workflow.initial_step) else {
        return;
    };
    for node in 0..graph.len() {
        if !graph.reachable_from(start, node) {
            let id = graph.id(node);
            out.push(
                Problem::warning(
                    "unreachable-step",
                    Some(id),
                    step_field(id, ""),
                    format!(
                        "no path from `{}` leads to `{id}`, so it never runs",
                        workflow.initial_step
                    ),
                )
                .with_hint("link it from another step's nextSteps, or delete it"),
            );
        }
    }

    let stale = check_stale_inputs(workflow, graph, references, out);
    check_unread_results(workflow, graph, references, &stale, start, out);
}

/// Warns where a step reads a result that a later step on the same path has replaced: a
/// second step with the same operation runs after the one read and before the reader, and
/// its own result is not read, and that step is in a loop (so control comes back to the
/// reader with the old result in hand). One warning per replaced result, at its first stale reader,
/// naming every other reader it misleads. Returns the replacing steps, whose output is the
/// one the readers missed.
fn check_stale_inputs(
    workflow: &Workflow,
    graph: &ControlGraph,
    references: &[(String, Reference<'_>)],
    out: &mut Vec<Problem>,
) -> Vec<String> {
    // Only a step inside a loop can replace a result and then hand control back to a reader.
    let in_loops: Vec<usize> = graph.loops().into_iter().flatten().collect();
    if in_loops.is_empty() {
        return Vec::new();
    }
    let read_pairs: HashSet<(&str, &str)> = references
        .iter()
        .map(|(reader, r)| (reader.as_str(), r.target))
        .collect();
    // (read step, replacing step) -> the stale reading references, in file order.
    let mut stale: IndexMap<(usize, usize), Vec<(&str, &Reference<'_>)>> = IndexMap::new();
    for (reader, r) in references.iter().filter(|(_, r)| r.is_input) {
        let (Some(reader_node), Some(target_node)) = (graph.node(reader), graph.node(r.target))
        else {
            continue;
        };
        let target_step = &workflow.steps[target_node];
        for &candidate_node in &in_loops {
            let candidate = &workflow.steps[candidate_node];
            let replaces = candidate_node != target_node
                && candidate_node != reader_node
                && candidate.step_type == target_step.step_type
                && candidate.operation == target_step.operation
                && !read_pairs.contains(&(reader.as_str(), candidate.id.as_str()))
                && graph.reaches(target_node, candidate_node)
                && graph.reaches(candidate_node, reader_node);
            if replaces {
                stale
                    .entry((target_node, candidate_node))
                    .or_default()
                    .push((reader, r));
            }
        }
    }
    let mut replacements = Vec::new();
    for ((target_node, candidate_node), readers) in stale {
        let (target, candidate) = (graph.id(target_node), &workflow.steps[candidate_node]);
        let (reader, r) = readers[0];
        let route = match (
            graph.path(target_node, candidate_node),
            graph
                .node(reader)
                .and_then(|n| graph.path(candidate_node, n)),
        ) {
            (Some(a), Some(b)) => a
                .iter()
                .chain(&b[1..])
                .map(|&n| graph.id(n))
                .collect::<Vec<_>>()
                .join(" → "),
            _ => format!("{target} → … → {} → … → {reader}", candidate.id),
        };
        let others: Vec<String> = readers[1..]
            .iter()
            .map(|(who, _)| format!("`{who}`"))
            .collect();
        let also = if others.is_empty() {
            String::new()
        } else {
            format!(
                " {} also read{} the old result.",
                others.join(" and "),
                if others.len() == 1 { "s" } else { "" }
            )
        };
        out.push(
            Problem::warning(
                "stale-input",
                Some(reader),
                r.field.clone(),
                format!(
                    "`{reader}` reads `{target}.{}`, but on the path {route}, `{}` ({}) runs in between and makes a new output that nothing reads: when control comes back, `{reader}` looks at the old `{target}` result again.{also}",
                    r.rest,
                    candidate.id,
                    candidate.qualified_operation(),
                ),
            )
            .with_hint(format!(
                "make the loop go back to `{target}` (giving it `{0}`'s parameters) instead of running a separate `{0}`, so every reader sees the newest output",
                candidate.id
            )),
        );
        replacements.push(candidate.id.clone());
    }
    replacements
}

fn check_unread_results(
    workflow: &Workflow,
    graph: &ControlGraph,
    references: &[(String, Reference<'_>)],
    already_reported: &[String],
    start: usize,
    out: &mut Vec<Problem>,
) {
    let read_steps: HashSet<&str> = references.iter().map(|(_, r)| r.target).collect();
    for (node, (key, step)) in workflow.steps.iter().enumerate() {
        // An analysis result is kept in the history and the context, so it is worth having
        // even unread; audio that a transformation or generation makes and nobody uses is
        // work thrown away.
        let read = read_steps.contains(key.as_str())
            || step.condition.is_some()
            || matches!(step.step_type, StepType::Conditional | StepType::Analysis)
            || already_reported.contains(key);
        if read || step.next_steps.is_terminal() || !graph.reachable_from(start, node) {
            continue;
        }
        out.push(
            Problem::warning(
                "unread-result",
                Some(key),
                step_field(key, ""),
                format!("nothing reads the audio `{key}` makes, and it is not a final step"),
            )
            .with_hint(format!(
                "read it with a previous_step input `{key}.result`, branch on it with a condition, or remove the step"
            )),
        );
    }
}

/// "did you mean …" for a mistyped step id.
fn suggest_step(workflow: &Workflow, wrong: &str) -> String {
    let best = workflow
        .steps
        .keys()
        .map(|id| (edit_distance(id, wrong), id))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, id)) if d <= wrong.len().max(3) / 3 + 1 => format!("did you mean `{id}`?"),
        _ => {
            let ids: Vec<&str> = workflow.steps.keys().map(String::as_str).take(12).collect();
            format!("the steps are: {}", ids.join(", "))
        }
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}
