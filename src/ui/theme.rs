//! Colours and small shared widgets.

use egui::{Color32, RichText, Ui};

use super::run::NodeStatus;
use crate::workflow::StepType;

pub const FLOW: Color32 = Color32::from_rgb(220, 220, 220);
pub const DATA: Color32 = Color32::from_rgb(90, 170, 255);
pub const PARAM: Color32 = Color32::from_rgb(240, 200, 90);
pub const CONTEXT: Color32 = Color32::from_rgb(190, 140, 255);
pub const TRUE: Color32 = Color32::from_rgb(110, 210, 120);
pub const FALSE: Color32 = Color32::from_rgb(235, 110, 100);
pub const ERROR: Color32 = Color32::from_rgb(240, 80, 70);
pub const WARNING: Color32 = Color32::from_rgb(240, 180, 60);
pub const SELECTED: Color32 = Color32::from_rgb(255, 230, 120);

/// The colour of a step type (node border and header).
pub fn type_color(t: StepType) -> Color32 {
    match t {
        StepType::Analysis => Color32::from_rgb(70, 140, 230),
        StepType::Generation => Color32::from_rgb(200, 90, 200),
        StepType::Conditional => Color32::from_rgb(230, 170, 50),
        StepType::Transformation => Color32::from_rgb(60, 180, 130),
    }
}

pub fn status_color(status: &NodeStatus) -> Color32 {
    match status {
        NodeStatus::Pending => Color32::GRAY,
        NodeStatus::Running { .. } => Color32::from_rgb(90, 170, 255),
        NodeStatus::Done => TRUE,
        NodeStatus::Cached => Color32::from_rgb(120, 200, 200),
        NodeStatus::Failed(_) => ERROR,
        NodeStatus::Skipped => Color32::DARK_GRAY,
        NodeStatus::Cancelled => WARNING,
    }
}

/// A small coloured status label (with a progress bar while running).
pub fn status_badge(ui: &mut Ui, status: &NodeStatus) {
    let color = status_color(status);
    ui.label(
        RichText::new(format!("● {}", status.label()))
            .small()
            .color(color),
    )
    .on_hover_text(status.detail());
    if let NodeStatus::Running {
        fraction: Some(f), ..
    } = status
    {
        ui.add(
            egui::ProgressBar::new(*f)
                .desired_width(110.0)
                .show_percentage(),
        );
    }
}
