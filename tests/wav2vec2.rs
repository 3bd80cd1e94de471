//! Wav2Vec2 against transformers: tiny random-weight checkpoints of both architectures and
//! their reference outputs, made by tools/make_wav2vec2_fixtures.py.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use grym_synth::models::wav2vec2::{Layer, Wav2Vec2Model, Windowing};
use grym_synth::models::{HubOptions, ModelRepo};

const TOLERANCE: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/wav2vec2")
        .join(name)
}

fn offline() -> HubOptions {
    HubOptions {
        offline: true,
        ..HubOptions::default()
    }
}

fn load(name: &str) -> Wav2Vec2Model {
    let repo = ModelRepo::open_with(fixture(name).to_str().unwrap(), None, &offline()).unwrap();
    Wav2Vec2Model::load(&repo, &Device::Cpu, &mut |_| {}).unwrap()
}

fn speech() -> Vec<f32> {
    let mut reader = hound::WavReader::open(fixture("speech16k.wav")).unwrap();
    assert_eq!(reader.spec().sample_rate, 16_000);
    reader
        .samples::<i16>()
        .map(|s| s.unwrap() as f32 / 32768.0)
        .collect()
}

struct Reference {
    tensors: std::collections::HashMap<String, Tensor>,
    json: serde_json::Value,
}

fn reference(name: &str) -> Reference {
    let dir = fixture(name);
    let tensors =
        candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu).unwrap();
    let json = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
        .unwrap();
    Reference { tensors, json }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

fn not_cancelled() -> bool {
    false
}

/// What loading a model from `dir` says when it fails.
fn load_error(dir: &Path) -> String {
    let repo = ModelRepo::open_with(dir.to_str().unwrap(), None, &offline()).unwrap();
    Wav2Vec2Model::load(&repo, &Device::Cpu, &mut |_| {})
        .err()
        .expect("loading should fail")
        .to_string()
}

fn check_single_clip(name: &str) {
    let model = load(name);
    let reference = reference(name);
    let audio = speech();

    let head = &reference.tensors["input_values_head"];
    let normalized = model.normalize(&audio);
    let ours = Tensor::from_slice(
        &normalized[..head.dim(1).unwrap()],
        head.dims(),
        &Device::Cpu,
    )
    .unwrap();
    let err = max_abs_diff(&ours, head);
    assert!(err < 1e-5, "{name}: normalised input differs by {err}");

    let frames = model
        .frames(
            &audio,
            Layer::Last,
            true,
            Windowing::DEFAULT,
            &not_cancelled,
        )
        .unwrap();
    let err = max_abs_diff(
        &frames.hidden.unsqueeze(0).unwrap(),
        &reference.tensors["last_hidden_state"],
    );
    println!("{name}: last hidden state max abs error {err:e}");
    assert!(
        err < TOLERANCE,
        "{name}: last hidden state differs by {err}"
    );
    let logits = frames.logits.unwrap();
    let err = max_abs_diff(&logits.unsqueeze(0).unwrap(), &reference.tensors["logits"]);
    println!("{name}: logits max abs error {err:e}");
    assert!(err < TOLERANCE * 10.0, "{name}: logits differ by {err}");

    let layers = model.config().num_hidden_layers;
    for i in 0..=layers {
        let frames = model
            .frames(
                &audio,
                Layer::Index(i),
                false,
                Windowing::DEFAULT,
                &not_cancelled,
            )
            .unwrap();
        let err = max_abs_diff(
            &frames.hidden.unsqueeze(0).unwrap(),
            &reference.tensors[&format!("hidden_state_{i}")],
        );
        assert!(err < TOLERANCE, "{name}: hidden state {i} differs by {err}");
    }

    let transcript = model.decode(&logits).unwrap();
    assert_eq!(
        transcript.text,
        reference.json["text"].as_str().unwrap(),
        "{name}"
    );
    let words = reference.json["words"].as_array().unwrap();
    assert_eq!(transcript.words.len(), words.len(), "{name}");
    for (ours, theirs) in transcript.words.iter().zip(words) {
        assert_eq!(ours.word, theirs["word"].as_str().unwrap());
        let start = ours.start as f64 * frames.frame_seconds;
        let end = ours.end as f64 * frames.frame_seconds;
        assert!((start - theirs["start"].as_f64().unwrap()).abs() < 1e-9);
        assert!((end - theirs["end"].as_f64().unwrap()).abs() < 1e-9);
    }
}

#[test]
fn group_norm_model_matches_transformers() {
    check_single_clip("base-tiny");
}

#[test]
fn stable_layer_norm_model_matches_transformers() {
    check_single_clip("stable-tiny");
}

#[test]
fn a_pytorch_pickle_checkpoint_loads_like_its_safetensors() {
    let from_bin = load("base-tiny-bin");
    let reference = reference("base-tiny");
    let frames = from_bin
        .frames(
            &speech(),
            Layer::Last,
            true,
            Windowing::DEFAULT,
            &not_cancelled,
        )
        .unwrap();
    let err = max_abs_diff(
        &frames.hidden.unsqueeze(0).unwrap(),
        &reference.tensors["last_hidden_state"],
    );
    assert!(err < TOLERANCE, "pytorch_model.bin: differs by {err}");
    let text = from_bin.decode(&frames.logits.unwrap()).unwrap().text;
    assert_eq!(text, reference.json["text"].as_str().unwrap());
}

fn check_padded_batch(name: &str) {
    let model = load(name);
    let reference = reference(name);
    let audio = speech();
    let short_len = reference.json["short_samples"].as_u64().unwrap() as usize;
    let clips = vec![
        model.normalize(&audio),
        model.normalize(&audio[..short_len]),
    ];
    let out = model.forward_batch(&clips, false).unwrap();
    let err = max_abs_diff(
        &out.last_hidden_state,
        &reference.tensors["batch_last_hidden_state"],
    );
    println!("{name}: padded batch max abs error {err:e}");
    assert!(err < TOLERANCE, "{name}: padded batch differs by {err}");
    let err = max_abs_diff(
        out.logits.as_ref().unwrap(),
        &reference.tensors["batch_logits"],
    );
    assert!(
        err < TOLERANCE * 10.0,
        "{name}: padded batch logits differ by {err}"
    );
    let texts = reference.json["batch_text"].as_array().unwrap();
    let logits = out.logits.unwrap();
    let short_frames = model.config().frames_for(short_len);
    let short = logits.get(1).unwrap().narrow(0, 0, short_frames).unwrap();
    assert_eq!(
        model.decode(&logits.get(0).unwrap()).unwrap().text,
        texts[0].as_str().unwrap()
    );
    // transformers decodes the padded tail too; the valid frames alone must agree with the
    // same prefix of its text.
    let ours = model.decode(&short).unwrap().text;
    assert!(
        texts[1].as_str().unwrap().starts_with(&ours),
        "{ours:?} vs {texts:?}"
    );
}

#[test]
fn padded_batches_are_masked_as_transformers_masks_them() {
    check_padded_batch("base-tiny");
    check_padded_batch("stable-tiny");
}

#[test]
fn long_audio_runs_in_windows_that_cover_every_frame() {
    let model = load("stable-tiny");
    let audio = speech();
    let whole = model
        .frames(
            &audio,
            Layer::Last,
            true,
            Windowing::DEFAULT,
            &not_cancelled,
        )
        .unwrap();
    // Windows of 1 s with 0.25 s of context: several windows over the 3.4 s clip.
    let small = Windowing {
        window: 16_000,
        context: 4_000,
    };
    let windowed = model
        .frames(&audio, Layer::Last, true, small, &not_cancelled)
        .unwrap();
    assert_eq!(windowed.hidden.dims(), whole.hidden.dims());
    // Windows start on frame boundaries (320 samples): 1 s is 50 frames, 0.25 s of context
    // 12 frames (3840 samples), so windows advance 8320 samples. The second window, run on
    // its own, must give exactly the frames it contributes: global frames 38..64, which are
    // its frames 12..38.
    let normalized = model.normalize(&audio);
    let second = model
        .forward_batch(&[normalized[8320..8320 + 16_000].to_vec()], false)
        .unwrap();
    let expected = second
        .last_hidden_state
        .get(0)
        .unwrap()
        .narrow(0, 12, 26)
        .unwrap();
    let got = windowed.hidden.narrow(0, 38, 26).unwrap();
    assert_eq!(max_abs_diff(&got, &expected), 0.0);
    // The first window keeps frames 0..38 of its own run.
    let first = model
        .forward_batch(&[normalized[..16_000].to_vec()], false)
        .unwrap();
    let expected = first
        .last_hidden_state
        .get(0)
        .unwrap()
        .narrow(0, 0, 38)
        .unwrap();
    assert_eq!(
        max_abs_diff(&windowed.hidden.narrow(0, 0, 38).unwrap(), &expected),
        0.0
    );
    let cancel = || true;
    let err = model
        .frames(&audio, Layer::Last, false, small, &cancel)
        .err()
        .unwrap();
    assert!(err.to_string().contains("cancel"), "{err}");
}

#[test]
fn broken_checkpoints_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("base-tiny");
    for file in [
        "config.json",
        "vocab.json",
        "tokenizer_config.json",
        "preprocessor_config.json",
    ] {
        std::fs::copy(src.join(file), dir.path().join(file)).unwrap();
    }
    // No weights at all.
    let err = load_error(dir.path());
    assert!(err.contains("model.safetensors"), "{err}");

    // A tensor missing.
    let mut tensors =
        candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let removed = "wav2vec2.encoder.layers.1.feed_forward.output_dense.weight";
    tensors.remove(removed);
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("model.safetensors") && err.contains(removed),
        "{err}"
    );

    // A tensor of the wrong shape.
    let mut tensors =
        candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let name = "wav2vec2.feature_projection.projection.weight";
    tensors.insert(
        name.into(),
        Tensor::zeros((7, 7), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
    let err = load_error(dir.path());
    assert!(err.contains(name) && err.contains("[7, 7]"), "{err}");

    // A configuration that cannot be.
    std::fs::copy(
        src.join("model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"hidden_size": 30, "num_attention_heads": 4}"#,
    )
    .unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("config.json") && err.contains("num_attention_heads"),
        "{err}"
    );
    std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("config.json") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn too_short_audio_is_a_clear_error() {
    let model = load("base-tiny");
    let err = model
        .frames(
            &[0.1; 100],
            Layer::Last,
            false,
            Windowing::DEFAULT,
            &not_cancelled,
        )
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("too short") && err.contains("400"), "{err}");
    let err = model
        .frames(
            &[0.1; 4000],
            Layer::Index(9),
            false,
            Windowing::DEFAULT,
            &not_cancelled,
        )
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("layer 9"), "{err}");
}
