//! The AudioLDM pipeline: loading the diffusers layout, text-to-audio and audio-to-audio
//! generation, as diffusers' `AudioLDMPipeline` runs it.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::Serialize;

use super::noise::gaussian;
use super::scheduler::{Scheduler, SchedulerConfig, parse_config};
use super::text::{ClapTextConfig, ClapTextEncoder, PromptTokenizer};
use super::unet::{UNet, UNetConfig};
use super::vae::{AutoencoderKl, VaeConfig};
use super::vocoder::{HifiGan, HifiGanConfig};
use crate::models::error::read_json;
use crate::models::{DownloadProgress, ModelError, ModelRepo, weights};

/// Where each component's weights may be, in the order tried.
const TEXT_WEIGHTS: [&str; 2] = [
    "text_encoder/model.safetensors",
    "text_encoder/pytorch_model.bin",
];
const UNET_WEIGHTS: [&str; 2] = [
    "unet/diffusion_pytorch_model.safetensors",
    "unet/diffusion_pytorch_model.bin",
];
const VAE_WEIGHTS: [&str; 2] = [
    "vae/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.bin",
];
const VOCODER_WEIGHTS: [&str; 2] = ["vocoder/model.safetensors", "vocoder/pytorch_model.bin"];

/// A loaded AudioLDM checkpoint.
pub struct AudioLdm {
    pub tokenizer: PromptTokenizer,
    pub text_encoder: ClapTextEncoder,
    pub unet: UNet,
    pub vae: AutoencoderKl,
    pub vocoder: HifiGan,
    pub scheduler_config: SchedulerConfig,
    device: Device,
}

/// What to generate. Field names follow the operation's parameters.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    pub prompt: String,
    pub negative_prompt: Option<String>,
    /// Classifier-free guidance; off at 1 or below.
    pub guidance_scale: f64,
    pub steps: usize,
    /// Seeds the initial noise when `init_latents` is not given.
    pub seed: u64,
    /// Seconds; the model's native length when `None`. Ignored for audio-to-audio, which
    /// keeps the source's length.
    pub duration: Option<f64>,
    pub num_waveforms: usize,
    /// Initial latents (text-to-audio) or the noise added to the source (audio-to-audio),
    /// shaped (num_waveforms, channels, frames / scale, mels / scale).
    pub init_latents: Option<Tensor>,
    pub source: Option<SourceAudio>,
    /// Overrides the checkpoint's scheduler (`scheduler_config.json` content).
    pub scheduler: Option<SchedulerConfig>,
}

impl GenerateRequest {
    /// diffusers' defaults for AudioLDM: 10 steps, guidance 2.5, one waveform.
    pub fn new(prompt: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            negative_prompt: None,
            guidance_scale: 2.5,
            steps: 10,
            seed: 0,
            duration: None,
            num_waveforms: 1,
            init_latents: None,
            source: None,
            scheduler: None,
        }
    }
}

/// The source of audio-to-audio: its log-mel spectrogram (frames, mels), in the recipe of
/// `ops::generation::log_mel`, and how far to move from it.
#[derive(Debug, Clone)]
pub struct SourceAudio {
    pub log_mel: Tensor,
    /// 0 keeps the source, 1 replaces it: the fraction of the steps that are run.
    pub strength: f64,
}

/// Generated audio and what produced it.
#[derive(Debug, Clone)]
pub struct Generated {
    /// One waveform per requested waveform, at `sample_rate`.
    pub waveforms: Vec<Vec<f32>>,
    pub sample_rate: u32,
    /// The denoised latents the waveforms were decoded from.
    pub latents: Tensor,
    pub settings: Settings,
}

/// The settings a run actually used, to record beside its audio.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub prompt: String,
    pub negative_prompt: Option<String>,
    pub guidance_scale: f64,
    pub steps: usize,
    pub steps_run: usize,
    pub seed: Option<u64>,
    pub duration: f64,
    pub num_waveforms: usize,
    pub strength: Option<f64>,
    pub scheduler: String,
    pub timesteps: Vec<usize>,
    pub latent_shape: Vec<usize>,
}

/// Called between denoising steps.
pub struct Hooks<'a> {
    /// (steps done, steps in all).
    pub progress: &'a dyn Fn(usize, usize),
    /// True stops the run before its next step.
    pub cancelled: &'a dyn Fn() -> bool,
}

impl Hooks<'_> {
    pub fn none() -> Hooks<'static> {
        Hooks {
            progress: &|_, _| {},
            cancelled: &|| false,
        }
    }
}

fn first_file(
    repo: &ModelRepo,
    candidates: &[&str],
    progress: &mut dyn FnMut(DownloadProgress),
) -> Result<PathBuf, ModelError> {
    for file in candidates {
        if let Some(path) = repo.optional_file(file, progress)? {
            return Ok(path);
        }
    }
    Err(ModelError::MissingFile {
        model: repo.name().to_string(),
        file: candidates.join(" or "),
    })
}

/// Reads a component configuration and checks it is one this port implements.
fn config<T: serde::de::DeserializeOwned>(
    path: &Path,
    check: impl Fn(&T) -> Result<(), String>,
) -> Result<T, ModelError> {
    let cfg: T = read_json(path)?;
    check(&cfg).map_err(|e| ModelError::config(path, e))?;
    Ok(cfg)
}

/// Builds a component, naming the weight file in any error (a missing tensor or a wrong
/// shape is reported with the tensor's name by the weight loader).
fn build<T>(
    path: &Path,
    device: &Device,
    make: impl FnOnce(VarBuilder) -> candle_core::Result<T>,
) -> Result<T, ModelError> {
    let vb = weights::load(&[path.to_path_buf()], DType::F32, device)?;
    make(vb).map_err(|e| ModelError::config(path, e))
}

impl AudioLdm {
    /// Loads every component of a checkpoint in diffusers' layout.
    pub fn load(
        repo: &ModelRepo,
        device: &Device,
        progress: &mut dyn FnMut(DownloadProgress),
    ) -> Result<Self, ModelError> {
        let text_cfg: ClapTextConfig = config(
            &repo.file("text_encoder/config.json", progress)?,
            ClapTextConfig::check,
        )?;
        let tok_json = repo.optional_file("tokenizer/tokenizer.json", progress)?;
        let vocab_merges = if tok_json.is_none() {
            Some((
                repo.file("tokenizer/vocab.json", progress)?,
                repo.file("tokenizer/merges.txt", progress)?,
            ))
        } else {
            None
        };
        let tok_cfg = repo.optional_file("tokenizer/tokenizer_config.json", progress)?;
        let tokenizer = PromptTokenizer::load(
            tok_json.as_deref(),
            vocab_merges
                .as_ref()
                .map(|(v, m)| (v.as_path(), m.as_path())),
            tok_cfg.as_deref(),
            text_cfg.max_tokens(),
        )?;
        let unet_path = repo.file("unet/config.json", progress)?;
        let unet_cfg: UNetConfig = config(&unet_path, UNetConfig::check)?;
        let vae_cfg: VaeConfig =
            config(&repo.file("vae/config.json", progress)?, VaeConfig::check)?;
        let voc_cfg: HifiGanConfig = config(
            &repo.file("vocoder/config.json", progress)?,
            HifiGanConfig::check,
        )?;
        let sched_path = repo.file("scheduler/scheduler_config.json", progress)?;
        let scheduler_config = read_scheduler_config(&sched_path)?;
        check_compatible(&text_cfg, &unet_cfg, &vae_cfg, &voc_cfg)
            .map_err(|e| ModelError::config(&unet_path, e))?;

        let text_w = first_file(repo, &TEXT_WEIGHTS, progress)?;
        let unet_w = first_file(repo, &UNET_WEIGHTS, progress)?;
        let vae_w = first_file(repo, &VAE_WEIGHTS, progress)?;
        let voc_w = first_file(repo, &VOCODER_WEIGHTS, progress)?;
        Ok(Self {
            tokenizer,
            text_encoder: build(&text_w, device, |vb| ClapTextEncoder::new(vb, text_cfg))?,
            unet: build(&unet_w, device, |vb| UNet::new(vb, unet_cfg))?,
            vae: build(&vae_w, device, |vb| AutoencoderKl::new(vb, vae_cfg))?,
            vocoder: build(&voc_w, device, |vb| HifiGan::new(vb, voc_cfg))?,
            scheduler_config,
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The vocoder's output rate (16 kHz for published checkpoints).
    pub fn sample_rate(&self) -> u32 {
        self.vocoder.config.sampling_rate as u32
    }

    /// Audio samples per spectrogram frame.
    pub fn hop_length(&self) -> usize {
        self.vocoder.config.hop_length()
    }

    /// Mel bands of the spectrograms the VAE and vocoder work on.
    pub fn mel_bins(&self) -> usize {
        self.vocoder.config.model_in_dim
    }

    /// The normalised CLAP embedding of a prompt, shape (1, projection dim).
    pub fn encode_prompt(&self, text: &str) -> Result<Tensor, ModelError> {
        let ids = self.tokenizer.encode(text)?;
        Ok(self.text_encoder.embed(&ids)?)
    }

    /// Spectrogram frames for `duration` seconds, rounded up to what the VAE can halve,
    /// and the number of samples to keep, as diffusers computes them.
    pub fn frames_for(&self, duration: f64) -> (usize, usize) {
        let sr = self.vocoder.config.sampling_rate as f64;
        let upsample = self.hop_length() as f64 / sr;
        let scale = self.vae.config.scale_factor();
        let mut frames = (duration / upsample) as usize;
        if !frames.is_multiple_of(scale) {
            frames = frames.div_ceil(scale) * scale;
        }
        (frames, (duration * sr) as usize)
    }

    /// The model's native length in seconds (`sample_size` latent frames).
    pub fn native_duration(&self) -> f64 {
        let upsample = self.hop_length() as f64 / self.vocoder.config.sampling_rate as f64;
        (self.unet.config.sample_size * self.vae.config.scale_factor()) as f64 * upsample
    }

    /// Shape of the latents for `frames` spectrogram frames and `batch` waveforms.
    pub fn latent_shape(&self, batch: usize, frames: usize) -> [usize; 4] {
        let scale = self.vae.config.scale_factor();
        [
            batch,
            self.unet.config.in_channels,
            frames / scale,
            self.mel_bins() / scale,
        ]
    }

    /// Latents to waveforms: VAE decode, vocoder, trimmed to `samples`.
    pub fn decode(&self, latents: &Tensor, samples: usize) -> Result<Vec<Vec<f32>>, ModelError> {
        let scaled = latents.affine(1.0 / self.vae.config.scaling_factor, 0.0)?;
        let mel = self.vae.decode(&scaled)?.squeeze(1)?;
        let audio = self.vocoder.forward(&mel)?.to_dtype(DType::F32)?;
        let mut out = audio.to_vec2::<f32>()?;
        for wave in &mut out {
            wave.truncate(samples);
        }
        Ok(out)
    }

    /// Runs the pipeline.
    pub fn generate(&self, req: &GenerateRequest, hooks: &Hooks) -> Result<Generated, ModelError> {
        if req.num_waveforms == 0 {
            return Err(ModelError::Input("numWaveforms must be at least 1".into()));
        }
        if !req.guidance_scale.is_finite() {
            return Err(ModelError::Input(
                "guidanceScale must be a finite number".into(),
            ));
        }
        let sched_cfg = req.scheduler.as_ref().unwrap_or(&self.scheduler_config);
        let mut scheduler =
            Scheduler::new(sched_cfg).map_err(|e| ModelError::Input(format!("scheduler: {e}")))?;
        scheduler
            .set_timesteps(req.steps)
            .map_err(ModelError::Input)?;

        let n = req.num_waveforms;
        let cfg = req.guidance_scale > 1.0;
        let text = self.encode_prompt(&req.prompt)?.repeat((n, 1))?;
        let labels = if cfg {
            let negative = req.negative_prompt.as_deref().unwrap_or("");
            let uncond = self.encode_prompt(negative)?.repeat((n, 1))?;
            Tensor::cat(&[&uncond, &text], 0)?
        } else {
            text
        };

        let (frames, samples, duration) = match &req.source {
            Some(src) => {
                let frames = src.log_mel.dim(0)?;
                let hop = self.hop_length();
                let seconds = (frames * hop) as f64 / self.vocoder.config.sampling_rate as f64;
                (frames, frames * hop, seconds)
            }
            None => {
                let duration = req.duration.unwrap_or_else(|| self.native_duration());
                if !(duration.is_finite() && duration > 0.0) {
                    return Err(ModelError::Input(format!(
                        "duration must be a positive number of seconds, not {duration}"
                    )));
                }
                let (frames, samples) = self.frames_for(duration);
                (frames, samples, duration)
            }
        };
        if frames == 0 || !frames.is_multiple_of(self.vae.config.scale_factor()) {
            return Err(ModelError::Input(format!(
                "{frames} spectrogram frames: the length must be a positive multiple of {} frames",
                self.vae.config.scale_factor()
            )));
        }
        let shape = self.latent_shape(n, frames);
        let noise = match &req.init_latents {
            Some(t) => {
                if t.dims() != shape.as_slice() {
                    return Err(ModelError::Input(format!(
                        "initLatents has shape {:?}; this model and length need {:?}",
                        t.dims(),
                        shape
                    )));
                }
                t.to_dtype(DType::F32)?.to_device(&self.device)?
            }
            None => {
                let count = shape.iter().product();
                Tensor::from_vec(gaussian(req.seed, count), shape.to_vec(), &self.device)?
            }
        };

        let all: Vec<usize> = scheduler.timesteps().to_vec();
        let (mut latents, timesteps, strength) = match &req.source {
            None => (noise.affine(scheduler.init_noise_sigma(), 0.0)?, all, None),
            Some(src) => {
                if !(0.0..=1.0).contains(&src.strength) {
                    return Err(ModelError::Input(format!(
                        "strength must be between 0 and 1, not {}",
                        src.strength
                    )));
                }
                // At least one step runs, so a tiny strength still passes through the model.
                let run = ((req.steps as f64 * src.strength) as usize).clamp(1, req.steps);
                let start = req.steps - run;
                scheduler.set_begin_index(start);
                let mel = src.log_mel.to_device(&self.device)?;
                let mel = mel.unsqueeze(0)?.unsqueeze(0)?.repeat((n, 1, 1, 1))?;
                let x0 = self
                    .vae
                    .encode(&mel)?
                    .mean
                    .affine(self.vae.config.scaling_factor, 0.0)?;
                let t0 = all[start];
                let noised = scheduler.add_noise(&x0, &noise, t0)?;
                (noised, all[start..].to_vec(), Some(src.strength))
            }
        };

        let total = timesteps.len();
        for (i, &t) in timesteps.iter().enumerate() {
            if (hooks.cancelled)() {
                return Err(ModelError::Cancelled);
            }
            let input = if cfg {
                Tensor::cat(&[&latents, &latents], 0)?
            } else {
                latents.clone()
            };
            let pred = self.unet.forward(&input, t as f64, &labels)?;
            let pred = if cfg {
                let uncond = pred.narrow(0, 0, n)?;
                let cond = pred.narrow(0, n, n)?;
                (&uncond + ((cond - &uncond)? * req.guidance_scale)?)?
            } else {
                pred
            };
            latents = scheduler.step(&pred, t, &latents)?;
            (hooks.progress)(i + 1, total);
        }
        if (hooks.cancelled)() {
            return Err(ModelError::Cancelled);
        }
        let waveforms = self.decode(&latents, samples)?;
        Ok(Generated {
            waveforms,
            sample_rate: self.sample_rate(),
            latents,
            settings: Settings {
                prompt: req.prompt.clone(),
                negative_prompt: if cfg {
                    req.negative_prompt.clone()
                } else {
                    None
                },
                guidance_scale: req.guidance_scale,
                steps: req.steps,
                steps_run: total,
                seed: req.init_latents.is_none().then_some(req.seed),
                duration,
                num_waveforms: n,
                strength,
                scheduler: sched_cfg.class_name.clone(),
                timesteps,
                latent_shape: shape.to_vec(),
            },
        })
    }
}

/// Reads `scheduler_config.json`, naming the file in any error.
pub fn read_scheduler_config(path: &Path) -> Result<SchedulerConfig, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let cfg = parse_config(&text).map_err(|e| ModelError::config(path, e))?;
    Scheduler::new(&cfg).map_err(|e| ModelError::config(path, e))?;
    Ok(cfg)
}

/// The components must agree on the sizes they pass each other.
fn check_compatible(
    text: &ClapTextConfig,
    unet: &UNetConfig,
    vae: &VaeConfig,
    vocoder: &HifiGanConfig,
) -> Result<(), String> {
    if unet.projection_class_embeddings_input_dim != Some(text.projection_dim) {
        return Err(format!(
            "projection_class_embeddings_input_dim {:?} differs from the text encoder's \
             projection_dim {}",
            unet.projection_class_embeddings_input_dim, text.projection_dim
        ));
    }
    if unet.in_channels != vae.latent_channels || unet.out_channels != vae.latent_channels {
        return Err(format!(
            "UNet channels {}→{} differ from the VAE's {} latent channels",
            unet.in_channels, unet.out_channels, vae.latent_channels
        ));
    }
    if !vocoder.model_in_dim.is_multiple_of(vae.scale_factor()) {
        return Err(format!(
            "the vocoder's {} mel bins do not divide by the VAE's scale factor {}",
            vocoder.model_in_dim,
            vae.scale_factor()
        ));
    }
    if vae.in_channels != 1 || vae.out_channels != 1 {
        return Err("the VAE must map one-channel spectrograms".into());
    }
    Ok(())
}
