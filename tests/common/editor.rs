//! Driving the real editor headless with egui_kittest.

use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, HarnessBuilder};
use grym_synth::engine::ExecutionStatus;
use grym_synth::ui::Editor;
use grym_synth::ui::run::Phase;

/// The editor in a 1500 × 950 window.
pub fn harness(editor: Editor) -> Harness<'static, Editor> {
    harness_sized(editor, 1500.0, 950.0)
}

pub fn harness_sized(editor: Editor, width: f32, height: f32) -> Harness<'static, Editor> {
    HarnessBuilder::default()
        .with_size(egui::vec2(width, height))
        .build_ui_state(|ui, editor: &mut Editor| editor.show(ui), editor)
}

/// Runs frames until `done` holds (real time passes: the engine works on its threads).
pub fn wait_for(h: &mut Harness<'_, Editor>, what: &str, done: impl Fn(&Editor) -> bool) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.step();
}

/// Runs the open workflow from the Run dialog with its defaults and waits until it has
/// finished; it must have completed.
pub fn run_to_completion(h: &mut Harness<'_, Editor>) {
    h.run_steps(2);
    h.get_by_label("▶ Run").click();
    h.run_steps(2);
    h.get_by_label("Start").click();
    wait_for(h, "the run", |e| matches!(e.run.phase, Phase::Finished(_)));
    assert_eq!(
        h.state().run.phase,
        Phase::Finished(ExecutionStatus::Completed),
        "{:?}",
        h.state().run.error
    );
}
