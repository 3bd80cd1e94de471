//! Transformation operations. Each streams file to file in bounded memory and leaves its
//! output as a 32-bit float artifact (nothing is quantised until `export`), except
//! `export`, which writes the user's file at the chosen rate and bit depth.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::support::{
    FnOperation, SpecExt, audio_error, choice, describe, input_path, number, opt_f64,
    plain_file_name, scratch_file, spec, store_artifact, transform_result,
};
use crate::audio::{self, BitDepth, Dither, FilterSpec, NormalizeTarget, WavSpec};
use crate::engine::cache::hash_file;
use crate::engine::{OpContext, OpError, ParamKind};
use crate::workflow::StepType;

/// Intermediate results: float, never dithered.
const ARTIFACT: WavSpec = WavSpec {
    bit_depth: BitDepth::Float32,
    dither: Dither::None,
};

fn audio_in(s: crate::engine::OperationSpec) -> crate::engine::OperationSpec {
    s.audio_input("audio", "the clip: a file path or an audio artifact")
}

fn with_artifact_outputs(s: crate::engine::OperationSpec) -> crate::engine::OperationSpec {
    s.output(
        "audio",
        "the result as an audio artifact (32-bit float WAV)",
    )
    .output("sampleRate", "Hz")
    .output("channels", "channel count")
    .output("frames", "length in samples per channel")
    .output("duration", "seconds")
}

/// Runs a streaming transform into a scratch file and stores the result as an artifact.
fn streamed(
    ctx: &OpContext<'_>,
    f: impl FnOnce(&std::path::Path, &std::path::Path) -> audio::Result<audio::TransformReport>,
) -> Result<Value, OpError> {
    let input = input_path(ctx, "audio")?;
    ctx.cancel.check()?;
    let scratch = scratch_file(ctx)?;
    let report = f(&input, &scratch).map_err(audio_error)?;
    ctx.cancel.check()?;
    let artifact = store_artifact(ctx, scratch)?;
    Ok(transform_result(artifact, &report))
}

pub fn export() -> FnOperation {
    let mut export = FnOperation {
        spec: with_artifact_outputs(audio_in(spec(
            StepType::Transformation,
            "export",
            "Writes the clip into the run's output folder as a WAV file at the chosen sample rate \
             (high-quality resampling when it differs) and bit depth (16 or 24-bit PCM with TPDF \
             dither, or 32-bit float).",
        )))
        .param(
            "format",
            choice(&["wav"]),
            Some(json!("wav")),
            "file format",
        )
        .param(
            "sampleRate",
            ParamKind::Integer {
                min: Some(1000),
                max: Some(768_000),
            },
            None,
            "output rate in Hz; absent keeps the input's",
        )
        .param(
            "bitDepth",
            ParamKind::Integer {
                min: Some(16),
                max: Some(32),
            },
            Some(json!(16)),
            "16, 24 (PCM) or 32 (float)",
        )
        .param(
            "dither",
            ParamKind::Boolean,
            Some(json!(true)),
            "TPDF dither when writing 16 or 24-bit",
        )
        .param(
            "fileName",
            ParamKind::String,
            None,
            "name of the file in the output folder; default: the input's name with .wav",
        )
        .output("path", "the written file"),
        run: run_export,
    };
    // The file belongs to the run's output folder: every run writes its own, so a result
    // from another run's folder is never reused.
    export.spec.deterministic = false;
    export
}

fn run_export(ctx: &OpContext<'_>) -> Result<Value, OpError> {
    let input = input_path(ctx, "audio")?;
    let bits = ctx.i64_param("bitDepth")?;
    let depth = u32::try_from(bits)
        .ok()
        .and_then(BitDepth::from_bits)
        .ok_or_else(|| OpError::invalid(format!("bitDepth must be 16, 24 or 32, not {bits}")))?;
    let mut wav = WavSpec::new(depth);
    if !ctx.bool_param("dither")? {
        wav.dither = Dither::None;
    }
    let rate = match ctx.param("sampleRate") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|r| u32::try_from(r).ok())
                .ok_or_else(|| OpError::invalid("sampleRate must be a whole number of Hz"))?,
        ),
    };
    let name = match ctx.param("fileName").and_then(Value::as_str) {
        Some(n) => plain_file_name(n, "wav")?,
        None => {
            let stem = input
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "export".into());
            format!("{stem}.wav")
        }
    };
    std::fs::create_dir_all(ctx.output_dir)
        .map_err(|e| OpError::failed(format!("{}: {e}", ctx.output_dir.display())))?;
    let target: PathBuf = ctx.output_dir.join(name);
    // Write beside the target, then rename, so a failed export never leaves half a file.
    let scratch = tempfile::Builder::new()
        .prefix(".grym-export-")
        .suffix(".wav")
        .tempfile_in(ctx.output_dir)
        .map_err(|e| OpError::failed(format!("{}: {e}", ctx.output_dir.display())))?
        .into_temp_path();
    ctx.cancel.check()?;
    let report = audio::export_file(&input, &scratch, rate, wav).map_err(audio_error)?;
    ctx.cancel.check()?;
    scratch
        .persist(&target)
        .map_err(|e| OpError::failed(format!("{}: {}", target.display(), e.error)))?;
    let hash = hash_file(&target).map_err(OpError::Failed)?;
    let artifact = describe(&target, hash)?;
    let mut result = transform_result(artifact, &report);
    result["path"] = json!(target);
    result["bitDepth"] = json!(depth.bits());
    Ok(result)
}

pub fn resample() -> FnOperation {
    FnOperation {
        spec: with_artifact_outputs(audio_in(spec(
            StepType::Transformation,
            "resample",
            "Changes the sample rate with a band-limited FFT resampler (rubato); the output has \
             exactly ceil(frames × out / in) frames and no start-up delay.",
        )))
        .param(
            "sampleRate",
            ParamKind::Integer {
                min: Some(1000),
                max: Some(768_000),
            },
            Some(json!(44100)),
            "output rate in Hz",
        ),
        run: |ctx| {
            let rate = u32::try_from(ctx.i64_param("sampleRate")?)
                .map_err(|_| OpError::invalid("sampleRate is out of range"))?;
            streamed(ctx, |i, o| audio::export_file(i, o, Some(rate), ARTIFACT))
        },
    }
}

pub fn normalize() -> FnOperation {
    FnOperation {
        spec: with_artifact_outputs(audio_in(spec(
            StepType::Transformation,
            "normalize",
            "Scales the clip so that its sample peak (dBFS) or integrated loudness (LUFS, \
             BS.1770) meets the target. Two passes over the file: measure, then scale.",
        )))
        .param(
            "mode",
            choice(&["peak", "lufs"]),
            Some(json!("peak")),
            "what to match",
        )
        .param(
            "target",
            number(Some(-70.0), Some(0.0)),
            None,
            "dBFS for peak (default -1), LUFS for lufs (default -23)",
        )
        .output("gainDb", "the gain applied"),
        run: |ctx| {
            let target = opt_f64(ctx, "target")?;
            let target = match ctx.str_param("mode")? {
                "lufs" => NormalizeTarget::Lufs(target.unwrap_or(-23.0)),
                _ => NormalizeTarget::Peak(target.unwrap_or(-1.0)),
            };
            streamed(ctx, |i, o| audio::normalize_file(i, o, target, ARTIFACT))
        },
    }
}

pub fn gain() -> FnOperation {
    FnOperation {
        spec: with_artifact_outputs(audio_in(spec(
            StepType::Transformation,
            "gain",
            "Multiplies the clip by a gain given in dB.",
        )))
        .param(
            "db",
            number(Some(-120.0), Some(60.0)),
            Some(json!(0.0)),
            "gain in dB",
        ),
        run: |ctx| {
            let db = ctx.f64_param("db")?;
            streamed(ctx, |i, o| audio::gain_file(i, o, db, ARTIFACT))
        },
    }
}

pub fn trim() -> FnOperation {
    FnOperation {
        spec: with_artifact_outputs(audio_in(spec(
            StepType::Transformation,
            "trim",
            "Cuts leading and trailing silence: the sample frames before the first and after the \
             last one whose level on any channel exceeds `thresholdDb` (dBFS). An all-silent \
             clip becomes empty.",
        )))
        .param(
            "thresholdDb",
            number(Some(-120.0), Some(0.0)),
            Some(json!(-60.0)),
            "silence threshold in dBFS",
        )
        .output("keptFrames", "[start, end) of the input that was kept"),
        run: |ctx| {
            let threshold = ctx.f64_param("thresholdDb")?;
            streamed(ctx, |i, o| audio::trim_file(i, o, threshold, ARTIFACT))
        },
    }
}

pub fn fade() -> FnOperation {
    FnOperation {
        spec: with_artifact_outputs(audio_in(spec(
            StepType::Transformation,
            "fade",
            "Fades the clip in and out with linear gain ramps.",
        )))
        .param(
            "fadeIn",
            number(Some(0.0), Some(3600.0)),
            Some(json!(0.0)),
            "fade-in length in seconds",
        )
        .param(
            "fadeOut",
            number(Some(0.0), Some(3600.0)),
            Some(json!(0.0)),
            "fade-out length in seconds",
        ),
        run: |ctx| {
            let (fade_in, fade_out) = (ctx.f64_param("fadeIn")?, ctx.f64_param("fadeOut")?);
            streamed(ctx, |i, o| {
                audio::fade_file(i, o, fade_in, fade_out, ARTIFACT)
            })
        },
    }
}

pub fn filter() -> FnOperation {
    FnOperation {
        spec: with_artifact_outputs(audio_in(spec(
            StepType::Transformation,
            "filter",
            "A biquad filter from the RBJ audio-EQ cookbook: high-pass, low-pass or peaking EQ.",
        )))
        .param(
            "type",
            choice(&["highpass", "lowpass", "peaking"]),
            Some(json!("highpass")),
            "filter shape",
        )
        .param(
            "frequency",
            number(Some(1.0), Some(384_000.0)),
            Some(json!(80.0)),
            "corner or centre frequency in Hz (below Nyquist)",
        )
        .param(
            "q",
            number(Some(0.05), Some(50.0)),
            Some(json!(0.707)),
            "quality factor",
        )
        .param(
            "gainDb",
            number(Some(-48.0), Some(48.0)),
            Some(json!(0.0)),
            "peaking gain in dB",
        ),
        run: |ctx| {
            let (freq, q) = (ctx.f64_param("frequency")?, ctx.f64_param("q")?);
            let spec = match ctx.str_param("type")? {
                "lowpass" => FilterSpec::LowPass { freq, q },
                "peaking" => FilterSpec::PeakingEq {
                    freq,
                    q,
                    gain_db: ctx.f64_param("gainDb")?,
                },
                _ => FilterSpec::HighPass { freq, q },
            };
            streamed(ctx, |i, o| audio::filter_file(i, o, &[spec], ARTIFACT))
        },
    }
}

pub fn mix() -> FnOperation {
    FnOperation {
        spec: with_artifact_outputs(
            spec(
                StepType::Transformation,
                "mix",
                "Sums several clips of the same sample rate, each with its own gain; the result is \
                 as long as the longest, with as many channels as the widest (mono inputs go to \
                 every channel).",
            )
            .variadic_audio_input("audio", "the clips, one input each"),
        )
        .param(
            "gainsDb",
            ParamKind::Json,
            Some(json!([])),
            "gain in dB per input, in order (missing ones are 0)",
        ),
        run: run_mix,
    }
}

fn run_mix(ctx: &OpContext<'_>) -> Result<Value, OpError> {
    let gains: Vec<f64> = match ctx.param("gainsDb") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| OpError::invalid("gainsDb must be a list of numbers"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(OpError::invalid("gainsDb must be a list of numbers")),
    };
    let mut inputs = Vec::new();
    for (i, value) in ctx.inputs_named("audio").enumerate() {
        let (path, _) = crate::engine::operation::audio_source(value)
            .map_err(|e| OpError::invalid(format!("input {i}: {e}")))?;
        inputs.push((path, gains.get(i).copied().unwrap_or(0.0)));
    }
    if inputs.is_empty() {
        return Err(OpError::invalid("mix needs at least one audio input"));
    }
    let scratch = scratch_file(ctx)?;
    let report = audio::mix_files(&inputs, &scratch, ARTIFACT).map_err(audio_error)?;
    ctx.cancel.check()?;
    let artifact = store_artifact(ctx, scratch)?;
    Ok(transform_result(artifact, &report))
}
