//! The operation catalog through the engine and the command line, on the audio fixtures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use grym_synth::engine::{Engine, EngineConfig, ExecutionStatus, RunOptions};
use grym_synth::workflow::{ParamMap, Workflow};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audio")
        .join(name)
}

fn reference() -> Value {
    let text = std::fs::read_to_string(fixture("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn engine(dir: &Path) -> Engine {
    Engine::start(EngineConfig::new(dir), grym_synth::ops::builtin_registry()).unwrap()
}

fn workflow(steps: Value, parameters: Value) -> Workflow {
    let mut steps = steps;
    for (key, step) in steps.as_object_mut().unwrap() {
        step["id"] = json!(key);
        if step.get("nextSteps").is_none() {
            step["nextSteps"] = json!({});
        }
    }
    let first = steps.as_object().unwrap().keys().next().unwrap().clone();
    serde_json::from_value(json!({
        "id": "audio-test", "name": "audio test", "initialStep": first,
        "steps": steps, "parameters": parameters,
        "metadata": {"createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}
    }))
    .unwrap()
}

fn run(engine: &Engine, wf: Workflow, out: &Path) -> grym_synth::engine::ExecutionSnapshot {
    let id = engine
        .run(
            wf,
            ParamMap::new(),
            RunOptions {
                output_dir: Some(out.to_path_buf()),
            },
        )
        .unwrap();
    let run = engine.wait(&id, Some(Duration::from_secs(120))).unwrap();
    assert_eq!(run.status, ExecutionStatus::Completed, "{:?}", run.error);
    run
}

#[test]
fn op_features_prints_librosa_compatible_numbers_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let audio = fixture("chord.wav");
    let out = Command::new(env!("CARGO_BIN_EXE_grym-synth"))
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .args(["op", "analysis/features", "--json", "--input"])
        .arg(format!("audio={}", audio.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = &reference()["signals"]["chord"]["features"];
    for key in ["duration", "rms", "spectralCentroid", "zeroCrossingRate"] {
        let (got, want) = (
            result[key].as_f64().unwrap(),
            expected[key].as_f64().unwrap(),
        );
        assert!(
            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
            "{key}: {got} vs {want}"
        );
    }
    assert_eq!(result["mfcc"].as_array().unwrap().len(), 13);
    assert_eq!(result["chroma"].as_array().unwrap().len(), 12);
}

#[test]
fn analyse_transform_and_export_as_a_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let engine = engine(&dir.path().join("data"));
    let wf = workflow(
        json!({
            "measure": {"type": "analysis", "operation": "loudness", "inputs": [{"source": "parameter", "key": "audioFile"}],
                        "nextSteps": {"default": "normalize"}},
            "normalize": {"type": "transformation", "operation": "normalize", "inputs": [{"source": "parameter", "key": "audioFile"}],
                          "parameters": {"mode": "lufs", "target": -20.0}, "nextSteps": {"default": "check"}},
            "check": {"type": "analysis", "operation": "loudness", "inputs": [{"source": "previous_step", "key": "normalize.result"}],
                      "nextSteps": {"default": "export"}},
            "export": {"type": "transformation", "operation": "export", "inputs": [{"source": "previous_step", "key": "normalize.result"}],
                       "parameters": {"sampleRate": 44100, "bitDepth": 24, "fileName": "normalized"}}
        }),
        json!({"audioFile": fixture("speech.wav")}),
    );
    let run = run(&engine, wf, &out);
    let after = run.results["check"]["integratedLufs"].as_f64().unwrap();
    assert!((after - -20.0).abs() < 0.05, "normalised to {after} LUFS");
    // The intermediate result is a float artifact named by its content.
    let artifact = &run.results["normalize"]["audio"];
    let path = PathBuf::from(artifact["path"].as_str().unwrap());
    assert_eq!(
        path.file_stem().unwrap().to_str().unwrap(),
        artifact["hash"].as_str().unwrap()
    );
    assert_eq!(
        hound::WavReader::open(&path).unwrap().spec().sample_format,
        hound::SampleFormat::Float
    );
    // The export is where the user asked, at the rate and depth they asked.
    let exported = out.join("normalized.wav");
    let spec = hound::WavReader::open(&exported).unwrap().spec();
    assert_eq!((spec.sample_rate, spec.bits_per_sample), (44100, 24));
    assert_eq!(run.results["export"]["path"], json!(exported));
}

#[test]
fn compare_scores_a_clip_against_itself_and_a_quieter_copy() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir.path().join("data"));
    let wf = workflow(
        json!({
            "quiet": {"type": "transformation", "operation": "gain", "inputs": [{"source": "parameter", "key": "audioFile"}],
                      "parameters": {"db": -12.0}, "nextSteps": {"default": "same"}},
            "same": {"type": "analysis", "operation": "compare",
                     "inputs": [{"source": "parameter", "key": "audioFile"}, {"source": "parameter", "key": "audioFile"}],
                     "nextSteps": {"default": "different"}},
            "different": {"type": "analysis", "operation": "compare",
                          "inputs": [{"source": "parameter", "key": "audioFile"}, {"source": "previous_step", "key": "quiet.result"}]}
        }),
        json!({"audioFile": fixture("chord.wav")}),
    );
    let run = run(&engine, wf, &dir.path().join("out"));
    let same = &run.results["same"];
    assert!(same["qualityScore"].as_f64().unwrap() > 0.99, "{same}");
    assert_eq!(same["improvementAreas"], json!([]));
    let different = &run.results["different"];
    assert!(
        different["qualityScore"].as_f64().unwrap() < 0.95,
        "{different}"
    );
    assert!(
        different["improvementAreas"]
            .as_array()
            .unwrap()
            .contains(&json!("loudness")),
        "{different}"
    );
}

#[test]
fn cached_results_follow_content_not_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir.path().join("data"));
    let copy = dir.path().join("renamed-copy.wav");
    std::fs::copy(fixture("clicks.wav"), &copy).unwrap();
    let features = |path: &Path| {
        workflow(
            json!({"f": {"type": "analysis", "operation": "patterns", "inputs": [{"source": "parameter", "key": "audioFile"}]}}),
            json!({"audioFile": path}),
        )
    };
    let first = run(&engine, features(&fixture("clicks.wav")), dir.path());
    assert!(!first.step_runs[0].cached);
    let second = run(&engine, features(&copy), dir.path());
    assert!(second.step_runs[0].cached, "same bytes under another name");
    assert_eq!(first.results["f"], second.results["f"]);
    let beats = first.results["f"]["beats"].as_array().unwrap();
    assert!(beats.len() > 3, "a click track has beats: {beats:?}");
}

#[test]
fn bad_audio_fails_the_step_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir.path().join("data"));
    let text = dir.path().join("notes.wav");
    std::fs::write(&text, "this is not audio").unwrap();
    let wf = workflow(
        json!({"f": {"type": "analysis", "operation": "features", "inputs": [{"source": "parameter", "key": "audioFile"}]}}),
        json!({"audioFile": text}),
    );
    let id = engine
        .run(wf, ParamMap::new(), RunOptions::default())
        .unwrap();
    let run = engine.wait(&id, Some(Duration::from_secs(60))).unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let error = run.error.unwrap();
    assert!(
        error.contains("notes.wav") && error.contains("step `f`"),
        "{error}"
    );
}

#[test]
fn every_catalog_operation_declares_what_an_editor_and_an_llm_need() {
    let registry = grym_synth::ops::builtin_registry();
    for spec in registry.specs() {
        assert!(
            spec.description.len() > 40,
            "{} needs a real description",
            spec.qualified_name()
        );
        // It reads something: an input, or (a report) a required parameter of references.
        assert!(
            !spec.inputs.is_empty() || spec.parameters.iter().any(|p| p.required),
            "{}",
            spec.qualified_name()
        );
        assert!(
            !spec.outputs.is_empty(),
            "{} declares no results",
            spec.qualified_name()
        );
        for p in &spec.parameters {
            assert!(
                !p.description.is_empty(),
                "{}.{}",
                spec.qualified_name(),
                p.name
            );
            if let Some(default) = &p.default {
                assert_eq!(
                    grym_synth::engine::registry::param_problem(p, default),
                    None,
                    "{}.{}: the default breaks its own schema",
                    spec.qualified_name(),
                    p.name
                );
            }
        }
    }
}

#[test]
fn the_runnable_templates_run_end_to_end() {
    use grym_synth::workflow::templates;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir.path().join("data"));
    for (name, clip, last) in [
        ("loudness-normalize", "clicks.wav", "export-normalized"),
        ("loudness-normalize", "speech.wav", "export-normalized"),
        ("rhythm-report", "clicks.wav", "report"),
    ] {
        let mut wf = templates::find(name).unwrap().load().unwrap();
        wf.parameters
            .insert("audioFile".into(), json!(fixture(clip)));
        let out = dir.path().join(format!("{name}-{clip}"));
        let run = run(&engine, wf, &out);
        assert_eq!(
            run.step_runs.last().unwrap().step_id,
            last,
            "{name} on {clip}"
        );
    }
}

#[test]
fn cancelling_stops_a_streaming_transform_inside_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("long.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&long, spec).unwrap();
    for i in 0..48_000 * 240 {
        let s = ((i as f32 * 0.01).sin() * 8000.0) as i16;
        w.write_sample(s).unwrap();
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    let engine = engine(&dir.path().join("data"));
    let events = engine.subscribe();
    let wf = workflow(
        json!({"g": {"type": "transformation", "operation": "gain", "cache": false,
                     "inputs": [{"source": "parameter", "key": "audioFile"}], "parameters": {"db": -3.0}}}),
        json!({"audioFile": long}),
    );
    let id = engine
        .run(wf, ParamMap::new(), RunOptions::default())
        .unwrap();
    loop {
        match events.recv_timeout(Duration::from_secs(30)).unwrap() {
            grym_synth::engine::Event::StepStarted { .. } => break,
            _ => continue,
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    let asked = std::time::Instant::now();
    engine.cancel(&id).unwrap();
    let run = engine.wait(&id, Some(Duration::from_secs(60))).unwrap();
    eprintln!(
        "a streaming gain stopped {:?} after cancel",
        asked.elapsed()
    );
    assert_eq!(run.status, ExecutionStatus::Cancelled);
    // The operation itself stopped; it did not run to the end and then get discarded.
    assert_eq!(
        run.step_runs.last().map(|r| r.status),
        Some(grym_synth::engine::StepRunStatus::Cancelled)
    );
}

#[test]
fn quality_passes_a_clean_recording_and_fails_noise_naming_the_area() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir.path().join("data"));
    let score = |clip: &str| {
        let wf = workflow(
            json!({"q": {"type": "analysis", "operation": "quality",
                         "inputs": [{"source": "parameter", "key": "audioFile"}]}}),
            json!({"audioFile": fixture(clip)}),
        );
        run(&engine, wf, dir.path()).results["q"].clone()
    };
    let chord = score("chord.wav");
    assert_eq!(chord["passed"], json!(true), "{chord}");
    assert!(chord["qualityScore"].as_f64().unwrap() > 0.9, "{chord}");
    let noise = score("noise.wav");
    assert_eq!(noise["passed"], json!(false), "{noise}");
    assert_eq!(noise["aspects"]["noise"]["score"], json!(0.0), "{noise}");
    assert_eq!(noise["improvementAreas"][0], "noise", "{noise}");
}

#[test]
fn report_writes_resolved_references_into_the_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir.path().join("data"));
    let report = |file_name: &str| {
        workflow(
            json!({
                "loudness": {"type": "analysis", "operation": "loudness",
                             "inputs": [{"source": "parameter", "key": "audioFile"}],
                             "nextSteps": {"default": "report"}},
                "report": {"type": "transformation", "operation": "report",
                           "parameters": {"fileName": file_name, "content": {
                               "file": "parameter.audioFile",
                               "figures": {"lufs": "context.loudness.result.integratedLufs"}}}}
            }),
            json!({"audioFile": fixture("speech.wav")}),
        )
    };
    let out = dir.path().join("out");
    let snapshot = run(&engine, report("summary"), &out);
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(written, snapshot.results["report"]["report"]);
    assert_eq!(written["file"], json!(fixture("speech.wav")));
    assert_eq!(
        written["figures"]["lufs"],
        snapshot.results["loudness"]["integratedLufs"]
    );
    // A name with a folder in it is refused.
    let id = engine
        .run(report("../escape"), ParamMap::new(), RunOptions::default())
        .unwrap();
    let failed = engine.wait(&id, Some(Duration::from_secs(60))).unwrap();
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert!(failed.error.unwrap().contains("plain file name"));
}
