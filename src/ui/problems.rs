//! The problems panel: live validation results; clicking a problem selects its step.

use std::collections::HashMap;

use egui::{RichText, Ui};

use super::theme;
use crate::workflow::{Report, Severity};

/// (errors, warnings) for each step that has problems.
pub fn per_step(report: &Report) -> HashMap<String, (usize, usize)> {
    let mut out: HashMap<String, (usize, usize)> = HashMap::new();
    for p in &report.problems {
        if let Some(step) = &p.step {
            let entry = out.entry(step.clone()).or_default();
            match p.severity {
                Severity::Error => entry.0 += 1,
                Severity::Warning => entry.1 += 1,
                Severity::Info => {}
            }
        }
    }
    out
}

/// Draws the list; returns the step of the problem the user clicked.
pub fn show(ui: &mut Ui, report: &Report) -> Option<String> {
    let mut clicked = None;
    if report.problems.is_empty() {
        ui.label(RichText::new("✔ No problems.").color(theme::TRUE));
        return None;
    }
    egui::ScrollArea::vertical()
        .id_salt("problems")
        .show(ui, |ui| {
            for p in &report.problems {
                let (icon, color) = match p.severity {
                    Severity::Error => ("⛔", theme::ERROR),
                    Severity::Warning => ("⚠", theme::WARNING),
                    Severity::Info => ("ℹ", egui::Color32::GRAY),
                };
                ui.horizontal_wrapped(|ui| {
                    ui.label(RichText::new(icon).color(color));
                    let text = match &p.step {
                        Some(step) => format!("{step}: {}", p.message),
                        None => p.message.clone(),
                    };
                    let r = ui
                        .add(
                            egui::Label::new(RichText::new(text).color(color))
                                .sense(egui::Sense::click()),
                        )
                        .on_hover_text(format!("{} ({})", p.field, p.code));
                    if r.clicked()
                        && let Some(step) = &p.step
                    {
                        clicked = Some(step.clone());
                    }
                    if let Some(hint) = &p.hint {
                        ui.label(RichText::new(hint).small().weak());
                    }
                });
            }
        });
    clicked
}
