//! The inspector: edits the selected step (or the workflow when nothing is selected). Every
//! change is one undoable edit of the model; typing in one field merges into one entry.

use std::collections::HashMap;

use egui::{RichText, Ui};
use serde_json::Value;

use super::document::Document;
use super::edits::{self, FlowPort, flow_target};
use super::files::{FileDialogs, FilePurpose};
use crate::engine::{OperationRegistry, ParamKind, ParamSpec};
use crate::workflow::{
    Condition, ConditionOperator, InputSource, StepInput, StepType, Workflow, WorkflowStep,
};

/// Text being typed that is only applied when it is complete.
#[derive(Default)]
pub struct InspectorState {
    /// The step the buffers belong to.
    step: Option<String>,
    rename: String,
    rename_error: Option<String>,
    /// JSON text fields by field key, kept while they do not parse.
    json: HashMap<String, String>,
    new_param: String,
}

/// What the inspector asks the app to do besides editing.
#[derive(Debug, Clone, PartialEq)]
pub enum InspectorAction {
    /// The selected step was renamed.
    Renamed(String),
}

fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads typed text as JSON where it parses, else as a string.
pub fn parse_loose(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

pub fn show(
    ui: &mut Ui,
    doc: &mut Document,
    selected: Option<&str>,
    registry: &OperationRegistry,
    state: &mut InspectorState,
    files: &mut FileDialogs,
) -> Vec<InspectorAction> {
    let mut actions = Vec::new();
    egui::ScrollArea::vertical()
        .id_salt("inspector")
        .show(ui, |ui| match selected {
            Some(id) if doc.workflow().steps.contains_key(id) => {
                step_inspector(ui, doc, id, registry, state, files, &mut actions)
            }
            _ => workflow_inspector(ui, doc, state),
        });
    actions
}

fn labelled_text(ui: &mut Ui, label: &str, text: &mut String, multiline: bool) -> egui::Response {
    ui.horizontal(|ui| {
        let l = ui.label(label);
        let edit = if multiline {
            egui::TextEdit::multiline(text).desired_rows(2)
        } else {
            egui::TextEdit::singleline(text)
        };
        ui.add(edit.desired_width(f32::INFINITY)).labelled_by(l.id)
    })
    .inner
}

fn workflow_inspector(ui: &mut Ui, doc: &mut Document, state: &mut InspectorState) {
    ui.heading("Workflow");
    let wf = doc.workflow().clone();
    let mut name = wf.name.clone();
    if labelled_text(ui, "Name", &mut name, false).changed() {
        doc.edit_merging("Rename workflow", "wf.name", |w| w.name = name);
    }
    let mut id = wf.id.clone();
    if labelled_text(ui, "Id", &mut id, false).changed() {
        doc.edit_merging("Change workflow id", "wf.id", |w| w.id = id);
    }
    let mut description = wf.description.clone();
    if labelled_text(ui, "Description", &mut description, true).changed() {
        doc.edit_merging("Edit description", "wf.description", |w| {
            w.description = description
        });
    }
    ui.horizontal(|ui| {
        ui.label("Initial step");
        egui::ComboBox::from_id_salt("initial-step")
            .selected_text(if wf.initial_step.is_empty() {
                "(none)"
            } else {
                wf.initial_step.as_str()
            })
            .show_ui(ui, |ui| {
                for sid in wf.steps.keys() {
                    if ui.selectable_label(*sid == wf.initial_step, sid).clicked() {
                        let sid = sid.clone();
                        doc.edit("Set initial step", |w| w.initial_step = sid);
                    }
                }
            });
    });
    ui.separator();
    ui.strong("Run parameters");
    ui.weak("Defaults; an empty value (null) must be given when running.");
    let mut remove = None;
    for (key, value) in &wf.parameters {
        ui.horizontal(|ui| {
            let field = format!("wf.param.{key}");
            let text = state.json.entry(field.clone()).or_insert_with(|| {
                if value.is_null() {
                    String::new()
                } else {
                    json_text(value)
                }
            });
            let l = ui.label(key);
            let r = ui
                .add(egui::TextEdit::singleline(text).desired_width(140.0))
                .labelled_by(l.id);
            if r.changed() {
                let v = if text.trim().is_empty() {
                    Value::Null
                } else {
                    parse_loose(text)
                };
                let key = key.clone();
                doc.edit_merging("Edit run parameter", &field, |w| {
                    w.parameters.insert(key, v);
                });
            }
            if ui
                .small_button("−")
                .on_hover_text("Remove parameter")
                .clicked()
            {
                remove = Some(key.clone());
            }
        });
    }
    if let Some(key) = remove {
        state.json.remove(&format!("wf.param.{key}"));
        doc.edit("Remove run parameter", |w| {
            w.parameters.shift_remove(&key);
        });
    }
    ui.horizontal(|ui| {
        ui.add(
            egui::TextEdit::singleline(&mut state.new_param)
                .hint_text("new parameter")
                .desired_width(140.0),
        );
        let name = state.new_param.trim().to_string();
        if ui
            .add_enabled(
                !name.is_empty() && !wf.parameters.contains_key(&name),
                egui::Button::new("Add"),
            )
            .clicked()
        {
            doc.edit("Add run parameter", |w| {
                w.parameters.insert(name, Value::Null);
            });
            state.new_param.clear();
        }
    });
    ui.separator();
    ui.strong("Metadata");
    let mut created_by = wf.metadata.created_by.clone();
    if labelled_text(ui, "Created by", &mut created_by, false).changed() {
        doc.edit_merging("Edit metadata", "wf.createdBy", |w| {
            w.metadata.created_by = created_by
        });
    }
    let mut version = wf.metadata.version.clone();
    if labelled_text(ui, "Version", &mut version, false).changed() {
        doc.edit_merging("Edit metadata", "wf.version", |w| {
            w.metadata.version = version
        });
    }
    ui.weak(format!(
        "Created {} · updated {}",
        wf.metadata.created_at.format("%Y-%m-%d %H:%M"),
        wf.metadata.updated_at.format("%Y-%m-%d %H:%M")
    ));
}

fn step_inspector(
    ui: &mut Ui,
    doc: &mut Document,
    id: &str,
    registry: &OperationRegistry,
    state: &mut InspectorState,
    files: &mut FileDialogs,
    actions: &mut Vec<InspectorAction>,
) {
    if state.step.as_deref() != Some(id) {
        state.step = Some(id.to_string());
        state.rename = id.to_string();
        state.rename_error = None;
        state.json.retain(|k, _| k.starts_with("wf."));
    }
    let wf: Workflow = doc.workflow().clone();
    let Some(step) = wf.steps.get(id).cloned() else {
        return;
    };
    ui.heading(format!("Step {id}"));

    // Id: applied on Enter or when the field loses focus, updating every reference.
    ui.horizontal(|ui| {
        let l = ui.label("Id");
        let r = ui
            .add(egui::TextEdit::singleline(&mut state.rename).desired_width(160.0))
            .labelled_by(l.id);
        state.rename_error = edits::rename_problem(&wf, id, state.rename.trim());
        if r.lost_focus() && state.rename.trim() != id {
            let new_id = state.rename.trim().to_string();
            match doc.edit("Rename step", |w| edits::rename_step(w, id, &new_id)) {
                Ok(()) => {
                    state.step = Some(new_id.clone());
                    actions.push(InspectorAction::Renamed(new_id));
                }
                Err(e) => state.rename_error = Some(e),
            }
        }
    });
    if state.rename.trim() != id
        && let Some(e) = &state.rename_error
    {
        ui.label(RichText::new(e).color(super::theme::ERROR).small());
    }

    // Type and operation.
    ui.horizontal(|ui| {
        ui.label("Type");
        egui::ComboBox::from_id_salt("step-type")
            .selected_text(step.step_type.as_str())
            .show_ui(ui, |ui| {
                for t in StepType::ALL {
                    if ui
                        .selectable_label(t == step.step_type, t.as_str())
                        .clicked()
                    {
                        doc.edit("Change step type", |w| {
                            if let Some(s) = w.steps.get_mut(id) {
                                s.step_type = t;
                            }
                        });
                    }
                }
            });
    });
    ui.horizontal(|ui| {
        ui.label("Operation");
        let ops: Vec<String> = registry
            .specs()
            .filter(|s| s.step_type == step.step_type)
            .map(|s| s.name.clone())
            .collect();
        egui::ComboBox::from_id_salt("step-operation")
            .selected_text(if step.operation.is_empty() {
                "(none)"
            } else {
                step.operation.as_str()
            })
            .show_ui(ui, |ui| {
                if step.step_type == StepType::Conditional
                    && ui
                        .selectable_label(step.operation.is_empty(), "(none)")
                        .clicked()
                {
                    doc.edit("Change operation", |w| {
                        if let Some(s) = w.steps.get_mut(id) {
                            s.operation.clear();
                        }
                    });
                }
                for op in ops {
                    if ui.selectable_label(op == step.operation, &op).clicked() {
                        doc.edit("Change operation", |w| {
                            if let Some(s) = w.steps.get_mut(id) {
                                s.operation = op;
                            }
                        });
                    }
                }
            });
    });
    let spec = registry
        .get(step.step_type, &step.operation)
        .map(|op| op.spec().clone());
    if let Some(spec) = &spec {
        ui.label(RichText::new(&spec.description).small().weak());
    } else if !step.operation.is_empty() {
        ui.label(
            RichText::new(format!(
                "`{}` is not an operation of this build; parameters are edited as JSON.",
                step.qualified_operation()
            ))
            .small()
            .color(super::theme::WARNING),
        );
    }
    if wf.initial_step != id {
        if ui.button("Make initial step").clicked() {
            doc.edit("Set initial step", |w| w.initial_step = id.to_string());
        }
    } else {
        ui.label(RichText::new("▶ initial step").color(egui::Color32::LIGHT_GREEN));
    }

    // Parameters.
    ui.separator();
    ui.strong("Parameters");
    if let Some(spec) = &spec {
        for p in &spec.parameters {
            param_widget(ui, doc, id, &step, p, state, files);
        }
    }
    let extra: Vec<(String, Value)> = step
        .parameters
        .iter()
        .filter(|(k, _)| spec.as_ref().is_none_or(|s| s.param(k).is_none()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut remove = None;
    for (key, value) in extra {
        ui.horizontal(|ui| {
            let field = format!("{id}.param.{key}");
            let text = state
                .json
                .entry(field.clone())
                .or_insert_with(|| json_text(&value));
            let l = ui.label(&key);
            if ui
                .add(egui::TextEdit::singleline(text).desired_width(150.0))
                .labelled_by(l.id)
                .changed()
            {
                let v = parse_loose(text);
                doc.edit_merging("Edit parameter", &field, |w| {
                    if let Some(s) = w.steps.get_mut(id) {
                        s.parameters.insert(key.clone(), v);
                    }
                });
            }
            if ui
                .small_button("−")
                .on_hover_text("Remove parameter")
                .clicked()
            {
                remove = Some(key.clone());
            }
        });
    }
    if let Some(key) = remove {
        state.json.remove(&format!("{id}.param.{key}"));
        doc.edit("Remove parameter", |w| {
            if let Some(s) = w.steps.get_mut(id) {
                s.parameters.shift_remove(&key);
            }
        });
    }
    ui.horizontal(|ui| {
        ui.add(
            egui::TextEdit::singleline(&mut state.new_param)
                .hint_text("new parameter")
                .desired_width(140.0),
        );
        let name = state.new_param.trim().to_string();
        if ui
            .add_enabled(
                !name.is_empty() && !step.parameters.contains_key(&name),
                egui::Button::new("Add"),
            )
            .clicked()
        {
            doc.edit("Add parameter", |w| {
                if let Some(s) = w.steps.get_mut(id) {
                    s.parameters.insert(name, Value::Null);
                }
            });
            state.new_param.clear();
        }
    });

    inputs_editor(ui, doc, id, &step, &wf);
    flow_editor(ui, doc, id, &step, &wf);
    condition_editor(ui, doc, id, &step, state);
    settings_editor(ui, doc, id, &step);
}

fn set_param(doc: &mut Document, id: &str, name: &str, value: Option<Value>, merge: bool) {
    let key = format!("{id}.param.{name}");
    let f = |w: &mut Workflow| {
        if let Some(s) = w.steps.get_mut(id) {
            match value {
                Some(v) => {
                    s.parameters.insert(name.to_string(), v);
                }
                None => {
                    s.parameters.shift_remove(name);
                }
            }
        }
    };
    if merge {
        doc.edit_merging("Edit parameter", &key, f);
    } else {
        doc.edit("Edit parameter", f);
    }
}

fn param_widget(
    ui: &mut Ui,
    doc: &mut Document,
    id: &str,
    step: &WorkflowStep,
    p: &ParamSpec,
    state: &mut InspectorState,
    files: &mut FileDialogs,
) {
    let set = step.parameters.get(&p.name).filter(|v| !v.is_null());
    let current = set.or(p.default.as_ref());
    ui.horizontal(|ui| {
        let label = ui
            .label(if set.is_some() {
                RichText::new(&p.name).strong()
            } else {
                RichText::new(&p.name)
            })
            .on_hover_text(&p.description);
        match &p.kind {
            ParamKind::Number { min, max } => {
                let mut v = current.and_then(Value::as_f64).unwrap_or(0.0);
                let r = match (min, max) {
                    (Some(lo), Some(hi)) => ui.add(egui::Slider::new(&mut v, *lo..=*hi)),
                    _ => {
                        let mut d = egui::DragValue::new(&mut v).speed(0.01);
                        if let Some(lo) = min {
                            d = d.range(*lo..=f64::INFINITY);
                        }
                        if let Some(hi) = max {
                            d = d.range(f64::NEG_INFINITY..=*hi);
                        }
                        ui.add(d)
                    }
                }
                .labelled_by(label.id);
                if r.changed()
                    && let Some(n) = serde_json::Number::from_f64(v)
                {
                    set_param(doc, id, &p.name, Some(Value::Number(n)), true);
                }
            }
            ParamKind::Integer { min, max } => {
                let mut v = current.and_then(Value::as_i64).unwrap_or(0);
                let r = match (min, max) {
                    (Some(lo), Some(hi)) => ui.add(egui::Slider::new(&mut v, *lo..=*hi)),
                    _ => ui.add(
                        egui::DragValue::new(&mut v)
                            .range(min.unwrap_or(i64::MIN)..=max.unwrap_or(i64::MAX)),
                    ),
                }
                .labelled_by(label.id);
                if r.changed() {
                    set_param(doc, id, &p.name, Some(Value::from(v)), true);
                }
            }
            ParamKind::Boolean => {
                let mut v = current.and_then(Value::as_bool).unwrap_or(false);
                if ui.checkbox(&mut v, "").labelled_by(label.id).changed() {
                    set_param(doc, id, &p.name, Some(Value::Bool(v)), false);
                }
            }
            ParamKind::Choice { choices } => {
                let now = current.and_then(Value::as_str).unwrap_or("").to_string();
                egui::ComboBox::from_id_salt(("choice", &p.name))
                    .selected_text(&now)
                    .show_ui(ui, |ui| {
                        for c in choices {
                            if ui.selectable_label(*c == now, c).clicked() {
                                set_param(doc, id, &p.name, Some(Value::String(c.clone())), false);
                            }
                        }
                    });
            }
            ParamKind::String | ParamKind::Path { .. } => {
                let mut text = current.map(json_text).unwrap_or_default();
                let r = ui
                    .add(egui::TextEdit::singleline(&mut text).desired_width(150.0))
                    .labelled_by(label.id);
                if r.changed() {
                    set_param(doc, id, &p.name, Some(Value::String(text)), true);
                }
                if matches!(p.kind, ParamKind::Path { .. })
                    && ui
                        .small_button("…")
                        .on_hover_text("Choose a file")
                        .clicked()
                {
                    files.browse(
                        FilePurpose::StepParam {
                            step: id.to_string(),
                            name: p.name.clone(),
                        },
                        false,
                        current.and_then(Value::as_str).map(std::path::Path::new),
                    );
                }
            }
            ParamKind::StringList => {
                let mut text = match current {
                    Some(Value::Array(items)) => {
                        items.iter().map(json_text).collect::<Vec<_>>().join(", ")
                    }
                    Some(v) => json_text(v),
                    None => String::new(),
                };
                let r = ui
                    .add(
                        egui::TextEdit::singleline(&mut text)
                            .hint_text("a, b, c or context.…")
                            .desired_width(150.0),
                    )
                    .labelled_by(label.id);
                if r.changed() {
                    let v = if text.trim_start().starts_with("context.") {
                        Value::String(text.trim().to_string())
                    } else {
                        Value::Array(
                            text.split(',')
                                .map(str::trim)
                                .filter(|s| !s.is_empty())
                                .map(|s| Value::String(s.to_string()))
                                .collect(),
                        )
                    };
                    set_param(doc, id, &p.name, Some(v), true);
                }
            }
            ParamKind::Json => {
                let field = format!("{id}.param.{}", p.name);
                let text = state
                    .json
                    .entry(field)
                    .or_insert_with(|| current.map(|v| v.to_string()).unwrap_or_default());
                let r = ui
                    .add(egui::TextEdit::singleline(text).desired_width(150.0))
                    .labelled_by(label.id);
                if r.changed() {
                    let v = parse_loose(text);
                    set_param(doc, id, &p.name, Some(v), true);
                }
            }
        }
        if set.is_some()
            && p.default.is_some()
            && ui
                .small_button("↺")
                .on_hover_text("Reset to the default")
                .clicked()
        {
            set_param(doc, id, &p.name, None, false);
        }
    });
}

fn inputs_editor(ui: &mut Ui, doc: &mut Document, id: &str, step: &WorkflowStep, wf: &Workflow) {
    ui.separator();
    ui.strong("Inputs");
    let mut remove = None;
    for (i, input) in step.inputs.iter().enumerate() {
        ui.horizontal(|ui| {
            egui::ComboBox::from_id_salt(("input-source", i))
                .width(90.0)
                .selected_text(input.source.as_str())
                .show_ui(ui, |ui| {
                    for s in [
                        InputSource::Parameter,
                        InputSource::PreviousStep,
                        InputSource::Context,
                    ] {
                        if ui.selectable_label(s == input.source, s.as_str()).clicked() {
                            doc.edit("Change input source", |w| {
                                if let Some(inp) =
                                    w.steps.get_mut(id).and_then(|st| st.inputs.get_mut(i))
                                {
                                    inp.source = s;
                                }
                            });
                        }
                    }
                });
            let mut key = input.key.clone();
            if ui
                .add(egui::TextEdit::singleline(&mut key).desired_width(140.0))
                .on_hover_text("parameter name, <step>.result[.path], or a context query")
                .changed()
            {
                doc.edit_merging("Edit input", &format!("{id}.input.{i}.key"), |w| {
                    if let Some(inp) = w.steps.get_mut(id).and_then(|st| st.inputs.get_mut(i)) {
                        inp.key = key;
                    }
                });
            }
            let mut name = input.name.clone().unwrap_or_default();
            if ui
                .add(
                    egui::TextEdit::singleline(&mut name)
                        .hint_text("bind to")
                        .desired_width(60.0),
                )
                .changed()
            {
                doc.edit_merging("Edit input", &format!("{id}.input.{i}.name"), |w| {
                    if let Some(inp) = w.steps.get_mut(id).and_then(|st| st.inputs.get_mut(i)) {
                        inp.name = (!name.is_empty()).then_some(name);
                    }
                });
            }
            if ui.small_button("−").clicked() {
                remove = Some(i);
            }
        });
    }
    if let Some(i) = remove {
        doc.edit("Remove input", |w| edits::remove_input(w, id, i));
    }
    ui.horizontal(|ui| {
        if ui.button("+ parameter input").clicked() {
            let key = wf.parameters.keys().next().cloned().unwrap_or_default();
            doc.edit("Add input", |w| {
                if let Some(s) = w.steps.get_mut(id) {
                    s.inputs.push(StepInput::new(InputSource::Parameter, &key));
                }
            });
        }
        ui.menu_button("+ step result", |ui| {
            for other in wf.steps.keys().filter(|k| k.as_str() != id) {
                if ui.button(other).clicked() {
                    doc.edit("Add input", |w| {
                        edits::connect_data(w, other, id, usize::MAX)
                    });
                    ui.close();
                }
            }
        });
    });
}

fn flow_editor(ui: &mut Ui, doc: &mut Document, id: &str, step: &WorkflowStep, wf: &Workflow) {
    ui.separator();
    ui.strong("Next steps");
    for port in FlowPort::for_type(step.step_type) {
        ui.horizontal(|ui| {
            let l = ui.label(port.label());
            let now = flow_target(step, *port).unwrap_or("(end)").to_string();
            egui::ComboBox::from_id_salt(("next", port.label()))
                .selected_text(&now)
                .show_ui(ui, |ui| {
                    if ui.selectable_label(now == "(end)", "(end)").clicked() {
                        doc.edit("Disconnect", |w| edits::set_flow(w, id, *port, None));
                    }
                    for other in wf.steps.keys() {
                        if ui.selectable_label(*other == now, other).clicked() {
                            doc.edit("Connect", |w| edits::set_flow(w, id, *port, Some(other)));
                        }
                    }
                })
                .response
                .labelled_by(l.id);
        });
    }
    if step.step_type != StepType::Conditional && step.next_steps.conditional.is_some() {
        ui.label(
            RichText::new(
                "This step also has conditional branches; make it a conditional step to edit them.",
            )
            .small()
            .color(super::theme::WARNING),
        );
    }
}

fn condition_editor(
    ui: &mut Ui,
    doc: &mut Document,
    id: &str,
    step: &WorkflowStep,
    state: &mut InspectorState,
) {
    ui.separator();
    let mut has = step.condition.is_some();
    if ui
        .checkbox(&mut has, RichText::new("Condition").strong())
        .changed()
    {
        doc.edit("Toggle condition", |w| {
            if let Some(s) = w.steps.get_mut(id) {
                s.condition = has.then(|| Condition {
                    operator: ConditionOperator::GreaterThan,
                    left_operand: "result.value".into(),
                    right_operand: Value::from(0),
                });
            }
        });
        return;
    }
    let Some(cond) = &step.condition else {
        return;
    };
    ui.horizontal(|ui| {
        let mut left = cond.left_operand.clone();
        if ui
            .add(egui::TextEdit::singleline(&mut left).desired_width(130.0))
            .on_hover_text("a path into this step's result, e.g. result.qualityScore")
            .changed()
        {
            doc.edit_merging("Edit condition", &format!("{id}.cond.left"), |w| {
                if let Some(c) = w.steps.get_mut(id).and_then(|s| s.condition.as_mut()) {
                    c.left_operand = left;
                }
            });
        }
        egui::ComboBox::from_id_salt("cond-op")
            .selected_text(cond.operator.as_str())
            .show_ui(ui, |ui| {
                for op in ConditionOperator::ALL {
                    if ui
                        .selectable_label(op == cond.operator, op.as_str())
                        .clicked()
                    {
                        doc.edit("Edit condition", |w| {
                            if let Some(c) = w.steps.get_mut(id).and_then(|s| s.condition.as_mut())
                            {
                                c.operator = op;
                            }
                        });
                    }
                }
            });
        let field = format!("{id}.cond.right");
        let text = state
            .json
            .entry(field.clone())
            .or_insert_with(|| cond.right_operand.to_string());
        if ui
            .add(egui::TextEdit::singleline(text).desired_width(60.0))
            .changed()
        {
            let v = parse_loose(text);
            doc.edit_merging("Edit condition", &field, |w| {
                if let Some(c) = w.steps.get_mut(id).and_then(|s| s.condition.as_mut()) {
                    c.right_operand = v;
                }
            });
        }
    });
}

fn optional_number<T: egui::emath::Numeric>(
    ui: &mut Ui,
    doc: &mut Document,
    id: &str,
    label: &str,
    value: Option<T>,
    default: T,
    set: impl Fn(&mut WorkflowStep, Option<T>),
) {
    ui.horizontal(|ui| {
        let mut on = value.is_some();
        let mut v = value.unwrap_or(default);
        let toggled = ui.checkbox(&mut on, label).changed();
        let changed = ui
            .add_enabled(on, egui::DragValue::new(&mut v).range(default..=T::MAX))
            .changed();
        if toggled || changed {
            let key = format!("{id}.{label}");
            doc.edit_merging(&format!("Edit {label}"), &key, |w| {
                if let Some(s) = w.steps.get_mut(id) {
                    set(s, on.then_some(v));
                }
            });
        }
    });
}

fn settings_editor(ui: &mut Ui, doc: &mut Document, id: &str, step: &WorkflowStep) {
    ui.separator();
    ui.strong("Execution");
    optional_number(
        ui,
        doc,
        id,
        "max iterations",
        step.max_iterations,
        1u32,
        |s, v| s.max_iterations = v,
    );
    optional_number(
        ui,
        doc,
        id,
        "timeout (s)",
        step.timeout_seconds,
        0.0f64,
        |s, v| s.timeout_seconds = v,
    );
    optional_number(ui, doc, id, "retries", step.retries, 0u32, |s, v| {
        s.retries = v
    });
    ui.horizontal(|ui| {
        let mut on = step.priority.is_some();
        let mut v = step.priority.unwrap_or(0);
        let toggled = ui.checkbox(&mut on, "priority").changed();
        let changed = ui.add_enabled(on, egui::DragValue::new(&mut v)).changed();
        if toggled || changed {
            doc.edit_merging("Edit priority", &format!("{id}.priority"), |w| {
                if let Some(s) = w.steps.get_mut(id) {
                    s.priority = on.then_some(v);
                }
            });
        }
    });
    ui.horizontal(|ui| {
        ui.label("cache");
        let now = match step.cache {
            None => "default (on)",
            Some(true) => "on",
            Some(false) => "off",
        };
        egui::ComboBox::from_id_salt("cache")
            .selected_text(now)
            .show_ui(ui, |ui| {
                for (text, v) in [
                    ("default (on)", None),
                    ("on", Some(true)),
                    ("off", Some(false)),
                ] {
                    if ui.selectable_label(step.cache == v, text).clicked() {
                        doc.edit("Edit cache", |w| {
                            if let Some(s) = w.steps.get_mut(id) {
                                s.cache = v;
                            }
                        });
                    }
                }
            });
    });
}
