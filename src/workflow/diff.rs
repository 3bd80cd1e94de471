//! What changed between two versions of a workflow, field by field.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::Workflow;

/// One changed field: its path from the workflow root (as validation problems name fields),
/// and its value before and after (absent when the field was added or removed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub field: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

/// Every field that differs, in a stable order. `metadata.updatedAt` is ignored: it changes
/// with every save and says nothing about the workflow.
pub fn diff(before: &Workflow, after: &Workflow) -> Vec<Change> {
    let (Ok(a), Ok(b)) = (serde_json::to_value(before), serde_json::to_value(after)) else {
        return Vec::new();
    };
    let mut changes = Vec::new();
    walk("", Some(&a), Some(&b), &mut changes);
    changes.retain(|c| c.field != "metadata.updatedAt");
    changes
}

fn walk(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<Change>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            for (k, v) in x {
                walk(&join(path, k), Some(v), y.get(k), out);
            }
            for (k, v) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                walk(&join(path, k), None, Some(v), out);
            }
        }
        (Some(x), Some(y)) if x == y => {}
        (a, b) => out.push(Change {
            field: path.to_string(),
            before: a.cloned(),
            after: b.cloned(),
        }),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A one-line account of a change list: which steps were added, removed or edited.
pub fn summarize(changes: &[Change]) -> String {
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut edited: Vec<&str> = Vec::new();
    let mut other = 0;
    for c in changes {
        let parts: Vec<&str> = c.field.splitn(3, '.').collect();
        match parts.as_slice() {
            ["steps", id] if c.before.is_none() => added.push(*id),
            ["steps", id] if c.after.is_none() => removed.push(*id),
            ["steps", id, ..] => {
                if !edited.contains(id) {
                    edited.push(id)
                }
            }
            _ => other += 1,
        }
    }
    let mut parts = Vec::new();
    for (label, ids) in [
        ("added", &added),
        ("removed", &removed),
        ("edited", &edited),
    ] {
        if !ids.is_empty() {
            parts.push(format!("{label} {}", ids.join(", ")));
        }
    }
    if other > 0 {
        parts.push(format!("{other} workflow field(s) changed"));
    }
    if parts.is_empty() {
        "no changes".to_string()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::{StepType, WorkflowStep};

    #[test]
    fn reports_added_removed_and_edited_steps() {
        let mut a = Workflow::new(
            "w",
            "w",
            WorkflowStep::new("one", StepType::Analysis, "features"),
        );
        a.steps.insert(
            "two".into(),
            WorkflowStep::new("two", StepType::Analysis, "loudness"),
        );
        let mut b = a.clone();
        b.steps.shift_remove("two");
        b.steps.insert(
            "three".into(),
            WorkflowStep::new("three", StepType::Transformation, "gain"),
        );
        b.steps["one"]
            .parameters
            .insert("hop".into(), serde_json::json!(256));
        b.name = "renamed".into();
        let changes = diff(&a, &b);
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "steps.one.parameters.hop",
                "steps.two",
                "steps.three"
            ]
        );
        assert_eq!(
            summarize(&changes),
            "added three; removed two; edited one; 1 workflow field(s) changed"
        );
        assert_eq!(summarize(&diff(&a, &a)), "no changes");
    }
}
