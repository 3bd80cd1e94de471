//! The editor's optimisation panel driven through its UI: start a study, watch trials fill
//! the table and plot, apply the best values, reopen a past study, cancel.

mod common;

use common::editor::wait_for;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use grym_synth::engine::Engine;
use grym_synth::engine::optimize::StopReason;
use grym_synth::engine::store::TrialState;
use grym_synth::ui::app::BottomTab;
use grym_synth::ui::{Document, Editor, Settings};
use grym_synth::workflow::Workflow;
use serde_json::json;

fn harness(editor: Editor) -> Harness<'static, Editor> {
    common::editor::harness_sized(editor, 1500.0, 1000.0)
}

/// `peak` tuned over x and y; `mode` is left to the user.
fn peak_workflow(sleep_ms: u64) -> Workflow {
    let mut wf = common::workflow(
        "peak-editor",
        "wait",
        json!({"x": 0.0, "y": 0.0, "mode": null, "ms": sleep_ms}),
        json!({
            "wait": {"type": "analysis", "operation": "sleep", "parameters": {"ms": "parameter.ms"},
                     "nextSteps": {"default": "peak"}},
            "peak": {"type": "analysis", "operation": "peak",
                     "parameters": {"x": "parameter.x", "y": "parameter.y", "mode": "parameter.mode"}}
        }),
    );
    wf.optimization = Some(
        serde_json::from_value(json!({
            "objective": "peak.result.score",
            "parameters": {
                "x": {"range": {"min": -10.0, "max": 10.0}},
                "y": {"range": {"min": -10.0, "max": 10.0}}
            }
        }))
        .unwrap(),
    );
    wf
}

fn open(engine: Engine, wf: Workflow) -> Harness<'static, Editor> {
    let settings = Settings {
        bottom_tab: BottomTab::Optimize,
        // The workflow inspector has fields named after the parameters too.
        show_inspector: false,
        ..Default::default()
    };
    let mut h = harness(Editor::new(Ok(engine), Document::new(wf, None), settings));
    h.run_steps(3);
    h
}

#[test]
fn a_study_runs_from_the_panel_and_its_best_values_apply() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = common::engine(dir.path(), 2);
    let mut h = open(engine.clone(), peak_workflow(1));
    // `mode` has no default: the panel asks for it before starting.
    h.get_by_label("▶ Optimise").click();
    h.run_steps(2);
    assert_eq!(
        h.state().optimize.error.as_deref(),
        Some("`mode` needs a value")
    );
    h.get_by_role_and_label(Role::TextInput, "mode").click();
    h.run_steps(1);
    h.get_by_role_and_label(Role::TextInput, "mode")
        .type_text("b");
    h.run_steps(1);
    h.state_mut().optimize.budget = 8;
    h.state_mut().optimize.seed = "4".into();
    h.get_by_label("▶ Optimise").click();
    h.run_steps(2);
    assert!(h.state().optimize.is_running());
    wait_for(&mut h, "the study to finish", |e| !e.optimize.is_running());
    assert_eq!(h.state().optimize.error, None);
    let view = &h.state().optimize.view;
    assert_eq!(view.stop, Some(StopReason::Budget));
    assert!(view.trials.iter().all(|t| t.state == TrialState::Completed));
    let best = view.best().unwrap().clone();
    assert!(h.query_by_label(&format!("★ {}", best.number)).is_some());
    assert!(
        h.query_by_label_contains("8 of 8 trials finished")
            .is_some()
    );
    // Every trial ran with the typed mode.
    let first = view.trials[0].execution_id.clone().unwrap();
    assert_eq!(
        engine.execution(&first).unwrap().parameters["mode"],
        json!("b")
    );

    h.get_by_label("Apply best").click();
    h.run_steps(2);
    let wf = h.state().doc.workflow().clone();
    assert_eq!(wf.parameters["x"], best.params["x"]);
    assert_eq!(wf.parameters["y"], best.params["y"]);
    assert!(
        h.state().doc.is_dirty(),
        "the document has the new defaults to save"
    );
    let applied = h.state().optimize.view.applied.unwrap();
    let versions = engine.versions("peak-editor").unwrap();
    assert!(
        versions
            .iter()
            .any(|v| v.version == applied && v.note.contains("trial"))
    );
    // Undo takes the values back out of the document.
    h.state_mut().doc.undo();
    assert_eq!(h.state().doc.workflow().parameters["x"], json!(0.0));

    // The study is listed under Past studies and reopens.
    let study_id = h.state().optimize.view.record.as_ref().unwrap().id.clone();
    h.state_mut().optimize.view = Default::default();
    h.state_mut()
        .optimize_action(grym_synth::ui::optimize::OptimizeAction::RefreshStudies);
    wait_for(&mut h, "the study list", |e| !e.optimize.studies.is_empty());
    h.state_mut()
        .optimize_action(grym_synth::ui::optimize::OptimizeAction::LoadStudy(
            study_id,
        ));
    wait_for(&mut h, "the study to load", |e| {
        e.optimize.view.trials.len() == 8
    });
}

#[test]
fn a_running_study_can_be_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = common::engine(dir.path(), 2);
    let mut wf = peak_workflow(20_000);
    wf.parameters.insert("mode".into(), json!("a"));
    let mut h = open(engine, wf);
    h.state_mut().optimize.budget = 50;
    h.get_by_label("▶ Optimise").click();
    wait_for(&mut h, "a trial to start", |e| {
        !e.optimize.view.trials.is_empty()
    });
    h.get_by_label("Cancel study").click();
    wait_for(&mut h, "the study to stop", |e| !e.optimize.is_running());
    let view = &h.state().optimize.view;
    assert_eq!(view.stop, Some(StopReason::Cancelled));
    assert!(view.trials.len() <= 2);
    assert!(view.trials.iter().all(|t| t.state == TrialState::Cancelled));
}

#[test]
fn a_workflow_without_a_section_says_how_to_add_one() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = common::engine(dir.path(), 2);
    let mut wf = peak_workflow(1);
    wf.optimization = None;
    let h = open(engine, wf);
    assert!(
        h.query_by_label_contains("has no optimization section")
            .is_some()
    );
}
