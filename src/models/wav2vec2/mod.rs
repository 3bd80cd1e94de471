//! Wav2Vec2 on candle: embeddings and CTC transcription from transformers checkpoints.
//!
//! [`Wav2Vec2Model`] is a loaded checkpoint with its preprocessing and vocabulary. It takes
//! mono 16 kHz samples (callers resample), normalises them as `Wav2Vec2FeatureExtractor`
//! does, and runs long audio in overlapping windows so memory stays bounded.

pub mod config;
pub mod ctc;
pub mod model;

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};

pub use config::{Config, PreprocessorConfig};
pub use ctc::{CtcVocab, Transcript, WordFrames};
pub use model::Wav2Vec2;

use super::error::read_json;
use super::{DownloadProgress, ModelError, ModelRepo};

/// The model the operations use when none is named.
pub const DEFAULT_MODEL: &str = "facebook/wav2vec2-base-960h";

/// A loaded checkpoint, ready to run.
pub struct Wav2Vec2Model {
    name: String,
    net: Wav2Vec2,
    preprocessor: PreprocessorConfig,
    vocab: Option<CtcVocab>,
    device: Device,
}

/// How long inputs are cut: windows of `window` samples that overlap by `context` on each
/// side; each window contributes only its middle, so every kept frame saw `context` of
/// audio on both sides.
#[derive(Debug, Clone, Copy)]
pub struct Windowing {
    pub window: usize,
    pub context: usize,
}

impl Windowing {
    /// 30 s windows with 5 s of context each side, at 16 kHz.
    pub const DEFAULT: Windowing = Windowing {
        window: 30 * 16_000,
        context: 5 * 16_000,
    };
}

/// Which hidden states to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layer {
    /// `last_hidden_state`.
    #[default]
    Last,
    /// transformers' `hidden_states[i]`: 0 is the input to the first layer, i the output
    /// of layer i (before the final layer norm of stable models).
    Index(usize),
}

/// Frame-level outputs for one clip, on the CPU.
pub struct Frames {
    /// (frames, hidden).
    pub hidden: Tensor,
    /// (frames, vocab), when the checkpoint has a CTC head and logits were asked for.
    pub logits: Option<Tensor>,
    /// Seconds between frame starts.
    pub frame_seconds: f64,
}

impl Wav2Vec2Model {
    /// Loads `config.json`, the weights (`model.safetensors`, its sharded index, or
    /// `pytorch_model.bin`), `preprocessor_config.json` and, when present, `vocab.json`.
    pub fn load(
        repo: &ModelRepo,
        device: &Device,
        progress: &mut dyn FnMut(DownloadProgress),
    ) -> Result<Self, ModelError> {
        let config_path = repo.file("config.json", progress)?;
        let config: Config = read_json(&config_path)?;
        config
            .check()
            .map_err(|message| ModelError::config(&config_path, message))?;
        let preprocessor = match repo.optional_file("preprocessor_config.json", progress)? {
            Some(path) => read_json(&path)?,
            None => PreprocessorConfig::default(),
        };
        if preprocessor.sampling_rate != 16_000 {
            tracing::warn!(
                model = repo.name(),
                rate = preprocessor.sampling_rate,
                "the checkpoint expects a sampling rate other than 16 kHz"
            );
        }
        let vocab = match repo.optional_file("vocab.json", progress)? {
            Some(path) => {
                let tokenizer = repo.optional_file("tokenizer_config.json", progress)?;
                Some(CtcVocab::load(&path, tokenizer.as_deref())?)
            }
            None => None,
        };
        let weights = weight_files(repo, progress)?;
        let vb = super::weights::load(&weights, DType::F32, device)?;
        let net = Wav2Vec2::load(&config, vb)?;
        if let (Some(vocab), true) = (&vocab, net.has_ctc_head())
            && vocab.len() > config.vocab_size
        {
            return Err(ModelError::config(
                &config_path,
                format!(
                    "vocab_size is {} but vocab.json has {} tokens",
                    config.vocab_size,
                    vocab.len()
                ),
            ));
        }
        Ok(Wav2Vec2Model {
            name: repo.name().to_string(),
            net,
            preprocessor,
            vocab,
            device: device.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &Config {
        self.net.config()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The sampling rate inputs must have.
    pub fn sample_rate(&self) -> u32 {
        self.preprocessor.sampling_rate
    }

    pub fn can_transcribe(&self) -> bool {
        self.net.has_ctc_head() && self.vocab.is_some()
    }

    /// `Wav2Vec2FeatureExtractor`'s normalisation: zero mean, unit variance (population
    /// variance + 1e-7) over the clip, when the checkpoint asks for it.
    pub fn normalize(&self, samples: &[f32]) -> Vec<f32> {
        if !self.preprocessor.do_normalize {
            return samples.to_vec();
        }
        normalize(samples)
    }

    /// Runs one batch of already normalised, zero-padded clips at once, as transformers
    /// does: `lengths` are the clips' true lengths. For tests and callers that batch.
    pub fn forward_batch(
        &self,
        clips: &[Vec<f32>],
        keep_hidden_states: bool,
    ) -> Result<model::Output, ModelError> {
        let longest = clips.iter().map(Vec::len).max().unwrap_or(0);
        if longest < self.config().min_samples() {
            return Err(ModelError::Input(format!(
                "audio too short: Wav2Vec2 needs at least {} samples ({:.3} s)",
                self.config().min_samples(),
                self.config().min_samples() as f64 / self.sample_rate() as f64
            )));
        }
        let mut data = Vec::with_capacity(clips.len() * longest);
        for clip in clips {
            data.extend_from_slice(clip);
            data.resize(data.len() + longest - clip.len(), 0.0);
        }
        let input = Tensor::from_vec(data, (clips.len(), longest), &self.device)?;
        let lengths: Vec<usize> = clips.iter().map(Vec::len).collect();
        Ok(self
            .net
            .forward(&input, Some(&lengths), keep_hidden_states)?)
    }

    /// Frame outputs for a whole clip of mono samples at [`Self::sample_rate`], normalised
    /// here, cut into windows when longer than one. `cancelled` is asked between windows.
    pub fn frames(
        &self,
        samples: &[f32],
        layer: Layer,
        want_logits: bool,
        windowing: Windowing,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Frames, ModelError> {
        let cfg = self.config();
        if let Layer::Index(i) = layer
            && i > cfg.num_hidden_layers
        {
            return Err(ModelError::Input(format!(
                "layer {i} does not exist: the model has {} layers (0 is the input to the first)",
                cfg.num_hidden_layers
            )));
        }
        if want_logits && !self.net.has_ctc_head() {
            return Err(ModelError::Input(format!(
                "model `{}` has no CTC head (lm_head), so it cannot transcribe",
                self.name
            )));
        }
        if samples.len() < cfg.min_samples() {
            return Err(ModelError::Input(format!(
                "audio too short: Wav2Vec2 needs at least {} samples ({:.3} s), got {}",
                cfg.min_samples(),
                cfg.min_samples() as f64 / self.sample_rate() as f64,
                samples.len()
            )));
        }
        let input = self.normalize(samples);
        let hop = cfg.samples_per_frame();
        let total_frames = cfg.frames_for(input.len());
        let plan = plan_windows(input.len(), total_frames, hop, windowing);
        let mut hidden_parts = Vec::with_capacity(plan.len());
        let mut logit_parts = Vec::with_capacity(plan.len());
        for window in &plan {
            if cancelled() {
                return Err(ModelError::Cancelled);
            }
            let chunk = &input[window.start..window.end];
            let x = Tensor::from_slice(chunk, (1, chunk.len()), &self.device)?;
            let out = self
                .net
                .forward(&x, None, matches!(layer, Layer::Index(_)))?;
            let hidden = match layer {
                Layer::Last => out.last_hidden_state,
                Layer::Index(i) => out.hidden_states[i].clone(),
            };
            let first = window.keep_from - window.start / hop;
            let count = window.keep_to - window.keep_from;
            hidden_parts.push(
                hidden
                    .squeeze(0)?
                    .narrow(0, first, count)?
                    .to_device(&Device::Cpu)?,
            );
            if want_logits && let Some(logits) = out.logits {
                logit_parts.push(
                    logits
                        .squeeze(0)?
                        .narrow(0, first, count)?
                        .to_device(&Device::Cpu)?,
                );
            }
        }
        let hidden = Tensor::cat(&hidden_parts, 0)?;
        let logits = if want_logits {
            Some(Tensor::cat(&logit_parts, 0)?)
        } else {
            None
        };
        Ok(Frames {
            hidden,
            logits,
            frame_seconds: hop as f64 / self.sample_rate() as f64,
        })
    }

    /// Greedy CTC transcription of a clip's logits.
    pub fn decode(&self, logits: &Tensor) -> Result<Transcript, ModelError> {
        let Some(vocab) = &self.vocab else {
            return Err(ModelError::Input(format!(
                "model `{}` has no vocab.json, so it cannot transcribe",
                self.name
            )));
        };
        let ids: Vec<u32> = logits.argmax(candle_core::D::Minus1)?.to_vec1()?;
        Ok(vocab.decode(&ids))
    }
}

/// One window of a long input: the samples it reads and the global frames it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WindowPlan {
    start: usize,
    end: usize,
    keep_from: usize,
    keep_to: usize,
}

/// Cuts `samples` into windows that start on frame boundaries, so a window's frame j is
/// the whole clip's frame `start / hop + j` and the kept ranges tile every frame once.
fn plan_windows(samples: usize, total_frames: usize, hop: usize, w: Windowing) -> Vec<WindowPlan> {
    let window = (w.window / hop).max(1) * hop;
    let context = (w.context / hop) * hop;
    if samples <= window || window <= 2 * context {
        return vec![WindowPlan {
            start: 0,
            end: samples,
            keep_from: 0,
            keep_to: total_frames,
        }];
    }
    let step = window - 2 * context;
    let mut plans = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + window).min(samples);
        let last = end == samples;
        let keep_from = if start == 0 {
            0
        } else {
            (start + context) / hop
        };
        let keep_to = if last {
            total_frames
        } else {
            (start + window - context) / hop
        };
        plans.push(WindowPlan {
            start,
            end,
            keep_from,
            keep_to,
        });
        if last {
            break;
        }
        start += step;
        // The last window is moved back to end at the clip's end, so it is never so short
        // that its frames see little context; its kept range starts where the last ended.
        if start + window > samples {
            let aligned = samples.saturating_sub(window).div_ceil(hop) * hop;
            let prev_keep_to = plans.last().map_or(0, |p| p.keep_to);
            plans.push(WindowPlan {
                start: aligned,
                end: samples,
                keep_from: prev_keep_to,
                keep_to: total_frames,
            });
            break;
        }
    }
    plans
}

/// Zero mean, unit variance, computed in f64 as numpy's float32 mean/var are exact enough
/// to match at 1e-6.
pub fn normalize(samples: &[f32]) -> Vec<f32> {
    if samples.is_empty() {
        return Vec::new();
    }
    let n = samples.len() as f64;
    let mean = samples.iter().map(|&s| s as f64).sum::<f64>() / n;
    let var = samples
        .iter()
        .map(|&s| (s as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    let scale = 1.0 / (var + 1e-7).sqrt();
    samples
        .iter()
        .map(|&s| ((s as f64 - mean) * scale) as f32)
        .collect()
}

/// The weight files of a checkpoint: safetensors (whole or sharded) before PyTorch's.
fn weight_files(
    repo: &ModelRepo,
    progress: &mut dyn FnMut(DownloadProgress),
) -> Result<Vec<PathBuf>, ModelError> {
    if let Some(path) = repo.optional_file("model.safetensors", progress)? {
        return Ok(vec![path]);
    }
    if let Some(index) = repo.optional_file("model.safetensors.index.json", progress)? {
        #[derive(serde::Deserialize)]
        struct Index {
            weight_map: std::collections::BTreeMap<String, String>,
        }
        let index: Index = read_json(&index)?;
        let mut shards: Vec<&String> = index.weight_map.values().collect();
        shards.sort();
        shards.dedup();
        return shards.into_iter().map(|s| repo.file(s, progress)).collect();
    }
    if let Some(path) = repo.optional_file("pytorch_model.bin", progress)? {
        return Ok(vec![path]);
    }
    Err(ModelError::MissingFile {
        model: repo.name().to_string(),
        file: "model.safetensors (or pytorch_model.bin)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_tile_every_frame_once() {
        let cfg: Config = serde_json::from_str("{}").unwrap();
        let hop = cfg.samples_per_frame();
        for samples in [400, 16_000, 480_000, 480_001, 700_000, 1_000_000, 3_333_333] {
            let total = cfg.frames_for(samples);
            let plans = plan_windows(samples, total, hop, Windowing::DEFAULT);
            let mut next = 0;
            for p in &plans {
                assert_eq!(p.start % hop, 0);
                assert_eq!(p.keep_from, next, "{samples}: {plans:?}");
                assert!(p.keep_to > p.keep_from || total == 0);
                // Every kept frame lies inside its window's own frames.
                assert!(p.keep_from >= p.start / hop);
                assert!(p.keep_to <= p.start / hop + cfg.frames_for(p.end - p.start));
                assert!(p.end - p.start <= Windowing::DEFAULT.window);
                next = p.keep_to;
            }
            assert_eq!(next, total, "{samples}");
        }
    }

    #[test]
    fn normalisation_matches_the_definition() {
        let x: Vec<f32> = (0..1000)
            .map(|i| (i as f32 * 0.37).sin() * 0.3 + 0.1)
            .collect();
        let y = normalize(&x);
        let mean = y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64;
        let var = y.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / y.len() as f64;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5);
        assert!(normalize(&[]).is_empty());
        // Silence stays finite.
        assert!(normalize(&[0.0; 10]).iter().all(|v| v.is_finite()));
    }
}
