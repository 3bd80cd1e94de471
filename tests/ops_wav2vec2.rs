//! `analysis/embed`, `analysis/transcribe` and compare's embedding aspect, through the
//! engine and the command line, on the tiny Wav2Vec2 fixtures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use candle_core::{Device, Tensor};
use grym_synth::engine::{Engine, EngineConfig, ExecutionStatus, RunOptions};
use grym_synth::workflow::{ParamMap, Workflow};
use serde_json::{Value, json};

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

fn model() -> String {
    fixture("wav2vec2/base-tiny").display().to_string()
}

fn reference_tensor(name: &str) -> Tensor {
    let mut all = candle_core::safetensors::load(
        fixture("wav2vec2/base-tiny/reference.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    all.remove(name).unwrap()
}

fn reference_json() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(fixture("wav2vec2/base-tiny/reference.json")).unwrap(),
    )
    .unwrap()
}

fn run_steps(steps: Value, dir: &Path) -> grym_synth::engine::ExecutionSnapshot {
    let mut steps = steps;
    for (key, step) in steps.as_object_mut().unwrap() {
        step["id"] = json!(key);
        if step.get("nextSteps").is_none() {
            step["nextSteps"] = json!({});
        }
    }
    let first = steps.as_object().unwrap().keys().next().unwrap().clone();
    let wf: Workflow = serde_json::from_value(json!({
        "id": "speech", "name": "speech", "initialStep": first, "steps": steps,
        "parameters": {"speech": fixture("wav2vec2/speech16k.wav"), "other": fixture("audio/speech.wav")},
        "metadata": {"createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}
    }))
    .unwrap();
    let engine = Engine::start(
        EngineConfig::new(dir.join("data")),
        grym_synth::ops::builtin_registry(),
    )
    .unwrap();
    let id = engine
        .run(
            wf,
            ParamMap::new(),
            RunOptions {
                output_dir: Some(dir.join("out")),
            },
        )
        .unwrap();
    let run = engine.wait(&id, Some(Duration::from_secs(120))).unwrap();
    assert_eq!(run.status, ExecutionStatus::Completed, "{:?}", run.error);
    run
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn embed_and_transcribe_give_the_reference_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_steps(
        json!({
            "embed": {"type": "analysis", "operation": "embed",
                      "inputs": [{"source": "parameter", "key": "speech"}],
                      "parameters": {"model": model(), "device": "cpu", "frameEmbeddings": true},
                      "nextSteps": {"default": "transcribe"}},
            "transcribe": {"type": "analysis", "operation": "transcribe",
                           "inputs": [{"source": "parameter", "key": "speech"}],
                           "parameters": {"model": model()},
                           "nextSteps": {"default": "resampled"}},
            "resampled": {"type": "analysis", "operation": "embed",
                          "inputs": [{"source": "parameter", "key": "other"}],
                          "parameters": {"model": model(), "pooling": "meanStd", "layer": 1}}
        }),
        dir.path(),
    );
    let hidden = reference_tensor("last_hidden_state").squeeze(0).unwrap();
    let expected: Vec<f32> = hidden.mean(0).unwrap().to_vec1().unwrap();
    let embed = &run.results["embed"];
    let got: Vec<f32> = serde_json::from_value(embed["embedding"].clone()).unwrap();
    assert!(max_abs(&got, &expected) < 1e-4, "{got:?} vs {expected:?}");
    assert_eq!(embed["dimensions"], json!(32));
    assert_eq!(embed["frames"], json!(171));
    assert_eq!(embed["device"], json!("cpu"));

    let npy = PathBuf::from(embed["frameEmbeddingsFile"]["path"].as_str().unwrap());
    assert_eq!(npy.extension().unwrap(), "npy");
    let frames = Tensor::read_npy(&npy).unwrap();
    assert_eq!(frames.dims(), &[171, 32]);
    let diff: f32 = (frames - &hidden)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(diff < 1e-4, "{diff}");

    let transcribe = &run.results["transcribe"];
    let reference = reference_json();
    assert_eq!(transcribe["text"], reference["text"]);
    let words = transcribe["words"].as_array().unwrap();
    assert_eq!(words.len(), reference["words"].as_array().unwrap().len());
    assert_eq!(words[0]["word"], reference["words"][0]["word"]);
    assert!(
        (words[0]["end"].as_f64().unwrap() - reference["words"][0]["end"].as_f64().unwrap()).abs()
            < 1e-9
    );

    // A 22.05 kHz file is resampled to the model's 16 kHz: 3 s make 149 frames.
    let resampled = &run.results["resampled"];
    assert_eq!(resampled["frames"], json!(149));
    assert_eq!(resampled["dimensions"], json!(64));
    assert_eq!(resampled["layer"], json!(1));
}

#[test]
fn compare_gains_an_embedding_aspect_when_a_model_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_steps(
        json!({
            "same": {"type": "analysis", "operation": "compare",
                     "inputs": [{"source": "parameter", "key": "speech"}, {"source": "parameter", "key": "speech"}],
                     "parameters": {"model": model()},
                     "nextSteps": {"default": "other"}},
            "other": {"type": "analysis", "operation": "compare",
                      "inputs": [{"source": "parameter", "key": "speech"}, {"source": "parameter", "key": "other"}],
                      "parameters": {"model": model()}}
        }),
        dir.path(),
    );
    let same = &run.results["same"]["aspects"]["embeddingSimilarity"];
    assert!(
        (same["score"].as_f64().unwrap() - 1.0).abs() < 1e-6,
        "{same}"
    );
    assert_eq!(same["weight"], json!(0.3));
    let other = run.results["other"]["aspects"]["embeddingSimilarity"]["score"]
        .as_f64()
        .unwrap();
    assert!(other < 0.999, "{other}");
}

#[test]
fn an_offline_hub_model_not_in_the_cache_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_grym-synth"))
        .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
        .args([
            "op",
            "analysis/transcribe",
            "--param",
            "model=someone/absent-model",
            "--input",
        ])
        .arg(format!(
            "audio={}",
            fixture("wav2vec2/speech16k.wav").display()
        ))
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", dir.path().join("hf"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("someone/absent-model")
            && stderr.contains("config.json")
            && stderr.contains("offline"),
        "{stderr}"
    );
}

#[test]
fn a_model_without_a_ctc_head_cannot_transcribe_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("no-head");
    std::fs::create_dir_all(&model_dir).unwrap();
    for f in ["config.json", "preprocessor_config.json"] {
        std::fs::copy(fixture("wav2vec2/base-tiny").join(f), model_dir.join(f)).unwrap();
    }
    let mut tensors = candle_core::safetensors::load(
        fixture("wav2vec2/base-tiny/model.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    tensors.retain(|k, _| !k.starts_with("lm_head"));
    candle_core::safetensors::save(&tensors, model_dir.join("model.safetensors")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_grym-synth"))
        .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
        .args(["op", "analysis/transcribe", "--param"])
        .arg(format!("model={}", model_dir.display()))
        .arg("--input")
        .arg(format!(
            "audio={}",
            fixture("wav2vec2/speech16k.wav").display()
        ))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no CTC head"), "{stderr}");
}

#[test]
fn models_list_shows_the_cache_and_fetch_offline_says_why_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hf/hub/models--org--tiny");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    std::fs::create_dir_all(hub.join("refs")).unwrap();
    std::fs::create_dir_all(hub.join("blobs")).unwrap();
    std::fs::create_dir_all(hub.join("snapshots").join(commit)).unwrap();
    std::fs::write(hub.join("refs/main"), commit).unwrap();
    std::fs::write(hub.join("blobs/abc"), vec![0u8; 2_000_000]).unwrap();
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_grym-synth"))
            .args(args)
            .env("HF_HOME", dir.path().join("hf"))
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap()
    };
    let out = cli(&["models", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let models: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(models[0]["id"], json!("org/tiny"));
    assert_eq!(models[0]["revisions"], json!(["main"]));
    assert_eq!(models[0]["bytes"], json!(2_000_000));
    let out = cli(&["models", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("org/tiny"));

    let out = cli(&["models", "fetch", "org/other"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("org/other") && stderr.contains("offline"),
        "{stderr}"
    );
}
