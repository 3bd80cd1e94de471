//! A result as a collapsible JSON tree. Long arrays show their first items, so a result
//! with thousands of values draws as fast as a small one.

use egui::{RichText, Ui};
use serde_json::Value;

/// Items of an array shown before "… N more".
const SHOWN_ITEMS: usize = 100;

/// A one-line description of a value: scalars as themselves, containers by size.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Array(a) => format!("[{} items]", a.len()),
        Value::Object(o) => format!("{{{} fields}}", o.len()),
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.6}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string(),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Draws `value` as a tree (its top level shown, fields under `id`).
pub fn tree(ui: &mut Ui, value: &Value, id: egui::Id) {
    node(ui, None, value, id, 0);
}

fn node(ui: &mut Ui, key: Option<&str>, value: &Value, id: egui::Id, depth: usize) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(o) => o.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(a) => a
            .iter()
            .take(SHOWN_ITEMS)
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        scalar => {
            ui.horizontal(|ui| {
                if let Some(k) = key {
                    ui.label(RichText::new(format!("{k}:")).monospace().weak());
                }
                ui.label(RichText::new(describe(scalar)).monospace());
            });
            return;
        }
    };
    let draw_children = |ui: &mut Ui| {
        for (k, v) in &children {
            node(ui, Some(k), v, id.with(k), depth + 1);
        }
        if let Value::Array(a) = value
            && a.len() > SHOWN_ITEMS
        {
            ui.weak(format!("… {} more", a.len() - SHOWN_ITEMS));
        }
    };
    match key {
        None => draw_children(ui),
        Some(k) => {
            egui::CollapsingHeader::new(
                RichText::new(format!("{k}: {}", describe(value))).monospace(),
            )
            .id_salt(id)
            .default_open(depth <= 1 && children.len() <= 16)
            .show(ui, draw_children);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_are_described_briefly() {
        assert_eq!(describe(&json!([1, 2, 3])), "[3 items]");
        assert_eq!(describe(&json!({"a": 1})), "{1 fields}");
        assert_eq!(describe(&json!(0.25)), "0.25");
        assert_eq!(describe(&json!(120)), "120");
        assert_eq!(describe(&json!("x")), "\"x\"");
        assert_eq!(describe(&json!(null)), "null");
    }
}
