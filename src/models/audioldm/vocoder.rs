//! The vocoder from log-mel spectrograms to 16 kHz audio: transformers' `SpeechT5HifiGan`.

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{self as nn, VarBuilder};
use serde::Deserialize;

/// `vocoder/config.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct HifiGanConfig {
    pub model_in_dim: usize,
    pub sampling_rate: usize,
    pub upsample_initial_channel: usize,
    pub upsample_rates: Vec<usize>,
    pub upsample_kernel_sizes: Vec<usize>,
    pub resblock_kernel_sizes: Vec<usize>,
    pub resblock_dilation_sizes: Vec<Vec<usize>>,
    #[serde(default = "slope")]
    pub leaky_relu_slope: f64,
    #[serde(default = "yes")]
    pub normalize_before: bool,
}

fn slope() -> f64 {
    0.1
}
fn yes() -> bool {
    true
}

impl HifiGanConfig {
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.upsample_rates.is_empty()
            || self.upsample_rates.len() != self.upsample_kernel_sizes.len()
        {
            return Err(
                "upsample_rates and upsample_kernel_sizes must have the same, non-zero length"
                    .into(),
            );
        }
        if self.resblock_kernel_sizes.is_empty()
            || self.resblock_kernel_sizes.len() != self.resblock_dilation_sizes.len()
        {
            return Err(
                "resblock_kernel_sizes and resblock_dilation_sizes must have the same, non-zero length"
                    .into(),
            );
        }
        if self.upsample_initial_channel >> self.upsample_rates.len() == 0 {
            return Err(
                "upsample_initial_channel is too small for the number of upsamplers".into(),
            );
        }
        if let Some((r, k)) = self
            .upsample_rates
            .iter()
            .zip(&self.upsample_kernel_sizes)
            .find(|(r, k)| k < r)
        {
            return Err(format!("upsample kernel {k} is shorter than its rate {r}"));
        }
        Ok(())
    }

    /// Audio samples per spectrogram frame.
    pub fn hop_length(&self) -> usize {
        self.upsample_rates.iter().product()
    }
}

#[derive(Debug)]
struct ResBlock {
    convs1: Vec<nn::Conv1d>,
    convs2: Vec<nn::Conv1d>,
    slope: f64,
}

impl ResBlock {
    fn new(
        vb: VarBuilder,
        channels: usize,
        kernel: usize,
        dilations: &[usize],
        slope: f64,
    ) -> Result<Self> {
        let conv = |vb: VarBuilder, dilation: usize| {
            let cfg = nn::Conv1dConfig {
                padding: (kernel * dilation - dilation) / 2,
                dilation,
                ..Default::default()
            };
            nn::conv1d(channels, channels, kernel, cfg, vb)
        };
        let convs1 = dilations
            .iter()
            .enumerate()
            .map(|(i, &d)| conv(vb.pp(format!("convs1.{i}")), d))
            .collect::<Result<Vec<_>>>()?;
        let convs2 = (0..dilations.len())
            .map(|i| conv(vb.pp(format!("convs2.{i}")), 1))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            convs1,
            convs2,
            slope,
        })
    }
}

impl Module for ResBlock {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut xs = xs.clone();
        for (c1, c2) in self.convs1.iter().zip(&self.convs2) {
            let h = c1.forward(&nn::ops::leaky_relu(&xs, self.slope)?)?;
            let h = c2.forward(&nn::ops::leaky_relu(&h, self.slope)?)?;
            xs = (h + xs)?;
        }
        Ok(xs)
    }
}

#[derive(Debug)]
pub struct HifiGan {
    conv_pre: nn::Conv1d,
    upsamplers: Vec<nn::ConvTranspose1d>,
    resblocks: Vec<ResBlock>,
    conv_post: nn::Conv1d,
    mean: Option<Tensor>,
    scale: Option<Tensor>,
    pub config: HifiGanConfig,
}

impl HifiGan {
    pub fn new(vb: VarBuilder, config: HifiGanConfig) -> Result<Self> {
        let c7 = nn::Conv1dConfig {
            padding: 3,
            ..Default::default()
        };
        let init = config.upsample_initial_channel;
        let conv_pre = nn::conv1d(config.model_in_dim, init, 7, c7, vb.pp("conv_pre"))?;
        let mut upsamplers = Vec::new();
        let mut resblocks = Vec::new();
        for (i, (&rate, &kernel)) in config
            .upsample_rates
            .iter()
            .zip(&config.upsample_kernel_sizes)
            .enumerate()
        {
            let cfg = nn::ConvTranspose1dConfig {
                padding: (kernel - rate) / 2,
                stride: rate,
                ..Default::default()
            };
            upsamplers.push(nn::conv_transpose1d(
                init >> i,
                init >> (i + 1),
                kernel,
                cfg,
                vb.pp(format!("upsampler.{i}")),
            )?);
            for (k, dil) in config
                .resblock_kernel_sizes
                .iter()
                .zip(&config.resblock_dilation_sizes)
            {
                let index = resblocks.len();
                resblocks.push(ResBlock::new(
                    vb.pp(format!("resblocks.{index}")),
                    init >> (i + 1),
                    *k,
                    dil,
                    config.leaky_relu_slope,
                )?);
            }
        }
        let last = init >> config.upsample_rates.len();
        let conv_post = nn::conv1d(last, 1, 7, c7, vb.pp("conv_post"))?;
        let (mean, scale) = if config.normalize_before {
            (
                Some(vb.get(config.model_in_dim, "mean")?),
                Some(vb.get(config.model_in_dim, "scale")?),
            )
        } else {
            (None, None)
        };
        Ok(Self {
            conv_pre,
            upsamplers,
            resblocks,
            conv_post,
            mean,
            scale,
            config,
        })
    }

    /// Spectrograms (batch, frames, mels) to waveforms (batch, frames × hop length).
    pub fn forward(&self, spectrogram: &Tensor) -> Result<Tensor> {
        let mut xs = spectrogram.clone();
        if let (Some(mean), Some(scale)) = (&self.mean, &self.scale) {
            xs = xs.broadcast_sub(mean)?.broadcast_div(scale)?;
        }
        let mut xs = self.conv_pre.forward(&xs.transpose(1, 2)?.contiguous()?)?;
        let kernels = self.config.resblock_kernel_sizes.len();
        for (i, up) in self.upsamplers.iter().enumerate() {
            xs = up.forward(&nn::ops::leaky_relu(&xs, self.config.leaky_relu_slope)?)?;
            let mut sum = self.resblocks[i * kernels].forward(&xs)?;
            for block in &self.resblocks[i * kernels + 1..(i + 1) * kernels] {
                sum = (sum + block.forward(&xs)?)?;
            }
            xs = (sum / kernels as f64)?;
        }
        // The last activation uses PyTorch's default slope, not the configured one.
        let xs = self.conv_post.forward(&nn::ops::leaky_relu(&xs, 0.01)?)?;
        xs.tanh()?.squeeze(D::Minus2)
    }
}
