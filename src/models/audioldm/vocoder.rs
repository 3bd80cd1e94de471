//! The vocoder from log-mel spectrograms to 16 kHz audio: transformers' `SpeechT5HifiGan`.

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{self as nn, VarBuilder};
use serde::Deserialize;

use crate::models::kernels::{Fused, Taps, conv1d_channels_last, leaky_relu};

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

/// A stride-1 1-D convolution on channels-last activations, (batch, length, channels) in
/// and out (see [`conv1d_channels_last`]), so the vocoder's convolutions follow one another
/// with no transposes between them.
#[derive(Debug)]
struct Conv1dCl {
    /// (kernel · in channels, out channels), rows in (tap, channel) order.
    weight: Tensor,
    bias: Tensor,
    taps: Taps,
}

impl Conv1dCl {
    /// Reads a PyTorch `Conv1d`'s `weight` (out, in, kernel) and `bias`.
    fn new(
        vb: VarBuilder,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        dilation: usize,
        padding: usize,
    ) -> Result<Self> {
        let weight = vb.get((c_out, c_in, kernel), "weight")?;
        let weight = weight
            .permute((2, 1, 0))?
            .contiguous()?
            .reshape((kernel * c_in, c_out))?;
        Ok(Self {
            weight,
            bias: vb.get(c_out, "bias")?,
            taps: Taps {
                kernel,
                dilation,
                padding,
            },
        })
    }

    /// The convolution of `leaky_relu(xs)` (with `slope`, when given), plus `residual`.
    fn forward_fused(
        &self,
        xs: &Tensor,
        slope: Option<f64>,
        residual: Option<&Tensor>,
    ) -> Result<Tensor> {
        let fused = Fused {
            leaky_slope: slope,
            residual,
        };
        conv1d_channels_last(xs, &self.weight, &self.bias, self.taps, fused)
    }
}

impl Module for Conv1dCl {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.forward_fused(xs, None, None)
    }
}

#[derive(Debug)]
struct ResBlock {
    convs1: Vec<Conv1dCl>,
    convs2: Vec<Conv1dCl>,
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
            let padding = (kernel * dilation - dilation) / 2;
            Conv1dCl::new(vb, channels, channels, kernel, dilation, padding)
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
    /// Channels-last in and out.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let slope = Some(self.slope);
        let mut xs = xs.clone();
        for (c1, c2) in self.convs1.iter().zip(&self.convs2) {
            let h = c1.forward_fused(&xs, slope, None)?;
            xs = c2.forward_fused(&h, slope, Some(&xs))?;
        }
        Ok(xs)
    }
}

/// A transposed convolution computed without padding, then cropped by the padding at both
/// ends: the same output, through candle's matrix-product path, which only serves unpadded
/// transposed convolutions (the padded case falls back to a direct loop many times slower).
#[derive(Debug)]
struct Upsampler {
    conv: nn::ConvTranspose1d,
    padding: usize,
}

impl Upsampler {
    /// Channels-first (batch, channels, length) in and out.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let ys = self.conv.forward(xs)?;
        let len = ys.dim(2)?;
        ys.narrow(2, self.padding, len - 2 * self.padding)
    }
}

#[derive(Debug)]
pub struct HifiGan {
    conv_pre: Conv1dCl,
    upsamplers: Vec<Upsampler>,
    resblocks: Vec<ResBlock>,
    conv_post: Conv1dCl,
    mean: Option<Tensor>,
    scale: Option<Tensor>,
    pub config: HifiGanConfig,
}

impl HifiGan {
    pub fn new(vb: VarBuilder, config: HifiGanConfig) -> Result<Self> {
        let init = config.upsample_initial_channel;
        let conv_pre = Conv1dCl::new(vb.pp("conv_pre"), config.model_in_dim, init, 7, 1, 3)?;
        let mut upsamplers = Vec::new();
        let mut resblocks = Vec::new();
        for (i, (&rate, &kernel)) in config
            .upsample_rates
            .iter()
            .zip(&config.upsample_kernel_sizes)
            .enumerate()
        {
            let cfg = nn::ConvTranspose1dConfig {
                stride: rate,
                ..Default::default()
            };
            upsamplers.push(Upsampler {
                conv: nn::conv_transpose1d(
                    init >> i,
                    init >> (i + 1),
                    kernel,
                    cfg,
                    vb.pp(format!("upsampler.{i}")),
                )?,
                padding: (kernel - rate) / 2,
            });
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
        let conv_post = Conv1dCl::new(vb.pp("conv_post"), last, 1, 7, 1, 3)?;
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
        // Channels-last throughout, except into and out of each upsampler.
        let mut xs = self.conv_pre.forward(&xs)?;
        let kernels = self.config.resblock_kernel_sizes.len();
        for (i, up) in self.upsamplers.iter().enumerate() {
            let ys = leaky_relu(&xs, self.config.leaky_relu_slope)?.transpose(1, 2)?;
            xs = up.forward(&ys)?.transpose(1, 2)?.contiguous()?;
            let mut sum = self.resblocks[i * kernels].forward(&xs)?;
            for block in &self.resblocks[i * kernels + 1..(i + 1) * kernels] {
                sum = (sum + block.forward(&xs)?)?;
            }
            xs = (sum / kernels as f64)?;
        }
        // The last activation uses PyTorch's default slope, not the configured one.
        let xs = self.conv_post.forward_fused(&xs, Some(0.01), None)?;
        xs.tanh()?.squeeze(D::Minus1)
    }
}
