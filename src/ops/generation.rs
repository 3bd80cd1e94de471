//! Generation with AudioLDM: `generation/generate`, text-to-audio and audio-to-audio, steered
//! by the analyses of earlier steps.

use std::path::Path;

use candle_core::Tensor;
use serde_json::{Value, json};

use super::models::{audioldm, model_error, model_params};
use super::support::{
    FnOperation, SpecExt, audio_error, choice, integer, number, opt_f64, save_buffer, spec,
    usize_param,
};
use crate::audio::{self, AudioBuffer};
use crate::engine::{InputKind, InputSpec, OpContext, OpError, ParamKind};
use crate::models::audioldm::{AudioLdm, GenerateRequest, Hooks, SchedulerConfig, SourceAudio};
use crate::models::device::device_label;
use crate::workflow::StepType;

/// The checkpoint used when a step names none.
pub const DEFAULT_MODEL: &str = "cvssp/audioldm-s-full-v2";

/// What each `focusAreas` entry (the vocabulary of `compare`'s `improvementAreas`) adds to
/// the prompt and to the negative prompt.
const FOCUS: [(&str, &str, &str); 6] = [
    ("noise", "clean, noise-free", "noise, hiss, hum"),
    (
        "loudness",
        "even, well-balanced level",
        "too quiet, distorted",
    ),
    (
        "brightness",
        "clear, crisp high frequencies",
        "muffled, dull",
    ),
    ("dynamics", "lively dynamics", "flat, over-compressed"),
    ("timing", "tight, steady timing", "sloppy timing"),
    ("pitch", "in tune, stable pitch", "out of tune, detuned"),
];

const DESCRIPTION: &str = "Generates audio with AudioLDM (diffusers' AudioLDMPipeline, ported \
to candle). Inputs are read by content: a file path, an audio artifact or a result with an \
`audio` key is the source audio (the first one found); objects from `features`, `patterns` and \
`compare` are analyses. Without source audio the step is text-to-audio; with it, \
audio-to-audio: the source (downmixed, resampled to the model's 16 kHz) becomes a log-mel \
spectrogram, is encoded by the VAE (the mean of its latent distribution), noised to the step \
that the strength selects and denoised from there. Mapping: `strength` is the audio-to-audio \
strength, the fraction of `steps` that run (0 keeps the source, 1 ignores it); without it, \
`enhancementLevel` is used as the strength; without source audio neither has an effect. \
`preserveOriginalCharacteristics` keeps the source's duration (from the source audio, else \
`features.duration`) and loudness (the output is gained to the source's integrated loudness, \
from `features.loudnessLufs` or measured on the source audio). `focusAreas` (default: the \
`improvementAreas` of a `compare` input) steer the prompts: noise adds \"clean, noise-free\" \
and the negative \"noise, hiss, hum\"; loudness \"even, well-balanced level\" / \"too quiet, \
distorted\"; brightness \"clear, crisp high frequencies\" / \"muffled, dull\"; dynamics \
\"lively dynamics\" / \"flat, over-compressed\"; timing \"tight, steady timing\" / \"sloppy \
timing\"; pitch \"in tune, stable pitch\" / \"out of tune, detuned\". The prompt is `prompt` \
when given, else a description drawn from the analyses (timbre from the spectral centroid, \
pitch from f0, tempo when the rhythm is regular), followed by the focus phrases. The output is \
a 16 kHz mono WAV artifact (`audio`; `waveforms` lists all when numWaveforms > 1) and the \
settings used.";

pub fn generate() -> FnOperation {
    let spec = spec(StepType::Generation, "generate", DESCRIPTION)
        .param("prompt", ParamKind::String, None, "what to generate; drawn from the analyses when absent")
        .param("negativePrompt", ParamKind::String, None, "what to steer away from (with guidance)")
        .param(
            "guidanceScale",
            number(Some(0.0), Some(30.0)),
            Some(json!(2.5)),
            "classifier-free guidance; 1 or less turns it off",
        )
        .param("steps", integer(Some(1), Some(1000)), Some(json!(10)), "denoising steps")
        .param("seed", integer(Some(0), None), None, "seeds the initial noise; random when absent")
        .param(
            "duration",
            number(Some(0.05), Some(600.0)),
            None,
            "seconds; default the source's length (when preserving it) or the model's native length",
        )
        .param("numWaveforms", integer(Some(1), Some(16)), Some(json!(1)), "waveforms to generate")
        .param(
            "strength",
            number(Some(0.0), Some(1.0)),
            None,
            "audio-to-audio strength; overrides enhancementLevel",
        )
        .param(
            "enhancementLevel",
            number(Some(0.0), Some(1.0)),
            Some(json!(0.5)),
            "audio-to-audio strength when `strength` is not set",
        )
        .param(
            "preserveOriginalCharacteristics",
            ParamKind::Boolean,
            Some(json!(true)),
            "keep the source's duration and loudness",
        )
        .param(
            "focusAreas",
            ParamKind::StringList,
            None,
            "aspects to improve (noise, loudness, brightness, dynamics, timing, pitch)",
        )
        .param(
            "initLatents",
            ParamKind::Path { audio: false },
            None,
            ".npy of initial latents (the noise, for audio-to-audio), to reproduce a run exactly",
        )
        .param(
            "scheduler",
            choice(&["model", "ddim", "dpm-solver++"]),
            Some(json!("model")),
            "the checkpoint's scheduler, or DDIM, or DPM-Solver++ on its noise schedule",
        )
        .output("audio", "the generated 16 kHz mono WAV artifact")
        .output("waveforms", "every generated artifact (numWaveforms of them)")
        .output("sampleRate", "Hz")
        .output("duration", "seconds")
        .output("mode", "text-to-audio or audio-to-audio")
        .output("prompt", "the prompt used")
        .output("negativePrompt", "the negative prompt used, if any")
        .output("loudness", "{targetLufs, measuredLufs, gainDb} when loudness was preserved")
        .output("settings", "every setting of the run: steps, seed, strength, scheduler, timesteps …");
    let mut spec = model_params(spec, Some(DEFAULT_MODEL));
    spec.inputs.push(InputSpec {
        name: "inputs".into(),
        kind: InputKind::Json,
        description: "analysis results of earlier steps and, optionally, the source audio".into(),
        required: false,
        variadic: true,
    });
    spec.seed_parameter = Some("seed".into());
    FnOperation {
        spec,
        run: run_generate,
    }
}

/// What the inputs carry, sorted by kind.
#[derive(Default)]
struct Inputs<'a> {
    source: Option<&'a Value>,
    features: Option<&'a Value>,
    patterns: Option<&'a Value>,
    compare: Option<&'a Value>,
}

fn classify<'a>(values: impl Iterator<Item = &'a Value>) -> Inputs<'a> {
    let mut found = Inputs::default();
    for v in values {
        let is_audio = v.is_string() || v.get("audio").is_some() || v.get("hash").is_some();
        if is_audio {
            found.source.get_or_insert(v);
        } else if v.get("improvementAreas").is_some() {
            found.compare.get_or_insert(v);
        } else if v.get("spectralCentroid").is_some() {
            found.features.get_or_insert(v);
        } else if v.get("rhythmicRegularity").is_some() || v.get("beats").is_some() {
            found.patterns.get_or_insert(v);
        }
    }
    found
}

/// The prompt and negative prompt: `prompt` (or a description drawn from the analyses)
/// followed by the focus areas' phrases.
pub fn compose_prompts(
    prompt: Option<&str>,
    negative: Option<&str>,
    features: Option<&Value>,
    patterns: Option<&Value>,
    focus: &[String],
) -> (String, Option<String>) {
    let mut parts: Vec<String> = Vec::new();
    match prompt {
        Some(p) => parts.push(p.trim().to_string()),
        None => parts.extend(describe(features, patterns)),
    }
    let mut negatives: Vec<String> = negative
        .map(|n| vec![n.trim().to_string()])
        .unwrap_or_default();
    for area in focus {
        if let Some((_, add, avoid)) = FOCUS.iter().find(|(name, ..)| name == area) {
            parts.push((*add).to_string());
            negatives.push((*avoid).to_string());
        }
    }
    let negatives: Vec<String> = negatives.into_iter().filter(|s| !s.is_empty()).collect();
    (
        parts
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
        (!negatives.is_empty()).then(|| negatives.join(", ")),
    )
}

fn describe(features: Option<&Value>, patterns: Option<&Value>) -> Vec<String> {
    let mut parts = vec!["a high quality recording".to_string()];
    let num = |v: Option<&Value>, key: &str| v.and_then(|v| v.get(key)).and_then(Value::as_f64);
    if let Some(c) = num(features, "spectralCentroid") {
        parts.push(
            match c {
                c if c < 1500.0 => "warm, dark timbre",
                c if c > 3500.0 => "bright, airy timbre",
                _ => "balanced timbre",
            }
            .to_string(),
        );
    }
    if let Some(f0) = num(features, "f0").filter(|f| *f > 0.0) {
        parts.push(format!("pitched sound around {f0:.0} Hz"));
    }
    let tempo = num(patterns, "tempo").or_else(|| num(features, "tempo"));
    let regular = num(patterns, "rhythmicRegularity").is_some_and(|r| r >= 0.5);
    if let Some(t) = tempo.filter(|t| *t > 0.0 && regular) {
        parts.push(format!("steady rhythm at {t:.0} BPM"));
    }
    parts
}

/// The log-mel spectrogram audio-to-audio starts from: a centred (zero-padded) magnitude
/// STFT with a periodic Hann window of the smallest power of two ≥ 4 hops (1024 for the
/// published 160-sample hop), Slaney mel bands over 0 – sr/2, natural log of the magnitudes
/// floored at 1e-5; exactly `frames` frames (cut, or extended with silence).
pub fn log_mel(
    samples: &[f32],
    sample_rate: u32,
    hop: usize,
    n_mels: usize,
    frames: usize,
) -> Vec<f32> {
    let n_fft = (4 * hop).next_power_of_two();
    let mut stft = audio::spectral::Stft::new(n_fft, hop);
    let bank = audio::spectral::mel_filterbank(
        sample_rate as f64,
        n_fft,
        n_mels,
        0.0,
        sample_rate as f64 / 2.0,
    );
    let available = audio::spectral::centered_frames(samples.len(), hop);
    let floor = 1e-5f32.ln();
    let mut mag = vec![0.0f32; stft.n_bins()];
    let mut out = Vec::with_capacity(frames * n_mels);
    for t in 0..frames {
        if t >= available {
            out.extend(std::iter::repeat_n(floor, n_mels));
            continue;
        }
        stft.magnitude(samples, t, &mut mag);
        out.extend(
            audio::spectral::apply_bank(&bank, &mag)
                .into_iter()
                .map(|m| m.max(1e-5).ln()),
        );
    }
    out
}

/// The checkpoint's noise schedule under another scheduler.
fn scheduler_override(model: &AudioLdm, choice: &str) -> Result<Option<SchedulerConfig>, OpError> {
    let base = &model.scheduler_config;
    let class = match choice {
        "model" => return Ok(None),
        "ddim" => "DDIMScheduler",
        "dpm-solver++" => "DPMSolverMultistepScheduler",
        other => return Err(OpError::invalid(format!("unknown scheduler `{other}`"))),
    };
    if base.class_name == class {
        return Ok(None);
    }
    let cfg = json!({
        "_class_name": class,
        "num_train_timesteps": base.num_train_timesteps,
        "beta_start": base.beta_start,
        "beta_end": base.beta_end,
        "beta_schedule": base.beta_schedule,
        "trained_betas": base.trained_betas,
        "prediction_type": base.prediction_type,
        "clip_sample": false,
        "set_alpha_to_one": false,
        "steps_offset": base.steps_offset,
    });
    serde_json::from_value(cfg)
        .map(Some)
        .map_err(|e| OpError::failed(format!("scheduler configuration: {e}")))
}

fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // Spread nearby clock readings apart.
    nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11
}

fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => s
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

fn run_generate(ctx: &OpContext<'_>) -> Result<Value, OpError> {
    let inputs = classify(
        ctx.inputs_named("inputs").chain(
            ctx.inputs
                .iter()
                .filter(|i| i.name != "inputs")
                .map(|i| &i.value),
        ),
    );
    let preserve = ctx.bool_param("preserveOriginalCharacteristics")?;
    let focus: Vec<String> = match ctx.param("focusAreas") {
        Some(v) => string_list(v),
        None => inputs
            .compare
            .and_then(|c| c.get("improvementAreas"))
            .map(string_list)
            .unwrap_or_default(),
    };
    let (prompt, negative) = compose_prompts(
        ctx.param("prompt").and_then(Value::as_str),
        ctx.param("negativePrompt").and_then(Value::as_str),
        inputs.features,
        inputs.patterns,
        &focus,
    );
    let model = audioldm(ctx, ctx.str_param("model")?)?;
    ctx.cancel.check()?;
    ctx.progress.report(0.1, "preparing");

    let rate = model.sample_rate();
    let source = match inputs.source {
        Some(v) => {
            let (path, _) = crate::engine::operation::audio_source(v)
                .map_err(|e| OpError::invalid(format!("source audio: {e}")))?;
            let decoded = audio::decode_file(&path).map_err(audio_error)?;
            let mono =
                AudioBuffer::mono(decoded.sample_rate(), decoded.to_mono()).map_err(audio_error)?;
            let resampled = audio::resample(&mono, rate).map_err(audio_error)?;
            Some((resampled, audio::loudness::integrated_loudness(&decoded)))
        }
        None => None,
    };
    let source_duration = source.as_ref().map(|(b, _)| b.duration_secs()).or_else(|| {
        inputs
            .features
            .and_then(|f| f.get("duration"))
            .and_then(Value::as_f64)
    });
    let duration = match opt_f64(ctx, "duration")? {
        Some(d) => Some(d),
        None if preserve => source_duration,
        None => None,
    };
    let target_lufs = if preserve {
        inputs
            .features
            .and_then(|f| f.get("loudnessLufs"))
            .and_then(Value::as_f64)
            .or_else(|| source.as_ref().and_then(|(_, l)| *l))
    } else {
        None
    };

    let seed = match ctx.param("seed") {
        Some(_) => ctx.i64_param("seed")? as u64,
        None => random_seed(),
    };
    let mut req = GenerateRequest::new(prompt.clone());
    req.negative_prompt = negative.clone();
    req.guidance_scale = ctx.f64_param("guidanceScale")?;
    req.steps = usize_param(ctx, "steps")?;
    req.num_waveforms = usize_param(ctx, "numWaveforms")?;
    req.seed = seed;
    req.duration = duration;
    req.scheduler = scheduler_override(&model, ctx.str_param("scheduler")?)?;
    if let Some(path) = ctx.param("initLatents").and_then(Value::as_str) {
        let tensor = Tensor::read_npy(Path::new(path))
            .map_err(|e| OpError::invalid(format!("initLatents {path}: {e}")))?;
        req.init_latents = Some(tensor);
    }
    let strength = match opt_f64(ctx, "strength")? {
        Some(s) => s,
        None => ctx.f64_param("enhancementLevel")?,
    };
    let mut samples_out = None;
    if let Some((buffer, _)) = &source {
        let seconds = duration.unwrap_or(buffer.duration_secs());
        let (frames, samples) = model.frames_for(seconds);
        let mel = log_mel(
            buffer.channel(0),
            rate,
            model.hop_length(),
            model.mel_bins(),
            frames,
        );
        let mel = Tensor::from_vec(mel, (frames, model.mel_bins()), model.device())
            .map_err(|e| model_error(e.into()))?;
        req.source = Some(SourceAudio {
            log_mel: mel,
            strength,
        });
        samples_out = Some(samples);
    }

    let hooks = Hooks {
        progress: &|done, total| {
            ctx.progress.report(
                0.1 + 0.8 * done as f32 / total.max(1) as f32,
                &format!("denoising step {done}/{total}"),
            );
        },
        cancelled: &|| ctx.cancel.is_cancelled(),
    };
    let generated = model.generate(&req, &hooks).map_err(model_error)?;
    ctx.progress.report(0.9, "writing");

    let mut artifacts = Vec::with_capacity(generated.waveforms.len());
    let mut loudness = Value::Null;
    for (i, mut wave) in generated.waveforms.into_iter().enumerate() {
        if let Some(n) = samples_out {
            wave.truncate(n);
        }
        let mut buffer = AudioBuffer::mono(generated.sample_rate, wave).map_err(audio_error)?;
        if let Some(target) = target_lufs {
            let measured = audio::loudness::integrated_loudness(&buffer);
            let gain_db = measured.map(|m| target - m);
            if let Some(g) = gain_db {
                let factor = 10f32.powf(g as f32 / 20.0);
                for s in &mut buffer.channels_mut()[0] {
                    *s *= factor;
                }
            }
            if i == 0 {
                loudness =
                    json!({ "targetLufs": target, "measuredLufs": measured, "gainDb": gain_db });
            }
        }
        ctx.cancel.check()?;
        artifacts.push(save_buffer(ctx, &buffer)?);
    }
    let first = artifacts
        .first()
        .cloned()
        .ok_or_else(|| OpError::failed("the model returned no audio"))?;
    ctx.progress.report(1.0, "done");
    let mode = if source.is_some() {
        "audio-to-audio"
    } else {
        "text-to-audio"
    };
    Ok(json!({
        "audio": first,
        "waveforms": artifacts,
        "sampleRate": generated.sample_rate,
        "duration": first.duration,
        "mode": mode,
        "prompt": prompt,
        "negativePrompt": negative,
        "loudness": loudness,
        "settings": {
            "model": ctx.str_param("model")?,
            "device": device_label(model.device()),
            "preserveOriginalCharacteristics": preserve,
            "focusAreas": focus,
            "run": generated.settings,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn focus_areas_add_their_phrases_in_order() {
        let (p, n) = compose_prompts(
            Some("rain"),
            None,
            None,
            None,
            &["noise".into(), "pitch".into(), "bogus".into()],
        );
        assert_eq!(p, "rain, clean, noise-free, in tune, stable pitch");
        assert_eq!(n.as_deref(), Some("noise, hiss, hum, out of tune, detuned"));
    }

    #[test]
    fn analyses_describe_the_sound_when_no_prompt_is_given() {
        let features = json!({"spectralCentroid": 4200.0, "f0": 220.0, "tempo": 120.0});
        let patterns = json!({"tempo": 118.0, "rhythmicRegularity": 0.9, "beats": []});
        let (p, n) = compose_prompts(None, Some("lo-fi"), Some(&features), Some(&patterns), &[]);
        assert_eq!(
            p,
            "a high quality recording, bright, airy timbre, pitched sound around 220 Hz, steady rhythm at 118 BPM"
        );
        assert_eq!(n.as_deref(), Some("lo-fi"));
        let irregular = json!({"tempo": 118.0, "rhythmicRegularity": 0.2});
        let (p, _) = compose_prompts(None, None, None, Some(&irregular), &[]);
        assert_eq!(p, "a high quality recording");
    }

    #[test]
    fn inputs_are_sorted_by_what_they_carry() {
        let values = [
            json!({"onsets": [], "tempo": 100.0, "rhythmicRegularity": 0.5}),
            json!({"spectralCentroid": 1000.0, "duration": 2.0}),
            json!({"qualityScore": 0.4, "improvementAreas": ["noise"]}),
            json!("clip.wav"),
            json!({"audio": {"path": "x.wav"}}),
        ];
        let found = classify(values.iter());
        assert_eq!(found.source, Some(&values[3]));
        assert_eq!(found.features, Some(&values[1]));
        assert_eq!(found.patterns, Some(&values[0]));
        assert_eq!(found.compare, Some(&values[2]));
    }
}
