//! AudioLDM against diffusers: every component and whole runs of the tiny random-weight
//! pipeline in tests/fixtures/audioldm, whose references `tools/make_audioldm_fixtures.py`
//! recorded with diffusers and transformers.
//!
//! Tolerances (max abs, f32): text encoder, VAE and vocoder 1e-5; the UNet and whole runs
//! 1e-4. A run chains up to six UNet
//! passes (twelve with guidance), the VAE and the vocoder, and the schedulers' coefficients
//! are computed in f64 here and in f32 by diffusers, so rounding differences compound a
//! little beyond a single component's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{DType, Device, Tensor};
use grym_synth::models::ModelRepo;
use grym_synth::models::audioldm::pipeline::read_scheduler_config;
use grym_synth::models::audioldm::{AudioLdm, GenerateRequest, Hooks, SourceAudio};
use serde_json::Value;

const COMPONENT_TOL: f32 = 1e-5;
/// The UNet sums over more terms (outputs up to ~2), so its f32 rounding is larger.
const UNET_TOL: f32 = 1e-4;
const RUN_TOL: f32 = 1e-4;
/// The final latents reach ~50 with these random weights (the waveform is bounded by the
/// vocoder's tanh); the bound is 2e-5 of that scale.
const LATENT_TOL: f32 = 1e-3;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audioldm")
}

fn refs() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixtures().join("references.safetensors"), &Device::Cpu)
        .expect("references.safetensors")
}

fn meta() -> Value {
    let text =
        std::fs::read_to_string(fixtures().join("references.json")).expect("references.json");
    serde_json::from_str(&text).expect("references.json parses")
}

fn load(dir: &Path) -> Result<AudioLdm, grym_synth::models::ModelError> {
    let repo = ModelRepo::open(dir.to_str().expect("utf-8 path"), None)?;
    AudioLdm::load(&repo, &Device::Cpu, &mut |_| {})
}

fn model() -> AudioLdm {
    load(&fixtures().join("tiny")).expect("the tiny model loads")
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0))
        .and_then(|d| d.to_scalar::<f32>())
        .expect("difference")
}

fn assert_close(name: &str, ours: &Tensor, reference: &Tensor, tol: f32) {
    let err = max_abs(ours, reference);
    let scale = reference
        .abs()
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.max(0))
        .and_then(|t| t.to_scalar::<f32>())
        .expect("scale");
    eprintln!("{name}: max abs error {err:.3e} (reference max {scale:.3})");
    assert!(err <= tol, "{name}: max abs error {err:e} exceeds {tol:e}");
    // A reference of zeros would make the comparison meaningless.
    assert!(scale > 1e-3, "{name}: reference is degenerate");
}

fn ids(meta: &Value, key: &str) -> Vec<u32> {
    meta[key]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_u64().expect("id") as u32)
        .collect()
}

#[test]
fn tokenizer_matches_transformers_from_either_file_set() {
    let meta = meta();
    let m = model();
    let dir = fixtures().join("tiny/tokenizer");
    let slow = grym_synth::models::audioldm::text::PromptTokenizer::load(
        None,
        Some((&dir.join("vocab.json"), &dir.join("merges.txt"))),
        Some(&dir.join("tokenizer_config.json")),
        512,
    )
    .expect("vocab.json + merges.txt load");
    for (key, text) in [
        ("ids_prompt", meta["prompt"].as_str().expect("prompt")),
        (
            "ids_negative",
            meta["negativePrompt"].as_str().expect("negative"),
        ),
        ("ids_empty", ""),
    ] {
        let expected = ids(&meta, key);
        assert_eq!(m.tokenizer.encode(text).expect("encode"), expected, "{key}");
        assert_eq!(
            slow.encode(text).expect("encode"),
            expected,
            "{key} (vocab + merges)"
        );
    }
    // model_max_length = 77 truncates, keeping </s> last.
    let long = "a hammer ".repeat(100);
    let ids = m.tokenizer.encode(&long).expect("encode");
    assert_eq!(ids.len(), 77);
    assert_eq!(ids[76], 2);
}

#[test]
fn text_encoder_matches_transformers() {
    let (meta, refs, m) = (meta(), refs(), model());
    for key in ["prompt", "negative", "empty"] {
        let ids = ids(&meta, &format!("ids_{key}"));
        let input = Tensor::new(ids.as_slice(), &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .expect("ids");
        let ours = m
            .text_encoder
            .forward(&input)
            .expect("forward")
            .squeeze(0)
            .expect("squeeze");
        assert_close(
            &format!("text_embeds[{key}]"),
            &ours,
            &refs[&format!("text_embeds_{key}")],
            COMPONENT_TOL,
        );
    }
}

#[test]
fn unet_matches_diffusers() {
    let (meta, refs, m) = (meta(), refs(), model());
    for key in ["even", "odd"] {
        let t = meta[format!("unet_{key}_timestep")]
            .as_f64()
            .expect("timestep");
        let out = m
            .unet
            .forward(
                &refs[&format!("unet_{key}_sample")],
                t,
                &refs[&format!("unet_{key}_labels")],
            )
            .expect("unet forward");
        assert_close(
            &format!("unet[{key}]"),
            &out,
            &refs[&format!("unet_{key}_out")],
            UNET_TOL,
        );
    }
}

#[test]
fn vae_matches_diffusers() {
    let (refs, m) = (refs(), model());
    let decoded = m.vae.decode(&refs["vae_decode_in"]).expect("decode");
    assert_close(
        "vae decode",
        &decoded,
        &refs["vae_decode_out"],
        COMPONENT_TOL,
    );
    let dist = m.vae.encode(&refs["vae_encode_in"]).expect("encode");
    assert_close(
        "vae encode mean",
        &dist.mean,
        &refs["vae_encode_mean"],
        COMPONENT_TOL,
    );
    assert_close(
        "vae encode logvar",
        &dist.logvar,
        &refs["vae_encode_logvar"],
        COMPONENT_TOL,
    );
}

#[test]
fn vocoder_matches_transformers() {
    let (refs, m) = (refs(), model());
    let out = m.vocoder.forward(&refs["vocoder_in"]).expect("vocoder");
    assert_close("vocoder", &out, &refs["vocoder_out"], COMPONENT_TOL);
}

fn request(meta: &Value, run: &Value) -> GenerateRequest {
    let mut req = GenerateRequest::new(meta["prompt"].as_str().expect("prompt"));
    req.negative_prompt = run["negativePrompt"].as_str().map(str::to_string);
    req.guidance_scale = run["guidanceScale"].as_f64().expect("guidance");
    req.steps = run["steps"].as_u64().expect("steps") as usize;
    req.num_waveforms = run["numWaveforms"].as_u64().expect("n") as usize;
    req.duration = run["duration"].as_f64();
    let latents = fixtures().join(run["initLatents"].as_str().expect("latents"));
    req.init_latents = Some(Tensor::read_npy(latents).expect("npy"));
    let dpm = || {
        read_scheduler_config(&fixtures().join("tiny/scheduler_dpm/scheduler_config.json"))
            .expect("dpm config")
    };
    req.scheduler = match run["scheduler"].as_str().expect("scheduler") {
        "ddim" => None,
        "dpm" => Some(dpm()),
        "dpm3" => {
            let mut cfg = dpm();
            cfg.solver_order = 3;
            Some(cfg)
        }
        other => panic!("unknown scheduler {other}"),
    };
    req
}

fn waveforms(generated: &[Vec<f32>]) -> Tensor {
    let n = generated.len();
    let flat: Vec<f32> = generated.iter().flatten().copied().collect();
    let len = flat.len() / n;
    Tensor::from_vec(flat, (n, len), &Device::Cpu).expect("waveforms")
}

#[test]
fn text_to_audio_runs_match_diffusers() {
    let (meta, refs, m) = (meta(), refs(), model());
    for name in [
        "ddim_cfg",
        "ddim_plain",
        "dpm_cfg",
        "dpm_plain",
        "ddim_cfg_two",
        "dpm3_cfg",
    ] {
        let run = &meta["runs"][name];
        let req = request(&meta, run);
        let steps = AtomicUsize::new(0);
        let hooks = Hooks {
            progress: &|done, total| {
                assert_eq!(total, req.steps);
                steps.fetch_add(1, Ordering::SeqCst);
                assert_eq!(done, steps.load(Ordering::SeqCst));
            },
            cancelled: &|| false,
        };
        let out = m.generate(&req, &hooks).expect("generate");
        assert_eq!(
            steps.load(Ordering::SeqCst),
            req.steps,
            "{name}: one progress call per step"
        );
        assert_eq!(out.sample_rate, 16000);
        assert_eq!(out.settings.steps_run, req.steps);
        assert_close(
            &format!("{name} latents"),
            &out.latents,
            &refs[&format!("run_{name}_latents")],
            LATENT_TOL,
        );
        assert_close(
            name,
            &waveforms(&out.waveforms),
            &refs[&format!("run_{name}")],
            RUN_TOL,
        );
    }
}

#[test]
fn audio_to_audio_runs_match_the_reference() {
    let (meta, refs, m) = (meta(), refs(), model());
    for name in ["a2a_ddim", "a2a_dpm"] {
        let run = &meta["runs"][name];
        let mut req = request(&meta, run);
        let strength = run["strength"].as_f64().expect("strength");
        req.source = Some(SourceAudio {
            log_mel: refs["a2a_mel"].clone(),
            strength,
        });
        let out = m.generate(&req, &Hooks::none()).expect("generate");
        let expected_steps = (req.steps as f64 * strength) as usize;
        assert_eq!(out.settings.steps_run, expected_steps, "{name}");
        assert_close(
            &format!("{name} latents"),
            &out.latents,
            &refs[&format!("run_{name}_latents")],
            LATENT_TOL,
        );
        assert_close(
            name,
            &waveforms(&out.waveforms),
            &refs[&format!("run_{name}")],
            RUN_TOL,
        );
    }
}

#[test]
fn a_seed_reproduces_a_run_and_another_seed_does_not() {
    let m = model();
    let mut req = GenerateRequest::new("rain on a roof");
    req.steps = 2;
    req.seed = 11;
    let a = m.generate(&req, &Hooks::none()).expect("run a");
    let b = m.generate(&req, &Hooks::none()).expect("run b");
    assert_eq!(a.waveforms, b.waveforms);
    assert_eq!(a.settings.seed, Some(11));
    req.seed = 12;
    let c = m.generate(&req, &Hooks::none()).expect("run c");
    assert_ne!(a.waveforms, c.waveforms);
    // The model's native length: sample_size 32 latent frames × 2 × 4 samples.
    assert_eq!(a.waveforms[0].len(), 256);
}

#[test]
fn cancellation_stops_between_steps() {
    let m = model();
    let mut req = GenerateRequest::new("rain on a roof");
    req.steps = 5;
    let done = AtomicUsize::new(0);
    let hooks = Hooks {
        progress: &|d, _| done.store(d, Ordering::SeqCst),
        cancelled: &|| done.load(Ordering::SeqCst) >= 2,
    };
    let err = match m.generate(&req, &hooks) {
        Ok(_) => panic!("a cancelled run returned audio"),
        Err(e) => e,
    };
    assert!(
        matches!(err, grym_synth::models::ModelError::Cancelled),
        "{err}"
    );
    assert_eq!(done.load(Ordering::SeqCst), 2);
}

#[test]
fn bad_requests_are_refused_with_reasons() {
    let m = model();
    let mut req = GenerateRequest::new("x");
    req.init_latents = Some(Tensor::zeros((1, 4, 8, 4), DType::F32, &Device::Cpu).expect("zeros"));
    let err = m
        .generate(&req, &Hooks::none())
        .expect_err("wrong latent shape is refused");
    assert!(
        err.to_string()
            .contains("initLatents has shape [1, 4, 8, 4]"),
        "{err}"
    );
    let mut req = GenerateRequest::new("x");
    req.steps = 0;
    let err = m
        .generate(&req, &Hooks::none())
        .expect_err("zero steps are refused");
    assert!(
        err.to_string().contains("steps must be between 1 and 1000"),
        "{err}"
    );
    let mut req = GenerateRequest::new("x");
    req.duration = Some(-1.0);
    let err = m
        .generate(&req, &Hooks::none())
        .expect_err("negative duration is refused");
    assert!(err.to_string().contains("duration"), "{err}");
}

#[test]
fn a_checkpoint_without_tokenizer_json_reads_vocab_and_merges() {
    let meta = meta();
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixtures().join("tiny"), dir.path());
    std::fs::remove_file(dir.path().join("tokenizer/tokenizer.json")).expect("rm");
    let m = load(dir.path()).expect("loads from vocab.json and merges.txt");
    let prompt = meta["prompt"].as_str().expect("prompt");
    assert_eq!(
        m.tokenizer.encode(prompt).expect("encode"),
        ids(&meta, "ids_prompt")
    );
}

// ---- malformed checkpoints ----

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A copy of the tiny model whose UNet weights `edit` rewrote.
fn edited_unet(edit: impl FnOnce(&mut HashMap<String, Tensor>)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixtures().join("tiny"), dir.path());
    let file = dir.path().join("unet/diffusion_pytorch_model.safetensors");
    let mut tensors = candle_core::safetensors::load(&file, &Device::Cpu).expect("load");
    edit(&mut tensors);
    candle_core::safetensors::save(&tensors, &file).expect("save");
    dir
}

fn load_error(dir: &Path) -> String {
    match load(dir) {
        Ok(_) => panic!("a malformed checkpoint loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_missing_tensor_is_named_with_its_file() {
    let dir = edited_unet(|t| {
        t.remove("mid_block.resnets.0.conv1.weight");
    });
    let err = load_error(dir.path());
    assert!(
        err.contains("unet/diffusion_pytorch_model.safetensors"),
        "{err}"
    );
    assert!(err.contains("mid_block.resnets.0.conv1.weight"), "{err}");
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn a_tensor_of_the_wrong_shape_is_named_with_both_shapes() {
    let dir = edited_unet(|t| {
        t.insert(
            "conv_in.weight".into(),
            Tensor::zeros((8, 4, 5, 5), DType::F32, &Device::Cpu).expect("zeros"),
        );
    });
    let err = load_error(dir.path());
    assert!(
        err.contains("unet/diffusion_pytorch_model.safetensors"),
        "{err}"
    );
    assert!(err.contains("conv_in.weight"), "{err}");
    assert!(
        err.contains("[8, 4, 5, 5]") && err.contains("[8, 4, 3, 3]"),
        "{err}"
    );
}

#[test]
fn bad_configurations_name_the_file_and_the_reason() {
    type Edit = fn(&str) -> String;
    let cases: [(&str, Edit, &str); 4] = [
        (
            "unet/config.json",
            |s| s.replace("\"simple_projection\"", "\"timestep\""),
            "class_embed_type",
        ),
        (
            "vae/config.json",
            |s| s.replace("\"latent_channels\": 4,", ""),
            "missing field `latent_channels`",
        ),
        ("vocoder/config.json", |_| "{ not json".into(), "line 1"),
        (
            "scheduler/scheduler_config.json",
            |s| s.replace("DDIMScheduler", "PNDMScheduler"),
            "PNDMScheduler",
        ),
    ];
    for (file, edit, needle) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(&fixtures().join("tiny"), dir.path());
        let path = dir.path().join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, edit(&text)).expect("write");
        let err = load_error(dir.path());
        assert!(err.contains(file), "{file}: {err}");
        assert!(err.contains(needle), "{file}: {err}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixtures().join("tiny"), dir.path());
    std::fs::remove_file(dir.path().join("vae/diffusion_pytorch_model.safetensors")).expect("rm");
    let err = load_error(dir.path());
    assert!(
        err.contains("vae/diffusion_pytorch_model.safetensors"),
        "{err}"
    );
}

// ---- the generation/generate operation ----

mod operation {
    use std::path::Path;
    use std::time::Duration;

    use grym_synth::engine::{Engine, EngineConfig, ExecutionStatus, RunOptions};
    use grym_synth::workflow::{ParamMap, validate};
    use serde_json::json;

    use super::{fixtures, refs};

    fn tiny() -> String {
        fixtures().join("tiny").to_string_lossy().into_owned()
    }

    fn engine(dir: &Path) -> Engine {
        Engine::start(EngineConfig::new(dir), grym_synth::ops::builtin_registry()).expect("engine")
    }

    /// A short stereo 44.1 kHz clip, so that the source is downmixed and resampled.
    fn write_clip(path: &Path, seconds: f64) {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).expect("create wav");
        let n = (44100.0 * seconds) as usize;
        for i in 0..n {
            let t = i as f64 / 44100.0;
            let v = (0.3 * (2.0 * std::f64::consts::PI * 330.0 * t).sin() * 32767.0) as i16;
            w.write_sample(v).expect("sample");
            w.write_sample(v / 2).expect("sample");
        }
        w.finalize().expect("finalize");
    }

    fn run(
        engine: &Engine,
        wf: grym_synth::workflow::Workflow,
        params: ParamMap,
        out: &Path,
    ) -> grym_synth::engine::ExecutionSnapshot {
        let id = engine
            .run(
                wf,
                params,
                RunOptions {
                    output_dir: Some(out.to_path_buf()),
                },
            )
            .expect("run");
        engine
            .wait(&id, Some(Duration::from_secs(300)))
            .expect("wait")
    }

    #[test]
    fn the_log_mel_recipe_matches_the_reference() {
        let refs = refs();
        let source: Vec<f32> = refs["a2a_source"].to_vec1().expect("source");
        let ours = grym_synth::ops::generation::log_mel(&source, 16000, 4, 8, 64);
        let ours =
            candle_core::Tensor::from_vec(ours, (64, 8), &candle_core::Device::Cpu).expect("mel");
        super::assert_close("log-mel", &ours, &refs["a2a_mel"], 1e-5);
    }

    #[test]
    fn the_plan_example_validates_and_runs_its_generate_step_with_the_tiny_model() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut wf = grym_synth::workflow::templates::find("audio-enhancement")
            .expect("template")
            .load()
            .expect("loads");
        for step in ["generate-enhanced", "regenerate"] {
            let params = &mut wf.steps.get_mut(step).expect("step").parameters;
            params.insert("model".into(), json!(tiny()));
            // A short clip and few steps keep the test quick; the rest is the plan's.
            params.insert("duration".into(), json!(0.1));
            params.insert("steps".into(), json!(3));
            params.insert("seed".into(), json!(5));
        }
        let registry = grym_synth::ops::builtin_registry();
        let report = validate(&wf, Some(&registry));
        assert!(report.is_valid(), "{:#?}", report.problems);
        assert!(
            report
                .problems
                .iter()
                .all(|p| p.step.as_deref() != Some("generate-enhanced")),
            "{:#?}",
            report.problems
        );

        let engine = engine(&dir.path().join("data"));
        let clip = dir.path().join("clip.wav");
        write_clip(&clip, 0.6);
        let mut params = ParamMap::new();
        params.insert("audioFile".into(), json!(clip));
        let snapshot = run(&engine, wf, params, &dir.path().join("out"));
        // Random weights never satisfy the quality condition, so the loop runs to its cap.
        assert!(
            matches!(
                snapshot.status,
                ExecutionStatus::LoopLimit | ExecutionStatus::Completed
            ),
            "{:?}: {:?}",
            snapshot.status,
            snapshot.error
        );
        let generated = &snapshot.results["generate-enhanced"];
        assert_eq!(generated["mode"], "text-to-audio");
        assert_eq!(generated["sampleRate"], 16000);
        let audio = generated["audio"]["path"].as_str().expect("artifact path");
        let reader = hound::WavReader::open(audio).expect("a WAV artifact");
        assert_eq!(reader.spec().sample_rate, 16000);
        assert_eq!(reader.spec().channels, 1);
        assert_eq!(reader.duration(), 1600, "0.1 s at 16 kHz");
        let prompt = generated["prompt"].as_str().expect("prompt");
        assert!(prompt.starts_with("a high quality recording"), "{prompt}");
        assert_eq!(generated["settings"]["run"]["steps"], 3);
        // The regenerate step read compare's improvement areas through the context.
        if let Some(regen) = snapshot.results.get("regenerate") {
            let areas = regen["settings"]["focusAreas"]
                .as_array()
                .expect("focus areas");
            let compared = snapshot.results["evaluate-result"]["improvementAreas"]
                .as_array()
                .expect("areas");
            assert_eq!(areas, compared);
        }
    }

    #[test]
    fn audio_to_audio_keeps_the_source_length_and_loudness() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clip = dir.path().join("clip.wav");
        write_clip(&clip, 0.5);
        let wf: grym_synth::workflow::Workflow = serde_json::from_value(json!({
            "id": "a2a", "name": "a2a", "initialStep": "features",
            "steps": {
                "features": {"id": "features", "type": "analysis", "operation": "features",
                    "inputs": [{"source": "parameter", "key": "audioFile"}],
                    "nextSteps": {"default": "generate"}},
                "generate": {"id": "generate", "type": "generation", "operation": "generate",
                    "inputs": [
                        {"source": "parameter", "key": "audioFile"},
                        {"source": "previous_step", "key": "features.result"}],
                    "parameters": {"model": tiny(), "strength": 0.6, "steps": 5, "seed": 3,
                        "focusAreas": ["noise"], "prompt": "a clean tone"},
                    "nextSteps": {}}
            },
            "parameters": {"audioFile": null},
            "metadata": {"createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}
        }))
        .expect("workflow");
        let engine = engine(&dir.path().join("data"));
        let mut params = ParamMap::new();
        params.insert("audioFile".into(), json!(clip));
        let snapshot = run(&engine, wf, params, &dir.path().join("out"));
        assert_eq!(
            snapshot.status,
            ExecutionStatus::Completed,
            "{:?}",
            snapshot.error
        );
        let result = &snapshot.results["generate"];
        assert_eq!(result["mode"], "audio-to-audio");
        assert_eq!(result["prompt"], "a clean tone, clean, noise-free");
        assert_eq!(result["negativePrompt"], "noise, hiss, hum");
        assert_eq!(result["settings"]["run"]["strength"], 0.6);
        assert_eq!(result["settings"]["run"]["stepsRun"], 3);
        let duration = result["duration"].as_f64().expect("duration");
        assert!((duration - 0.5).abs() < 1e-3, "{duration}");
        let target = snapshot.results["features"]["loudnessLufs"]
            .as_f64()
            .expect("source loudness");
        assert_eq!(result["loudness"]["targetLufs"].as_f64(), Some(target));
        let path = result["audio"]["path"].as_str().expect("path");
        let out = grym_synth::audio::decode_file(Path::new(path)).expect("decode");
        let measured = grym_synth::audio::loudness::integrated_loudness(&out).expect("loudness");
        assert!(
            (measured - target).abs() < 0.1,
            "output {measured} LUFS, source {target} LUFS"
        );
    }
}
