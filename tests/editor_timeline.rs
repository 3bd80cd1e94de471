//! The editor's timeline and result views driven through its real UI with egui_kittest:
//! rows and bars of a recorded execution (a loop, a retry, a cached run), a live run's
//! timeline, culling of executions with thousands of step runs, and the view each kind of
//! result gets.

mod common;

use common::editor::{harness, run_to_completion, wait_for};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use grym_synth::audio::playback::Slot;
use grym_synth::engine::{
    Engine, EngineConfig, ExecutionSnapshot, ExecutionStatus, StepRunRecord, StepRunStatus,
};
use grym_synth::ui::app::BottomTab;
use grym_synth::ui::run::Phase;
use grym_synth::ui::{Document, Editor, Settings};
use grym_synth::workflow::{ParamMap, Workflow};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audio")
        .join(name)
}

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn at(ms: u64) -> SystemTime {
    t0() + Duration::from_millis(ms)
}

/// A recorded step run from `from` to `to` milliseconds after the execution started.
fn record(
    seq: u64,
    step: &str,
    (iteration, attempt): (u32, u32),
    status: StepRunStatus,
    (from, to): (u64, u64),
    cached: bool,
    result: Option<Value>,
) -> StepRunRecord {
    StepRunRecord {
        seq,
        step_id: step.into(),
        iteration,
        attempt,
        status,
        started_at: at(from),
        finished_at: Some(at(to)),
        duration_ms: Some((to - from) as f64),
        error: (status == StepRunStatus::Failed).then(|| "device busy".to_string()),
        result,
        cached,
        branch: None,
    }
}

fn snapshot(step_runs: Vec<StepRunRecord>) -> ExecutionSnapshot {
    let end = step_runs
        .iter()
        .filter_map(|r| r.finished_at)
        .max()
        .unwrap_or(t0());
    ExecutionSnapshot {
        id: "0123456789abcdef".into(),
        workflow_id: "looping".into(),
        status: ExecutionStatus::Completed,
        error: None,
        failed_step: None,
        parameters: ParamMap::new(),
        current_step: None,
        results: Default::default(),
        step_runs,
        started_at: t0(),
        finished_at: Some(end),
        output_dir: PathBuf::from("runs"),
    }
}

/// load → (work → check) × 2, the second `work` retried once, the second `check` cached.
fn looping_snapshot() -> ExecutionSnapshot {
    use StepRunStatus::{Completed, Failed};
    let mut runs = vec![
        record(
            1,
            "load",
            (1, 1),
            Completed,
            (0, 100),
            false,
            Some(json!({"count": 1})),
        ),
        record(
            2,
            "work",
            (1, 1),
            Completed,
            (150, 250),
            false,
            Some(json!({"value": 1})),
        ),
        record(
            3,
            "check",
            (1, 1),
            Completed,
            (250, 260),
            false,
            Some(json!({"ok": false})),
        ),
        record(4, "work", (2, 1), Failed, (300, 320), false, None),
        record(
            5,
            "work",
            (2, 2),
            Completed,
            (420, 500),
            false,
            Some(json!({"value": 2})),
        ),
        record(
            6,
            "check",
            (2, 1),
            Completed,
            (500, 500),
            true,
            Some(json!({"ok": true})),
        ),
    ];
    runs[2].branch = Some(false);
    runs[5].branch = Some(true);
    snapshot(runs)
}

fn looping_workflow() -> Workflow {
    common::workflow(
        "looping",
        "load",
        json!({}),
        json!({
            "load": {"type": "analysis", "operation": "counter", "nextSteps": {"default": "work"}},
            "work": {"type": "transformation", "operation": "add", "inputs": [{"source": "previous_step", "key": "load.result"}],
                     "nextSteps": {"default": "check"}},
            "check": {"type": "analysis", "operation": "counter"}
        }),
    )
}

fn open_timeline(h: &mut Harness<'_, Editor>) {
    h.get_by_label("Timeline").click();
    h.run_steps(3);
    assert_eq!(h.state().settings.bottom_tab, BottomTab::Timeline);
}

#[test]
fn a_recorded_execution_shows_a_row_per_step_and_a_bar_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _ops) = common::engine(dir.path(), 2);
    let mut h = harness(Editor::new(
        Ok(engine),
        Document::new(looping_workflow(), None),
        Settings::default(),
    ));
    h.run_steps(2);
    h.state_mut().run.show_snapshot(looping_snapshot());
    open_timeline(&mut h);

    for step in ["load", "work", "check"] {
        assert!(
            h.query_by_label(&format!("timeline row {step}")).is_some(),
            "a row for {step}"
        );
    }
    // Each run is a bar of its own: both loop iterations, the failed attempt and its
    // retry, the cached run.
    for bar in [
        "load, iteration 1, attempt 1: completed",
        "work, iteration 1, attempt 1: completed",
        "work, iteration 2, attempt 1: failed",
        "work, iteration 2, attempt 2: completed",
        "check, iteration 1, attempt 1: completed",
        "check, iteration 2, attempt 1: cached",
    ] {
        assert!(h.query_by_label(bar).is_some(), "a bar {bar}");
    }
    assert!(
        h.query_by_label_contains("6 step runs over 500 ms in 3 steps")
            .is_some()
    );

    // Clicking a bar selects its step and shows that run's result.
    h.get_by_label("work, iteration 1, attempt 1: completed")
        .click();
    h.run_steps(3);
    assert_eq!(h.state().selected.as_deref(), Some("work"));
    assert_eq!(h.state().shown_run(), Some(1));
    assert!(h.query_by_label("Result of work").is_some());
    assert!(h.query_by_label("iteration 1, attempt 1").is_some());
    // A result with nothing to draw is its JSON tree, open.
    assert!(h.query_by_label("JSON").is_some());
    assert!(h.query_by_label_contains("value:").is_some());

    // Selecting another step on the canvas shows that step's latest run.
    h.get_by_label("check, iteration 2, attempt 1: cached")
        .click();
    h.run_steps(3);
    assert_eq!(h.state().selected.as_deref(), Some("check"));
    assert_eq!(h.state().shown_run(), Some(5));
    assert!(h.query_by_label("branch true").is_some());

    // The row name selects the step too (its latest run).
    h.get_by_label("timeline row work").click();
    h.run_steps(3);
    assert_eq!(h.state().selected.as_deref(), Some("work"));
    assert_eq!(h.state().shown_run(), Some(4));
}

#[test]
fn thousands_of_runs_are_culled_to_the_visible_range() {
    use StepRunStatus::Completed;
    let runs: Vec<StepRunRecord> = (0..5_000u64)
        .map(|i| {
            record(
                i + 1,
                if i % 2 == 0 { "tick" } else { "check" },
                (i as u32 / 2 + 1, 1),
                Completed,
                (2 * i, 2 * i + 1),
                false,
                Some(json!({"count": i})),
            )
        })
        .collect();
    let mut h = harness(Editor::new(
        Err("no engine in this test".into()),
        Document::new(looping_workflow(), None),
        Settings::default(),
    ));
    h.run_steps(2);
    h.state_mut().run.show_snapshot(snapshot(runs));
    open_timeline(&mut h);
    assert!(h.query_by_label("timeline row tick").is_some());
    // The whole execution in view: 2 500 runs a row merge into far fewer drawn bars.
    let drawn = h.query_all_by_label_contains("runs of tick").count()
        + h.query_all_by_label_contains("tick, iteration").count();
    assert!(
        drawn > 0 && drawn < 1_000,
        "{drawn} bars drawn for 2 500 runs"
    );

    // Zoomed to 20 ms around 5 s: only the runs there, each a bar of its own.
    h.state_mut().timeline.start = 5.0;
    h.state_mut().timeline.span = Some(0.02);
    h.run_steps(2);
    let shown = h.query_all_by_label_contains("tick, iteration").count();
    assert!((4..=8).contains(&shown), "{shown} tick bars in 20 ms");
    // Run 2 500 (tick, iteration 1 251) starts at 5.000 s.
    assert!(
        h.query_by_label("tick, iteration 1251, attempt 1: completed")
            .is_some()
    );
    assert!(
        h.query_by_label("tick, iteration 1, attempt 1: completed")
            .is_none()
    );
}

#[test]
fn a_live_run_fills_the_timeline_with_iterations_and_retries() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _ops) = common::engine(dir.path(), 2);
    let wf = common::workflow(
        "counting",
        "flaky",
        json!({}),
        json!({
            "flaky": {"type": "analysis", "operation": "flaky", "retries": 2, "cache": false,
                      "parameters": {"failures": 1}, "nextSteps": {"default": "tick"}},
            "tick": {"type": "analysis", "operation": "counter", "cache": false, "maxIterations": 10,
                     "nextSteps": {"default": "work"}},
            "work": {"type": "analysis", "operation": "sleep", "cache": false, "maxIterations": 10,
                     "parameters": {"ms": 30}, "nextSteps": {"default": "check"}},
            "check": {"type": "conditional", "inputs": [{"source": "previous_step", "key": "tick.result"}],
                      "condition": {"operator": "greater_than", "leftOperand": "result.count", "rightOperand": 1},
                      "maxIterations": 10,
                      "nextSteps": {"conditional": [{"condition": "true", "stepId": "done"}, {"condition": "false", "stepId": "tick"}]}},
            "done": {"type": "analysis", "operation": "counter", "cache": false}
        }),
    );
    let mut h = harness(Editor::new(
        Ok(engine),
        Document::new(wf, None),
        Settings::default(),
    ));
    h.run_steps(2);
    // The timeline stays in view when a run starts, and follows it.
    open_timeline(&mut h);
    h.get_by_label("▶ Run").click();
    h.run_steps(2);
    h.get_by_label("Start").click();
    h.run_steps(2);
    assert_eq!(h.state().settings.bottom_tab, BottomTab::Timeline);
    wait_for(&mut h, "the run", |e| {
        matches!(e.run.phase, Phase::Finished(_))
    });
    assert_eq!(
        h.state().run.phase,
        Phase::Finished(ExecutionStatus::Completed)
    );
    wait_for(&mut h, "the record to be read back", |e| !e.run.is_busy());
    h.run_steps(2);
    for step in ["flaky", "tick", "work", "check", "done"] {
        assert!(h.query_by_label(&format!("timeline row {step}")).is_some());
    }
    // The 30 ms runs are wide enough to be bars of their own; the instant ones may share
    // a pixel with their neighbours.
    for bar in [
        "work, iteration 1, attempt 1: completed",
        "work, iteration 2, attempt 1: completed",
    ] {
        assert!(h.query_by_label(bar).is_some(), "a bar {bar}");
    }
    // The live rows were replaced by the engine's record, times and all.
    let e = h.state_mut();
    assert!(e.run.execution_started_at.is_some());
    assert!(
        e.run
            .rows
            .iter()
            .all(|r| r.started_at.is_some() && r.finished_at.is_some())
    );
    let layout = e.timeline.layout(&e.run);
    assert_eq!(layout.steps, ["flaky", "tick", "work", "check", "done"]);
    let bars: Vec<String> = layout
        .bars
        .iter()
        .map(|b| {
            format!(
                "{}#{}.{} {}",
                layout.steps[b.row],
                b.iteration,
                b.attempt,
                b.kind.label()
            )
        })
        .collect();
    assert_eq!(
        bars,
        [
            "flaky#1.1 failed",
            "flaky#1.2 completed",
            "tick#1.1 completed",
            "work#1.1 completed",
            "check#1.1 completed",
            "tick#2.1 completed",
            "work#2.1 completed",
            "check#2.1 completed",
            "done#1.1 completed"
        ]
    );
    // The retry waited for its back-off; the loop's second visit came after the first.
    let retry = &layout.bars[1];
    assert!(retry.wait.is_some_and(|w| w >= 0.005), "{:?}", retry.wait);
    assert!(layout.bars[6].start >= layout.bars[3].end.unwrap_or(f64::INFINITY));
}

/// patterns, features, gain and compare on one clip, run for real.
fn analysis_workflow(clip: &Path) -> Workflow {
    common::workflow(
        "views",
        "patterns",
        json!({"audioFile": clip.display().to_string()}),
        json!({
            "patterns": {"type": "analysis", "operation": "patterns",
                         "inputs": [{"source": "parameter", "key": "audioFile"}],
                         "nextSteps": {"default": "features"}},
            "features": {"type": "analysis", "operation": "features",
                         "inputs": [{"source": "parameter", "key": "audioFile"}],
                         "nextSteps": {"default": "gain"}},
            "gain": {"type": "transformation", "operation": "gain",
                     "inputs": [{"source": "parameter", "key": "audioFile"}],
                     "parameters": {"db": -6.0}, "nextSteps": {"default": "compare"}},
            "compare": {"type": "analysis", "operation": "compare",
                        "inputs": [{"source": "parameter", "key": "audioFile"},
                                   {"source": "previous_step", "key": "gain.result"}],
                        "parameters": {"threshold": 0.8}}
        }),
    )
}

#[test]
fn each_kind_of_result_gets_its_view() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        EngineConfig::new(dir.path()),
        grym_synth::ops::builtin_registry(),
    )
    .unwrap();
    let clip = fixture("clicks.wav");
    let mut h = harness(Editor::new(
        Ok(engine),
        Document::new(analysis_workflow(&clip), None),
        Settings::default(),
    ));
    run_to_completion(&mut h);
    wait_for(&mut h, "the record to be read back", |e| !e.run.is_busy());

    // The run panel's "view" button opens the timeline with that result.
    h.get_all_by_label("📊 view").next().unwrap().click();
    h.run_steps(3);
    assert_eq!(h.state().settings.bottom_tab, BottomTab::Timeline);
    assert_eq!(h.state().selected.as_deref(), Some("patterns"));

    // patterns: onsets, beats and sections over the clip's waveform.
    assert!(h.query_by_label("Onsets, beats and sections").is_some());
    assert!(h.query_all_by_label_contains(" onsets").count() > 0);
    assert!(h.query_all_by_label_contains(" beats at ").count() > 0);
    wait_for(&mut h, "the clip to decode", |e| {
        e.results.audio_ready(&clip)
    });
    assert!(h.query_by_label("of input audioFile").is_some());

    // features: the spectrogram and MFCC and chroma heat maps.
    h.get_by_label("features, iteration 1, attempt 1: completed")
        .click();
    h.run_steps(3);
    assert!(h.query_by_label("Spectrogram, MFCC and chroma").is_some());
    wait_for(&mut h, "the heat maps", |e| {
        e.results.heat_maps_ready(&clip)
    });
    assert!(h.query_by_label_contains("MFCC (13 coefficients").is_some());
    assert!(
        h.query_by_label_contains("Chroma (12 pitch classes")
            .is_some()
    );
    assert!(h.state().results.wave.show_spectrogram);

    // compare: a bar per aspect, the overall score, the step's threshold.
    h.get_by_label("compare, iteration 1, attempt 1: completed")
        .click();
    h.run_steps(3);
    assert!(h.query_by_label("Comparison scores").is_some());
    assert!(h.query_by_label_contains("Quality score 0").is_some());
    for aspect in ["loudness score ", "noise score ", "brightness score "] {
        assert!(h.query_by_label_contains(aspect).is_some(), "{aspect}");
    }
    assert!(h.query_by_label_contains("threshold 0.80").is_some());

    // gain: input and output overlaid, and A/B in the Audio tab.
    h.get_by_label("gain, iteration 1, attempt 1: completed")
        .click();
    h.run_steps(3);
    assert!(h.query_by_label("Before and after").is_some());
    assert!(h.query_by_label("after (output)").is_some());
    h.get_by_label("A/B in the Audio tab").click();
    h.run_steps(2);
    assert_eq!(h.state().settings.bottom_tab, BottomTab::Audio);
    let audio = &h.state().audio;
    assert!(audio.has_ab());
    assert_eq!(audio.source(Slot::A).unwrap().path, clip);
    assert_eq!(audio.active(), Slot::B);
}

#[test]
fn a_past_execution_reopens_on_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _ops) = common::engine(dir.path(), 2);
    let wf = looping_workflow();
    let id = engine
        .run(wf.clone(), ParamMap::new(), Default::default())
        .unwrap();
    engine.wait(&id, Some(Duration::from_secs(20))).unwrap();
    let mut h = harness(Editor::new(
        Ok(engine),
        Document::new(wf, None),
        Settings::default(),
    ));
    h.run_steps(2);
    h.state_mut()
        .open_execution(grym_synth::ui::run::LATEST, Some("work".into()));
    wait_for(&mut h, "the execution", |e| {
        matches!(e.run.phase, Phase::Past(_)) && e.selected.is_some()
    });
    assert_eq!(h.state().run.execution_id.as_deref(), Some(id.as_str()));
    assert_eq!(h.state().selected.as_deref(), Some("work"));
    assert!(h.query_by_label("timeline row check").is_some());
    assert!(h.query_by_label("Result of work").is_some());
}
