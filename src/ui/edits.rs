//! Edits of the workflow model that the editor makes: pure functions on [`Workflow`], so the
//! canvas, the inspector and the tests all change the model the same way.

use crate::workflow::{
    ConditionalNext, InputSource, Layout, NodePosition, StepInput, StepType, Workflow, WorkflowStep,
};

/// A control-flow output of a step: where `nextSteps` points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowPort {
    /// `nextSteps.default`.
    Default,
    /// `nextSteps.conditional` entry with condition `"true"` / `"false"`.
    Branch(bool),
}

impl FlowPort {
    /// The flow outputs a step of `step_type` shows.
    pub fn for_type(step_type: StepType) -> &'static [FlowPort] {
        match step_type {
            StepType::Conditional => &[FlowPort::Branch(true), FlowPort::Branch(false)],
            _ => &[FlowPort::Default],
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            FlowPort::Default => "next",
            FlowPort::Branch(true) => "true",
            FlowPort::Branch(false) => "false",
        }
    }
}

/// The step a flow output points at.
pub fn flow_target(step: &WorkflowStep, port: FlowPort) -> Option<&str> {
    match port {
        FlowPort::Default => step.next_steps.default.as_deref(),
        FlowPort::Branch(b) => {
            let cond = if b { "true" } else { "false" };
            step.next_steps
                .conditional
                .iter()
                .flatten()
                .find(|c| c.condition == cond)
                .map(|c| c.step_id.as_str())
        }
    }
}

/// Points a flow output at `target` (`None` removes the edge).
pub fn set_flow(workflow: &mut Workflow, from: &str, port: FlowPort, target: Option<&str>) {
    let Some(step) = workflow.steps.get_mut(from) else {
        return;
    };
    match port {
        FlowPort::Default => step.next_steps.default = target.map(str::to_string),
        FlowPort::Branch(b) => {
            let cond = if b { "true" } else { "false" };
            let list = step.next_steps.conditional.get_or_insert_with(Vec::new);
            list.retain(|c| c.condition != cond);
            if let Some(t) = target {
                let entry = ConditionalNext {
                    condition: cond.to_string(),
                    step_id: t.to_string(),
                };
                // Keep "true" before "false", as people write them.
                if b {
                    list.insert(0, entry);
                } else {
                    list.push(entry);
                }
            }
            if list.is_empty() {
                step.next_steps.conditional = None;
            }
        }
    }
}

/// The key a `previous_step` input uses to read `source`'s whole result.
pub fn result_key(source: &str) -> String {
    format!("{source}.result")
}

/// Makes input `index` of step `to` read `source`'s result; `index == inputs.len()` appends a
/// new input.
pub fn connect_data(workflow: &mut Workflow, source: &str, to: &str, index: usize) {
    let Some(step) = workflow.steps.get_mut(to) else {
        return;
    };
    let key = result_key(source);
    if let Some(input) = step.inputs.get_mut(index) {
        input.source = InputSource::PreviousStep;
        input.key = key;
    } else {
        step.inputs
            .push(StepInput::new(InputSource::PreviousStep, &key));
    }
}

/// Removes input `index` of step `to`.
pub fn remove_input(workflow: &mut Workflow, to: &str, index: usize) {
    if let Some(step) = workflow.steps.get_mut(to)
        && index < step.inputs.len()
    {
        step.inputs.remove(index);
    }
}

/// Removes every `previous_step` input of any step that reads `source`.
pub fn disconnect_all_readers(workflow: &mut Workflow, source: &str) {
    for step in workflow.steps.values_mut() {
        step.inputs.retain(|i| i.referenced_step() != Some(source));
    }
}

/// Removes every flow edge into `target`.
pub fn disconnect_all_flow_into(workflow: &mut Workflow, target: &str) {
    let ids: Vec<String> = workflow.steps.keys().cloned().collect();
    for id in ids {
        let Some(step) = workflow.steps.get(&id) else {
            continue;
        };
        let ports: Vec<FlowPort> = [
            FlowPort::Default,
            FlowPort::Branch(true),
            FlowPort::Branch(false),
        ]
        .into_iter()
        .filter(|p| flow_target(step, *p) == Some(target))
        .collect();
        for p in ports {
            set_flow(workflow, &id, p, None);
        }
    }
}

/// An id not used by any step, derived from `base` (`base`, `base-2`, `base-3`, …).
pub fn unique_id(workflow: &Workflow, base: &str) -> String {
    let base = sanitize_id(base);
    if !workflow.steps.contains_key(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|id| !workflow.steps.contains_key(id))
        .unwrap_or(base)
}

/// Lower-case letters, digits and dashes, as step ids are written.
pub fn sanitize_id(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        "step".to_string()
    } else {
        out
    }
}

/// Adds a step for `step_type/operation` at `pos` and returns its id. The first step of an
/// empty workflow becomes its initial step.
pub fn add_step(
    workflow: &mut Workflow,
    step_type: StepType,
    operation: &str,
    pos: NodePosition,
) -> String {
    let base = if operation.is_empty() {
        step_type.as_str()
    } else {
        operation
    };
    let id = unique_id(workflow, base);
    workflow
        .steps
        .insert(id.clone(), WorkflowStep::new(&id, step_type, operation));
    workflow
        .layout
        .get_or_insert_with(Layout::default)
        .nodes
        .insert(id.clone(), pos);
    if workflow.initial_step.is_empty() || !workflow.steps.contains_key(&workflow.initial_step) {
        workflow.initial_step = id.clone();
    }
    id
}

/// Deletes a step and every reference to it (flow edges, inputs, layout).
pub fn delete_step(workflow: &mut Workflow, id: &str) {
    if workflow.steps.shift_remove(id).is_none() {
        return;
    }
    disconnect_all_flow_into(workflow, id);
    disconnect_all_readers(workflow, id);
    if let Some(layout) = &mut workflow.layout {
        layout.nodes.shift_remove(id);
    }
    if workflow.initial_step == id {
        workflow.initial_step = workflow.steps.keys().next().cloned().unwrap_or_default();
    }
}

/// Copies a step (parameters, inputs, settings; no successors) next to the original and
/// returns the copy's id.
pub fn duplicate_step(workflow: &mut Workflow, id: &str) -> Option<String> {
    let original = workflow.steps.get(id)?.clone();
    let new_id = unique_id(workflow, id);
    let mut copy = original;
    copy.id = new_id.clone();
    copy.next_steps = Default::default();
    let pos = position(workflow, id).unwrap_or(NodePosition { x: 0.0, y: 0.0 });
    workflow.steps.insert(new_id.clone(), copy);
    workflow
        .layout
        .get_or_insert_with(Layout::default)
        .nodes
        .insert(
            new_id.clone(),
            NodePosition {
                x: pos.x + 40.0,
                y: pos.y + 60.0,
            },
        );
    Some(new_id)
}

/// Why a step cannot be renamed to `new_id`, if it cannot.
pub fn rename_problem(workflow: &Workflow, old: &str, new_id: &str) -> Option<String> {
    if new_id.is_empty() {
        return Some("a step id cannot be empty".into());
    }
    if new_id != old && workflow.steps.contains_key(new_id) {
        return Some(format!("a step called `{new_id}` already exists"));
    }
    if new_id.contains('.') || new_id.chars().any(char::is_whitespace) {
        return Some("a step id cannot contain dots or spaces".into());
    }
    None
}

/// Renames a step and updates every reference: the map key, its `id`, flow edges,
/// `previous_step` input keys, `context.<id>.` parameter references, the initial step and the
/// layout. Keeps the step's place in the file.
pub fn rename_step(workflow: &mut Workflow, old: &str, new_id: &str) -> Result<(), String> {
    if old == new_id {
        return Ok(());
    }
    if let Some(problem) = rename_problem(workflow, old, new_id) {
        return Err(problem);
    }
    let Some(index) = workflow.steps.get_index_of(old) else {
        return Err(format!("no step called `{old}`"));
    };
    let steps = std::mem::take(&mut workflow.steps);
    workflow.steps = steps
        .into_iter()
        .map(|(k, mut step)| {
            if k == old {
                step.id = new_id.to_string();
                (new_id.to_string(), step)
            } else {
                (k, step)
            }
        })
        .collect();
    debug_assert_eq!(workflow.steps.get_index_of(new_id), Some(index));
    let old_prefix = format!("{old}.");
    let context_prefix = format!("context.{old}.");
    for step in workflow.steps.values_mut() {
        if step.next_steps.default.as_deref() == Some(old) {
            step.next_steps.default = Some(new_id.to_string());
        }
        for c in step.next_steps.conditional.iter_mut().flatten() {
            if c.step_id == old {
                c.step_id = new_id.to_string();
            }
        }
        for input in &mut step.inputs {
            if input.source == InputSource::PreviousStep {
                if input.key == old {
                    input.key = new_id.to_string();
                } else if let Some(rest) = input.key.strip_prefix(&old_prefix) {
                    input.key = format!("{new_id}.{rest}");
                }
            }
            if input.source == InputSource::Context
                && let Some(rest) = input.key.strip_prefix(&old_prefix)
            {
                input.key = format!("{new_id}.{rest}");
            }
        }
        for value in step.parameters.values_mut() {
            if let serde_json::Value::String(s) = value
                && let Some(rest) = s.strip_prefix(&context_prefix)
            {
                *s = format!("context.{new_id}.{rest}");
            }
        }
    }
    if workflow.initial_step == old {
        workflow.initial_step = new_id.to_string();
    }
    if let Some(layout) = &mut workflow.layout
        && let Some(pos) = layout.nodes.shift_remove(old)
    {
        layout.nodes.insert(new_id.to_string(), pos);
    }
    Ok(())
}

pub fn position(workflow: &Workflow, id: &str) -> Option<NodePosition> {
    workflow.layout.as_ref()?.nodes.get(id).copied()
}

/// Horizontal distance between layout columns and vertical distance between rows.
const COLUMN: f32 = 400.0;
const ROW: f32 = 150.0;

/// Places every step without a position: columns by control-flow depth from the initial
/// step (breadth first), rows in file order; unreachable steps go in a last column.
pub fn auto_layout(workflow: &mut Workflow, only_missing: bool) {
    let mut depth: indexmap::IndexMap<String, usize> = indexmap::IndexMap::new();
    let mut queue = std::collections::VecDeque::new();
    if workflow.steps.contains_key(&workflow.initial_step) {
        depth.insert(workflow.initial_step.clone(), 0);
        queue.push_back(workflow.initial_step.clone());
    }
    while let Some(id) = queue.pop_front() {
        let d = depth.get(&id).copied().unwrap_or(0);
        let Some(step) = workflow.steps.get(&id) else {
            continue;
        };
        // Data sources are placed before their readers when they are not reached by flow.
        let next: Vec<String> = step.successors().map(str::to_string).collect();
        for n in next {
            if workflow.steps.contains_key(&n) && !depth.contains_key(&n) {
                depth.insert(n.clone(), d + 1);
                queue.push_back(n);
            }
        }
    }
    let last = depth.values().copied().max().map_or(0, |m| m + 1);
    for id in workflow.steps.keys() {
        if !depth.contains_key(id) {
            depth.insert(id.clone(), last);
        }
    }
    let mut rows: std::collections::HashMap<usize, usize> = Default::default();
    let layout = workflow.layout.get_or_insert_with(Layout::default);
    for id in workflow.steps.keys() {
        let column = depth.get(id).copied().unwrap_or(0);
        let row = rows.entry(column).or_insert(0);
        let pos = NodePosition {
            x: 40.0 + column as f32 * COLUMN,
            y: 40.0 + *row as f32 * ROW,
        };
        *row += 1;
        if only_missing && layout.nodes.contains_key(id) {
            continue;
        }
        layout.nodes.insert(id.clone(), pos);
    }
    layout.nodes.retain(|id, _| workflow.steps.contains_key(id));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::templates;

    fn template() -> Workflow {
        templates::find("audio-enhancement")
            .and_then(|t| t.load().ok())
            .unwrap_or_else(|| panic!("template loads"))
    }

    #[test]
    fn rename_updates_every_reference() {
        let mut wf = template();
        rename_step(&mut wf, "evaluate-result", "judge").unwrap();
        assert!(wf.steps.contains_key("judge"));
        assert_eq!(wf.steps.get_index_of("judge"), Some(3));
        assert_eq!(wf.steps["judge"].id, "judge");
        assert_eq!(
            wf.steps["generate-enhanced"].next_steps.default.as_deref(),
            Some("judge")
        );
        assert_eq!(
            wf.steps["regenerate"].next_steps.default.as_deref(),
            Some("judge")
        );
        assert_eq!(wf.steps["regenerate"].inputs[2].key, "judge.result");
        assert_eq!(
            wf.steps["regenerate"].parameters["focusAreas"],
            serde_json::json!("context.judge.result.improvementAreas")
        );
        let report = crate::workflow::validate(&wf, None);
        assert!(report.is_valid(), "{:?}", report.problems);
    }

    #[test]
    fn rename_refuses_clashes() {
        let mut wf = template();
        assert!(rename_step(&mut wf, "finalize", "regenerate").is_err());
        assert!(rename_step(&mut wf, "finalize", "").is_err());
        assert!(rename_step(&mut wf, "finalize", "a.b").is_err());
    }

    #[test]
    fn delete_removes_references() {
        let mut wf = template();
        delete_step(&mut wf, "generate-enhanced");
        assert!(!wf.steps.contains_key("generate-enhanced"));
        assert_eq!(wf.steps["extract-features"].next_steps.default, None);
        assert!(
            wf.steps["finalize"].inputs.is_empty(),
            "{:?}",
            wf.steps["finalize"].inputs
        );
    }

    #[test]
    fn flow_ports_round_trip() {
        let mut wf = template();
        set_flow(
            &mut wf,
            "evaluate-result",
            FlowPort::Branch(false),
            Some("finalize"),
        );
        let step = &wf.steps["evaluate-result"];
        assert_eq!(flow_target(step, FlowPort::Branch(false)), Some("finalize"));
        assert_eq!(flow_target(step, FlowPort::Branch(true)), Some("finalize"));
        set_flow(&mut wf, "evaluate-result", FlowPort::Branch(true), None);
        set_flow(&mut wf, "evaluate-result", FlowPort::Branch(false), None);
        assert_eq!(wf.steps["evaluate-result"].next_steps.conditional, None);
    }

    #[test]
    fn auto_layout_places_by_depth() {
        let mut wf = template();
        wf.layout = None;
        auto_layout(&mut wf, true);
        let p = |id: &str| position(&wf, id).unwrap();
        assert!(p("analyze-audio").x < p("extract-features").x);
        assert!(p("extract-features").x < p("generate-enhanced").x);
        assert_eq!(p("finalize").x, p("regenerate").x);
        assert_ne!(p("finalize").y, p("regenerate").y);
    }

    #[test]
    fn ids_are_unique_and_clean() {
        let wf = template();
        assert_eq!(unique_id(&wf, "finalize"), "finalize-2");
        assert_eq!(sanitize_id("My Step!"), "my-step");
        assert_eq!(sanitize_id("!!"), "step");
    }
}
