//! The operation palette: every operation of the registry, grouped by step type and
//! searchable, with its description. Click or drag an entry onto the canvas to add a step.

use egui::{RichText, Ui};

use super::theme;
use crate::engine::{OperationRegistry, OperationSpec};
use crate::workflow::StepType;

/// One thing the palette can add.
#[derive(Debug, Clone, PartialEq)]
pub struct PaletteItem {
    pub step_type: StepType,
    /// Empty for a bare conditional step.
    pub operation: String,
    pub description: String,
}

impl PaletteItem {
    pub fn label(&self) -> String {
        if self.operation.is_empty() {
            format!("{} (condition only)", self.step_type)
        } else {
            format!("{}/{}", self.step_type, self.operation)
        }
    }

    fn from_spec(spec: &OperationSpec) -> Self {
        PaletteItem {
            step_type: spec.step_type,
            operation: spec.name.clone(),
            description: spec.description.clone(),
        }
    }
}

/// The palette entries for a registry, sorted by type then name. A conditional step that only
/// evaluates its condition is always available.
pub fn items(registry: &OperationRegistry) -> Vec<PaletteItem> {
    let mut items: Vec<PaletteItem> = registry.specs().map(PaletteItem::from_spec).collect();
    items.push(PaletteItem {
        step_type: StepType::Conditional,
        operation: String::new(),
        description: "Branches on a condition (true / false outputs) without running an operation"
            .into(),
    });
    items.sort_by(|a, b| {
        (a.step_type, a.operation.as_str()).cmp(&(b.step_type, b.operation.as_str()))
    });
    items
}

/// The entries whose name, type or description contain every word of `query`.
pub fn filter<'a>(items: &'a [PaletteItem], query: &str) -> Vec<&'a PaletteItem> {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    items
        .iter()
        .filter(|item| {
            let hay = format!("{} {}", item.label(), item.description).to_lowercase();
            words.iter().all(|w| hay.contains(w))
        })
        .collect()
}

/// Draws the palette; returns the item the user clicked.
pub fn show(ui: &mut Ui, items: &[PaletteItem], query: &mut String) -> Option<PaletteItem> {
    ui.heading("Operations");
    ui.add(
        egui::TextEdit::singleline(query)
            .hint_text("Search operations")
            .id(egui::Id::new("grym-palette-search")),
    );
    let matches = filter(items, query);
    let mut chosen = None;
    egui::ScrollArea::vertical()
        .id_salt("palette")
        .show(ui, |ui| {
            for t in StepType::ALL {
                let group: Vec<&&PaletteItem> =
                    matches.iter().filter(|i| i.step_type == t).collect();
                if group.is_empty() {
                    continue;
                }
                egui::CollapsingHeader::new(
                    RichText::new(t.as_str()).color(theme::type_color(t)).strong(),
                )
                .id_salt(("palette-group", t.as_str()))
                .default_open(true)
                .show(ui, |ui| {
                    for item in group {
                        let hover = format!("{}\n\nClick to add, or drag onto the canvas.", item.description);
                        let response = ui
                            .add(egui::Button::new(item.label()).sense(egui::Sense::click_and_drag()))
                            .on_hover_text(hover);
                        if response.drag_started() {
                            response.dnd_set_drag_payload((*item).clone());
                        }
                        // The first sentence; the whole description is on hover.
                        let summary = first_sentence(&item.description);
                        if !summary.is_empty() {
                            ui.label(RichText::new(summary).small().weak());
                        }
                        if response.clicked() {
                            chosen = Some((*item).clone());
                        }
                    }
                });
            }
            if matches.is_empty() {
                ui.weak("No operation matches.");
            }
            if items.len() <= 1 {
                ui.separator();
                ui.weak("No operations are registered in this build yet; the audio operations plug in here as they land.");
            }
        });
    chosen
}

/// Text up to the end of its first sentence.
fn first_sentence(text: &str) -> &str {
    match text.find(". ") {
        Some(end) => &text[..=end],
        None => text,
    }
}
