//! Copy and paste of steps as text: the copied steps form a small workflow in RON (the
//! native file format, so it is readable and can go through any clipboard), and pasting
//! gives colliding ids fresh names while keeping the links between the pasted steps.

use crate::workflow::file::{parse_str, to_string};
use crate::workflow::{Format, Layout, NodePosition, Workflow};

use super::edits;

/// How far pasted nodes sit from the copied ones, so they do not hide them.
const PASTE_OFFSET: NodePosition = NodePosition { x: 40.0, y: 60.0 };

/// The steps `ids` of `wf` (with their node positions) as RON text; `None` when none of
/// them exists.
pub fn copy(wf: &Workflow, ids: &[String]) -> Option<String> {
    let mut part = wf.clone();
    part.steps = wf
        .steps
        .iter()
        .filter(|(k, _)| ids.contains(k))
        .map(|(k, s)| (k.clone(), s.clone()))
        .collect();
    let first = part.steps.keys().next()?.clone();
    part.initial_step = first;
    part.parameters = Default::default();
    part.layout = Some(Layout {
        nodes: part
            .steps
            .keys()
            .filter_map(|k| edits::position(wf, k).map(|p| (k.clone(), p)))
            .collect(),
    });
    to_string(&part, Format::Ron).ok()
}

/// Adds the steps of copied `text` to `wf`. Ids that are taken get fresh ones, and
/// references between the pasted steps follow; a `nextSteps` target that is neither
/// pasted nor in `wf` is dropped. Returns the ids of the pasted steps.
pub fn paste(wf: &mut Workflow, text: &str) -> Result<Vec<String>, String> {
    let mut part = parse_str(text, Format::Ron)
        .map_err(|e| format!("the clipboard does not hold steps: {e}"))?;
    if part.steps.is_empty() {
        return Err("the clipboard holds no steps".into());
    }
    let originals: Vec<String> = part.steps.keys().cloned().collect();
    let mut pasted = Vec::with_capacity(originals.len());
    for id in &originals {
        let fresh = if wf.steps.contains_key(id) {
            let base = edits::sanitize_id(id);
            (2..)
                .map(|n| format!("{base}-{n}"))
                .find(|c| !wf.steps.contains_key(c) && !part.steps.contains_key(c))
                .unwrap_or(base)
        } else {
            id.clone()
        };
        if fresh != *id {
            edits::rename_step(&mut part, id, &fresh)?;
        }
        pasted.push(fresh);
    }
    let known = |target: &str| part.steps.contains_key(target) || wf.steps.contains_key(target);
    let mut steps = part.steps.clone();
    for step in steps.values_mut() {
        if step
            .next_steps
            .default
            .as_deref()
            .is_some_and(|t| !known(t))
        {
            step.next_steps.default = None;
        }
        if let Some(branches) = &mut step.next_steps.conditional {
            branches.retain(|c| known(&c.step_id));
        }
    }
    let layout = wf.layout.get_or_insert_with(Layout::default);
    for (k, step) in steps {
        let pos = part
            .layout
            .as_ref()
            .and_then(|l| l.nodes.get(&k).copied())
            .unwrap_or(NodePosition { x: 0.0, y: 0.0 });
        layout.nodes.insert(
            k.clone(),
            NodePosition {
                x: pos.x + PASTE_OFFSET.x,
                y: pos.y + PASTE_OFFSET.y,
            },
        );
        wf.steps.insert(k, step);
    }
    if wf.initial_step.is_empty() || !wf.steps.contains_key(&wf.initial_step) {
        wf.initial_step = pasted[0].clone();
    }
    Ok(pasted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::{InputSource, StepInput, StepType, WorkflowStep};

    fn wf() -> Workflow {
        let mut a = WorkflowStep::new("a", StepType::Analysis, "loudness");
        a.next_steps.default = Some("b".into());
        let mut b = WorkflowStep::new("b", StepType::Transformation, "gain");
        b.inputs
            .push(StepInput::new(InputSource::PreviousStep, "a.result"));
        b.next_steps.default = Some("c".into());
        let c = WorkflowStep::new("c", StepType::Analysis, "loudness");
        let mut w = Workflow::new("w", "w", a);
        w.steps.insert("b".into(), b);
        w.steps.insert("c".into(), c);
        edits::auto_layout(&mut w, true);
        w
    }

    #[test]
    fn pasting_into_the_same_workflow_renames_and_keeps_links() {
        let mut w = wf();
        let text = copy(&w, &["a".into(), "b".into()]).unwrap();
        let pasted = paste(&mut w, &text).unwrap();
        assert_eq!(pasted, ["a-2", "b-2"]);
        assert_eq!(w.steps["a-2"].next_steps.default.as_deref(), Some("b-2"));
        assert_eq!(w.steps["b-2"].inputs[0].key, "a-2.result");
        // `c` exists in the workflow, so the link to it stays.
        assert_eq!(w.steps["b-2"].next_steps.default.as_deref(), Some("c"));
        let (p, q) = (
            edits::position(&w, "a").unwrap(),
            edits::position(&w, "a-2").unwrap(),
        );
        assert_eq!((q.x - p.x, q.y - p.y), (40.0, 60.0));
        assert_eq!(w.initial_step, "a");
    }

    #[test]
    fn pasting_elsewhere_drops_links_to_missing_steps() {
        let w = wf();
        let text = copy(&w, &["b".into()]).unwrap();
        let mut other = Workflow::new("o", "o", WorkflowStep::new("x", StepType::Analysis, ""));
        let pasted = paste(&mut other, &text).unwrap();
        assert_eq!(pasted, ["b"]);
        assert_eq!(other.steps["b"].next_steps.default, None);
    }

    #[test]
    fn text_that_is_not_steps_is_refused() {
        let mut w = wf();
        assert!(paste(&mut w, "hello").is_err());
        assert_eq!(w.steps.len(), 3);
    }
}
