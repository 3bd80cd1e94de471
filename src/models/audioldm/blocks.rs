//! The building blocks shared by the UNet and the VAE, in diffusers' layout and weight
//! names: resnets, up- and down-samplers, and the transformer of the UNet's attention
//! levels. They follow candle-transformers' stable-diffusion blocks but run on the kernels
//! of [`crate::models::kernels`] (convolution, attention, fused group norm + SiLU).

use candle_core::{Module, Result, Tensor};
use candle_nn::{self as nn, VarBuilder};

use crate::models::kernels::{self, Conv2d, Conv2dConfig, Conv2dFused, GroupNorm, Linear};

/// A 3×3 convolution that keeps the size.
pub fn conv3(cin: usize, cout: usize, vb: VarBuilder) -> Result<Conv2d> {
    let config = Conv2dConfig {
        padding: 1,
        stride: 1,
    };
    Conv2d::load(cin, cout, 3, config, vb)
}

/// A 1×1 convolution.
pub fn conv1(cin: usize, cout: usize, vb: VarBuilder) -> Result<Conv2d> {
    Conv2d::load(cin, cout, 1, Conv2dConfig::default(), vb)
}

/// diffusers' `ResnetBlock2D` with the default time-embedding mode ("default": added).
#[derive(Debug)]
pub struct ResnetBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    norm2: GroupNorm,
    conv2: Conv2d,
    time_emb_proj: Option<nn::Linear>,
    conv_shortcut: Option<Conv2d>,
    output_scale_factor: f64,
}

#[derive(Debug, Clone, Copy)]
pub struct ResnetConfig {
    pub out_channels: usize,
    pub temb_channels: Option<usize>,
    pub groups: usize,
    pub eps: f64,
    pub output_scale_factor: f64,
}

impl ResnetBlock {
    pub fn new(vb: VarBuilder, in_channels: usize, config: ResnetConfig) -> Result<Self> {
        let out = config.out_channels;
        let conv_shortcut = if in_channels != out {
            Some(conv1(in_channels, out, vb.pp("conv_shortcut"))?)
        } else {
            None
        };
        let time_emb_proj = match config.temb_channels {
            Some(t) => Some(nn::linear(t, out, vb.pp("time_emb_proj"))?),
            None => None,
        };
        Ok(Self {
            norm1: GroupNorm::load(config.groups, in_channels, config.eps, vb.pp("norm1"))?,
            conv1: conv3(in_channels, out, vb.pp("conv1"))?,
            norm2: GroupNorm::load(config.groups, out, config.eps, vb.pp("norm2"))?,
            conv2: conv3(out, out, vb.pp("conv2"))?,
            time_emb_proj,
            conv_shortcut,
            output_scale_factor: config.output_scale_factor,
        })
    }

    pub fn forward(&self, xs: &Tensor, temb: Option<&Tensor>) -> Result<Tensor> {
        let shortcut = match &self.conv_shortcut {
            Some(conv) => conv.forward(xs)?,
            None => xs.clone(),
        };
        // The time embedding is a per-channel offset of conv1's output and the shortcut a
        // residual of conv2's: both are added as the convolutions write.
        let offsets = match (temb, &self.time_emb_proj) {
            (Some(temb), Some(proj)) => Some(proj.forward(&nn::ops::silu(temb)?)?),
            _ => None,
        };
        let h = self.conv1.forward_fused(
            &self.norm1.forward_silu(xs)?,
            Conv2dFused {
                channel_offsets: offsets.as_ref(),
                ..Default::default()
            },
        )?;
        let out = self.conv2.forward_fused(
            &self.norm2.forward_silu(&h)?,
            Conv2dFused {
                residual: Some(&shortcut),
                ..Default::default()
            },
        )?;
        if self.output_scale_factor == 1.0 {
            Ok(out)
        } else {
            out / self.output_scale_factor
        }
    }
}

/// A stride-2 3×3 convolution. With no padding, diffusers pads right and bottom by one.
#[derive(Debug)]
pub struct Downsample {
    conv: Conv2d,
    pad_after: bool,
}

impl Downsample {
    pub fn new(vb: VarBuilder, channels: usize, padding: usize) -> Result<Self> {
        let config = Conv2dConfig { padding, stride: 2 };
        Ok(Self {
            conv: Conv2d::load(channels, channels, 3, config, vb.pp("conv"))?,
            pad_after: padding == 0,
        })
    }
}

impl Module for Downsample {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if self.pad_after {
            let xs = xs.pad_with_zeros(3, 0, 1)?.pad_with_zeros(2, 0, 1)?;
            self.conv.forward(&xs)
        } else {
            self.conv.forward(xs)
        }
    }
}

/// Nearest-neighbour doubling (or up to an explicit size), then a 3×3 convolution.
#[derive(Debug)]
pub struct Upsample {
    conv: Conv2d,
}

impl Upsample {
    pub fn new(vb: VarBuilder, channels: usize) -> Result<Self> {
        Ok(Self {
            conv: conv3(channels, channels, vb.pp("conv"))?,
        })
    }

    pub fn forward(&self, xs: &Tensor, size: Option<(usize, usize)>) -> Result<Tensor> {
        let (_, _, h, w) = xs.dims4()?;
        match size {
            Some(size) if size != (2 * h, 2 * w) => {
                self.conv.forward(&xs.upsample_nearest2d(size.0, size.1)?)
            }
            // Doubling is read in place by the convolution.
            _ => self.conv.forward_fused(
                xs,
                Conv2dFused {
                    upsample2: true,
                    ..Default::default()
                },
            ),
        }
    }
}

/// Multi-head attention with diffusers' `to_q`, `to_k`, `to_v`, `to_out.0` projections.
/// AudioLDM has no text context, so both of a transformer's attentions attend to its input.
#[derive(Debug)]
struct Attention {
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    heads: usize,
    scale: f64,
}

impl Attention {
    fn new(vb: VarBuilder, dim: usize, heads: usize) -> Result<Self> {
        Ok(Self {
            to_q: Linear::load_no_bias(dim, dim, vb.pp("to_q"))?,
            to_k: Linear::load_no_bias(dim, dim, vb.pp("to_k"))?,
            to_v: Linear::load_no_bias(dim, dim, vb.pp("to_v"))?,
            to_out: Linear::load(dim, dim, vb.pp("to_out.0"))?,
            heads,
            scale: 1.0 / ((dim / heads) as f64).sqrt(),
        })
    }
}

impl Attention {
    /// The attention of `xs` to itself, plus `residual`.
    fn forward_residual(&self, xs: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let q = self.to_q.forward(xs)?;
        let k = self.to_k.forward(xs)?;
        let v = self.to_v.forward(xs)?;
        let out = kernels::attention(&q, &k, &v, self.heads, self.scale)?;
        self.to_out.forward_residual(&out, Some(residual))
    }
}

/// The GEGLU feed-forward: a projection to twice the inner width, one half gating the other
/// through the exact GELU (as PyTorch's `F.gelu`), and a projection back.
#[derive(Debug)]
struct FeedForward {
    proj_in: Linear,
    proj_out: Linear,
}

impl FeedForward {
    fn new(vb: VarBuilder, dim: usize) -> Result<Self> {
        let inner = 4 * dim;
        Ok(Self {
            proj_in: Linear::load(dim, 2 * inner, vb.pp("net.0.proj"))?,
            proj_out: Linear::load(inner, dim, vb.pp("net.2"))?,
        })
    }
}

impl FeedForward {
    /// The feed-forward of `xs`, plus `residual`.
    fn forward_residual(&self, xs: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let gated = kernels::geglu(&self.proj_in.forward(xs)?)?;
        self.proj_out.forward_residual(&gated, Some(residual))
    }
}

/// diffusers' `BasicTransformerBlock` without a context: self-attention, a second
/// self-attention (the "cross" attention, given no text) and the feed-forward, each after a
/// layer norm and with a residual.
#[derive(Debug)]
struct TransformerBlock {
    norm1: nn::LayerNorm,
    attn1: Attention,
    norm2: nn::LayerNorm,
    attn2: Attention,
    norm3: nn::LayerNorm,
    ff: FeedForward,
}

impl TransformerBlock {
    fn new(vb: VarBuilder, dim: usize, heads: usize) -> Result<Self> {
        Ok(Self {
            norm1: nn::layer_norm(dim, 1e-5, vb.pp("norm1"))?,
            attn1: Attention::new(vb.pp("attn1"), dim, heads)?,
            norm2: nn::layer_norm(dim, 1e-5, vb.pp("norm2"))?,
            attn2: Attention::new(vb.pp("attn2"), dim, heads)?,
            norm3: nn::layer_norm(dim, 1e-5, vb.pp("norm3"))?,
            ff: FeedForward::new(vb.pp("ff"), dim)?,
        })
    }
}

impl Module for TransformerBlock {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let xs = self.attn1.forward_residual(&self.norm1.forward(xs)?, xs)?;
        let xs = self
            .attn2
            .forward_residual(&self.norm2.forward(&xs)?, &xs)?;
        self.ff.forward_residual(&self.norm3.forward(&xs)?, &xs)
    }
}

/// A projection into or out of the transformer: a linear layer, or diffusers' 1×1
/// convolution (weight (out, in, 1, 1)), which on tokens is the same matrix product.
fn token_projection(vb: VarBuilder, channels: usize, linear: bool) -> Result<Linear> {
    let weight = if linear {
        vb.get((channels, channels), "weight")?
    } else {
        vb.get((channels, channels, 1, 1), "weight")?
            .reshape((channels, channels))?
    };
    Ok(Linear::new(weight, Some(vb.get(channels, "bias")?)))
}

/// How a [`SpatialTransformer`] is laid out.
#[derive(Debug, Clone, Copy)]
pub struct TransformerConfig {
    pub heads: usize,
    pub depth: usize,
    pub groups: usize,
    /// Linear projections in and out instead of 1×1 convolutions.
    pub linear_projection: bool,
}

/// diffusers' `Transformer2DModel` over a feature map: group norm, projection to tokens,
/// transformer blocks, projection back, residual.
#[derive(Debug)]
pub struct SpatialTransformer {
    norm: GroupNorm,
    proj_in: Linear,
    blocks: Vec<TransformerBlock>,
    proj_out: Linear,
}

impl SpatialTransformer {
    pub fn new(vb: VarBuilder, channels: usize, config: TransformerConfig) -> Result<Self> {
        let blocks = (0..config.depth)
            .map(|i| {
                let vb = vb.pp(format!("transformer_blocks.{i}"));
                TransformerBlock::new(vb, channels, config.heads)
            })
            .collect::<Result<Vec<_>>>()?;
        let linear = config.linear_projection;
        Ok(Self {
            norm: GroupNorm::load(config.groups, channels, 1e-6, vb.pp("norm"))?,
            proj_in: token_projection(vb.pp("proj_in"), channels, linear)?,
            blocks,
            proj_out: token_projection(vb.pp("proj_out"), channels, linear)?,
        })
    }
}

impl Module for SpatialTransformer {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = xs.dims4()?;
        let map = self.norm.forward(xs)?.reshape((b, c, h * w))?;
        let mut tokens = self.proj_in.forward(&kernels::transpose_last_two(&map)?)?;
        for block in &self.blocks {
            tokens = block.forward(&tokens)?;
        }
        let out = kernels::transpose_last_two(&self.proj_out.forward(&tokens)?)?;
        out.reshape((b, c, h, w))? + xs
    }
}

/// The UNet's middle: resnet, then (transformer, resnet) pairs.
#[derive(Debug)]
pub struct CrossAttnMidBlock {
    resnet: ResnetBlock,
    attn_resnets: Vec<(SpatialTransformer, ResnetBlock)>,
}

impl CrossAttnMidBlock {
    pub fn new(
        vb: VarBuilder,
        channels: usize,
        transformer: TransformerConfig,
        resnet: ResnetConfig,
    ) -> Result<Self> {
        let first = ResnetBlock::new(vb.pp("resnets.0"), channels, resnet)?;
        let attn = SpatialTransformer::new(vb.pp("attentions.0"), channels, transformer)?;
        let second = ResnetBlock::new(vb.pp("resnets.1"), channels, resnet)?;
        Ok(Self {
            resnet: first,
            attn_resnets: vec![(attn, second)],
        })
    }

    pub fn forward(&self, xs: &Tensor, temb: &Tensor) -> Result<Tensor> {
        let mut xs = self.resnet.forward(xs, Some(temb))?;
        for (attn, resnet) in &self.attn_resnets {
            xs = resnet.forward(&attn.forward(&xs)?, Some(temb))?;
        }
        Ok(xs)
    }
}
