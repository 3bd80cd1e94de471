//! Optimisation studies end to end, on the test operations of tests/common.

mod common;

use std::time::Duration;

use common::{engine, params, workflow};
use grym_synth::engine::operation::CancellationToken;
use grym_synth::engine::optimize::{
    OptimizeError, RunSettings, StartDesign, StopReason, Study, StudyDefinition, StudyEvent,
};
use grym_synth::engine::store::{TrialRecord, TrialState};
use grym_synth::engine::{ExecutionStatus, RunOptions};
use grym_synth::workflow::{Tunable, Workflow};
use serde_json::json;

/// One `peak` step whose parameters read the tuned run parameters.
fn peak_workflow() -> Workflow {
    let mut wf = workflow(
        "peak",
        "peak",
        json!({"x": 0.0, "y": 0.0, "mode": "a"}),
        json!({
            "peak": {"type": "analysis", "operation": "peak",
                     "parameters": {"x": "parameter.x", "y": "parameter.y", "mode": "parameter.mode"}}
        }),
    );
    wf.optimization = Some(
        serde_json::from_value(json!({
            "objective": "peak.result.score",
            "direction": "maximize",
            "parameters": {
                "x": {"range": {"min": -10.0, "max": 10.0}},
                "y": {"range": {"min": -10.0, "max": 10.0}},
                "mode": {"choice": ["a", "b", "c"]}
            }
        }))
        .unwrap(),
    );
    wf
}

fn seeded(seed: u64) -> StudyDefinition {
    StudyDefinition {
        seed: Some(seed),
        ..Default::default()
    }
}

fn settings(budget: u32, parallel: usize) -> RunSettings {
    RunSettings {
        budget: Some(budget),
        parallel,
        ..Default::default()
    }
}

#[test]
fn a_study_improves_on_the_starting_point_within_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine(dir.path(), 3);
    engine.register(peak_workflow()).unwrap();
    // The workflow's own defaults score -10.
    let baseline = engine
        .start_execution("peak", params(json!({})), RunOptions::default())
        .unwrap();
    let baseline = engine
        .wait(&baseline, Some(Duration::from_secs(30)))
        .unwrap();
    let baseline = baseline.results["peak"]["score"].as_f64().unwrap();
    assert_eq!(baseline, -10.0);

    let mut study = Study::create(&engine, "peak", seeded(11)).unwrap();
    let mut started = 0;
    let mut finished = 0;
    let stop = study
        .run(
            &RunSettings {
                startup: Some(8),
                ..settings(40, 3)
            },
            &CancellationToken::new(),
            |event| match event {
                StudyEvent::TrialStarted(_) => started += 1,
                StudyEvent::TrialFinished(_) => finished += 1,
            },
        )
        .unwrap();
    assert_eq!(stop, StopReason::Budget);
    assert_eq!((started, finished), (40, 40));
    let trials = study.trials();
    assert_eq!(trials.len(), 40);
    assert!(trials.iter().all(|t| t.state == TrialState::Completed));
    let start_best = trials[..8]
        .iter()
        .filter_map(|t| t.score)
        .fold(f64::NEG_INFINITY, f64::max);
    let best = study.best().unwrap();
    let score = best.score.unwrap();
    assert!(score > baseline, "{score} vs baseline {baseline}");
    assert!(
        score > start_best,
        "the search improved on its start: {score} vs {start_best}"
    );
    // x and y found (the mode's bonus may or may not have been).
    let (x, y) = (
        best.params["x"].as_f64().unwrap(),
        best.params["y"].as_f64().unwrap(),
    );
    assert!(
        (x - 3.0).abs() < 1.5 && (y + 1.0).abs() < 1.5,
        "x {x}, y {y}"
    );
    // Every trial is an execution in the history.
    engine.flush().unwrap();
    let history = engine.history(100).unwrap();
    assert_eq!(history.len(), 41);
    for trial in trials {
        let execution = trial.execution_id.as_deref().unwrap();
        let record = history.iter().find(|h| h.id == execution).unwrap();
        assert_eq!(record.status, ExecutionStatus::Completed);
        assert_eq!(record.parameters["x"], trial.params["x"]);
    }
}

#[test]
fn trials_survive_a_restart_and_the_study_continues() {
    let dir = tempfile::tempdir().unwrap();
    let (study_id, before) = {
        let (engine, _) = engine(dir.path(), 2);
        engine.register(peak_workflow()).unwrap();
        let mut study = Study::create(&engine, "peak", seeded(5)).unwrap();
        study
            .run(&settings(5, 2), &CancellationToken::new(), |_| {})
            .unwrap();
        engine.shutdown();
        (study.id().to_string(), study.trials().to_vec())
    };
    let (engine, _) = engine(dir.path(), 2);
    let mut study = Study::open(&engine, &study_id).unwrap();
    let summary = |t: &TrialRecord| {
        (
            t.number,
            t.state,
            t.params.clone(),
            t.score,
            t.execution_id.clone(),
        )
    };
    assert_eq!(
        study.trials().iter().map(summary).collect::<Vec<_>>(),
        before.iter().map(summary).collect::<Vec<_>>()
    );
    study
        .run(&settings(3, 2), &CancellationToken::new(), |_| {})
        .unwrap();
    let numbers: Vec<u32> = study.trials().iter().map(|t| t.number).collect();
    assert_eq!(numbers, (1..=8).collect::<Vec<_>>());
    assert_eq!(engine.store().trials(&study_id).unwrap().len(), 8);
    assert!(matches!(
        Study::open(&engine, "no-such-study"),
        Err(OptimizeError::UnknownStudy(_))
    ));
}

#[test]
fn a_study_stops_when_the_score_stops_improving() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine(dir.path(), 2);
    let mut wf = peak_workflow();
    // Only `y`'s range is tuned, and it is pinned: every trial scores the same.
    let opt = wf.optimization.as_mut().unwrap();
    opt.parameters.clear();
    opt.parameters.insert(
        "y".into(),
        Tunable::Range {
            min: -1.0,
            max: -1.0 + 1e-9,
            log: false,
        },
    );
    opt.patience = Some(3);
    engine.register(wf).unwrap();
    let mut study = Study::create(&engine, "peak", seeded(1)).unwrap();
    let stop = study
        .run(&settings(20, 1), &CancellationToken::new(), |_| {})
        .unwrap();
    assert_eq!(stop, StopReason::NoImprovement { trials: 3 });
    assert_eq!(study.trials().len(), 4);
}

#[test]
fn repeated_values_reuse_cached_steps() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine(dir.path(), 2);
    let mut wf = peak_workflow();
    let opt = wf.optimization.as_mut().unwrap();
    opt.parameters.clear();
    opt.parameters
        .insert("mode".into(), Tunable::Choice(vec![json!("a"), json!("b")]));
    engine.register(wf).unwrap();
    let mut study = Study::create(&engine, "peak", seeded(2)).unwrap();
    study
        .run(
            &RunSettings {
                start: StartDesign::Grid,
                ..settings(4, 1)
            },
            &CancellationToken::new(),
            |_| {},
        )
        .unwrap();
    let cached = study
        .trials()
        .iter()
        .filter(|t| {
            let run = engine
                .execution(t.execution_id.as_deref().unwrap())
                .unwrap();
            run.step_runs.iter().any(|r| r.cached)
        })
        .count();
    assert!(cached >= 2, "four trials over two values: {cached} cached");
}

#[test]
fn cancelling_a_study_cancels_its_running_trials() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine(dir.path(), 2);
    let mut wf = workflow(
        "slow",
        "sleep",
        json!({"ms": 100}),
        json!({"sleep": {"type": "analysis", "operation": "sleep", "parameters": {"ms": "parameter.ms"}}}),
    );
    wf.optimization = Some(
        serde_json::from_value(json!({
            "objective": "sleep.result.slept",
            "parameters": {"ms": {"range": {"min": 20000.0, "max": 30000.0}}}
        }))
        .unwrap(),
    );
    engine.register(wf).unwrap();
    let mut study = Study::create(&engine, "slow", seeded(3)).unwrap();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let began = std::time::Instant::now();
    let stop = study
        .run(&settings(10, 2), &cancel, |event| {
            if let StudyEvent::TrialStarted(_) = event {
                trigger.cancel();
            }
        })
        .unwrap();
    assert_eq!(stop, StopReason::Cancelled);
    assert!(began.elapsed() < Duration::from_secs(15));
    assert_eq!(study.trials().len(), 1);
    assert_eq!(study.trials()[0].state, TrialState::Cancelled);
    let stored = engine.store().trials(study.id()).unwrap();
    assert_eq!(stored[0].state, TrialState::Cancelled);
}

#[test]
fn the_best_values_become_a_new_workflow_version() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine(dir.path(), 2);
    engine.register(peak_workflow()).unwrap();
    let mut study = Study::create(&engine, "peak", seeded(9)).unwrap();
    study
        .run(&settings(12, 2), &CancellationToken::new(), |_| {})
        .unwrap();
    let best = study.best().unwrap().clone();
    let (version, applied) = study.apply_best("optimizer").unwrap().unwrap();
    assert_eq!(version, 2);
    assert_eq!(applied, best);
    let wf = engine.workflow("peak").unwrap();
    assert_eq!(wf.parameters["x"], best.params["x"]);
    assert_eq!(wf.parameters["mode"], best.params["mode"]);
    let versions = engine.versions("peak").unwrap();
    let latest = versions.iter().find(|v| v.version == 2).unwrap();
    assert_eq!(latest.created_by, "optimizer");
    assert!(latest.note.contains(study.id()), "{}", latest.note);
    // A run with the new defaults scores what the best trial did.
    let run = engine
        .start_execution("peak", params(json!({})), RunOptions::default())
        .unwrap();
    let run = engine.wait(&run, Some(Duration::from_secs(30))).unwrap();
    assert_eq!(run.results["peak"]["score"].as_f64(), best.score);
}

#[test]
fn a_study_that_cannot_be_run_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine(dir.path(), 2);
    let mut wf = peak_workflow();
    wf.optimization = None;
    engine.register(wf).unwrap();
    // No section and nothing named: no objective, nothing to tune.
    let Err(OptimizeError::Invalid { problems, .. }) =
        Study::create(&engine, "peak", StudyDefinition::default())
    else {
        panic!("expected a refusal");
    };
    let text = problems.join("\n");
    assert!(text.contains("optimization.objective"), "{text}");
    assert!(text.contains("optimization.parameters"), "{text}");
    // A tuned parameter the workflow does not declare, and a misspelt objective step.
    let mut definition = StudyDefinition {
        objective: Some("peek.result.score".into()),
        ..Default::default()
    };
    definition.tune.insert(
        "z".into(),
        Tunable::Range {
            min: 0.0,
            max: 1.0,
            log: false,
        },
    );
    let Err(OptimizeError::Invalid { problems, .. }) = Study::create(&engine, "peak", definition)
    else {
        panic!("expected a refusal");
    };
    let text = problems.join("\n");
    assert!(text.contains("optimization.parameters.z"), "{text}");
    assert!(text.contains("`peek`"), "{text}");
}
