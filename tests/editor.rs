//! The editor driven through its real UI with egui_kittest: palette, wiring on the canvas,
//! inspector edits, undo/redo, save and reopen, runs with live statuses and cancel.

mod common;

use common::editor::{harness, wait_for};

use egui::accesskit::Role;
use egui::{Key, Modifiers, Pos2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use grym_synth::engine::{Engine, ExecutionStatus};
use grym_synth::ui::run::{NodeStatus, Phase};
use grym_synth::ui::{Document, Editor, Settings};
use grym_synth::workflow::Workflow;
use serde_json::json;

fn editor(engine: Engine, doc: Document) -> Editor {
    Editor::new(Ok(engine), doc, Settings::default())
}

/// Drags with the primary button from `from` to `to` in small moves, as a hand would.
fn drag(h: &mut Harness<'_, Editor>, from: Pos2, to: Pos2) {
    h.hover_at(from);
    h.run_steps(2);
    h.drag_at(from);
    h.run_steps(2);
    for i in 1..=8 {
        let t = i as f32 / 8.0;
        h.hover_at(from + (to - from) * t);
        h.step();
    }
    // Release while the pointer is still over the target pin, then take the pointer away.
    h.event(egui::Event::PointerButton {
        pos: to,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: Modifiers::NONE,
    });
    h.run_steps(2);
    h.remove_cursor();
    h.run_steps(2);
}

/// Where the pin of `label` on `step` is: on the node's left edge for inputs, right edge
/// for outputs, at the height of its row.
fn pin(h: &Harness<'_, Editor>, step: &str, label: &str, output: bool) -> Pos2 {
    let canvas = &h.state().canvas;
    let node = canvas
        .node_rects
        .get(step)
        .unwrap_or_else(|| panic!("node {step} is drawn"));
    let row = canvas
        .pin_rows
        .get(&(step.to_string(), label.to_string()))
        .unwrap_or_else(|| panic!("pin {label} of {step} is drawn"));
    let x = if output { node.right() } else { node.left() };
    Pos2::new(x, row.center().y)
}

/// Clicks a node's header (where its title is), in screen coordinates of the last frame.
fn click_node(h: &mut Harness<'_, Editor>, step: &str) {
    let rect = h
        .state()
        .canvas
        .node_rects
        .get(step)
        .copied()
        .unwrap_or_else(|| panic!("node {step} is drawn"));
    let pos = Pos2::new(rect.center().x, rect.top() + 10.0);
    h.hover_at(pos);
    h.step();
    for pressed in [true, false] {
        h.event(egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: Modifiers::NONE,
        });
    }
    h.run_steps(2);
}

fn sleep_workflow(ms: u64) -> Workflow {
    common::workflow(
        "slow",
        "first",
        json!({}),
        json!({
            "first": {"type": "analysis", "operation": "counter", "nextSteps": {"default": "slow"}},
            "slow": {"type": "analysis", "operation": "sleep", "parameters": {"ms": ms},
                     "nextSteps": {"default": "after"}},
            "after": {"type": "analysis", "operation": "counter"}
        }),
    )
}

#[test]
fn build_wire_edit_undo_save_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _ops) = common::engine(&dir.path().join("data"), 2);
    let mut h = harness(editor(engine, Document::blank()));
    h.run_steps(3);

    // Add two steps from the palette.
    h.get_by_label("analysis/sleep").click();
    h.run_steps(2);
    h.get_by_label("transformation/add").click();
    h.run_steps(4);
    {
        let wf = h.state().doc.workflow();
        assert_eq!(wf.steps.keys().collect::<Vec<_>>(), ["sleep", "add"]);
        assert_eq!(wf.initial_step, "sleep");
    }

    // Wire control flow: sleep.next -> add.flow, on the canvas.
    let from = pin(&h, "sleep", "next", true);
    let to = pin(&h, "add", "flow", false);
    drag(&mut h, from, to);
    assert_eq!(
        h.state().doc.workflow().steps["sleep"]
            .next_steps
            .default
            .as_deref(),
        Some("add"),
        "dragging a flow wire sets nextSteps.default"
    );

    // Wire data: sleep.result -> add's new input.
    let from = pin(&h, "sleep", "result", true);
    let to = pin(&h, "add", "in0", false);
    drag(&mut h, from, to);
    {
        let add = &h.state().doc.workflow().steps["add"];
        assert_eq!(add.inputs.len(), 1, "{:?}", add.inputs);
        assert_eq!(add.inputs[0].key, "sleep.result");
    }

    // Select the sleep node by clicking its title, then edit its `tag` parameter.
    click_node(&mut h, "sleep");
    assert_eq!(h.state().selected.as_deref(), Some("sleep"));
    let tag = h.get_by_role_and_label(Role::TextInput, "tag");
    tag.click();
    h.run_steps(2);
    h.get_by_role_and_label(Role::TextInput, "tag")
        .type_text("hello");
    h.run_steps(2);
    h.key_press(Key::Escape);
    h.run_steps(2);
    assert_eq!(
        h.state().doc.workflow().steps["sleep"]
            .parameters
            .get("tag"),
        Some(&json!("hello"))
    );

    // Undo takes the whole typed value back in one step; redo brings it again.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run_steps(2);
    assert_eq!(
        h.state().doc.workflow().steps["sleep"]
            .parameters
            .get("tag"),
        None
    );
    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    h.run_steps(2);
    assert_eq!(
        h.state().doc.workflow().steps["sleep"]
            .parameters
            .get("tag"),
        Some(&json!("hello"))
    );

    // Save As through the menu with a typed path.
    let path = dir.path().join("built.ron");
    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label("Save As…").click();
    h.run_steps(2);
    let field = h.get_by_role_and_label(Role::TextInput, "Path");
    field.click();
    h.run_steps(1);
    h.key_press_modifiers(Modifiers::COMMAND, Key::A);
    h.get_by_role_and_label(Role::TextInput, "Path")
        .type_text(&path.display().to_string());
    h.run_steps(2);
    h.get_by_label("Save").click();
    h.run_steps(3);
    assert!(path.is_file(), "the file was written");
    assert!(!h.state().doc.is_dirty());
    let saved = h.state().doc.workflow().clone();
    assert!(
        std::fs::read_to_string(&path).unwrap().contains("layout"),
        "node positions are saved"
    );

    // Reopen through File > Open… in a fresh editor and find the same graph.
    let (engine2, _ops2) = common::engine(&dir.path().join("data2"), 2);
    let mut h2 = harness(editor(engine2, Document::blank()));
    h2.run_steps(2);
    h2.get_by_label("File").click();
    h2.run_steps(2);
    h2.get_by_label("Open…").click();
    h2.run_steps(2);
    h2.get_by_role_and_label(Role::TextInput, "Path").click();
    h2.run_steps(1);
    h2.get_by_role_and_label(Role::TextInput, "Path")
        .type_text(&path.display().to_string());
    h2.run_steps(1);
    h2.get_by_label("Open").click();
    h2.run_steps(10);
    let reopened = h2.state().doc.workflow();
    assert_eq!(reopened.steps, saved.steps);
    assert_eq!(reopened.layout, saved.layout);
    assert_eq!(reopened.initial_step, "sleep");
    // The canvas shows both nodes and both wires again.
    assert!(h2.state().canvas.node_rects.contains_key("sleep"));
    assert!(h2.state().canvas.node_rects.contains_key("add"));
    assert_eq!(h2.state().doc.path.as_deref(), Some(path.as_path()));
}

#[test]
fn delete_duplicate_and_rename_keep_references() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _ops) = common::engine(dir.path(), 2);
    let mut h = harness(editor(engine, Document::new(sleep_workflow(1), None)));
    h.run_steps(3);

    // Rename `slow` in the inspector: the edge from `first` follows.
    click_node(&mut h, "slow");
    assert_eq!(
        h.state().selected.as_deref(),
        Some("slow"),
        "clicking a node selects it"
    );
    let id = h.get_by_role_and_label(Role::TextInput, "Id");
    id.click();
    h.run_steps(1);
    h.key_press_modifiers(Modifiers::COMMAND, Key::A);
    h.get_by_role_and_label(Role::TextInput, "Id")
        .type_text("nap");
    h.run_steps(1);
    h.key_press(Key::Enter);
    h.run_steps(3);
    {
        let wf = h.state().doc.workflow();
        assert!(wf.steps.contains_key("nap"));
        assert_eq!(wf.steps["first"].next_steps.default.as_deref(), Some("nap"));
        assert_eq!(h.state().selected.as_deref(), Some("nap"));
    }

    // Duplicate with Ctrl+D, delete with the Delete key, undo both.
    click_node(&mut h, "after");
    h.key_press_modifiers(Modifiers::COMMAND, Key::D);
    h.run_steps(3);
    assert!(h.state().doc.workflow().steps.contains_key("after-2"));
    click_node(&mut h, "nap");
    h.key_press(Key::Delete);
    h.run_steps(3);
    {
        let wf = h.state().doc.workflow();
        assert!(!wf.steps.contains_key("nap"));
        assert_eq!(wf.steps["first"].next_steps.default, None);
    }
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run_steps(2);
    assert_eq!(
        h.state().doc.workflow().steps["first"]
            .next_steps
            .default
            .as_deref(),
        Some("nap")
    );
}

#[test]
fn problems_are_listed_and_select_their_step() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _ops) = common::engine(dir.path(), 2);
    let wf = common::workflow(
        "broken",
        "a",
        json!({}),
        json!({
            "a": {"type": "analysis", "operation": "counter", "nextSteps": {"default": "ghost"}},
        }),
    );
    let mut h = harness(editor(engine, Document::new(wf, None)));
    h.run_steps(3);
    assert!(!h.state().report.is_valid());
    let problem = h
        .get_all_by_label_contains("a: ")
        .next()
        .expect("the problem of step a is listed");
    problem.click();
    h.run_steps(2);
    assert_eq!(h.state().selected.as_deref(), Some("a"));
}

#[test]
fn run_streams_statuses_and_results() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, ops) = common::engine(dir.path(), 2);
    let wf = common::workflow(
        "adder",
        "one",
        json!({"x": null}),
        json!({
            "one": {"type": "transformation", "operation": "add",
                    "inputs": [{"source": "parameter", "key": "x"}],
                    "nextSteps": {"default": "two"}},
            "two": {"type": "transformation", "operation": "add",
                    "inputs": [{"source": "previous_step", "key": "one.result"}]}
        }),
    );
    let mut h = harness(editor(engine, Document::new(wf, None)));
    h.run_steps(3);
    // With a step selected the inspector shows the step, so the only `x` field is the dialog's.
    click_node(&mut h, "one");
    h.get_by_label("▶ Run").click();
    h.run_steps(2);
    // The run dialog asks for `x`; starting without it is refused.
    h.get_by_label("Start").click();
    h.run_steps(2);
    assert!(h.state().run_dialog.is_some(), "x has no default");
    h.get_by_role_and_label(Role::TextInput, "x =").click();
    h.run_steps(1);
    h.get_by_role_and_label(Role::TextInput, "x =")
        .type_text("5");
    h.run_steps(1);
    h.get_by_label("Start").click();
    wait_for(&mut h, "the run to finish", |e| {
        matches!(e.run.phase, Phase::Finished(_))
    });
    let run = &h.state().run;
    assert_eq!(run.phase, Phase::Finished(ExecutionStatus::Completed));
    assert_eq!(run.statuses["one"], NodeStatus::Done);
    assert_eq!(run.statuses["two"], NodeStatus::Done);
    assert_eq!(ops.add_runs.load(std::sync::atomic::Ordering::SeqCst), 2);
    let last = run.rows.last().unwrap();
    assert_eq!(last.step_id, "two");
    assert_eq!(last.summary, Some(json!({"value": 7.0})));
    // The node badges and the run panel show it.
    assert!(h.query_all_by_label_contains("● done").count() >= 2);
    assert!(h.query_by_label("completed").is_some());
}

#[test]
fn run_can_be_cancelled_while_a_step_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, ops) = common::engine(dir.path(), 2);
    let mut h = harness(editor(engine, Document::new(sleep_workflow(20_000), None)));
    h.run_steps(3);
    h.get_by_label("▶ Run").click();
    h.run_steps(2);
    h.get_by_label("Start").click();
    wait_for(&mut h, "the slow step to run", |e| {
        matches!(e.run.statuses.get("slow"), Some(NodeStatus::Running { .. }))
    });
    assert_eq!(h.state().run.statuses["first"], NodeStatus::Done);
    assert_eq!(h.state().run.statuses["after"], NodeStatus::Pending);
    assert!(h.query_all_by_label_contains("● running").count() >= 2);
    assert_eq!(
        ops.sleep_running.load(std::sync::atomic::Ordering::SeqCst),
        1
    );

    h.get_by_label("Cancel").click();
    wait_for(&mut h, "the cancel to land", |e| {
        matches!(e.run.phase, Phase::Finished(_))
    });
    let run = &h.state().run;
    assert_eq!(run.phase, Phase::Finished(ExecutionStatus::Cancelled));
    assert_eq!(run.statuses["slow"], NodeStatus::Cancelled);
    assert_eq!(run.statuses["after"], NodeStatus::Skipped);

    // The execution is in the history.
    h.get_by_label("Refresh history").click();
    wait_for(&mut h, "the history", |e| !e.run.history.is_empty());
    assert_eq!(h.state().run.history[0].status, ExecutionStatus::Cancelled);
}
