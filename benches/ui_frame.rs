//! The editor's CPU time per frame, headless: the real `Editor` drawn into an egui context
//! and tessellated into meshes (everything a frame costs before the GPU), for
//! - a 300-step workflow on the canvas, every node in view;
//! - the audio panel showing one hour of 48 kHz audio (levels already computed), once with
//!   the view standing still and once scrolling, so the per-column envelope is recomputed
//!   every frame;
//! - the timeline of an execution with 10 000 step runs (a loop of five steps), whole and
//!   zoomed in while scrolling.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use egui::{Pos2, Rect, Vec2};
use grym_synth::audio::AudioBuffer;
use grym_synth::engine::{
    Engine, EngineConfig, ExecutionSnapshot, ExecutionStatus, StepRunRecord, StepRunStatus,
};
use grym_synth::ui::app::BottomTab;
use grym_synth::ui::audio::AudioRef;
use grym_synth::ui::waveform::WaveData;
use grym_synth::ui::{Document, Editor, Settings};
use grym_synth::workflow::Workflow;
use serde_json::{Map, json};

const SIZE: Vec2 = Vec2::new(1500.0, 950.0);

/// CPU time this thread has run, from the scheduler's own accounting (nanoseconds,
/// first field of `/proc/thread-self/schedstat`). Unlike wall time it does not count
/// waiting for a core, so other load on the machine does not inflate it.
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Benchmarks `f` twice: wall time per call, and (where the system reports it) this
/// thread's CPU time per call.
fn both(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut f: impl FnMut() -> usize,
) {
    group.bench_function(name, |b| b.iter(&mut f));
    if thread_cpu_time().is_some() {
        group.bench_function(format!("{name}_cpu"), |b| {
            b.iter_custom(|iters| {
                let start = thread_cpu_time().unwrap_or_default();
                for _ in 0..iters {
                    std::hint::black_box(f());
                }
                thread_cpu_time().unwrap_or_default().saturating_sub(start)
            })
        });
    }
}

/// One frame: layout and painting of the whole editor, then tessellation.
fn frame(ctx: &egui::Context, editor: &mut Editor) -> usize {
    let input = egui::RawInput {
        screen_rect: Some(Rect::from_min_size(Pos2::ZERO, SIZE)),
        ..Default::default()
    };
    let mut output = ctx.run_ui(input, |ui| editor.show(ui));
    // No renderer takes the texture updates (debug builds check that they were handled).
    output.textures_delta.clear();
    ctx.tessellate(std::mem::take(&mut output.shapes), output.pixels_per_point)
        .len()
}

/// A chain of 300 steps: loudness, gain and filter in turn, each reading the one before.
fn workflow_300() -> Workflow {
    let mut steps = Map::new();
    for i in 0..300 {
        let id = format!("s{i:03}");
        let (kind, op, params) = match i % 3 {
            0 => ("analysis", "loudness", json!({})),
            1 => ("transformation", "gain", json!({"db": -3.0})),
            _ => (
                "transformation",
                "normalize",
                json!({"mode": "peak", "target": -1.0}),
            ),
        };
        let input = if i == 0 {
            json!({"source": "parameter", "key": "audioFile"})
        } else {
            json!({"source": "previous_step", "key": format!("s{:03}.result", i - 1)})
        };
        let next = if i < 299 {
            json!({"default": format!("s{:03}", i + 1)})
        } else {
            json!({})
        };
        steps.insert(
            id.clone(),
            json!({"id": id, "type": kind, "operation": op, "inputs": [input],
                   "parameters": params, "nextSteps": next}),
        );
    }
    serde_json::from_value(json!({
        "id": "big", "name": "300 steps", "initialStep": "s000",
        "steps": steps, "parameters": {"audioFile": "in.wav"},
        "metadata": {"createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
                     "createdBy": "bench", "version": "1"}
    }))
    .expect("the benchmark workflow parses")
}

fn editor(dir: &std::path::Path, doc: Document) -> Editor {
    let engine = Engine::start(EngineConfig::new(dir), grym_synth::ops::builtin_registry())
        .map_err(|e| e.to_string());
    Editor::new(engine, doc, Settings::default())
}

/// One hour of 48 kHz mono: a tone whose level swells and fades, plus noise.
fn hour_of_audio() -> AudioBuffer {
    let n = 3600 * 48_000;
    let mut state = 0x9e37_79b9u32;
    let mut phase = 0.0f32;
    let samples = (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state as f32 / u32::MAX as f32 - 0.5) * 0.1;
            phase += 0.057;
            if phase > 1.0 {
                phase -= 2.0;
            }
            let level = ((i / 48_000) % 60) as f32 / 60.0;
            (phase * level + noise).clamp(-1.0, 1.0)
        })
        .collect();
    AudioBuffer::new(48_000, vec![samples]).expect("valid audio")
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("ui_frame");
    group.sample_size(30);

    let ctx = egui::Context::default();
    let mut canvas = editor(&dir.path().join("a"), Document::new(workflow_300(), None));
    for _ in 0..5 {
        frame(&ctx, &mut canvas);
    }
    assert_eq!(canvas.canvas.node_rects.len(), 300, "every node is drawn");
    both(&mut group, "canvas_300_steps", || frame(&ctx, &mut canvas));
    drop(canvas);

    let data = Arc::new(WaveData::new(
        PathBuf::from("hour.wav"),
        Arc::new(hour_of_audio()),
    ));
    let ctx = egui::Context::default();
    let mut wave = editor(&dir.path().join("b"), Document::blank());
    wave.settings.show_bottom = true;
    wave.settings.bottom_tab = BottomTab::Audio;
    wave.audio.set_loaded(
        AudioRef {
            label: "hour.wav".into(),
            path: PathBuf::from("hour.wav"),
        },
        Arc::clone(&data),
    );
    for _ in 0..5 {
        frame(&ctx, &mut wave);
    }
    assert!(wave.audio.data().is_some(), "the hour is shown");
    both(&mut group, "waveform_1h_still", || frame(&ctx, &mut wave));

    // Scroll through the zoomed-out view: a new envelope every frame.
    let mut t = 0.0;
    both(&mut group, "waveform_1h_scrolling", || {
        t = (t + 7.3) % 1800.0;
        wave.audio.view.start = t;
        wave.audio.view.span = Some(1800.0);
        frame(&ctx, &mut wave)
    });
    drop(wave);

    let ctx = egui::Context::default();
    let mut timeline = editor(&dir.path().join("c"), Document::blank());
    timeline.settings.show_bottom = true;
    timeline.settings.bottom_tab = BottomTab::Timeline;
    timeline.run.show_snapshot(loop_of_10k_runs());
    for _ in 0..5 {
        frame(&ctx, &mut timeline);
    }
    both(&mut group, "timeline_10k_runs_whole", || {
        frame(&ctx, &mut timeline)
    });
    // Two seconds in view, moved every frame.
    let mut t = 0.0;
    both(&mut group, "timeline_10k_runs_scrolling", || {
        t = (t + 0.37) % 90.0;
        timeline.timeline.start = t;
        timeline.timeline.span = Some(2.0);
        frame(&ctx, &mut timeline)
    });
    group.finish();
}

/// A finished execution of 10 000 step runs: five steps in a loop, 10 ms each.
fn loop_of_10k_runs() -> ExecutionSnapshot {
    let t0 = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let step_runs: Vec<StepRunRecord> = (0..10_000u64)
        .map(|i| StepRunRecord {
            seq: i + 1,
            step_id: format!("step-{}", i % 5),
            iteration: (i / 5 + 1) as u32,
            attempt: 1,
            status: StepRunStatus::Completed,
            started_at: at(10 * i),
            finished_at: Some(at(10 * i + 9)),
            duration_ms: Some(9.0),
            error: None,
            result: Some(json!({"value": i})),
            cached: i % 7 == 0,
            branch: None,
        })
        .collect();
    ExecutionSnapshot {
        id: "bench".into(),
        workflow_id: "loop".into(),
        status: ExecutionStatus::Completed,
        error: None,
        failed_step: None,
        parameters: Default::default(),
        current_step: None,
        results: Default::default(),
        step_runs,
        started_at: t0,
        finished_at: Some(at(100_000)),
        output_dir: PathBuf::from("runs"),
    }
}

criterion_group!(ui, benches);
criterion_main!(ui);
