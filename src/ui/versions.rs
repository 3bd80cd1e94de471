//! The versions window: every stored version of the open workflow (who, when, what
//! changed), the difference between one and the open document, and opening or rolling
//! back to it.

use crossbeam_channel::Receiver;
use egui::{RichText, Ui};
use serde_json::Value;

use crate::engine::Engine;
use crate::engine::store::WorkflowVersion;
use crate::workflow::Workflow;
use crate::workflow::diff::{Change, diff};

/// What the window asks of the editor.
#[derive(Debug, Clone, PartialEq)]
pub enum VersionsAction {
    Refresh,
    /// Replace the document's content with this version (an undoable edit).
    Open(u32),
    /// Make this version current again in the engine, as a new version, and open it.
    RollBack(u32),
}

#[derive(Default)]
pub struct VersionsWindow {
    pub open: bool,
    pub workflow_id: String,
    pub versions: Vec<WorkflowVersion>,
    pub selected: Option<u32>,
    pub error: Option<String>,
    rx: Option<Receiver<Result<Vec<WorkflowVersion>, String>>>,
}

impl VersionsWindow {
    /// Opens the window on `workflow_id` and reads its versions (on a thread).
    pub fn show_for(&mut self, engine: &Engine, workflow_id: &str) {
        self.open = true;
        if self.workflow_id != workflow_id {
            self.selected = None;
            self.versions.clear();
        }
        self.workflow_id = workflow_id.to_string();
        self.refresh(engine);
    }

    pub fn refresh(&mut self, engine: &Engine) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let engine = engine.clone();
        let id = self.workflow_id.clone();
        std::thread::spawn(move || {
            let _ = tx.send(engine.versions(&id).map_err(|e| e.to_string()));
        });
        self.rx = Some(rx);
    }

    pub fn is_busy(&self) -> bool {
        self.rx.is_some()
    }

    pub fn poll(&mut self) {
        if let Some(rx) = &self.rx
            && let Ok(result) = rx.try_recv()
        {
            self.rx = None;
            match result {
                Ok(v) => {
                    self.versions = v;
                    self.error = None;
                }
                Err(e) => self.error = Some(e),
            }
        }
    }

    /// The stored workflow of `version` (none for a deletion or an unreadable one).
    pub fn workflow_of(&self, version: u32) -> Option<Workflow> {
        let v = self.versions.iter().find(|v| v.version == version)?;
        serde_json::from_str(&v.definition).ok()
    }
}

fn short(v: &Option<Value>) -> String {
    match v {
        None => "—".into(),
        Some(Value::String(s)) => format!("\"{s}\""),
        Some(other) => {
            let text = other.to_string();
            if text.chars().count() > 60 {
                format!("{}…", text.chars().take(59).collect::<String>())
            } else {
                text
            }
        }
    }
}

/// Draws the window; `current` is the open document.
pub fn show(
    ctx: &egui::Context,
    window: &mut VersionsWindow,
    current: &Workflow,
) -> Vec<VersionsAction> {
    let mut actions = Vec::new();
    if !window.open {
        return actions;
    }
    let mut open = window.open;
    egui::Window::new(format!("Versions of {}", window.workflow_id))
        .open(&mut open)
        .default_size([760.0, 420.0])
        .show(ctx, |ui| {
            ui.horizontal(|ui| {
                if ui.button("Refresh").clicked() {
                    actions.push(VersionsAction::Refresh);
                }
                if window.is_busy() {
                    ui.spinner();
                }
                if let Some(e) = &window.error {
                    ui.colored_label(super::theme::ERROR, e);
                }
            });
            if window.versions.is_empty() && !window.is_busy() {
                ui.label("No stored versions yet: a workflow is stored when it is run, saved through the API, or optimised.");
                return;
            }
            ui.columns(2, |cols| {
                version_list(&mut cols[0], window);
                version_detail(&mut cols[1], window, current, &mut actions);
            });
        });
    window.open = open;
    actions
}

fn version_list(ui: &mut Ui, window: &mut VersionsWindow) {
    egui::ScrollArea::vertical()
        .id_salt("versions-list")
        .show(ui, |ui| {
            for v in window.versions.iter().rev() {
                let when = crate::engine::timefmt::to_rfc3339(v.created_at);
                let when = when.get(..19).unwrap_or(&when).replace('T', " ");
                let text = format!("v{}  {when}  {}", v.version, v.created_by);
                let selected = window.selected == Some(v.version);
                ui.selectable_label(selected, RichText::new(text).strong())
                    .clicked()
                    .then(|| window.selected = Some(v.version));
                ui.label(RichText::new(&v.note).small().weak());
                ui.add_space(4.0);
            }
        });
}

fn version_detail(
    ui: &mut Ui,
    window: &VersionsWindow,
    current: &Workflow,
    actions: &mut Vec<VersionsAction>,
) {
    let Some(version) = window.selected else {
        ui.label("Select a version to see how it differs from the open workflow.");
        return;
    };
    let Some(stored) = window.workflow_of(version) else {
        ui.label(format!("Version {version} records a deletion."));
        return;
    };
    ui.horizontal(|ui| {
        if ui
            .button("Open in editor")
            .on_hover_text("replace the open workflow with this version (undoable)")
            .clicked()
        {
            actions.push(VersionsAction::Open(version));
        }
        if ui
            .button("Roll back")
            .on_hover_text("make this version current again, stored as a new version, and open it")
            .clicked()
        {
            actions.push(VersionsAction::RollBack(version));
        }
    });
    let changes: Vec<Change> = diff(&stored, current);
    ui.label(if changes.is_empty() {
        format!("Version {version} is the open workflow.")
    } else {
        format!(
            "{} difference(s) from version {version} to the open workflow:",
            changes.len()
        )
    });
    egui::ScrollArea::vertical()
        .id_salt("versions-diff")
        .show(ui, |ui| {
            egui::Grid::new("versions-diff-grid")
                .striped(true)
                .num_columns(3)
                .show(ui, |ui| {
                    for c in &changes {
                        ui.label(RichText::new(&c.field).monospace());
                        ui.label(RichText::new(short(&c.before)).color(super::theme::FALSE));
                        ui.label(RichText::new(short(&c.after)).color(super::theme::TRUE));
                        ui.end_row();
                    }
                });
        });
}
