//! The template library: every template validates against the real catalog, opens tidy in
//! the editor's New menu, is written by `grym-synth new`, and runs end to end through the
//! engine (model steps on the tiny fixture models).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use grym_synth::engine::{Engine, EngineConfig, ExecutionSnapshot, ExecutionStatus, RunOptions};
use grym_synth::workflow::templates::{self, TEMPLATES};
use grym_synth::workflow::{ParamMap, Workflow, validate};
use serde_json::{Value, json};

/// The templates the library promises.
const EXPECTED: [&str; 6] = [
    "audio-enhancement",
    "text-to-audio-quality-gate",
    "style-transfer",
    "speech-transcription",
    "rhythm-report",
    "loudness-normalize",
];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn tiny_audioldm() -> String {
    repo("tests/fixtures/audioldm/tiny").display().to_string()
}

fn tiny_wav2vec2() -> String {
    repo("tests/fixtures/wav2vec2/base-tiny")
        .display()
        .to_string()
}

fn template(name: &str) -> Workflow {
    templates::find(name)
        .unwrap_or_else(|| panic!("template {name}"))
        .load()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn engine(dir: &Path) -> Engine {
    Engine::start(
        EngineConfig::new(dir.join("data")),
        grym_synth::ops::builtin_registry(),
    )
    .expect("engine")
}

fn params(value: Value) -> ParamMap {
    match value {
        Value::Object(map) => map.into_iter().collect(),
        _ => ParamMap::new(),
    }
}

fn run(engine: &Engine, wf: Workflow, parameters: Value, out: &Path) -> ExecutionSnapshot {
    let id = engine
        .run(
            wf,
            params(parameters),
            RunOptions {
                output_dir: Some(out.to_path_buf()),
            },
        )
        .expect("run starts");
    engine
        .wait(&id, Some(Duration::from_secs(300)))
        .expect("run finishes")
}

fn completed(snapshot: &ExecutionSnapshot) {
    assert_eq!(
        snapshot.status,
        ExecutionStatus::Completed,
        "{:?} at {:?}",
        snapshot.error,
        snapshot.failed_step
    );
}

fn visits<'a>(snapshot: &'a ExecutionSnapshot, step: &str) -> Vec<&'a Value> {
    snapshot
        .step_runs
        .iter()
        .filter(|r| r.step_id == step)
        .filter_map(|r| r.result.as_ref())
        .collect()
}

fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number: {v}"))
}

/// A mono 16-bit WAV of `samples`.
fn write_wav(path: &Path, rate: u32, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for &s in samples {
        w.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)
            .expect("sample");
    }
    w.finalize().expect("finalize wav");
}

fn tone(rate: u32, seconds: f64, freq: f64, amplitude: f32) -> Vec<f32> {
    (0..(f64::from(rate) * seconds) as usize)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            amplitude * (2.0 * std::f64::consts::PI * freq * t).sin() as f32
        })
        .collect()
}

/// Reads a WAV: its format and its samples (first channel) as f32.
fn read_wav(path: &Path) -> (hound::WavSpec, Vec<f32>) {
    let mut reader =
        hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .map(|s| s.expect("sample"))
            .collect(),
        hound::SampleFormat::Int => {
            let scale = (1i64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.expect("sample") as f32 / scale)
                .collect()
        }
    };
    (spec, samples.into_iter().step_by(channels).collect())
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("a JSON report")
}

#[test]
fn the_library_has_every_promised_template_each_valid_and_laid_out() {
    let registry = grym_synth::ops::builtin_registry();
    for name in EXPECTED {
        assert!(templates::find(name).is_some(), "missing template {name}");
    }
    assert!(TEMPLATES.len() >= 6);
    for t in TEMPLATES {
        assert!(!t.description.is_empty(), "{}", t.name);
        let wf = template(t.name);
        let report = validate(&wf, Some(&registry));
        assert_eq!(
            report.errors().count(),
            0,
            "{}: {:#?}",
            t.name,
            report.problems
        );
        // Every run parameter a step reads is declared with a default or marked as needed.
        assert!(!wf.parameters.is_empty(), "{}", t.name);

        let layout = wf
            .layout
            .as_ref()
            .unwrap_or_else(|| panic!("{} has a layout", t.name));
        for id in wf.steps.keys() {
            assert!(
                layout.nodes.contains_key(id),
                "{}: no position for {id}",
                t.name
            );
        }
        assert_eq!(layout.nodes.len(), wf.steps.len(), "{}", t.name);
        // Nodes keep a column or a row apart.
        let positions: Vec<_> = layout.nodes.iter().collect();
        for (i, (a, pa)) in positions.iter().enumerate() {
            for (b, pb) in &positions[i + 1..] {
                assert!(
                    (pa.x - pb.x).abs() >= 200.0 || (pa.y - pb.y).abs() >= 150.0,
                    "{}: {a} and {b} overlap",
                    t.name
                );
            }
        }
    }
}

#[test]
fn model_steps_take_their_model_from_a_run_parameter() {
    // The plan's example keeps the plan's parameters; the others name their model once.
    for (name, default) in [
        ("text-to-audio-quality-gate", "cvssp/audioldm-s-full-v2"),
        ("style-transfer", "cvssp/audioldm-s-full-v2"),
        ("speech-transcription", "facebook/wav2vec2-base-960h"),
    ] {
        let wf = template(name);
        assert_eq!(wf.parameters["model"], json!(default), "{name}");
        let model_steps: Vec<_> = wf
            .steps
            .values()
            .filter(|s| s.operation == "generate" || s.operation == "transcribe")
            .collect();
        assert!(!model_steps.is_empty(), "{name}");
        for step in model_steps {
            assert_eq!(
                step.parameters.get("model"),
                Some(&json!("parameter.model")),
                "{name}/{}",
                step.id
            );
        }
    }
}

#[test]
fn the_quality_gate_regenerates_with_a_new_seed_until_its_cap_when_the_score_cannot_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine(dir.path());
    let out = dir.path().join("out");
    let snapshot = run(
        &engine,
        template("text-to-audio-quality-gate"),
        json!({"model": tiny_audioldm(), "steps": 2, "duration": 0.2, "seed": 7, "minScore": 1.0}),
        &out,
    );
    assert_eq!(
        snapshot.status,
        ExecutionStatus::LoopLimit,
        "{:?}",
        snapshot.error
    );
    assert_eq!(snapshot.failed_step.as_deref(), Some("generate"));
    let takes = visits(&snapshot, "generate");
    assert_eq!(takes.len(), 4, "maxIterations 4");
    let seeds: Vec<i64> = takes
        .iter()
        .map(|t| t["settings"]["run"]["seed"].as_i64().expect("seed"))
        .collect();
    assert_eq!(seeds, [7, 8, 9, 10], "each take draws the next seed");
    let clips: std::collections::HashSet<&str> = takes
        .iter()
        .map(|t| t["audio"]["hash"].as_str().expect("hash"))
        .collect();
    assert_eq!(clips.len(), 4, "four different clips");
    let scores = visits(&snapshot, "score");
    assert_eq!(scores.len(), 4);
    for score in scores {
        let q = number(&score["qualityScore"]);
        assert!((0.0..1.0).contains(&q), "{score}");
        assert_eq!(score["passed"], json!(false));
        assert_eq!(score["aspects"].as_object().expect("aspects").len(), 5);
    }
    assert!(
        !out.join("generated.wav").exists(),
        "nothing passed, nothing exported"
    );
}

#[test]
fn the_quality_gate_exports_the_first_take_that_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine(dir.path());
    let base = json!({"model": tiny_audioldm(), "steps": 2, "duration": 0.2, "seed": 3});

    // Any score passes: one take, exported.
    let mut easy = base.clone();
    easy["minScore"] = json!(0.0);
    let out = dir.path().join("easy");
    let snapshot = run(&engine, template("text-to-audio-quality-gate"), easy, &out);
    completed(&snapshot);
    assert_eq!(visits(&snapshot, "generate").len(), 1);
    let (spec, samples) = read_wav(&out.join("generated.wav"));
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (16000, 1, 16)
    );
    assert_eq!(samples.len(), 3200, "0.2 s at 16 kHz");

    // Learn the scores of four takes, then ask for the best of the later ones: the gate
    // keeps regenerating until a take reaches it, and exports that take.
    let mut unreachable = base.clone();
    unreachable["minScore"] = json!(1.0);
    let probe = run(
        &engine,
        template("text-to-audio-quality-gate"),
        unreachable,
        &dir.path().join("probe"),
    );
    let scores: Vec<f64> = visits(&probe, "score")
        .iter()
        .map(|s| number(&s["qualityScore"]))
        .collect();
    assert_eq!(scores.len(), 4);
    let min_score = scores[1..].iter().copied().fold(f64::MIN, f64::max);
    let expected_takes = 1 + scores
        .iter()
        .position(|&s| s >= min_score)
        .expect("the best take reaches it");
    // With these fixtures and seeds the first take scores below the best later one, so
    // the gate has to regenerate.
    assert!(expected_takes > 1, "scores {scores:?}");
    let mut reachable = base;
    reachable["minScore"] = json!(min_score);
    let out = dir.path().join("reachable");
    let snapshot = run(
        &engine,
        template("text-to-audio-quality-gate"),
        reachable,
        &out,
    );
    completed(&snapshot);
    let takes = visits(&snapshot, "generate");
    assert_eq!(takes.len(), expected_takes, "scores {scores:?}");
    let passing = takes.last().expect("a take");
    let (_, take) = read_wav(Path::new(
        passing["audio"]["path"].as_str().expect("artifact"),
    ));
    let (_, exported) = read_wav(&out.join("generated.wav"));
    assert_eq!(take.len(), exported.len());
    let worst = take
        .iter()
        .zip(&exported)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-3, "the passing take was exported ({worst})");
}

#[test]
fn style_transfer_moves_a_source_toward_the_reference_and_reports_both_scores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("source.wav");
    let reference = dir.path().join("reference.wav");
    write_wav(&source, 22050, &tone(22050, 0.25, 220.0, 0.3));
    write_wav(&reference, 44100, &tone(44100, 1.0, 880.0, 0.05));
    let engine = engine(dir.path());
    let out = dir.path().join("out");
    let snapshot = run(
        &engine,
        template("style-transfer"),
        json!({"sourceFile": source, "referenceFile": reference, "model": tiny_audioldm(),
               "steps": 2, "strength": 0.5, "seed": 11}),
        &out,
    );
    completed(&snapshot);
    let transfer = &snapshot.results["transfer"];
    assert_eq!(transfer["mode"], "audio-to-audio");
    assert_eq!(transfer["settings"]["run"]["strength"], json!(0.5));
    assert!(
        (number(&transfer["duration"]) - 0.25).abs() < 0.01,
        "the source's length"
    );
    // The prompt describes the reference, and the loudness is the reference's.
    let reference_features = &snapshot.results["reference-features"];
    let f0 = number(&reference_features["f0"]);
    let prompt = transfer["prompt"].as_str().expect("prompt");
    assert!(prompt.contains(&format!("{f0:.0} Hz")), "{prompt}");
    assert_eq!(
        transfer["loudness"]["targetLufs"],
        reference_features["loudnessLufs"]
    );
    // The source-vs-reference differences steered the prompts.
    let before = &snapshot.results["compare-before"];
    let areas = before["improvementAreas"].as_array().expect("areas");
    assert!(!areas.is_empty(), "a 220 Hz tone is not an 880 Hz one");
    assert_eq!(transfer["settings"]["focusAreas"], json!(areas));

    let (spec, samples) = read_wav(&out.join("styled.wav"));
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (16000, 1, 16)
    );
    assert_eq!(samples.len(), 4000, "0.25 s at 16 kHz");
    let report = read_json(&out.join("style-transfer.json"));
    for key in ["scoreBefore", "scoreAfter"] {
        assert!((0.0..=1.0).contains(&number(&report[key])), "{report}");
    }
    assert_eq!(report["scoreBefore"], before["qualityScore"]);
    assert_eq!(
        report["scoreAfter"],
        snapshot.results["compare-after"]["qualityScore"]
    );
    assert_eq!(report["strength"], json!(0.5));
    assert_eq!(report["prompt"], transfer["prompt"]);
    assert_eq!(
        Path::new(report["output"].as_str().expect("output")),
        out.join("styled.wav")
    );
}

#[test]
fn speech_transcription_reports_the_transcript_with_its_loudness() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine(dir.path());
    let out = dir.path().join("out");
    let speech = repo("tests/fixtures/wav2vec2/speech16k.wav");
    let snapshot = run(
        &engine,
        template("speech-transcription"),
        json!({"audioFile": speech, "model": tiny_wav2vec2()}),
        &out,
    );
    completed(&snapshot);
    let report = read_json(&out.join("transcript.json"));
    let transcribed = &snapshot.results["transcribe"];
    assert_eq!(report["text"], transcribed["text"]);
    assert!(!report["text"].as_str().expect("text").is_empty());
    assert_eq!(report["model"], json!(tiny_wav2vec2()));
    let duration = number(&report["duration"]);
    assert!((duration - 3.44).abs() < 0.01, "{duration}");
    let words = report["words"].as_array().expect("words");
    assert!(!words.is_empty());
    for w in words {
        let (start, end) = (number(&w["start"]), number(&w["end"]));
        assert!(0.0 <= start && start < end && end <= duration + 0.02, "{w}");
    }
    let lufs = number(&report["loudness"]["integratedLufs"]);
    assert!((-40.0..-5.0).contains(&lufs), "{lufs}");
    assert_eq!(report["loudness"], snapshot.results["loudness"]);
}

/// Decaying 660 Hz clicks on every beat of 120 BPM from 0.5 s, every fourth one 20 dB
/// louder.
fn accented_click_track(rate: u32, seconds: f64) -> Vec<f32> {
    let rate = f64::from(rate);
    let mut y = vec![0.0f32; (rate * seconds) as usize];
    for k in 0.. {
        let start = 0.5 + 0.5 * f64::from(k);
        if start >= seconds {
            break;
        }
        let amplitude = if k % 4 == 0 { 0.6 } else { 0.06 };
        let first = (start * rate) as usize;
        for i in 0..(0.2 * rate) as usize {
            if let Some(s) = y.get_mut(first + i) {
                let t = i as f64 / rate;
                let phase = 2.0 * std::f64::consts::PI * 660.0 * t;
                *s = (amplitude * (-t / 0.05).exp() * phase.sin()) as f32;
            }
        }
    }
    y
}

#[test]
fn the_rhythm_report_measures_every_beat_bar_and_section() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = dir.path().join("beats.wav");
    write_wav(&clip, 22050, &accented_click_track(22050, 12.0));
    let engine = engine(dir.path());
    let out = dir.path().join("out");
    let snapshot = run(
        &engine,
        template("rhythm-report"),
        json!({"audioFile": clip}),
        &out,
    );
    completed(&snapshot);
    let report = read_json(&out.join("rhythm-report.json"));
    let tempo = number(&report["tempo"]);
    assert!((tempo - 120.0).abs() < 6.0, "{tempo}");
    let beat_count = report["beatCount"].as_u64().expect("beatCount") as usize;
    assert!(beat_count >= 18, "{beat_count}");
    let beats = snapshot.results["patterns"]["beats"]
        .as_array()
        .expect("beats")
        .iter()
        .map(number)
        .collect::<Vec<_>>();
    assert_eq!(beats.len(), beat_count);
    // One interval per beat, plus the lead-in before the first; they tile the clip.
    let intervals = report["beats"].as_array().expect("intervals");
    assert_eq!(intervals.len(), beat_count + 1);
    assert_eq!(number(&intervals[0]["start"]), 0.0);
    assert!((number(&intervals[beat_count]["end"]) - 12.0).abs() < 1e-6);
    for (pair, beat) in intervals.windows(2).zip(&beats) {
        assert_eq!(pair[0]["end"], pair[1]["start"]);
        assert_eq!(number(&pair[1]["start"]), *beat);
    }
    for interval in &intervals[1..] {
        assert_eq!(interval["pitchClass"], "E", "660 Hz: {interval}");
        assert_eq!(interval["chroma"].as_array().expect("chroma").len(), 12);
    }
    // The loud beat stands out in the accent profile of the 4/4 bar.
    assert_eq!(report["beatsPerBar"], json!(4));
    let accents: Vec<f64> = report["accentProfile"]
        .as_array()
        .expect("accent profile")
        .iter()
        .map(number)
        .collect();
    assert_eq!(accents.len(), 4);
    // Onsets are found a frame into a click, so part of a loud click can fall at the end of
    // the beat before it; the positions without it stay far quieter.
    let mut sorted = accents.clone();
    sorted.sort_by(f64::total_cmp);
    assert!(
        sorted[3] - sorted[1] > 10.0,
        "one accented position: {accents:?}"
    );
    assert_eq!(
        report["bars"].as_array().expect("bars").len(),
        beat_count.div_ceil(4)
    );
    // Sections begin and end on the beat (or at the clip's edges).
    let sections = report["sections"].as_array().expect("sections");
    assert!(!sections.is_empty());
    for section in sections {
        for edge in [number(&section["start"]), number(&section["end"])] {
            let on_beat = beats.iter().any(|b| (b - edge).abs() < 1e-9);
            assert!(
                on_beat || edge == 0.0 || (edge - 12.0).abs() < 1e-6,
                "{section}"
            );
        }
    }
    let lufs = number(&report["loudness"]["integratedLufs"]);
    assert!((-60.0..0.0).contains(&lufs), "{lufs}");
}

/// `db` decibels of gain.
fn gain(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

#[test]
fn loudness_normalize_brings_every_clip_to_the_target_and_exports_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine(dir.path());
    // A 997 Hz sine of amplitude 0.1 measures -23 LUFS.
    for (name, db, exported) in [
        ("quiet", -15.0, "normalized.wav"),
        ("loud", 12.0, "normalized.wav"),
        ("on-target", 0.4, "original.wav"),
    ] {
        let clip = dir.path().join(format!("{name}.wav"));
        write_wav(&clip, 44100, &tone(44100, 3.0, 997.0, 0.1 * gain(db)));
        // Two runs of the same clip: each writes its own output folder.
        for attempt in ["first", "again"] {
            let out = dir.path().join(format!("{name}-{attempt}"));
            let snapshot = run(
                &engine,
                template("loudness-normalize"),
                json!({"audioFile": clip}),
                &out,
            );
            completed(&snapshot);
            let measured = number(&snapshot.results["measure"]["integratedLufs"]);
            assert!(
                (measured - (-23.0 + f64::from(db))).abs() < 0.2,
                "{name}: {measured}"
            );
            if exported == "normalized.wav" {
                let verified = number(&snapshot.results["verify"]["integratedLufs"]);
                assert!((verified + 23.0).abs() < 0.05, "{name}: {verified}");
            } else {
                assert!(!snapshot.results.contains_key("normalize"), "{name}");
            }
            let written = out.join(exported);
            let (spec, samples) = read_wav(&written);
            assert_eq!(
                (spec.sample_rate, spec.bits_per_sample),
                (48000, 24),
                "{name}"
            );
            assert!(
                (samples.len() as i64 - 144_000).abs() <= 1,
                "{name}: 3 s at 48 kHz"
            );
            let entries = std::fs::read_dir(&out).expect("output folder").count();
            assert_eq!(entries, 1, "{name}: only the export in {}", out.display());
        }
    }
}

#[test]
fn the_plans_example_loops_on_its_score_and_finalizes_when_it_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine(dir.path());
    let clip = dir.path().join("clip.wav");
    write_wav(&clip, 22050, &tone(22050, 0.2, 330.0, 0.2));
    let with_tiny_model = |threshold: f64| {
        let mut wf = template("audio-enhancement");
        for step in ["generate-enhanced", "regenerate"] {
            let p = &mut wf.steps.get_mut(step).expect("step").parameters;
            p.insert("model".into(), json!(tiny_audioldm()));
            p.insert("steps".into(), json!(2));
            p.insert("seed".into(), json!(1));
        }
        let evaluate = wf.steps.get_mut("evaluate-result").expect("evaluate");
        if let Some(condition) = evaluate.condition.as_mut() {
            condition.right_operand = json!(threshold);
        }
        wf
    };
    // The plan's bar (0.8) is out of reach of random weights: the loop runs to its cap,
    // regenerating with compare's improvement areas.
    let capped = run(
        &engine,
        with_tiny_model(0.8),
        json!({"audioFile": clip}),
        &dir.path().join("capped"),
    );
    assert_eq!(
        capped.status,
        ExecutionStatus::LoopLimit,
        "{:?}",
        capped.error
    );
    assert_eq!(visits(&capped, "evaluate-result").len(), 5);
    let regenerations = visits(&capped, "regenerate");
    assert!(regenerations.len() >= 4);
    let areas = &capped.results["evaluate-result"]["improvementAreas"];
    assert_eq!(
        regenerations.last().expect("a regeneration")["settings"]["focusAreas"],
        *areas
    );

    // With a bar it clears, it exports the enhanced clip: 16-bit 44.1 kHz, the source's
    // length (preserveOriginalCharacteristics).
    let out = dir.path().join("passed");
    let passed = run(
        &engine,
        with_tiny_model(0.0),
        json!({"audioFile": clip}),
        &out,
    );
    completed(&passed);
    assert!(visits(&passed, "regenerate").is_empty());
    let written = Path::new(passed.results["finalize"]["path"].as_str().expect("path"));
    assert!(written.starts_with(&out));
    let (spec, samples) = read_wav(written);
    assert_eq!((spec.sample_rate, spec.bits_per_sample), (44100, 16));
    assert!((samples.len() as f64 / 44100.0 - 0.2).abs() < 0.01);
}

fn grym(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_grym-synth"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("GRYM_LOG", "error")
        .output()
        .expect("the binary runs")
}

#[test]
fn new_writes_every_template_and_the_result_validates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let listed = grym(&data, &["new", "--list"]);
    assert!(listed.status.success());
    let listing = String::from_utf8_lossy(&listed.stdout).into_owned();
    for t in TEMPLATES {
        assert!(listing.contains(t.name), "{listing}");
        for ext in ["ron", "json"] {
            let target = dir.path().join(format!("{}.{ext}", t.name));
            let path = target.to_str().expect("path");
            let out = grym(&data, &["new", "--template", t.name, path]);
            assert!(
                out.status.success(),
                "{}: {}",
                t.name,
                String::from_utf8_lossy(&out.stderr)
            );
            let mut written = grym_synth::workflow::load(&target).expect("loads");
            let original = template(t.name);
            // Only the dates are new.
            written.metadata = original.metadata.clone();
            assert_eq!(written, original, "{}", t.name);
            let out = grym(&data, &["validate", path]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}: {}",
                t.name,
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
    // The batch template runs from the command line into the output folder.
    let clip = dir.path().join("clip.wav");
    write_wav(&clip, 44100, &tone(44100, 1.0, 997.0, 0.02));
    let workflow = dir.path().join("loudness-normalize.ron");
    let out_dir = dir.path().join("out");
    let out = grym(
        &data,
        &[
            "run",
            workflow.to_str().expect("path"),
            "--param",
            &format!("audioFile={}", clip.display()),
            "--out",
            out_dir.to_str().expect("path"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out_dir.join("normalized.wav").is_file());
}

#[test]
fn every_template_opens_tidy_from_the_editors_new_menu() {
    use egui_kittest::HarnessBuilder;
    use egui_kittest::kittest::Queryable;
    use grym_synth::ui::{Document, Editor, Settings};

    let dir = tempfile::tempdir().expect("tempdir");
    let editor = Editor::new(
        Ok(engine(dir.path())),
        Document::blank(),
        Settings::default(),
    );
    let mut h = HarnessBuilder::default()
        .with_size(egui::vec2(1500.0, 950.0))
        .build_ui_state(|ui, editor: &mut Editor| editor.show(ui), editor);
    h.run_steps(2);
    for t in TEMPLATES {
        h.get_by_label("File").click();
        h.run_steps(2);
        h.get_by_label_contains("New from template").hover();
        h.run_steps(2);
        h.get_by_label(t.name).click();
        h.run_steps(4);
        let editor = h.state();
        assert_eq!(
            editor.doc.workflow(),
            &template(t.name),
            "{} opened as written, positions included",
            t.name
        );
        assert!(
            editor.status.as_ref().is_none_or(|(_, error)| !error),
            "{}: {:?}",
            t.name,
            editor.status
        );
        assert_eq!(editor.report.errors().count(), 0, "{}", t.name);
        // Every node is drawn, and none covers another.
        let rects = &editor.canvas.node_rects;
        for id in template(t.name).steps.keys() {
            assert!(rects.contains_key(id), "{}: {id} is drawn", t.name);
        }
        let drawn: Vec<_> = rects.iter().collect();
        for (i, (a, ra)) in drawn.iter().enumerate() {
            for (b, rb) in &drawn[i + 1..] {
                assert!(!ra.intersects(**rb), "{}: {a} overlaps {b}", t.name);
            }
        }
    }
}
