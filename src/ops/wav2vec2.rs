//! Analysis with Wav2Vec2: `analysis/embed` and `analysis/transcribe`, and the embedding
//! similarity `analysis/compare` adds when a model is named.

use serde_json::{Value, json};

use super::models::{model_error, model_params, wav2vec2};
use super::support::{
    FnOperation, SpecExt, audio_error, choice, integer, load, number, opt_f64, scratch_file_with,
    spec, store_file,
};
use crate::audio::{self, AudioBuffer};
use crate::engine::{OpContext, OpError, ParamKind};
use crate::models::device::device_label;
use crate::models::wav2vec2::{DEFAULT_MODEL, Frames, Layer, Wav2Vec2Model, Windowing};
use crate::workflow::StepType;

fn windowing_params(spec: crate::engine::OperationSpec) -> crate::engine::OperationSpec {
    spec.param(
        "windowSeconds",
        number(Some(1.0), Some(600.0)),
        Some(json!(30.0)),
        "longer audio runs in windows of this length, so memory stays bounded",
    )
    .param(
        "contextSeconds",
        number(Some(0.0), Some(60.0)),
        Some(json!(5.0)),
        "overlap each window reads on either side of the part it keeps",
    )
}

pub fn embed() -> FnOperation {
    let spec = spec(
        StepType::Analysis,
        "embed",
        "Wav2Vec2 embedding of a clip. The audio is downmixed to mono, resampled to the \
         model's rate (16 kHz) and normalised as transformers' Wav2Vec2FeatureExtractor does; \
         the chosen layer's hidden states are pooled over frames. Long audio runs in \
         overlapping windows. `embedding` is the pooled vector; with `frameEmbeddings` the \
         per-frame vectors are also written as a float32 .npy artifact (frames × hidden).",
    )
    .audio_input("audio", "the clip: a file path or an audio artifact");
    let spec = model_params(spec, Some(DEFAULT_MODEL))
        .param(
            "pooling",
            choice(&["mean", "max", "meanStd"]),
            Some(json!("mean")),
            "mean or max over frames, or the mean followed by the standard deviation",
        )
        .param(
            "layer",
            integer(Some(0), Some(256)),
            None,
            "hidden states of this layer as transformers numbers them (0: the input to the \
             first layer; i: the output of layer i); default: last_hidden_state",
        )
        .param(
            "frameEmbeddings",
            ParamKind::Boolean,
            Some(json!(false)),
            "also write every frame's vector as an .npy artifact",
        );
    let spec = windowing_params(spec)
        .output("embedding", "the pooled vector")
        .output("dimensions", "its length")
        .output("frames", "frames pooled")
        .output("frameSeconds", "seconds between frames (0.02)")
        .output("frameEmbeddingsFile", "the .npy artifact, when asked for")
        .output("model", "the model used")
        .output("device", "where it ran");
    FnOperation {
        spec,
        run: run_embed,
    }
}

pub fn transcribe() -> FnOperation {
    let spec = spec(
        StepType::Analysis,
        "transcribe",
        "Speech to text with a Wav2Vec2 CTC checkpoint: greedy decoding with the checkpoint's \
         vocabulary as transformers' Wav2Vec2CTCTokenizer decodes (repeats merge, the pad \
         token is the CTC blank, `|` separates words), leaving out <s>, </s> and <unk>. Word \
         times come from frame positions (20 ms frames). Long audio runs in overlapping \
         windows.",
    )
    .audio_input("audio", "the clip: a file path or an audio artifact");
    let spec = windowing_params(model_params(spec, Some(DEFAULT_MODEL)))
        .output("text", "the transcript")
        .output("words", "[{word, start, end}] in seconds")
        .output("duration", "seconds of audio")
        .output("model", "the model used")
        .output("device", "where it ran");
    FnOperation {
        spec,
        run: run_transcribe,
    }
}

/// Brings decoded input `name` (read from `path`) to the model's input: mono at its rate.
fn model_input(
    ctx: &OpContext<'_>,
    input: DecodedInput<'_>,
    model: &Wav2Vec2Model,
) -> Result<Vec<f32>, OpError> {
    let DecodedInput { name, path, buffer } = input;
    let mono = AudioBuffer::mono(buffer.sample_rate(), buffer.to_mono()).map_err(audio_error)?;
    let mono = if mono.sample_rate() == model.sample_rate() {
        mono
    } else {
        audio::resample(&mono, model.sample_rate()).map_err(audio_error)?
    };
    ctx.cancel.check()?;
    let samples = mono.into_channels().into_iter().next().unwrap_or_default();
    if samples.len() < model.config().min_samples() {
        return Err(OpError::invalid(format!(
            "input `{name}` ({}): {:.3} s is too short for Wav2Vec2, which needs at least {:.3} s",
            path.display(),
            samples.len() as f64 / model.sample_rate() as f64,
            model.config().min_samples() as f64 / model.sample_rate() as f64
        )));
    }
    Ok(samples)
}

/// An input already decoded, with its name and file for messages.
#[derive(Clone, Copy)]
pub struct DecodedInput<'a> {
    pub name: &'a str,
    pub path: &'a std::path::Path,
    pub buffer: &'a AudioBuffer,
}

/// Runs the model over the audio bound to input `name`.
fn frames_of_input(
    ctx: &OpContext<'_>,
    name: &str,
    model: &Wav2Vec2Model,
    layer: Layer,
    want_logits: bool,
) -> Result<(Frames, f64), OpError> {
    let (buffer, path) = load(ctx, name)?;
    let input = DecodedInput {
        name,
        path: &path,
        buffer: &buffer,
    };
    frames(ctx, input, model, layer, want_logits)
}

fn windowing(ctx: &OpContext<'_>, model: &Wav2Vec2Model) -> Result<Windowing, OpError> {
    let rate = model.sample_rate() as f64;
    // Operations that use the model on the side (compare) do not declare these.
    let window = opt_f64(ctx, "windowSeconds")?.unwrap_or(30.0);
    let context = opt_f64(ctx, "contextSeconds")?.unwrap_or(5.0);
    if context * 2.0 >= window {
        return Err(OpError::invalid(format!(
            "parameter `contextSeconds` ({context}) must be less than half of `windowSeconds` ({window})"
        )));
    }
    Ok(Windowing {
        window: (window * rate) as usize,
        context: (context * rate) as usize,
    })
}

/// Runs the model over input `name`, reporting progress between 0.1 and 0.9.
fn frames(
    ctx: &OpContext<'_>,
    input: DecodedInput<'_>,
    model: &Wav2Vec2Model,
    layer: Layer,
    want_logits: bool,
) -> Result<(Frames, f64), OpError> {
    let samples = model_input(ctx, input, model)?;
    let duration = samples.len() as f64 / model.sample_rate() as f64;
    ctx.progress
        .report(0.15, &format!("running {}", model.name()));
    let windows = windowing(ctx, model)?;
    let cancelled = || ctx.cancel.is_cancelled();
    let frames = model
        .frames(&samples, layer, want_logits, windows, &cancelled)
        .map_err(model_error)?;
    ctx.progress.report(0.9, "pooling");
    Ok((frames, duration))
}

fn model_name<'a>(ctx: &OpContext<'a>) -> &'a str {
    ctx.param("model")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_MODEL)
}

fn run_embed(ctx: &OpContext<'_>) -> Result<Value, OpError> {
    let model = wav2vec2(ctx, model_name(ctx))?;
    let layer = match ctx.param("layer") {
        None => Layer::Last,
        Some(_) => Layer::Index(super::support::usize_param(ctx, "layer")?),
    };
    let pooling = ctx.str_param("pooling")?;
    let (frames, _) = frames_of_input(ctx, "audio", &model, layer, false)?;
    let embedding = pool(&frames.hidden, pooling).map_err(|e| OpError::failed(e.to_string()))?;
    let mut result = json!({
        "dimensions": embedding.len(),
        "frames": frames.hidden.dim(0).unwrap_or(0),
        "frameSeconds": frames.frame_seconds,
        "pooling": pooling,
        "layer": match layer { Layer::Last => json!("last"), Layer::Index(i) => json!(i) },
        "model": model.name(),
        "device": device_label(model.device()),
        "embedding": embedding,
    });
    if ctx.param("frameEmbeddings").and_then(Value::as_bool) == Some(true) {
        let scratch = scratch_file_with(ctx, ".npy")?;
        frames
            .hidden
            .write_npy(&scratch)
            .map_err(|e| OpError::failed(format!("{}: {e}", scratch.display())))?;
        let (path, hash) = store_file(ctx, scratch, "npy")?;
        result["frameEmbeddingsFile"] = json!({
            "path": path,
            "hash": hash,
            "shape": frames.hidden.dims(),
        });
    }
    ctx.progress.report(1.0, "done");
    Ok(result)
}

/// Pools (frames, hidden) into one vector.
fn pool(hidden: &candle_core::Tensor, pooling: &str) -> candle_core::Result<Vec<f32>> {
    let mean = hidden.mean(0)?;
    match pooling {
        "max" => hidden.max(0)?.to_vec1(),
        "meanStd" => {
            let centred = hidden.broadcast_sub(&mean)?;
            let std = centred.sqr()?.mean(0)?.sqrt()?;
            let mut v = mean.to_vec1::<f32>()?;
            v.extend(std.to_vec1::<f32>()?);
            Ok(v)
        }
        _ => mean.to_vec1(),
    }
}

fn run_transcribe(ctx: &OpContext<'_>) -> Result<Value, OpError> {
    let model = wav2vec2(ctx, model_name(ctx))?;
    if !model.can_transcribe() {
        return Err(OpError::invalid(format!(
            "model `{}` has no CTC head and vocabulary; transcription needs a fine-tuned \
             checkpoint such as {DEFAULT_MODEL}",
            model.name()
        )));
    }
    let (frames, duration) = frames_of_input(ctx, "audio", &model, Layer::Last, true)?;
    let Some(logits) = &frames.logits else {
        return Err(OpError::failed("the model gave no logits"));
    };
    let transcript = model.decode(logits).map_err(model_error)?;
    let seconds = |frame: usize| (frame as f64 * frames.frame_seconds * 1e4).round() / 1e4;
    let words: Vec<Value> = transcript
        .words
        .iter()
        .map(|w| json!({"word": w.word, "start": seconds(w.start), "end": seconds(w.end)}))
        .collect();
    ctx.progress.report(1.0, "done");
    Ok(json!({
        "text": transcript.text,
        "words": words,
        "duration": duration,
        "model": model.name(),
        "device": device_label(model.device()),
    }))
}

/// Cosine similarity of the mean-pooled last hidden states of two decoded inputs, for
/// `analysis/compare`, which has decoded them already.
pub fn embedding_similarity(
    ctx: &OpContext<'_>,
    model_name: &str,
    inputs: [DecodedInput<'_>; 2],
) -> Result<f64, OpError> {
    let model = wav2vec2(ctx, model_name)?;
    let mut vectors = Vec::with_capacity(2);
    for input in inputs {
        let (frames, _) = frames(ctx, input, &model, Layer::Last, false)?;
        vectors.push(pool(&frames.hidden, "mean").map_err(|e| OpError::failed(e.to_string()))?);
    }
    Ok(cosine(&vectors[0], &vectors[1]))
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    let na: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_definitions() {
        let t = candle_core::Tensor::new(&[[1.0f32, -2.0], [3.0, 4.0]], &candle_core::Device::Cpu)
            .unwrap();
        assert_eq!(pool(&t, "mean").unwrap(), vec![2.0, 1.0]);
        assert_eq!(pool(&t, "max").unwrap(), vec![3.0, 4.0]);
        assert_eq!(pool(&t, "meanStd").unwrap(), vec![2.0, 1.0, 1.0, 3.0]);
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-12);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }
}
