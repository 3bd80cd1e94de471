//! The variational autoencoder between log-mel spectrograms and latents: diffusers'
//! `AutoencoderKL`, assembled from candle-transformers' encoder and decoder blocks so that
//! the encoder's mean and log-variance are both available (audio-to-audio starts from the
//! mean; candle's own `AutoEncoderKL` only offers a random sample), with a mid-block
//! attention of our own that is correct for batches.

use candle_core::{Module, Result, Tensor};
use candle_nn::{self as nn, VarBuilder};
use candle_transformers::models::stable_diffusion::resnet::{ResnetBlock2D, ResnetBlock2DConfig};
use candle_transformers::models::stable_diffusion::unet_2d_blocks::{
    DownEncoderBlock2D, DownEncoderBlock2DConfig, UpDecoderBlock2D, UpDecoderBlock2DConfig,
};
use serde::Deserialize;

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
/// attention. candle's `AttentionBlock` returns wrong values for every batch item after the
/// first (its matmuls take transposed views); this one makes every operand contiguous.
#[derive(Debug)]
struct SpatialSelfAttention {
    group_norm: nn::GroupNorm,
    to_q: nn::Linear,
    to_k: nn::Linear,
    to_v: nn::Linear,
    to_out: nn::Linear,
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
            group_norm: nn::group_norm(groups, channels, 1e-6, vb.pp("group_norm"))?,
            to_q: nn::linear(channels, channels, vb.pp(q))?,
            to_k: nn::linear(channels, channels, vb.pp(k))?,
            to_v: nn::linear(channels, channels, vb.pp(v))?,
            to_out: nn::linear(channels, channels, vb.pp(o))?,
        })
    }
}

impl Module for SpatialSelfAttention {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = xs.dims4()?;
        let hidden = self
            .group_norm
            .forward(xs)?
            .reshape((b, c, h * w))?
            .transpose(1, 2)?
            .contiguous()?;
        // The scale goes on the queries, (h·w, c), rather than on the (h·w, h·w) scores, and
        // the fused softmax makes one pass where the generic one makes five.
        let q = (self.to_q.forward(&hidden)? * (1.0 / (c as f64).sqrt()))?;
        let k = self.to_k.forward(&hidden)?;
        let v = self.to_v.forward(&hidden)?;
        let scores = q.matmul(&k.transpose(1, 2)?)?;
        let probs = nn::ops::softmax_last_dim(&scores)?;
        let out = self.to_out.forward(&probs.matmul(&v)?)?;
        let out = out.transpose(1, 2)?.contiguous()?.reshape((b, c, h, w))?;
        out + xs
    }
}

/// resnet → attention → resnet, without a time embedding: diffusers' `UNetMidBlock2D` as the
/// VAE configures it.
#[derive(Debug)]
struct MidBlock {
    first: ResnetBlock2D,
    attention: SpatialSelfAttention,
    second: ResnetBlock2D,
}

impl MidBlock {
    fn new(vb: VarBuilder, channels: usize, groups: usize) -> Result<Self> {
        let cfg = ResnetBlock2DConfig {
            out_channels: Some(channels),
            temb_channels: None,
            groups,
            groups_out: None,
            eps: 1e-6,
            use_in_shortcut: None,
            output_scale_factor: 1.0,
        };
        Ok(Self {
            first: ResnetBlock2D::new(vb.pp("resnets.0"), channels, cfg)?,
            attention: SpatialSelfAttention::new(vb.pp("attentions.0"), channels, groups)?,
            second: ResnetBlock2D::new(vb.pp("resnets.1"), channels, cfg)?,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let xs = self.first.forward(xs, None)?;
        let xs = self.attention.forward(&xs)?;
        self.second.forward(&xs, None)
    }
}

fn conv3(cin: usize, cout: usize, vb: VarBuilder) -> Result<nn::Conv2d> {
    let cfg = nn::Conv2dConfig {
        padding: 1,
        ..Default::default()
    };
    nn::conv2d(cin, cout, 3, cfg, vb)
}

#[derive(Debug)]
struct Encoder {
    conv_in: nn::Conv2d,
    down_blocks: Vec<DownEncoderBlock2D>,
    mid_block: MidBlock,
    conv_norm_out: nn::GroupNorm,
    conv_out: nn::Conv2d,
}

impl Encoder {
    fn new(vb: VarBuilder, cfg: &VaeConfig) -> Result<Self> {
        let ch = &cfg.block_out_channels;
        let conv_in = conv3(cfg.in_channels, ch[0], vb.pp("conv_in"))?;
        let mut down_blocks = Vec::with_capacity(ch.len());
        for (i, &out) in ch.iter().enumerate() {
            let input = if i == 0 { ch[0] } else { ch[i - 1] };
            let block_cfg = DownEncoderBlock2DConfig {
                num_layers: cfg.layers_per_block,
                resnet_eps: 1e-6,
                resnet_groups: cfg.norm_num_groups,
                output_scale_factor: 1.0,
                add_downsample: i + 1 < ch.len(),
                downsample_padding: 0,
            };
            down_blocks.push(DownEncoderBlock2D::new(
                vb.pp(format!("down_blocks.{i}")),
                input,
                out,
                block_cfg,
            )?);
        }
        let last = ch[ch.len() - 1];
        let mid_block = MidBlock::new(vb.pp("mid_block"), last, cfg.norm_num_groups)?;
        let conv_norm_out =
            nn::group_norm(cfg.norm_num_groups, last, 1e-6, vb.pp("conv_norm_out"))?;
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
        let xs = nn::ops::silu(&self.conv_norm_out.forward(&xs)?)?;
        self.conv_out.forward(&xs)
    }
}

#[derive(Debug)]
struct Decoder {
    conv_in: nn::Conv2d,
    mid_block: MidBlock,
    up_blocks: Vec<UpDecoderBlock2D>,
    conv_norm_out: nn::GroupNorm,
    conv_out: nn::Conv2d,
}

impl Decoder {
    fn new(vb: VarBuilder, cfg: &VaeConfig) -> Result<Self> {
        let rev: Vec<usize> = cfg.block_out_channels.iter().rev().copied().collect();
        let conv_in = conv3(cfg.latent_channels, rev[0], vb.pp("conv_in"))?;
        let mid_block = MidBlock::new(vb.pp("mid_block"), rev[0], cfg.norm_num_groups)?;
        let mut up_blocks = Vec::with_capacity(rev.len());
        for (i, &out) in rev.iter().enumerate() {
            let input = if i == 0 { rev[0] } else { rev[i - 1] };
            let block_cfg = UpDecoderBlock2DConfig {
                num_layers: cfg.layers_per_block + 1,
                resnet_eps: 1e-6,
                resnet_groups: cfg.norm_num_groups,
                output_scale_factor: 1.0,
                add_upsample: i + 1 < rev.len(),
            };
            up_blocks.push(UpDecoderBlock2D::new(
                vb.pp(format!("up_blocks.{i}")),
                input,
                out,
                block_cfg,
            )?);
        }
        let first = cfg.block_out_channels[0];
        let conv_norm_out =
            nn::group_norm(cfg.norm_num_groups, first, 1e-6, vb.pp("conv_norm_out"))?;
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
        let xs = nn::ops::silu(&self.conv_norm_out.forward(&xs)?)?;
        self.conv_out.forward(&xs)
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
    quant_conv: Option<nn::Conv2d>,
    post_quant_conv: Option<nn::Conv2d>,
    pub config: VaeConfig,
}

impl AutoencoderKl {
    pub fn new(vb: VarBuilder, config: VaeConfig) -> Result<Self> {
        let encoder = Encoder::new(vb.pp("encoder"), &config)?;
        let decoder = Decoder::new(vb.pp("decoder"), &config)?;
        let lc = config.latent_channels;
        let quant_conv = if config.use_quant_conv {
            Some(nn::conv2d(
                2 * lc,
                2 * lc,
                1,
                Default::default(),
                vb.pp("quant_conv"),
            )?)
        } else {
            None
        };
        let post_quant_conv = if config.use_post_quant_conv {
            Some(nn::conv2d(
                lc,
                lc,
                1,
                Default::default(),
                vb.pp("post_quant_conv"),
            )?)
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
