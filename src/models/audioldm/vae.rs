//! The variational autoencoder between log-mel spectrograms and latents: diffusers'
//! `AutoencoderKL`, with the encoder's mean and log-variance both available (audio-to-audio
//! starts from the mean; candle's own `AutoEncoderKL` only offers a random sample) and a
//! mid-block attention that is correct for batches.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

use super::blocks::{Downsample, ResnetBlock, ResnetConfig, Upsample, conv1, conv3};
use crate::models::kernels::{self, Conv2d, GroupNorm, Linear};

/// `vae/config.json`, the fields this architecture reads.
#[derive(Debug, Clone, Deserialize)]
pub struct VaeConfig {
    #[serde(default = "one")]
    pub in_channels: usize,
    #[serde(default = "one")]
    pub out_channels: usize,
    pub block_out_channels: Vec<usize>,
    #[serde(default = "one")]
    pub layers_per_block: usize,
    pub latent_channels: usize,
    #[serde(default = "groups")]
    pub norm_num_groups: usize,
    #[serde(default = "scaling")]
    pub scaling_factor: f64,
    #[serde(default = "yes")]
    pub use_quant_conv: bool,
    #[serde(default = "yes")]
    pub use_post_quant_conv: bool,
    #[serde(default = "yes")]
    pub mid_block_add_attention: bool,
    #[serde(default)]
    pub down_block_types: Vec<String>,
    #[serde(default)]
    pub up_block_types: Vec<String>,
}

fn one() -> usize {
    1
}
fn groups() -> usize {
    32
}
fn scaling() -> f64 {
    0.18215
}
fn yes() -> bool {
    true
}

impl VaeConfig {
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.block_out_channels.is_empty() {
            return Err("block_out_channels is empty".into());
        }
        if let Some(t) = self
            .down_block_types
            .iter()
            .find(|t| *t != "DownEncoderBlock2D")
        {
            return Err(format!("unsupported down block type `{t}`"));
        }
        if let Some(t) = self
            .up_block_types
            .iter()
            .find(|t| *t != "UpDecoderBlock2D")
        {
            return Err(format!("unsupported up block type `{t}`"));
        }
        if !self.mid_block_add_attention {
            return Err("mid_block_add_attention = false is not supported".into());
        }
        if let Some(c) = self
            .block_out_channels
            .iter()
            .find(|&&c| c % self.norm_num_groups != 0)
        {
            return Err(format!(
                "{c} channels are not a multiple of norm_num_groups"
            ));
        }
        Ok(())
    }

    /// How much smaller the latents are than the spectrogram along each axis.
    pub fn scale_factor(&self) -> usize {
        1 << (self.block_out_channels.len() - 1)
    }
}

/// Single-head self-attention over all positions, with a residual: the VAE's mid-block
/// attention. (candle's `AttentionBlock` returns wrong values for every batch item after
/// the first.)
#[derive(Debug)]
struct SpatialSelfAttention {
    group_norm: GroupNorm,
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
}

impl SpatialSelfAttention {
    fn new(vb: VarBuilder, channels: usize, groups: usize) -> Result<Self> {
        // Older checkpoints name the projections query/key/value/proj_attn.
        let (q, k, v, o) = if vb.contains_tensor("query.weight") {
            ("query", "key", "value", "proj_attn")
        } else {
            ("to_q", "to_k", "to_v", "to_out.0")
        };
        Ok(Self {
            group_norm: GroupNorm::load(groups, channels, 1e-6, vb.pp("group_norm"))?,
            to_q: Linear::load(channels, channels, vb.pp(q))?,
            to_k: Linear::load(channels, channels, vb.pp(k))?,
            to_v: Linear::load(channels, channels, vb.pp(v))?,
            to_out: Linear::load(channels, channels, vb.pp(o))?,
        })
    }
}

impl Module for SpatialSelfAttention {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = xs.dims4()?;
        let map = self.group_norm.forward(xs)?.reshape((b, c, h * w))?;
        let hidden = kernels::transpose_last_two(&map)?;
        let q = self.to_q.forward(&hidden)?;
        let k = self.to_k.forward(&hidden)?;
        let v = self.to_v.forward(&hidden)?;
        let attended = kernels::attention(&q, &k, &v, 1, 1.0 / (c as f64).sqrt())?;
        let out = self.to_out.forward(&attended)?;
        let out = kernels::transpose_last_two(&out)?.reshape((b, c, h, w))?;
        out + xs
    }
}

/// resnet → attention → resnet, without a time embedding: diffusers' `UNetMidBlock2D` as the
/// VAE configures it.
#[derive(Debug)]
struct MidBlock {
    first: ResnetBlock,
    attention: SpatialSelfAttention,
    second: ResnetBlock,
}

impl MidBlock {
    fn new(vb: VarBuilder, channels: usize, groups: usize) -> Result<Self> {
        let cfg = vae_resnet(channels, groups);
        Ok(Self {
            first: ResnetBlock::new(vb.pp("resnets.0"), channels, cfg)?,
            attention: SpatialSelfAttention::new(vb.pp("attentions.0"), channels, groups)?,
            second: ResnetBlock::new(vb.pp("resnets.1"), channels, cfg)?,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let xs = self.first.forward(xs, None)?;
        let xs = self.attention.forward(&xs)?;
        self.second.forward(&xs, None)
    }
}

/// The VAE's resnets: no time embedding, eps 1e-6.
fn vae_resnet(out_channels: usize, groups: usize) -> ResnetConfig {
    ResnetConfig {
        out_channels,
        temb_channels: None,
        groups,
        eps: 1e-6,
        output_scale_factor: 1.0,
    }
}

/// Resnets, then optionally a downsampler: diffusers' `DownEncoderBlock2D`.
#[derive(Debug)]
struct DownEncoderBlock {
    resnets: Vec<ResnetBlock>,
    downsampler: Option<Downsample>,
}

impl DownEncoderBlock {
    fn new(
        vb: VarBuilder,
        cin: usize,
        cout: usize,
        cfg: &VaeConfig,
        downsample: bool,
    ) -> Result<Self> {
        let resnets = (0..cfg.layers_per_block)
            .map(|i| {
                let input = if i == 0 { cin } else { cout };
                let vb = vb.pp(format!("resnets.{i}"));
                ResnetBlock::new(vb, input, vae_resnet(cout, cfg.norm_num_groups))
            })
            .collect::<Result<Vec<_>>>()?;
        let downsampler = if downsample {
            Some(Downsample::new(vb.pp("downsamplers.0"), cout, 0)?)
        } else {
            None
        };
        Ok(Self {
            resnets,
            downsampler,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut xs = xs.clone();
        for resnet in &self.resnets {
            xs = resnet.forward(&xs, None)?;
        }
        match &self.downsampler {
            Some(down) => down.forward(&xs),
            None => Ok(xs),
        }
    }
}

/// Resnets, then optionally an upsampler: diffusers' `UpDecoderBlock2D`.
#[derive(Debug)]
struct UpDecoderBlock {
    resnets: Vec<ResnetBlock>,
    upsampler: Option<Upsample>,
}

impl UpDecoderBlock {
    fn new(
        vb: VarBuilder,
        cin: usize,
        cout: usize,
        cfg: &VaeConfig,
        upsample: bool,
    ) -> Result<Self> {
        let resnets = (0..cfg.layers_per_block + 1)
            .map(|i| {
                let input = if i == 0 { cin } else { cout };
                let vb = vb.pp(format!("resnets.{i}"));
                ResnetBlock::new(vb, input, vae_resnet(cout, cfg.norm_num_groups))
            })
            .collect::<Result<Vec<_>>>()?;
        let upsampler = if upsample {
            Some(Upsample::new(vb.pp("upsamplers.0"), cout)?)
        } else {
            None
        };
        Ok(Self { resnets, upsampler })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut xs = xs.clone();
        for resnet in &self.resnets {
            xs = resnet.forward(&xs, None)?;
        }
        match &self.upsampler {
            Some(up) => up.forward(&xs, None),
            None => Ok(xs),
        }
    }
}

#[derive(Debug)]
struct Encoder {
    conv_in: Conv2d,
    down_blocks: Vec<DownEncoderBlock>,
    mid_block: MidBlock,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl Encoder {
    fn new(vb: VarBuilder, cfg: &VaeConfig) -> Result<Self> {
        let ch = &cfg.block_out_channels;
        let conv_in = conv3(cfg.in_channels, ch[0], vb.pp("conv_in"))?;
        let mut down_blocks = Vec::with_capacity(ch.len());
        for (i, &out) in ch.iter().enumerate() {
            let input = if i == 0 { ch[0] } else { ch[i - 1] };
            down_blocks.push(DownEncoderBlock::new(
                vb.pp(format!("down_blocks.{i}")),
                input,
                out,
                cfg,
                i + 1 < ch.len(),
            )?);
        }
        let last = ch[ch.len() - 1];
        let mid_block = MidBlock::new(vb.pp("mid_block"), last, cfg.norm_num_groups)?;
        let conv_norm_out =
            GroupNorm::load(cfg.norm_num_groups, last, 1e-6, vb.pp("conv_norm_out"))?;
        let conv_out = conv3(last, 2 * cfg.latent_channels, vb.pp("conv_out"))?;
        Ok(Self {
            conv_in,
            down_blocks,
            mid_block,
            conv_norm_out,
            conv_out,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut xs = self.conv_in.forward(xs)?;
        for block in &self.down_blocks {
            xs = block.forward(&xs)?;
        }
        let xs = self.mid_block.forward(&xs)?;
        self.conv_out
            .forward(&self.conv_norm_out.forward_silu(&xs)?)
    }
}

#[derive(Debug)]
struct Decoder {
    conv_in: Conv2d,
    mid_block: MidBlock,
    up_blocks: Vec<UpDecoderBlock>,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl Decoder {
    fn new(vb: VarBuilder, cfg: &VaeConfig) -> Result<Self> {
        let rev: Vec<usize> = cfg.block_out_channels.iter().rev().copied().collect();
        let conv_in = conv3(cfg.latent_channels, rev[0], vb.pp("conv_in"))?;
        let mid_block = MidBlock::new(vb.pp("mid_block"), rev[0], cfg.norm_num_groups)?;
        let mut up_blocks = Vec::with_capacity(rev.len());
        for (i, &out) in rev.iter().enumerate() {
            let input = if i == 0 { rev[0] } else { rev[i - 1] };
            up_blocks.push(UpDecoderBlock::new(
                vb.pp(format!("up_blocks.{i}")),
                input,
                out,
                cfg,
                i + 1 < rev.len(),
            )?);
        }
        let first = cfg.block_out_channels[0];
        let conv_norm_out =
            GroupNorm::load(cfg.norm_num_groups, first, 1e-6, vb.pp("conv_norm_out"))?;
        let conv_out = conv3(first, cfg.out_channels, vb.pp("conv_out"))?;
        Ok(Self {
            conv_in,
            mid_block,
            up_blocks,
            conv_norm_out,
            conv_out,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut xs = self.mid_block.forward(&self.conv_in.forward(xs)?)?;
        for block in &self.up_blocks {
            xs = block.forward(&xs)?;
        }
        self.conv_out
            .forward(&self.conv_norm_out.forward_silu(&xs)?)
    }
}

/// The encoder's latent distribution: a diagonal Gaussian.
#[derive(Debug)]
pub struct LatentDistribution {
    pub mean: Tensor,
    pub logvar: Tensor,
}

#[derive(Debug)]
pub struct AutoencoderKl {
    encoder: Encoder,
    decoder: Decoder,
    quant_conv: Option<Conv2d>,
    post_quant_conv: Option<Conv2d>,
    pub config: VaeConfig,
}

impl AutoencoderKl {
    pub fn new(vb: VarBuilder, config: VaeConfig) -> Result<Self> {
        let encoder = Encoder::new(vb.pp("encoder"), &config)?;
        let decoder = Decoder::new(vb.pp("decoder"), &config)?;
        let lc = config.latent_channels;
        let quant_conv = if config.use_quant_conv {
            Some(conv1(2 * lc, 2 * lc, vb.pp("quant_conv"))?)
        } else {
            None
        };
        let post_quant_conv = if config.use_post_quant_conv {
            Some(conv1(lc, lc, vb.pp("post_quant_conv"))?)
        } else {
            None
        };
        Ok(Self {
            encoder,
            decoder,
            quant_conv,
            post_quant_conv,
            config,
        })
    }

    /// Spectrograms (batch, 1, frames, mels) to their latent distribution.
    pub fn encode(&self, xs: &Tensor) -> Result<LatentDistribution> {
        let mut moments = self.encoder.forward(xs)?;
        if let Some(conv) = &self.quant_conv {
            moments = conv.forward(&moments)?;
        }
        let lc = self.config.latent_channels;
        let mean = moments.narrow(1, 0, lc)?;
        // diffusers clamps the log-variance before it is used.
        let logvar = moments.narrow(1, lc, lc)?.clamp(-30f32, 20f32)?;
        Ok(LatentDistribution { mean, logvar })
    }

    /// Latents (already divided by the scaling factor) to spectrograms.
    pub fn decode(&self, latents: &Tensor) -> Result<Tensor> {
        let xs = match &self.post_quant_conv {
            Some(conv) => conv.forward(latents)?,
            None => latents.clone(),
        };
        self.decoder.forward(&xs)
    }
}
