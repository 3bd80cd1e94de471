//! Analysis operations over the signal: features, patterns, loudness, comparison, the
//! no-reference quality score and beat-synchronous figures.

use serde_json::{Value, json};

use super::support::{
    FnOperation, SpecExt, audio_error, choice, integer, load, number, spec, to_value, usize_param,
};
use super::wav2vec2::DecodedInput;
use crate::audio::{self, FeatureParams, PatternParams};
use crate::engine::{OpContext, OpError};
use crate::workflow::StepType;

pub fn features() -> FnOperation {
    FnOperation {
        spec: spec(
            StepType::Analysis,
            "features",
            "Signal features of a clip, each as librosa 0.11 defines it with its defaults, on the \
             mono downmix at the file's own sample rate (librosa sr=None): centred frames padded \
             with zeros, n_fft 2048, hop 512, Hann window, 128 Slaney mel bands, orthonormal \
             DCT-II MFCCs of the power spectrogram in dB (top_db 80). Spectral figures and the \
             zero-crossing rate are means over frames; f0 is the median of YIN over voiced frames \
             (trough below 0.1, C2–C7); tempo is librosa.feature.tempo; loudness is BS.1770 \
             integrated loudness (EBU R128).",
        )
        .audio_input("audio", "the clip: a file path or an audio artifact")
        .param(
            "nFft",
            integer(Some(64), Some(65536)),
            Some(json!(2048)),
            "FFT size in samples",
        )
        .param(
            "hopLength",
            integer(Some(16), Some(65536)),
            Some(json!(512)),
            "hop between frames in samples",
        )
        .param(
            "nMels",
            integer(Some(8), Some(512)),
            Some(json!(128)),
            "mel bands for the MFCCs",
        )
        .param(
            "nMfcc",
            integer(Some(1), Some(128)),
            Some(json!(13)),
            "MFCC coefficients",
        )
        .param(
            "rolloffPercent",
            number(Some(0.01), Some(0.99)),
            Some(json!(0.85)),
            "energy fraction below the roll-off frequency",
        )
        .output("duration", "seconds")
        .output("sampleRate", "Hz")
        .output("channels", "channel count of the file")
        .output("peak", "largest absolute sample over all channels")
        .output("rms", "mean of framed RMS (librosa.feature.rms)")
        .output("crestFactor", "peak / rms")
        .output(
            "loudnessLufs",
            "integrated loudness in LUFS (null under 0.4 s or silent)",
        )
        .output("spectralCentroid", "mean, Hz")
        .output("spectralBandwidth", "mean, Hz (p = 2)")
        .output("spectralRolloff", "mean, Hz")
        .output("spectralFlatness", "mean, 0–1")
        .output(
            "zeroCrossingRate",
            "mean fraction of sign changes per frame",
        )
        .output("mfcc", "13 means")
        .output("chroma", "12 means of chroma_stft, C first")
        .output(
            "f0",
            "median fundamental in Hz over voiced frames; null when none are voiced",
        )
        .output("tempo", "BPM"),
        run: run_features,
    }
}

fn run_features(ctx: &OpContext<'_>) -> Result<Value, OpError> {
    let params = FeatureParams {
        n_fft: usize_param(ctx, "nFft")?,
        hop_length: usize_param(ctx, "hopLength")?,
        n_mels: usize_param(ctx, "nMels")?,
        n_mfcc: usize_param(ctx, "nMfcc")?,
        rolloff_percent: ctx.f64_param("rolloffPercent")?,
        ..FeatureParams::default()
    };
    ctx.progress.report(0.0, "decoding");
    let (buffer, _) = load(ctx, "audio")?;
    ctx.progress.report(0.2, "analysing");
    let features = audio::extract_features(&buffer, &params).map_err(audio_error)?;
    ctx.cancel.check()?;
    ctx.progress.report(1.0, "done");
    to_value(&features)
}

pub fn patterns() -> FnOperation {
    let d = PatternParams::default();
    FnOperation {
        spec: spec(
            StepType::Analysis,
            "patterns",
            "Rhythm and structure: onsets (librosa onset_strength + onset_detect, with their \
             strengths), tempo and beat times (librosa beat_track), rhythmic regularity \
             (max(0, 1 − std/mean) of the inter-beat intervals, or of inter-onset intervals when \
             there are fewer than 3 beats), and structure: segment boundaries where a checkerboard \
             kernel over the self-similarity of block MFCCs finds novelty peaks.",
        )
        .audio_input("audio", "the clip: a file path or an audio artifact")
        .param(
            "hopLength",
            integer(Some(16), Some(65536)),
            Some(json!(d.hop_length)),
            "hop between analysis frames in samples",
        )
        .param(
            "onsetDelta",
            number(Some(0.0), Some(10.0)),
            Some(json!(d.onset_delta)),
            "onset peak threshold above the local mean; higher finds fewer onsets",
        )
        .param(
            "onsetWaitSeconds",
            number(Some(0.0), Some(5.0)),
            Some(json!(d.onset_wait_seconds)),
            "minimum time between onsets",
        )
        .param(
            "startBpm",
            number(Some(30.0), Some(300.0)),
            Some(json!(d.start_bpm)),
            "centre of the tempo prior",
        )
        .param(
            "tightness",
            number(Some(0.0), Some(1000.0)),
            Some(json!(d.tightness)),
            "how strictly beats follow the tempo",
        )
        .param(
            "blockSeconds",
            number(Some(0.05), Some(10.0)),
            Some(json!(d.block_seconds)),
            "block length for the self-similarity matrix",
        )
        .param(
            "kernelSeconds",
            number(Some(0.5), Some(60.0)),
            Some(json!(d.kernel_seconds)),
            "checkerboard kernel width; longer finds larger sections",
        )
        .param(
            "minSegmentSeconds",
            number(Some(0.1), Some(600.0)),
            Some(json!(d.min_segment_seconds)),
            "shortest segment",
        )
        .param(
            "noveltyThreshold",
            number(Some(0.0), Some(1.0)),
            Some(json!(d.novelty_threshold)),
            "novelty peak height (0–1) that makes a boundary",
        )
        .output("onsets", "[{time, strength}]")
        .output("tempo", "BPM")
        .output("beats", "beat times in seconds")
        .output("rhythmicRegularity", "0–1, null with too few events")
        .output("boundaries", "segment boundaries in seconds")
        .output("segments", "[{start, end}] in seconds"),
        run: run_patterns,
    }
}

fn run_patterns(ctx: &OpContext<'_>) -> Result<Value, OpError> {
    let params = PatternParams {
        hop_length: usize_param(ctx, "hopLength")?,
        onset_delta: ctx.f64_param("onsetDelta")?,
        onset_wait_seconds: ctx.f64_param("onsetWaitSeconds")?,
        start_bpm: ctx.f64_param("startBpm")?,
        tightness: ctx.f64_param("tightness")?,
        block_seconds: ctx.f64_param("blockSeconds")?,
        kernel_seconds: ctx.f64_param("kernelSeconds")?,
        min_segment_seconds: ctx.f64_param("minSegmentSeconds")?,
        novelty_threshold: ctx.f64_param("noveltyThreshold")?,
    };
    let (buffer, _) = load(ctx, "audio")?;
    ctx.progress.report(0.2, "analysing");
    let patterns = audio::analyze_patterns(&buffer, &params).map_err(audio_error)?;
    ctx.cancel.check()?;
    to_value(&patterns)
}

pub fn loudness() -> FnOperation {
    FnOperation {
        spec: spec(
            StepType::Analysis,
            "loudness",
            "Loudness per EBU R128 / ITU-R BS.1770-4: integrated loudness (gated), the highest \
             short-term (3 s) loudness, loudness range (EBU Tech 3342) and true peak (4× \
             oversampled), plus the sample peak.",
        )
        .audio_input("audio", "the clip: a file path or an audio artifact")
        .output("integratedLufs", "LUFS; null under 0.4 s or when silent")
        .output("shortTermMaxLufs", "LUFS; null under 3 s")
        .output("loudnessRange", "LU; null under 3 s")
        .output("truePeakDbtp", "dBTP")
        .output("samplePeakDbfs", "dBFS"),
        run: run_loudness,
    }
}

fn run_loudness(ctx: &OpContext<'_>) -> Result<Value, OpError> {
    let (buffer, _) = load(ctx, "audio")?;
    let report = audio::measure_loudness(&buffer);
    ctx.cancel.check()?;
    to_value(&report)
}

pub fn compare() -> FnOperation {
    FnOperation {
        spec: spec(
            StepType::Analysis,
            "compare",
            "Scores a candidate against a reference. Each aspect (noise: noise-floor change; \
             loudness: integrated-loudness difference; brightness: spectral-centroid ratio; \
             dynamics: crest-factor ratio; timing: tempo and duration agreement; pitch: f0 \
             agreement) scores 0–1; qualityScore is their weighted mean, and improvementAreas \
             lists the aspects scoring under `threshold`, worst first (the vocabulary: noise, \
             loudness, brightness, dynamics, timing, pitch) — what a `generate` step's \
             focusAreas reads. The formula is in src/audio/compare.rs. A candidate may be a \
             generation result: its `audio` artifact is used. With `model` set, a Wav2Vec2 \
             aspect `embeddingSimilarity` joins the mean with weight 0.3: the cosine \
             similarity of the two clips' mean-pooled last hidden states, clamped to [0, 1].",
        )
        .audio_input(
            "reference",
            "the original: a file path or an audio artifact",
        )
        .audio_input("candidate", "the version to judge")
        .param(
            "threshold",
            number(Some(0.0), Some(1.0)),
            Some(json!(0.7)),
            "aspects scoring below this become improvement areas",
        )
        .param(
            "mode",
            choice(&["signal"]),
            Some(json!("signal")),
            "which signal aspects to score",
        )
        .param(
            "model",
            crate::engine::ParamKind::String,
            None,
            "a Wav2Vec2 model (Hub id or local directory) for the embeddingSimilarity aspect; \
             none: signal aspects only",
        )
        .param(
            "device",
            crate::engine::ParamKind::String,
            Some(json!("auto")),
            "where the model runs: auto, cpu, cuda, cuda:N or metal",
        )
        .output("qualityScore", "0–1")
        .output("aspects", "{name: {score, weight, detail}}")
        .output(
            "improvementAreas",
            "aspect names below the threshold, worst first",
        ),
        run: run_compare,
    }
}

fn run_compare(ctx: &OpContext<'_>) -> Result<Value, OpError> {
    use audio::compare::{SignalStats, compare_features, noise_floor_db};
    let threshold = ctx.f64_param("threshold")?;
    let p = FeatureParams::default();
    let model = ctx.param("model").and_then(Value::as_str);
    let mut measured = Vec::with_capacity(2);
    // Kept only when the model needs them too, so each file is decoded once.
    let mut decoded = Vec::new();
    for (i, input) in ["reference", "candidate"].into_iter().enumerate() {
        ctx.progress.report(i as f32 * 0.5, input);
        let (buffer, path) = load(ctx, input)?;
        let features = audio::extract_features(&buffer, &p).map_err(audio_error)?;
        ctx.cancel.check()?;
        let stats = SignalStats {
            noise_floor_db: noise_floor_db(&buffer.to_mono(), p.n_fft, p.hop_length),
        };
        measured.push((features, stats));
        if model.is_some() {
            decoded.push((input, path, buffer));
        }
    }
    let mut extra = Vec::new();
    if let (Some(model), [reference, candidate]) = (model, decoded.as_slice()) {
        ctx.progress.report(0.6, "embedding similarity");
        let inputs =
            [reference, candidate].map(|(name, path, buffer)| DecodedInput { name, path, buffer });
        let similarity = super::wav2vec2::embedding_similarity(ctx, model, inputs)?;
        extra.push(audio::compare::ExtraAspect {
            name: "embeddingSimilarity".into(),
            score: similarity.max(0.0),
            weight: 0.3,
            detail: format!("cosine similarity {similarity:.3} of {model} embeddings"),
        });
    }
    let comparison = compare_features(
        (&measured[0].0, measured[0].1),
        (&measured[1].0, measured[1].1),
        &extra,
        threshold,
    );
    to_value(&comparison)
}

pub fn quality() -> FnOperation {
    let d = audio::QualityParams::default();
    FnOperation {
        spec: spec(
            StepType::Analysis,
            "quality",
            "Scores a clip on its own, with no reference: the gate of a generate → score → \
             regenerate loop. Aspects, each 0–1: level (RMS and the share of frames above \
             −60 dBFS: not silent), clipping (samples beyond full scale or in flat tops at full \
             scale), loudness (integrated LUFS within 3 LU of `targetLufs`), dcOffset (the largest \
             channel mean) and noise (spectral flatness: white noise fails). qualityScore is \
             their weighted geometric mean (level 0.25, clipping 0.2, loudness 0.2, noise 0.2, \
             dcOffset 0.15), so one failing aspect fails the clip; `passed` is qualityScore ≥ \
             `minScore`, for a condition to branch on. improvementAreas lists the areas of the \
             aspects under `threshold` (loudness for level, clipping and loudness; noise for \
             dcOffset and noise), worst first — what a `generate` step's focusAreas reads. The \
             formula is in src/audio/quality.rs. A generation result is judged by its `audio` \
             artifact.",
        )
        .audio_input(
            "audio",
            "the clip: a file path, an audio artifact or a generation result",
        )
        .param(
            "targetLufs",
            number(Some(-70.0), Some(0.0)),
            Some(json!(d.target_lufs)),
            "integrated loudness the loudness aspect aims at",
        )
        .param(
            "threshold",
            number(Some(0.0), Some(1.0)),
            Some(json!(d.threshold)),
            "aspects scoring below this become improvement areas",
        )
        .param(
            "minScore",
            number(Some(0.0), Some(1.0)),
            Some(json!(0.6)),
            "the qualityScore at which `passed` is true",
        )
        .output(
            "qualityScore",
            "0–1, the weighted geometric mean of the aspects",
        )
        .output("passed", "qualityScore ≥ minScore")
        .output("aspects", "{name: {score, weight, area, detail}}")
        .output(
            "improvementAreas",
            "areas of the aspects below the threshold, worst first",
        )
        .output(
            "measurements",
            "rmsDbfs, activeShare, clippedShare, integratedLufs, dcOffset, spectralFlatness",
        ),
        run: run_quality,
    }
}

fn run_quality(ctx: &OpContext<'_>) -> Result<Value, OpError> {
    let params = audio::QualityParams {
        target_lufs: ctx.f64_param("targetLufs")?,
        threshold: ctx.f64_param("threshold")?,
    };
    let min_score = ctx.f64_param("minScore")?;
    let (buffer, _) = load(ctx, "audio")?;
    ctx.progress.report(0.3, "assessing");
    let quality = audio::assess_quality(&buffer, &params).map_err(audio_error)?;
    ctx.cancel.check()?;
    let mut result = to_value(&quality)?;
    result["passed"] = json!(quality.quality_score >= min_score);
    Ok(result)
}

pub fn beatsync() -> FnOperation {
    let mut spec = spec(
        StepType::Analysis,
        "beatsync",
        "Figures of a clip per beat, per bar and per section, on the beat grid of a `patterns` \
         result (librosa's beat-synchronous aggregation, util.sync with the mean): RMS level \
         (dBFS), spectral centroid, spectral flatness, mean chroma with its strongest pitch class, \
         and the onsets counted in each span. Beat intervals run from beat to beat (plus the \
         lead-in before the first beat and the tail after the last); bars group `beatsPerBar` \
         beats from the first beat; sections are the patterns' segments with their boundaries \
         moved to the nearest beat. accentProfile is the mean level at each position in the \
         bar: where the weight of the bar falls. Frames: 2048 samples, hop 512, centred, on the \
         mono downmix. The definitions are in src/audio/beatsync.rs.",
    )
    .audio_input("audio", "the clip: a file path or an audio artifact")
    .param(
        "beatsPerBar",
        integer(Some(1), Some(16)),
        Some(json!(4)),
        "beats in a bar, counted from the first beat",
    )
    .output("duration", "seconds")
    .output("tempo", "BPM, from the patterns result")
    .output("beatCount", "beats on the grid")
    .output(
        "beatIntervals",
        "[{start, end, rmsDb, spectralCentroid, spectralFlatness, chroma, pitchClass, onsets}]",
    )
    .output("bars", "the same figures per bar")
    .output(
        "sections",
        "the same figures per section, with its beat count (`beats`)",
    )
    .output(
        "accentProfile",
        "mean rmsDb per position in the bar, first beat first",
    );
    spec.inputs.push(crate::engine::InputSpec {
        name: "patterns".into(),
        kind: crate::engine::InputKind::Json,
        description: "a `patterns` result: its beats, onsets and segments".into(),
        required: true,
        variadic: false,
    });
    FnOperation {
        spec,
        run: run_beatsync,
    }
}

/// The numbers at `key` of a patterns result (a list of numbers, or of objects whose
/// `field` is one).
fn times(patterns: &Value, key: &str, field: Option<&str>) -> Result<Vec<f64>, OpError> {
    let Some(items) = patterns.get(key) else {
        return Ok(Vec::new());
    };
    let items = items
        .as_array()
        .ok_or_else(|| OpError::invalid(format!("input `patterns`: `{key}` must be a list")))?;
    items
        .iter()
        .map(|item| {
            let value = match field {
                Some(f) => item.get(f),
                None => Some(item),
            };
            value.and_then(Value::as_f64).ok_or_else(|| {
                OpError::invalid(format!("input `patterns`: `{key}` holds a non-number"))
            })
        })
        .collect()
}

fn run_beatsync(ctx: &OpContext<'_>) -> Result<Value, OpError> {
    let patterns = ctx.input("patterns")?;
    if !patterns.is_object() {
        return Err(OpError::invalid(
            "input `patterns` must be the result of a `patterns` step",
        ));
    }
    let starts = times(patterns, "segments", Some("start"))?;
    let ends = times(patterns, "segments", Some("end"))?;
    let grid = audio::BeatGrid {
        beats: times(patterns, "beats", None)?,
        onsets: times(patterns, "onsets", Some("time"))?,
        sections: starts.into_iter().zip(ends).collect(),
    };
    let beats_per_bar = usize_param(ctx, "beatsPerBar")?;
    let (buffer, _) = load(ctx, "audio")?;
    ctx.progress.report(0.3, "analysing");
    let sync = audio::beat_synchronous(&buffer, &grid, beats_per_bar).map_err(audio_error)?;
    ctx.cancel.check()?;
    let mut result = to_value(&sync)?;
    result["tempo"] = patterns.get("tempo").cloned().unwrap_or(Value::Null);
    Ok(result)
}
