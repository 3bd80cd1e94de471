//! `grym-synth batch` and `grym-synth optimize` as scripts and array jobs drive them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn grym(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_grym-synth"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("GRYM_LOG", "error")
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .to_string_lossy()
        .into_owned()
}

/// A mono 16-bit WAV: a sine of `freq` Hz at `amp` plus a 50 Hz hum of `hum`.
fn tone(path: &Path, freq: f32, amp: f32, hum: f32, seconds: f32) -> PathBuf {
    let rate = 16_000;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(seconds * rate as f32) as usize {
        let t = i as f32 / rate as f32;
        let x = amp * (std::f32::consts::TAU * freq * t).sin()
            + hum * (std::f32::consts::TAU * 50.0 * t).sin();
        w.write_sample((x * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
    path.to_path_buf()
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn batch_runs_every_file_reports_failures_and_reuses_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    for (i, freq) in [220.0, 330.0, 440.0, 550.0].iter().enumerate() {
        tone(&inputs.join(format!("tone{i}.wav")), *freq, 0.1, 0.0, 1.0);
    }
    std::fs::write(inputs.join("broken.wav"), b"RIFF but not audio").unwrap();
    let data = dir.path().join("data");
    let summary = dir.path().join("summary.csv");
    let out = dir.path().join("out");
    let glob = format!("{}/*.wav", inputs.display());
    let workflow = repo("workflows/loudness-normalize.ron");
    let args = [
        "batch",
        &workflow,
        "--inputs",
        &glob,
        "--summary",
        summary.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ];
    let first = grym(&data, &args, &[]);
    assert_eq!(first.status.code(), Some(1), "one file fails");
    let report = stdout_json(&first);
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 5);
    let broken = files
        .iter()
        .find(|f| f["file"].as_str().unwrap().ends_with("broken.wav"))
        .unwrap();
    assert_eq!(broken["status"], "failed");
    assert!(broken["error"].as_str().unwrap().contains("broken.wav"));
    for f in files.iter().filter(|f| f["status"] == "completed") {
        assert_eq!(f["cachedSteps"], 0);
        let lufs = f["results"]["measure"]["integratedLufs"].as_f64().unwrap();
        assert!(lufs < -20.0 && lufs > -40.0, "{lufs}");
    }
    // One output folder per file, named after it.
    assert!(out.join("tone2").is_dir());
    let csv = std::fs::read_to_string(&summary).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..3], ["file", "status", "seconds"]);
    assert!(header.contains(&"measure.integratedLufs"));
    assert_eq!(lines.count(), 5);

    // A re-run answers the analysis steps from the cache.
    let again = stdout_json(&grym(&data, &args, &[]));
    for f in again["files"].as_array().unwrap() {
        if f["status"] == "completed" {
            assert!(f["cachedSteps"].as_u64().unwrap() >= 1, "{f}");
        }
    }
}

#[test]
fn shards_of_an_array_job_cover_the_inputs_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut listed = String::new();
    for i in 0..5 {
        let path = tone(&dir.path().join(format!("t{i}.wav")), 300.0, 0.1, 0.0, 0.5);
        listed.push_str(&format!(
            "{}\n",
            path.file_name().unwrap().to_string_lossy()
        ));
    }
    let list = dir.path().join("inputs.txt");
    std::fs::write(&list, format!("# the corpus\n{listed}")).unwrap();
    let at_list = format!("@{}", list.display());
    let workflow = repo("workflows/rhythm-report.ron");
    let mut seen = Vec::new();
    for (index, env) in [
        (
            "0",
            [
                ("SLURM_ARRAY_TASK_ID", "0"),
                ("SLURM_ARRAY_TASK_COUNT", "2"),
            ],
        ),
        (
            "1",
            [("JOB_COMPLETION_INDEX", "1"), ("GRYM_SHARD_COUNT", "2")],
        ),
    ] {
        let data = dir.path().join(format!("data{index}"));
        let out = grym(
            &data,
            &[
                "batch", &workflow, "--inputs", &at_list, "--shard", "auto", "--json",
            ],
            &env,
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = stdout_json(&out);
        for f in report["files"].as_array().unwrap() {
            seen.push(f["file"].as_str().unwrap().to_string());
        }
    }
    seen.sort();
    let before = seen.len();
    seen.dedup();
    assert_eq!((before, seen.len()), (5, 5));

    let bad = grym(
        dir.path(),
        &["batch", &workflow, "--inputs", &at_list, "--shard", "2/2"],
        &[],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("below the count"));
}

#[test]
fn optimize_improves_the_match_records_trials_and_applies_the_best() {
    let dir = tempfile::tempdir().unwrap();
    let reference = tone(&dir.path().join("ref.wav"), 440.0, 0.3, 0.0, 1.5);
    let noisy = tone(&dir.path().join("noisy.wav"), 440.0, 0.3, 0.4, 1.5);
    let data = dir.path().join("data");
    let workflow = repo("workflows/match-reference.ron");
    let audio = format!("audioFile={}", noisy.display());
    let reference = format!("referenceFile={}", reference.display());
    // The workflow's defaults (a 40 Hz high-pass) leave the hum in.
    let baseline = grym(
        &data,
        &[
            "run", &workflow, "--param", &audio, "--param", &reference, "--json",
        ],
        &[],
    );
    let baseline = stdout_json(&baseline)["results"]["score"]["qualityScore"]
        .as_f64()
        .unwrap();
    let out = grym(
        &data,
        &[
            "optimize", &workflow, "--param", &audio, "--param", &reference, "--param", "gainDb=0",
            "--budget", "10", "--seed", "3", "--apply", "--json",
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The study document, then one line naming the stored version.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let end = text.rfind("\n{").unwrap();
    let applied: Value = serde_json::from_str(text[end..].trim()).unwrap();
    assert_eq!(applied["appliedVersion"], 2);
    let study: Value = serde_json::from_str(&text[..end]).unwrap();
    let trials = study["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 10);
    let best = study["best"]["score"].as_f64().unwrap();
    assert!(best > baseline, "best {best} vs the defaults' {baseline}");
    let cutoff = study["best"]["params"]["cutoffHz"].as_f64().unwrap();
    assert!(cutoff > 60.0, "the hum is filtered: {cutoff} Hz");
    // Fixed values are not tuned.
    assert!(trials.iter().all(|t| t["params"].get("gainDb").is_none()));

    // The study is on disk: --show reads it back in a new process.
    let id = study["study"]["id"].as_str().unwrap();
    let shown = stdout_json(&grym(&data, &["optimize", "--show", id, "--json"], &[]));
    assert_eq!(shown["trials"].as_array().unwrap().len(), 10);
    assert_eq!(shown["best"], study["best"]);
    // --resume continues the numbering.
    let resumed = grym(
        &data,
        &["optimize", "--resume", id, "--budget", "2", "--json"],
        &[],
    );
    let resumed = stdout_json(&resumed);
    let numbers: Vec<u64> = resumed["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=12).collect::<Vec<_>>());
}

#[test]
fn optimize_explains_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = repo("workflows/rhythm-report.ron");
    let out = grym(dir.path(), &["optimize", &workflow, "--budget", "2"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("optimization.objective"), "{err}");
    let out = grym(
        dir.path(),
        &["optimize", &workflow, "--param", "speed=1..2:int2"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
}
