//! The execution engine end to end, with operations defined in tests/common.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{engine, params, workflow};
use grym_synth::engine::{Event, ExecutionStatus, RunOptions, StepRunStatus};
use serde_json::json;

const WAIT: Option<Duration> = Some(Duration::from_secs(30));

fn chain() -> grym_synth::workflow::Workflow {
    workflow(
        "chain",
        "a",
        json!({"start": 1}),
        json!({
            "a": {"type": "transformation", "operation": "add", "inputs": [{"source": "parameter", "key": "start"}],
                  "parameters": {"amount": 1}, "nextSteps": {"default": "b"}},
            "b": {"type": "transformation", "operation": "add", "inputs": [{"source": "previous_step", "key": "a.result"}],
                  "parameters": {"amount": 10}, "nextSteps": {"default": "c"}},
            "c": {"type": "transformation", "operation": "add", "inputs": [{"source": "previous_step", "key": "b.result.value"}],
                  "parameters": {"amount": 100}}
        }),
    )
}

#[test]
fn a_linear_workflow_runs_every_step_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, ops) = engine(dir.path(), 4);
    let id = engine
        .run(chain(), params(json!({"start": 5})), RunOptions::default())
        .unwrap();
    let run = engine.wait(&id, WAIT).unwrap();
    assert_eq!(run.status, ExecutionStatus::Completed, "{:?}", run.error);
    assert_eq!(run.results["c"]["value"], json!(116.0));
    let order: Vec<&str> = run.step_runs.iter().map(|r| r.step_id.as_str()).collect();
    assert_eq!(order, ["a", "b", "c"]);
    assert_eq!(ops.add_runs.load(Ordering::SeqCst), 3);
    // Everything is in the database too.
    engine.flush().unwrap();
    let history = engine.history(10).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].status, ExecutionStatus::Completed);
    assert_eq!(engine.store().step_runs(&id).unwrap().len(), 3);
}

fn branching(operator: &str, right: serde_json::Value) -> grym_synth::workflow::Workflow {
    workflow(
        "branch",
        "score",
        json!({"v": 0}),
        json!({
            "score": {"type": "analysis", "operation": "score", "inputs": [{"source": "parameter", "key": "v"}],
                      "condition": {"operator": operator, "leftOperand": "result.qualityScore", "rightOperand": right},
                      "nextSteps": {"conditional": [{"condition": "true", "stepId": "yes"}, {"condition": "false", "stepId": "no"}]}},
            "yes": {"type": "transformation", "operation": "add", "inputs": [{"source": "previous_step", "key": "score.result"}]},
            "no": {"type": "transformation", "operation": "add", "inputs": [{"source": "previous_step", "key": "score.result"}]}
        }),
    )
}

#[test]
fn conditions_take_the_matching_branch() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine(dir.path(), 2);
    let cases = [
        ("greater_than", json!(0.5), 80, "yes"),
        ("greater_than", json!(0.5), 20, "no"),
        ("less_than", json!(0.5), 20, "yes"),
        ("less_than", json!(0.5), 80, "no"),
        ("equals", json!(0.8), 80, "yes"),
        ("equals", json!(0.8), 81, "no"),
    ];
    for (operator, right, v, expected) in cases {
        let id = engine
            .run(
                branching(operator, right),
                params(json!({"v": v})),
                RunOptions::default(),
            )
            .unwrap();
        let run = engine.wait(&id, WAIT).unwrap();
        assert_eq!(run.status, ExecutionStatus::Completed);
        let last = run.step_runs.last().unwrap();
        assert_eq!(last.step_id, expected, "{operator} with {v}");
        assert_eq!(run.step_runs[0].branch, Some(expected == "yes"));
    }
    // `contains` on a list in the result, through a conditional step without an operation.
    for (needle, expected) in [("noise", "yes"), ("pitch", "no")] {
        let wf = workflow(
            "contains",
            "score",
            json!({}),
            json!({
                "score": {"type": "analysis", "operation": "score", "inputs": [{"source": "parameter", "key": "v"}],
                          "nextSteps": {"default": "gate"}},
                "gate": {"type": "conditional", "inputs": [{"source": "previous_step", "key": "score.result.improvementAreas"}],
                         "condition": {"operator": "contains", "leftOperand": "result", "rightOperand": needle},
                         "nextSteps": {"conditional": [{"condition": "true", "stepId": "yes"}, {"condition": "false", "stepId": "no"}]}},
                "yes": {"type": "analysis", "operation": "counter"},
                "no": {"type": "analysis", "operation": "counter"}
            }),
        );
        let mut wf = wf;
        wf.parameters.insert("v".into(), json!(10));
        let id = engine
            .run(wf, params(json!({})), RunOptions::default())
            .unwrap();
        let run = engine.wait(&id, WAIT).unwrap();
        assert_eq!(run.status, ExecutionStatus::Completed, "{:?}", run.error);
        assert_eq!(run.step_runs.last().unwrap().step_id, expected);
    }
}

/// The plan's loop: generate → evaluate → (false) regenerate → evaluate …, with a condition
/// that is never met, ends at the default cap, recorded, without spinning.
#[test]
fn the_plans_loop_shape_stops_at_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine(dir.path(), 2);
    let wf = workflow(
        "loop",
        "generate",
        json!({"v": 1}),
        json!({
            "generate": {"type": "transformation", "operation": "add", "inputs": [{"source": "parameter", "key": "v"}],
                         "nextSteps": {"default": "evaluate"}},
            "evaluate": {"type": "analysis", "operation": "score", "inputs": [{"source": "previous_step", "key": "generate.result"}],
                         "condition": {"operator": "greater_than", "leftOperand": "result.qualityScore", "rightOperand": 0.99},
                         "nextSteps": {"conditional": [{"condition": "true", "stepId": "finalize"}, {"condition": "false", "stepId": "regenerate"}]}},
            "regenerate": {"type": "transformation", "operation": "add",
                           "inputs": [{"source": "previous_step", "key": "evaluate.result.value"}],
                           "parameters": {"amount": 1, "focusAreas": "context.evaluate.result.improvementAreas"},
                           "nextSteps": {"default": "evaluate"}},
            "finalize": {"type": "transformation", "operation": "add", "inputs": [{"source": "previous_step", "key": "generate.result"}]}
        }),
    );
    let id = engine
        .run(wf, params(json!({})), RunOptions::default())
        .unwrap();
    let run = engine.wait(&id, WAIT).unwrap();
    assert_eq!(run.status, ExecutionStatus::LoopLimit);
    assert_eq!(run.failed_step.as_deref(), Some("evaluate"));
    assert!(
        run.error
            .as_deref()
            .is_some_and(|e| e.contains("maxIterations"))
    );
    let visits = |id: &str| run.step_runs.iter().filter(|r| r.step_id == id).count();
    assert_eq!(visits("evaluate"), 5);
    assert_eq!(visits("regenerate"), 5);
    let iterations: Vec<u32> = run
        .step_runs
        .iter()
        .filter(|r| r.step_id == "evaluate")
        .map(|r| r.iteration)
        .collect();
    assert_eq!(iterations, [1, 2, 3, 4, 5]);
    // The context-reference parameter resolved to the evaluation's improvement areas.
    assert_eq!(
        run.results["regenerate"]["focusAreas"],
        json!(["loudness", "noise"])
    );
    engine.flush().unwrap();
    assert_eq!(
        engine.history(1).unwrap()[0].status,
        ExecutionStatus::LoopLimit
    );
}

#[test]
fn a_loop_whose_condition_passes_exits_through_its_branch() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine(dir.path(), 2);
    let wf = workflow(
        "counting",
        "tick",
        json!({}),
        json!({
            "tick": {"type": "analysis", "operation": "counter", "cache": false, "maxIterations": 10,
                     "nextSteps": {"default": "check"}},
            "check": {"type": "conditional", "inputs": [{"source": "previous_step", "key": "tick.result"}],
                      "condition": {"operator": "greater_than", "leftOperand": "result.count", "rightOperand": 2},
                      "maxIterations": 10,
                      "nextSteps": {"conditional": [{"condition": "true", "stepId": "done"}, {"condition": "false", "stepId": "tick"}]}},
            "done": {"type": "analysis", "operation": "counter", "cache": false}
        }),
    );
    let id = engine
        .run(wf, params(json!({})), RunOptions::default())
        .unwrap();
    let run = engine.wait(&id, WAIT).unwrap();
    assert_eq!(run.status, ExecutionStatus::Completed, "{:?}", run.error);
    let order: Vec<String> = run
        .step_runs
        .iter()
        .map(|r| format!("{}#{}", r.step_id, r.iteration))
        .collect();
    assert_eq!(
        order,
        [
            "tick#1", "check#1", "tick#2", "check#2", "tick#3", "check#3", "done#1"
        ]
    );
}

#[test]
fn context_inputs_read_earlier_executions_of_the_same_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine(dir.path(), 2);
    let first = workflow(
        "memory",
        "a",
        json!({"start": 1}),
        json!({"a": {"type": "transformation", "operation": "add", "inputs": [{"source": "parameter", "key": "start"}], "parameters": {"amount": 41}}}),
    );
    let id = engine
        .run(first, params(json!({})), RunOptions::default())
        .unwrap();
    assert_eq!(
        engine.wait(&id, WAIT).unwrap().status,
        ExecutionStatus::Completed
    );
    // The second version of the workflow no longer runs `a`, but reads what it left.
    let second = workflow(
        "memory",
        "b",
        json!({}),
        json!({"b": {"type": "transformation", "operation": "add", "inputs": [{"source": "context", "key": "a.result.value"}], "parameters": {"amount": 0}}}),
    );
    let id = engine
        .run(second, params(json!({})), RunOptions::default())
        .unwrap();
    let run = engine.wait(&id, WAIT).unwrap();
    assert_eq!(run.status, ExecutionStatus::Completed, "{:?}", run.error);
    assert_eq!(run.results["b"]["value"], json!(42.0));
}

#[test]
fn steps_of_waiting_executions_run_by_priority() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, ops) = engine(dir.path(), 1);
    let one = |id: &str, priority: i32, ms: u32| {
        workflow(
            id,
            "s",
            json!({}),
            json!({"s": {"type": "analysis", "operation": "sleep", "priority": priority, "cache": false,
                         "parameters": {"ms": ms, "tag": id}}}),
        )
    };
    let blocker = engine
        .run(
            one("blocker", 0, 200),
            params(json!({})),
            RunOptions::default(),
        )
        .unwrap();
    while ops.sleep_running.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut ids = vec![blocker];
    for (name, priority) in [("low", 1), ("high", 9), ("mid", 5)] {
        ids.push(
            engine
                .run(
                    one(name, priority, 1),
                    params(json!({})),
                    RunOptions::default(),
                )
                .unwrap(),
        );
    }
    for id in &ids {
        engine.wait(id, WAIT).unwrap();
    }
    assert_eq!(*ops.sleep_log.lock(), ["blocker", "high", "mid", "low"]);
}

#[test]
fn the_concurrency_limit_holds_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, ops) = engine(dir.path(), 3);
    let wf = workflow(
        "load",
        "a",
        json!({}),
        json!({
            "a": {"type": "analysis", "operation": "sleep", "cache": false, "parameters": {"ms": 2}, "nextSteps": {"default": "b"}},
            "b": {"type": "analysis", "operation": "sleep", "cache": false, "parameters": {"ms": 1}}
        }),
    );
    engine.register(wf).unwrap();
    let ids: Vec<String> = (0..60)
        .map(|_| {
            engine
                .start_execution("load", params(json!({})), RunOptions::default())
                .unwrap()
        })
        .collect();
    for id in &ids {
        assert_eq!(
            engine.wait(id, WAIT).unwrap().status,
            ExecutionStatus::Completed
        );
    }
    assert_eq!(ops.sleep_peak.load(Ordering::SeqCst), 3);
    assert!(engine.peak_concurrency() <= 3);
}

#[test]
fn a_step_past_its_timeout_fails_and_frees_its_worker() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, ops) = engine(dir.path(), 1);
    let hung = workflow(
        "hung",
        "h",
        json!({}),
        json!({"h": {"type": "analysis", "operation": "sleep", "timeoutSeconds": 0.2, "cache": false,
                     "parameters": {"ms": 10000, "ignoreCancel": true}}}),
    );
    let id = engine
        .run(hung, params(json!({})), RunOptions::default())
        .unwrap();
    let run = engine.wait(&id, WAIT).unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert!(
        run.error
            .as_deref()
            .is_some_and(|e| e.contains("timed out")),
        "{:?}",
        run.error
    );
    // The only worker is still stuck in the hung operation, yet other work carries on.
    let id = engine
        .run(chain(), params(json!({})), RunOptions::default())
        .unwrap();
    assert_eq!(
        engine.wait(&id, WAIT).unwrap().status,
        ExecutionStatus::Completed
    );
    assert_eq!(
        ops.sleep_running.load(Ordering::SeqCst),
        1,
        "the chain finished while the hung operation still held its old worker"
    );
}

#[test]
fn transient_failures_are_retried_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, ops) = engine(dir.path(), 2);
    let flaky = |retries: u32| {
        workflow(
            "flaky",
            "f",
            json!({}),
            json!({"f": {"type": "analysis", "operation": "flaky", "retries": retries, "cache": false, "parameters": {"failures": 2}}}),
        )
    };
    let id = engine
        .run(flaky(2), params(json!({})), RunOptions::default())
        .unwrap();
    let run = engine.wait(&id, WAIT).unwrap();
    assert_eq!(run.status, ExecutionStatus::Completed, "{:?}", run.error);
    let attempts: Vec<(u32, StepRunStatus)> = run
        .step_runs
        .iter()
        .map(|r| (r.attempt, r.status))
        .collect();
    assert_eq!(
        attempts,
        [
            (1, StepRunStatus::Failed),
            (2, StepRunStatus::Failed),
            (3, StepRunStatus::Completed)
        ]
    );
    assert!(run.step_runs.iter().all(|r| r.iteration == 1));

    ops.flaky_tries.store(0, Ordering::SeqCst);
    let id = engine
        .run(flaky(1), params(json!({})), RunOptions::default())
        .unwrap();
    let run = engine.wait(&id, WAIT).unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert!(
        run.error
            .as_deref()
            .is_some_and(|e| e.contains("device busy (try 2)"))
    );
}

#[test]
fn cancelling_stops_a_running_step_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine(dir.path(), 2);
    let events = engine.subscribe();
    let wf = workflow(
        "long",
        "s",
        json!({}),
        json!({"s": {"type": "analysis", "operation": "sleep", "cache": false, "parameters": {"ms": 30000}}}),
    );
    let id = engine
        .run(wf, params(json!({})), RunOptions::default())
        .unwrap();
    loop {
        match events.recv_timeout(Duration::from_secs(10)) {
            Ok(Event::StepStarted { .. }) => break,
            Ok(_) => {}
            Err(e) => panic!("no step started: {e}"),
        }
    }
    let cancelled_at = Instant::now();
    assert!(engine.cancel(&id).unwrap());
    let run = engine.wait(&id, WAIT).unwrap();
    let latency = cancelled_at.elapsed();
    eprintln!("cancellation latency: {latency:?}");
    assert_eq!(run.status, ExecutionStatus::Cancelled);
    // The step had 30 s of work left: the operation itself stopped at its next check of the
    // token (had it run to the end, its step would have completed).
    assert_eq!(
        run.step_runs.last().map(|r| r.status),
        Some(StepRunStatus::Cancelled)
    );
    assert!(
        !engine.cancel(&id).unwrap(),
        "a finished execution cannot be cancelled again"
    );
}

#[test]
fn a_rerun_reuses_unchanged_steps_and_recomputes_changed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, ops) = engine(dir.path(), 2);
    let run = |wf| {
        let id = engine
            .run(wf, params(json!({})), RunOptions::default())
            .unwrap();
        let run = engine.wait(&id, WAIT).unwrap();
        assert_eq!(run.status, ExecutionStatus::Completed, "{:?}", run.error);
        run.step_runs
            .iter()
            .map(|r| (r.step_id.clone(), r.cached))
            .collect::<Vec<_>>()
    };
    let cached = |steps: &[(&str, bool)]| {
        steps
            .iter()
            .map(|(s, c)| (s.to_string(), *c))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        run(chain()),
        cached(&[("a", false), ("b", false), ("c", false)])
    );
    assert_eq!(ops.add_runs.load(Ordering::SeqCst), 3);
    assert_eq!(
        run(chain()),
        cached(&[("a", true), ("b", true), ("c", true)])
    );
    assert_eq!(ops.add_runs.load(Ordering::SeqCst), 3);
    // Editing `b` recomputes `b` and what reads it, not `a`.
    let mut edited = chain();
    edited.steps["b"]
        .parameters
        .insert("amount".into(), json!(20));
    assert_eq!(
        run(edited),
        cached(&[("a", true), ("b", false), ("c", false)])
    );
    assert_eq!(ops.add_runs.load(Ordering::SeqCst), 5);
    // `cache: false` opts out.
    let mut uncached = chain();
    uncached.steps["a"].cache = Some(false);
    assert_eq!(
        run(uncached),
        cached(&[("a", false), ("b", true), ("c", true)])
    );
}

#[test]
fn faults_end_the_step_with_a_clear_recorded_error() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine(dir.path(), 2);
    let cases = [
        (
            json!({"s": {"type": "analysis", "operation": "explode"}}),
            "the operation panicked: the operation fell over",
        ),
        (
            json!({"s": {"type": "transformation", "operation": "add", "inputs": [{"source": "parameter", "key": "x"}],
                         "nextSteps": {"default": "t"}},
                   "t": {"type": "transformation", "operation": "add", "inputs": [{"source": "previous_step", "key": "s.result.nope"}]}}),
            "the result of `s` has no `nope`",
        ),
        (
            json!({"s": {"type": "analysis", "operation": "score", "inputs": [{"source": "parameter", "key": "x"}],
                         "condition": {"operator": "greater_than", "leftOperand": "result.qualityScroe", "rightOperand": 1},
                         "nextSteps": {"conditional": [{"condition": "true", "stepId": "t"}]}},
                   "t": {"type": "analysis", "operation": "counter"}}),
            "qualityScroe` does not exist",
        ),
    ];
    for (steps, expected) in cases {
        let id = engine
            .run(
                workflow("faults", "s", json!({"x": 1}), steps),
                params(json!({})),
                RunOptions::default(),
            )
            .unwrap();
        let run = engine.wait(&id, WAIT).unwrap();
        assert_eq!(run.status, ExecutionStatus::Failed);
        let error = run.error.unwrap_or_default();
        assert!(error.contains(expected), "{error}");
    }
    // A missing run parameter is refused before anything runs, naming the parameter.
    let wf = workflow(
        "needs",
        "s",
        json!({"audioFile": null}),
        json!({"s": {"type": "transformation", "operation": "add", "inputs": [{"source": "parameter", "key": "audioFile"}]}}),
    );
    let err = engine
        .run(wf, params(json!({})), RunOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("audioFile"), "{err}");
    // An unknown operation or a parameter of the wrong type is refused by validation.
    let wf = workflow(
        "bad",
        "s",
        json!({}),
        json!({"s": {"type": "transformation", "operation": "add", "inputs": [{"source": "parameter", "key": "x"}],
                     "parameters": {"amount": "lots"}}}),
    );
    let mut wf = wf;
    wf.parameters.insert("x".into(), json!(1));
    let err = engine
        .run(wf, params(json!({})), RunOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("amount"), "{err}");
}

#[test]
fn a_thousand_executions_started_at_once_are_all_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine(dir.path(), 5);
    engine.register(chain()).unwrap();
    let ids: Vec<String> = (0..1000)
        .map(|i| {
            engine
                .start_execution("chain", params(json!({"start": i})), RunOptions::default())
                .unwrap()
        })
        .collect();
    for id in &ids {
        assert_eq!(
            engine.wait(id, WAIT).unwrap().status,
            ExecutionStatus::Completed
        );
    }
    let history = engine.history(5000).unwrap();
    assert_eq!(history.len(), 1000);
    assert!(
        history
            .iter()
            .all(|r| r.status == ExecutionStatus::Completed)
    );
    for id in ids.iter().step_by(97) {
        assert_eq!(engine.store().step_runs(id).unwrap().len(), 3);
    }
}

#[test]
fn events_follow_an_execution_from_start_to_finish() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine(dir.path(), 2);
    let events = engine.subscribe();
    let id = engine
        .run(chain(), params(json!({})), RunOptions::default())
        .unwrap();
    engine.wait(&id, WAIT).unwrap();
    let kinds: Vec<String> = events
        .try_iter()
        .filter(|e| e.execution_id() == Some(id.as_str()))
        .map(|e| match e {
            Event::ExecutionStarted { .. } => "started".to_string(),
            Event::StepStarted { step_id, .. } => format!("{step_id}>"),
            Event::StepFinished { step_id, .. } => format!("<{step_id}"),
            Event::ExecutionFinished { status, .. } => format!("finished {status}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "started",
            "a>",
            "<a",
            "b>",
            "<b",
            "c>",
            "<c",
            "finished completed"
        ]
    );
}

#[test]
fn the_context_repository_scopes_items_to_workflows_and_executions() {
    use grym_synth::engine::{ContextQuery, WorkflowContextAdapter};
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine(dir.path(), 2);
    let id = engine
        .run(chain(), params(json!({})), RunOptions::default())
        .unwrap();
    engine.wait(&id, WAIT).unwrap();
    let other = engine
        .run(
            workflow(
                "other",
                "a",
                json!({"start": 1}),
                json!({"a": {"type": "transformation", "operation": "add",
                "inputs": [{"source": "parameter", "key": "start"}]}}),
            ),
            params(json!({})),
            RunOptions::default(),
        )
        .unwrap();
    engine.wait(&other, WAIT).unwrap();

    let chain_context = WorkflowContextAdapter::new(engine.context().clone(), "chain", Some(&id));
    chain_context.store_context("note", vec!["quality".into()], json!({"text": "too quiet"}));
    let everything = chain_context.get_context(&ContextQuery::default()).unwrap();
    // Three step results and the note, newest first, all of this workflow and execution.
    assert_eq!(everything.len(), 4);
    assert!(
        everything
            .iter()
            .all(|i| i.tags.contains(&"workflow:chain".to_string()))
    );
    let notes = chain_context
        .get_context(&ContextQuery {
            kind: Some("note".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].payload["text"], "too quiet");
    let step_b = chain_context
        .get_context(&ContextQuery {
            tags: vec!["step:b".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(step_b.len(), 1);
    assert_eq!(step_b[0].payload["value"], json!(12.0));
    // Another workflow's adapter sees none of it.
    let other_context = WorkflowContextAdapter::new(engine.context().clone(), "other", None);
    let theirs = other_context.get_context(&ContextQuery::default()).unwrap();
    assert_eq!(theirs.len(), 1);
    assert!(theirs[0].tags.contains(&"step:a".to_string()));
}

#[test]
fn parameter_references_read_run_parameters_and_must_be_declared() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _ops) = engine(dir.path(), 2);
    let steps = json!({
        "a": {"type": "transformation", "operation": "add", "inputs": [{"source": "parameter", "key": "start"}],
              "parameters": {"amount": "parameter.step"}, "nextSteps": {"default": "b"}},
        "b": {"type": "transformation", "operation": "add", "inputs": [{"source": "previous_step", "key": "a.result"}],
              "parameters": {"amount": "parameter.step"}}
    });
    let wf = workflow(
        "by-parameter",
        "a",
        json!({"start": 1, "step": 2}),
        steps.clone(),
    );
    let id = engine
        .run(wf, params(json!({"step": 5})), RunOptions::default())
        .unwrap();
    let run = engine.wait(&id, WAIT).unwrap();
    assert_eq!(run.status, ExecutionStatus::Completed, "{:?}", run.error);
    assert_eq!(run.results["b"]["value"], json!(11.0));

    let undeclared = workflow("undeclared", "a", json!({"start": 1}), steps);
    let report = engine.validate(&undeclared);
    let problem = report
        .errors()
        .find(|p| p.code == "undeclared-parameter")
        .expect("an undeclared-parameter problem");
    assert_eq!(problem.field, "steps.a.parameters.amount");
    assert!(problem.message.contains("`step`"), "{}", problem.message);
}

#[test]
fn a_seeded_step_in_a_loop_draws_a_new_seed_on_every_visit() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _ops) = engine(dir.path(), 2);
    let wf = workflow(
        "redraw",
        "draw",
        json!({"seed": 40}),
        json!({
            "draw": {"type": "generation", "operation": "draw", "maxIterations": 3,
                     "parameters": {"seed": "parameter.seed"}, "nextSteps": {"default": "gate"}},
            "gate": {"type": "conditional", "inputs": [{"source": "previous_step", "key": "draw.result"}],
                     "condition": {"operator": "greater_than", "leftOperand": "result.seed", "rightOperand": 1000},
                     "nextSteps": {"conditional": [{"condition": "true", "stepId": "done"}, {"condition": "false", "stepId": "draw"}]}},
            "done": {"type": "analysis", "operation": "counter", "cache": false}
        }),
    );
    let seeds = |run: &grym_synth::engine::ExecutionSnapshot| -> Vec<(i64, bool)> {
        run.step_runs
            .iter()
            .filter(|r| r.step_id == "draw")
            .map(|r| {
                let result = r.result.as_ref().expect("a result");
                (result["seed"].as_i64().expect("seed"), r.cached)
            })
            .collect()
    };
    let id = engine
        .run(wf.clone(), params(json!({})), RunOptions::default())
        .unwrap();
    let first = engine.wait(&id, WAIT).unwrap();
    assert_eq!(
        first.status,
        ExecutionStatus::LoopLimit,
        "{:?}",
        first.error
    );
    assert_eq!(seeds(&first), [(40, false), (41, false), (42, false)]);
    // Every visit is reproducible: the same run again takes each visit from the cache.
    let id = engine
        .run(wf, params(json!({})), RunOptions::default())
        .unwrap();
    let again = engine.wait(&id, WAIT).unwrap();
    assert_eq!(seeds(&again), [(40, true), (41, true), (42, true)]);
}
