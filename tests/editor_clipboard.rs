//! Copy/paste of steps and autosave with crash recovery, driven through the editor's UI
//! with egui_kittest.

mod common;

use common::editor::harness;
use std::time::Duration;

use egui::{Key, Modifiers, OutputCommand, Pos2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use grym_synth::ui::{Document, Editor, Settings};
use serde_json::json;

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

fn copied_text(h: &Harness<'_, Editor>) -> Option<String> {
    h.output()
        .platform_output
        .commands
        .iter()
        .find_map(|c| match c {
            OutputCommand::CopyText(t) => Some(t.clone()),
            _ => None,
        })
}

#[test]
fn copy_and_paste_steps_renames_colliding_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _ops) = common::engine(dir.path(), 2);
    let wf = common::workflow(
        "pair",
        "first",
        json!({}),
        json!({
            "first": {"type": "analysis", "operation": "counter", "nextSteps": {"default": "second"}},
            "second": {"type": "transformation", "operation": "add",
                       "inputs": [{"source": "previous_step", "key": "first.result"}]}
        }),
    );
    let mut h = harness(Editor::new(
        Ok(engine),
        Document::new(wf, None),
        Settings::default(),
    ));
    h.run_steps(3);

    click_node(&mut h, "second");
    assert_eq!(h.state().selected.as_deref(), Some("second"));
    // The platform turns Ctrl+C into a copy event; one frame handles it.
    h.event(egui::Event::Copy);
    h.step();
    let text = copied_text(&h).expect("the selected step went to the clipboard");
    assert!(text.contains("second"), "{text}");

    // Paste it back (the platform turns Ctrl+V into a paste event with the text).
    h.event(egui::Event::Paste(text.clone()));
    h.run_steps(3);
    {
        let wf = h.state().doc.workflow();
        assert!(wf.steps.contains_key("second-2"), "{:?}", wf.steps.keys());
        // Its link to `first`, which was not copied but exists, stays.
        assert_eq!(wf.steps["second-2"].inputs[0].key, "first.result");
        assert_eq!(h.state().selected.as_deref(), Some("second-2"));
    }
    assert!(h.state().canvas.node_rects.contains_key("second-2"));

    // Undo takes the paste back in one step.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run_steps(2);
    assert!(!h.state().doc.workflow().steps.contains_key("second-2"));

    // Text that is not steps is refused with a message, and nothing changes.
    h.event(egui::Event::Paste("just some words".into()));
    h.run_steps(2);
    assert_eq!(h.state().doc.workflow().steps.len(), 2);
    assert!(
        h.query_by_label_contains("the clipboard does not hold steps")
            .is_some()
    );
}

#[test]
fn unsaved_work_is_autosaved_and_offered_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let autosave = dir.path().join("autosave");
    let (engine, _ops) = common::engine(&dir.path().join("one"), 2);
    let mut editor = Editor::new(Ok(engine), Document::blank(), Settings::default());
    editor.set_autosave_dir(Some(autosave.clone()));
    editor.autosave.every = Duration::ZERO;
    let mut h = harness(editor);
    h.run_steps(2);
    h.get_by_label("analysis/sleep").click();
    h.run_steps(3);
    assert!(h.state().doc.is_dirty());
    assert!(
        autosave.join("workflow.ron").is_file(),
        "the dirty workflow was written"
    );
    // The process dies: no save, no close.
    drop(h);

    let (engine, _ops) = common::engine(&dir.path().join("two"), 2);
    let mut editor = Editor::new(Ok(engine), Document::blank(), Settings::default());
    editor.set_autosave_dir(Some(autosave.clone()));
    let mut h = harness(editor);
    h.run_steps(2);
    assert!(h.query_by_label("Recover unsaved work?").is_some());
    h.get_by_label("Recover").click();
    h.run_steps(3);
    {
        let e = h.state();
        assert!(e.doc.workflow().steps.contains_key("sleep"));
        assert!(e.doc.is_dirty(), "recovered work is unsaved until saved");
        assert!(e.autosave.recovery.is_none());
    }

    // Saving leaves nothing to recover.
    let path = dir.path().join("saved.ron");
    assert!(h.state_mut().save_to(&path));
    h.run_steps(2);
    assert!(!autosave.join("workflow.ron").exists());
}

#[test]
fn declining_recovery_removes_the_autosave() {
    let dir = tempfile::tempdir().unwrap();
    let autosave = dir.path().join("autosave");
    let (engine, _ops) = common::engine(&dir.path().join("one"), 2);
    let mut editor = Editor::new(Ok(engine), Document::blank(), Settings::default());
    editor.set_autosave_dir(Some(autosave.clone()));
    let mut h = harness(editor);
    h.run_steps(2);
    h.get_by_label("analysis/counter").click();
    h.run_steps(3);
    assert!(autosave.join("workflow.ron").is_file());
    drop(h);

    let (engine, _ops) = common::engine(&dir.path().join("two"), 2);
    let mut editor = Editor::new(Ok(engine), Document::blank(), Settings::default());
    editor.set_autosave_dir(Some(autosave.clone()));
    let mut h = harness(editor);
    h.run_steps(2);
    h.get_by_label("Discard").click();
    h.run_steps(2);
    assert!(h.state().doc.workflow().steps.is_empty());
    assert!(!autosave.join("workflow.ron").exists());
}
