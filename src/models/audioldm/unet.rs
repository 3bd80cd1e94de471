//! The UNet of AudioLDM: diffusers' `UNet2DConditionModel` with `class_embed_type =
//! "simple_projection"` and `class_embeddings_concat = true`. The CLAP text embedding enters
//! as a class label, concatenated to the timestep embedding; there is no cross-attention
//! context, so each transformer block's second attention attends to its own input.

use candle_core::{Module, Result, Tensor};
use candle_nn::{self as nn, VarBuilder};
use candle_transformers::models::stable_diffusion::embeddings::{TimestepEmbedding, Timesteps};
use serde::Deserialize;

use super::blocks::{
    CrossAttnMidBlock, Downsample, ResnetBlock, ResnetConfig, SpatialTransformer,
    TransformerConfig, Upsample, conv3,
};
use crate::models::kernels::{self, Conv2d, GroupNorm};

/// `unet/config.json`, the fields this architecture reads.
#[derive(Debug, Clone, Deserialize)]
pub struct UNetConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub block_out_channels: Vec<usize>,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    pub layers_per_block: usize,
    #[serde(default = "default_norm_groups")]
    pub norm_num_groups: usize,
    #[serde(default = "default_norm_eps")]
    pub norm_eps: f64,
    /// Heads per block; diffusers reads `num_attention_heads` and falls back to the
    /// misnamed `attention_head_dim`.
    #[serde(default)]
    pub num_attention_heads: Option<PerBlock>,
    #[serde(default)]
    pub attention_head_dim: Option<PerBlock>,
    pub cross_attention_dim: PerBlock,
    #[serde(default)]
    pub class_embed_type: Option<String>,
    #[serde(default)]
    pub class_embeddings_concat: bool,
    #[serde(default)]
    pub projection_class_embeddings_input_dim: Option<usize>,
    #[serde(default = "default_true")]
    pub flip_sin_to_cos: bool,
    #[serde(default)]
    pub freq_shift: f64,
    #[serde(default = "default_one")]
    pub downsample_padding: usize,
    #[serde(default = "default_one_f")]
    pub mid_block_scale_factor: f64,
    #[serde(default)]
    pub use_linear_projection: bool,
    #[serde(default = "default_one")]
    pub transformer_layers_per_block: usize,
    #[serde(default = "default_sample_size")]
    pub sample_size: usize,
    #[serde(default)]
    pub resnet_time_scale_shift: Option<String>,
    #[serde(default)]
    pub mid_block_type: Option<String>,
    #[serde(default)]
    pub time_embedding_type: Option<String>,
}

/// A per-block setting given either once for all blocks or as one value per block.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PerBlock {
    One(usize),
    Each(Vec<usize>),
}

impl PerBlock {
    fn expand(&self, n: usize) -> std::result::Result<Vec<usize>, String> {
        match self {
            PerBlock::One(v) => Ok(vec![*v; n]),
            PerBlock::Each(v) if v.len() == n => Ok(v.clone()),
            PerBlock::Each(v) => Err(format!("{} values for {n} blocks", v.len())),
        }
    }
}

fn default_norm_groups() -> usize {
    32
}
fn default_norm_eps() -> f64 {
    1e-5
}
fn default_true() -> bool {
    true
}
fn default_one() -> usize {
    1
}
fn default_one_f() -> f64 {
    1.0
}
fn default_sample_size() -> usize {
    128
}

impl UNetConfig {
    /// Rejects the configurations this port does not implement, so they fail at load time
    /// with a reason instead of producing wrong audio.
    pub fn check(&self) -> std::result::Result<(), String> {
        let n = self.block_out_channels.len();
        if n == 0 || self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err(format!(
                "block_out_channels, down_block_types and up_block_types must have the same, \
                 non-zero length ({n}, {}, {})",
                self.down_block_types.len(),
                self.up_block_types.len()
            ));
        }
        for t in &self.down_block_types {
            if t != "DownBlock2D" && t != "CrossAttnDownBlock2D" {
                return Err(format!("unsupported down block type `{t}`"));
            }
        }
        for t in &self.up_block_types {
            if t != "UpBlock2D" && t != "CrossAttnUpBlock2D" {
                return Err(format!("unsupported up block type `{t}`"));
            }
        }
        match self.class_embed_type.as_deref() {
            Some("simple_projection") => {}
            other => {
                return Err(format!(
                    "class_embed_type must be \"simple_projection\" (AudioLDM), not {other:?}"
                ));
            }
        }
        if self.projection_class_embeddings_input_dim.is_none() {
            return Err("projection_class_embeddings_input_dim is required".into());
        }
        if let Some(shift) = &self.resnet_time_scale_shift
            && shift != "default"
        {
            return Err(format!("unsupported resnet_time_scale_shift `{shift}`"));
        }
        if let Some(mid) = &self.mid_block_type
            && mid != "UNetMidBlock2DCrossAttn"
        {
            return Err(format!("unsupported mid_block_type `{mid}`"));
        }
        if let Some(t) = &self.time_embedding_type
            && t != "positional"
        {
            return Err(format!("unsupported time_embedding_type `{t}`"));
        }
        let heads = self.heads()?;
        let cross = self.cross_attention_dim.expand(n)?;
        for (i, &c) in self.block_out_channels.iter().enumerate() {
            if c % self.norm_num_groups != 0 {
                return Err(format!(
                    "block_out_channels[{i}] = {c} is not a multiple of norm_num_groups"
                ));
            }
            if heads[i] == 0 || c % heads[i] != 0 {
                return Err(format!(
                    "block {i}: {c} channels cannot split into {} heads",
                    heads[i]
                ));
            }
            // Without a context, attn2 attends to the block's own features.
            if cross[i] != c {
                return Err(format!(
                    "block {i}: cross_attention_dim {} differs from its {c} channels, so the \
                     model expects a text context that AudioLDM does not give",
                    cross[i]
                ));
            }
        }
        Ok(())
    }

    fn heads(&self) -> std::result::Result<Vec<usize>, String> {
        let n = self.block_out_channels.len();
        match (&self.num_attention_heads, &self.attention_head_dim) {
            (Some(h), _) | (None, Some(h)) => h.expand(n),
            (None, None) => Ok(vec![8; n]),
        }
    }

    /// How many times the latents are halved on the way down.
    pub fn num_downsamples(&self) -> usize {
        self.block_out_channels.len().saturating_sub(1)
    }
}

/// One level on the way down: resnets, each optionally followed by a transformer, then an
/// optional downsampler. `DownBlock2D` and `CrossAttnDownBlock2D`.
#[derive(Debug)]
struct DownBlock {
    resnets: Vec<ResnetBlock>,
    attentions: Vec<SpatialTransformer>,
    downsampler: Option<Downsample>,
}

impl DownBlock {
    fn forward(&self, xs: &Tensor, temb: &Tensor) -> Result<(Tensor, Vec<Tensor>)> {
        let mut xs = xs.clone();
        let mut states = Vec::with_capacity(self.resnets.len() + 1);
        for (i, resnet) in self.resnets.iter().enumerate() {
            xs = resnet.forward(&xs, Some(temb))?;
            if let Some(attn) = self.attentions.get(i) {
                xs = attn.forward(&xs)?;
            }
            states.push(xs.clone());
        }
        if let Some(down) = &self.downsampler {
            xs = down.forward(&xs)?;
            states.push(xs.clone());
        }
        Ok((xs, states))
    }
}

/// One level on the way up: resnets over the skip connections, each optionally followed by
/// a transformer, then an optional upsampler. `UpBlock2D` and `CrossAttnUpBlock2D`.
#[derive(Debug)]
struct UpBlock {
    resnets: Vec<ResnetBlock>,
    attentions: Vec<SpatialTransformer>,
    upsampler: Option<Upsample>,
}

impl UpBlock {
    fn forward(
        &self,
        xs: &Tensor,
        skips: &[Tensor],
        temb: &Tensor,
        size: Option<(usize, usize)>,
    ) -> Result<Tensor> {
        let mut xs = xs.clone();
        for (i, resnet) in self.resnets.iter().enumerate() {
            let skip = &skips[skips.len() - 1 - i];
            xs = kernels::concat_channels(&xs, skip)?;
            xs = resnet.forward(&xs, Some(temb))?;
            if let Some(attn) = self.attentions.get(i) {
                xs = attn.forward(&xs)?;
            }
        }
        match &self.upsampler {
            Some(up) => up.forward(&xs, size),
            None => Ok(xs),
        }
    }
}

#[derive(Debug)]
pub struct UNet {
    conv_in: Conv2d,
    time_proj: Timesteps,
    time_embedding: TimestepEmbedding,
    class_embedding: nn::Linear,
    concat_class: bool,
    down_blocks: Vec<DownBlock>,
    mid_block: CrossAttnMidBlock,
    up_blocks: Vec<UpBlock>,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
    pub config: UNetConfig,
}

impl UNet {
    /// Builds the model; call [`UNetConfig::check`] first for a readable configuration error.
    pub fn new(vb: VarBuilder, config: UNetConfig) -> Result<Self> {
        let heads = config.heads().map_err(candle_core::Error::msg)?;
        let channels = &config.block_out_channels;
        let n = channels.len();
        let groups = config.norm_num_groups;
        let eps = config.norm_eps;
        let conv_in = conv3(config.in_channels, channels[0], vb.pp("conv_in"))?;
        let time_embed_dim = channels[0] * 4;
        let time_proj = Timesteps::new(channels[0], config.flip_sin_to_cos, config.freq_shift);
        let time_embedding =
            TimestepEmbedding::new(vb.pp("time_embedding"), channels[0], time_embed_dim)?;
        let class_in = config
            .projection_class_embeddings_input_dim
            .ok_or_else(|| candle_core::Error::msg("projection_class_embeddings_input_dim"))?;
        let class_embedding = nn::linear(class_in, time_embed_dim, vb.pp("class_embedding"))?;
        let temb = if config.class_embeddings_concat {
            time_embed_dim * 2
        } else {
            time_embed_dim
        };
        let resnet_cfg = |out: usize| ResnetConfig {
            out_channels: out,
            temb_channels: Some(temb),
            groups,
            eps,
            output_scale_factor: 1.0,
        };
        let transformer_cfg = |heads: usize| TransformerConfig {
            heads,
            depth: config.transformer_layers_per_block,
            groups,
            linear_projection: config.use_linear_projection,
        };
        let transformer = |vb: VarBuilder, ch: usize, heads: usize| {
            SpatialTransformer::new(vb, ch, transformer_cfg(heads))
        };

        let mut down_blocks = Vec::with_capacity(n);
        let mut out_ch = channels[0];
        for (i, kind) in config.down_block_types.iter().enumerate() {
            let in_ch = out_ch;
            out_ch = channels[i];
            let vb = vb.pp(format!("down_blocks.{i}"));
            let mut resnets = Vec::new();
            let mut attentions = Vec::new();
            for j in 0..config.layers_per_block {
                let rin = if j == 0 { in_ch } else { out_ch };
                resnets.push(ResnetBlock::new(
                    vb.pp(format!("resnets.{j}")),
                    rin,
                    resnet_cfg(out_ch),
                )?);
                if kind == "CrossAttnDownBlock2D" {
                    attentions.push(transformer(
                        vb.pp(format!("attentions.{j}")),
                        out_ch,
                        heads[i],
                    )?);
                }
            }
            let downsampler = if i + 1 < n {
                Some(Downsample::new(
                    vb.pp("downsamplers.0"),
                    out_ch,
                    config.downsample_padding,
                )?)
            } else {
                None
            };
            down_blocks.push(DownBlock {
                resnets,
                attentions,
                downsampler,
            });
        }

        let last = channels[n - 1];
        let mid_resnet = ResnetConfig {
            output_scale_factor: config.mid_block_scale_factor,
            ..resnet_cfg(last)
        };
        let mid_block = CrossAttnMidBlock::new(
            vb.pp("mid_block"),
            last,
            transformer_cfg(heads[n - 1]),
            mid_resnet,
        )?;

        let rev: Vec<usize> = channels.iter().rev().copied().collect();
        let rev_heads: Vec<usize> = heads.iter().rev().copied().collect();
        let mut up_blocks = Vec::with_capacity(n);
        let mut out_ch = rev[0];
        for (i, kind) in config.up_block_types.iter().enumerate() {
            let prev_ch = out_ch;
            out_ch = rev[i];
            let in_ch = rev[(i + 1).min(n - 1)];
            let vb = vb.pp(format!("up_blocks.{i}"));
            let layers = config.layers_per_block + 1;
            let mut resnets = Vec::new();
            let mut attentions = Vec::new();
            for j in 0..layers {
                let skip = if j == layers - 1 { in_ch } else { out_ch };
                let rin = if j == 0 { prev_ch } else { out_ch };
                resnets.push(ResnetBlock::new(
                    vb.pp(format!("resnets.{j}")),
                    rin + skip,
                    resnet_cfg(out_ch),
                )?);
                if kind == "CrossAttnUpBlock2D" {
                    attentions.push(transformer(
                        vb.pp(format!("attentions.{j}")),
                        out_ch,
                        rev_heads[i],
                    )?);
                }
            }
            let upsampler = if i + 1 < n {
                Some(Upsample::new(vb.pp("upsamplers.0"), out_ch)?)
            } else {
                None
            };
            up_blocks.push(UpBlock {
                resnets,
                attentions,
                upsampler,
            });
        }

        let conv_norm_out = GroupNorm::load(groups, channels[0], eps, vb.pp("conv_norm_out"))?;
        let conv_out = conv3(channels[0], config.out_channels, vb.pp("conv_out"))?;
        Ok(Self {
            conv_in,
            time_proj,
            time_embedding,
            class_embedding,
            concat_class: config.class_embeddings_concat,
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out,
            conv_out,
            config,
        })
    }

    /// The predicted noise for `sample` (batch, channels, height, width) at `timestep`,
    /// conditioned on `class_labels` (batch, projection dim): the normalised text embeddings.
    pub fn forward(&self, sample: &Tensor, timestep: f64, class_labels: &Tensor) -> Result<Tensor> {
        let (batch, _, h, w) = sample.dims4()?;
        let t = Tensor::full(timestep as f32, batch, sample.device())?.to_dtype(sample.dtype())?;
        let emb = self.time_embedding.forward(&self.time_proj.forward(&t)?)?;
        let class_emb = self.class_embedding.forward(class_labels)?;
        let emb = if self.concat_class {
            Tensor::cat(&[&emb, &class_emb], 1)?
        } else {
            (emb + class_emb)?
        };

        // Sizes that do not halve evenly are restored exactly on the way up.
        let factor = 1usize << self.config.num_downsamples();
        let explicit_sizes = h % factor != 0 || w % factor != 0;

        let mut xs = self.conv_in.forward(sample)?;
        let mut skips = vec![xs.clone()];
        for block in &self.down_blocks {
            let (next, states) = block.forward(&xs, &emb)?;
            xs = next;
            skips.extend(states);
        }
        xs = self.mid_block.forward(&xs, &emb)?;
        let last = self.up_blocks.len() - 1;
        for (i, block) in self.up_blocks.iter().enumerate() {
            let take = block.resnets.len();
            let rest = skips.len() - take;
            let own = skips.split_off(rest);
            let size = if i < last && explicit_sizes {
                match skips.last() {
                    Some(s) => {
                        let (_, _, sh, sw) = s.dims4()?;
                        Some((sh, sw))
                    }
                    None => None,
                }
            } else {
                None
            };
            xs = block.forward(&xs, &own, &emb, size)?;
        }
        self.conv_out
            .forward(&self.conv_norm_out.forward_silu(&xs)?)
    }
}
