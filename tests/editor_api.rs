//! The editor serving the REST API from its own engine: what a client saves to the open
//! workflow appears on the canvas as an undoable edit; other workflows can be opened; the
//! versions window lists, compares and rolls back.

mod common;

use common::editor::{harness, wait_for};
use std::time::Duration;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use grym_synth::engine::Engine;
use grym_synth::ui::app::Pending;
use grym_synth::ui::versions::VersionsAction;
use grym_synth::ui::{Document, Editor, Settings};
use grym_synth::workflow::Workflow;
use serde_json::{Value, json};

fn chain() -> Workflow {
    common::workflow(
        "live",
        "a",
        json!({"start": 1}),
        json!({
            "a": {"type": "transformation", "operation": "add", "inputs": [{"source": "parameter", "key": "start"}],
                  "parameters": {"amount": 1}}
        }),
    )
}

fn send(method: &str, url: &str, body: Value) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let r = match method {
        "PUT" => agent
            .put(url)
            .header("X-Grym-Author", "an-llm")
            .send_json(body),
        _ => agent
            .post(url)
            .header("X-Grym-Author", "an-llm")
            .send_json(body),
    };
    r.unwrap().status().as_u16()
}

fn open(engine: Engine, wf: Workflow) -> Harness<'static, Editor> {
    let mut h = harness(Editor::new(
        Ok(engine),
        Document::new(wf, None),
        Settings::default(),
    ));
    h.run_steps(3);
    h
}

#[test]
fn what_a_client_saves_appears_on_the_canvas() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = common::engine(dir.path(), 2);
    let mut h = open(engine.clone(), chain());
    h.state_mut().api_link.port = 0;
    let engine_for_start = engine.clone();
    h.state_mut().api_link.start(&engine_for_start);
    let url = h.state().api_link.url().expect("serving");
    h.run_steps(2);
    assert!(
        h.query_by_label_contains("API on http://127.0.0.1:")
            .is_some()
    );

    // A client adds a step `b` after `a`.
    let mut changed = serde_json::to_value(chain()).unwrap();
    changed["steps"]["a"]["nextSteps"] = json!({"default": "b"});
    changed["steps"]["b"] = json!({"id": "b", "type": "transformation", "operation": "add",
        "inputs": [{"source": "previous_step", "key": "a.result"}], "parameters": {"amount": 10},
        "nextSteps": {}});
    assert_eq!(send("PUT", &format!("{url}/workflows/live"), changed), 200);
    wait_for(&mut h, "the update to arrive", |e| {
        e.doc.workflow().steps.contains_key("b")
    });
    let wf = h.state().doc.workflow();
    let layout = wf.layout.as_ref().expect("positions");
    assert!(layout.nodes.contains_key("b"), "the new step is placed");
    assert!(
        h.state()
            .status
            .as_ref()
            .is_some_and(|(s, _)| s.contains("an-llm"))
    );
    h.state_mut().undo();
    assert!(!h.state().doc.workflow().steps.contains_key("b"));

    // A workflow with another id is offered for opening.
    let mut other = serde_json::to_value(chain()).unwrap();
    other["id"] = json!("other");
    assert_eq!(send("POST", &format!("{url}/workflows"), other), 201);
    wait_for(&mut h, "the new workflow to be listed", |e| {
        e.api_link.saved.iter().any(|s| s.workflow_id == "other")
    });
    // Undone, the document is as it was: opening needs no question.
    assert!(!h.state().doc.is_dirty());
    h.state_mut()
        .request(Pending::OpenRegistered("other".into()));
    assert!(h.state().pending.is_none());
    assert_eq!(h.state().doc.workflow().id, "other");

    h.state_mut().api_link.stop();
    assert!(h.state().api_link.url().is_none());
    let refused = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .new_agent()
        .get(format!("{url}/workflows"))
        .call();
    assert!(refused.is_err(), "nothing listens after stop");
}

#[test]
fn a_port_in_use_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = common::engine(dir.path(), 2);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut h = open(engine.clone(), chain());
    h.state_mut().api_link.port = taken.local_addr().unwrap().port();
    h.state_mut().api_link.start(&engine);
    assert!(!h.state().api_link.is_serving());
    let error = h.state().api_link.error.clone().unwrap();
    assert!(error.contains("cannot listen"), "{error}");
}

#[test]
fn versions_are_listed_compared_and_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = common::engine(dir.path(), 2);
    let v1 = chain();
    engine.register(v1.clone()).unwrap();
    let mut v2 = v1.clone();
    v2.parameters.insert("start".into(), json!(42));
    v2.description = "second".into();
    engine.register(v2.clone()).unwrap();
    let mut h = open(engine.clone(), v2.clone());
    h.state_mut().versions.show_for(&engine, "live");
    wait_for(&mut h, "the versions", |e| e.versions.versions.len() == 2);
    h.state_mut().versions.selected = Some(1);
    h.run_steps(2);
    // The difference from version 1 to the open workflow is listed field by field.
    assert!(h.query_by_label("parameters.start").is_some());
    assert!(h.query_by_label("description").is_some());
    h.state_mut().versions_action(VersionsAction::RollBack(1));
    h.run_steps(2);
    let versions = engine.versions("live").unwrap();
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[2].created_by, "editor");
    assert_eq!(h.state().doc.workflow().parameters["start"], json!(1));
    assert_eq!(
        engine.workflow("live").unwrap().parameters["start"],
        json!(1)
    );
    // The roll-back is one undoable edit of the document.
    h.state_mut().undo();
    assert_eq!(h.state().doc.workflow().parameters["start"], json!(42));
}
