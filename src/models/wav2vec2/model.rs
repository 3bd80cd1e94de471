//! The Wav2Vec2 network, following transformers' `modeling_wav2vec2.py` module by module
//! so that checkpoints load by their published tensor names.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, GroupNorm, LayerNorm, Linear, VarBuilder};

use super::config::{Activation, Config, FeatExtractNorm};

enum ConvNorm {
    None,
    /// One group per channel, on the first layer only (the wav2vec2-base family).
    Group(GroupNorm),
    /// Over channels at each time step (the large / XLSR family).
    Layer(LayerNorm),
}

struct ConvLayer {
    conv: Conv1d,
    norm: ConvNorm,
    activation: Activation,
}

impl ConvLayer {
    fn new(cfg: &Config, index: usize, vb: VarBuilder) -> Result<Self> {
        let in_channels = if index == 0 {
            1
        } else {
            cfg.conv_dim[index - 1]
        };
        let out_channels = cfg.conv_dim[index];
        let conv_cfg = Conv1dConfig {
            stride: cfg.conv_stride[index],
            ..Default::default()
        };
        let kernel = cfg.conv_kernel[index];
        let conv = if cfg.conv_bias {
            candle_nn::conv1d(in_channels, out_channels, kernel, conv_cfg, vb.pp("conv"))?
        } else {
            candle_nn::conv1d_no_bias(in_channels, out_channels, kernel, conv_cfg, vb.pp("conv"))?
        };
        let norm = match cfg.feat_extract_norm {
            FeatExtractNorm::Group if index == 0 => ConvNorm::Group(candle_nn::group_norm(
                out_channels,
                out_channels,
                1e-5,
                vb.pp("layer_norm"),
            )?),
            FeatExtractNorm::Group => ConvNorm::None,
            FeatExtractNorm::Layer => ConvNorm::Layer(candle_nn::layer_norm(
                out_channels,
                1e-5,
                vb.pp("layer_norm"),
            )?),
        };
        Ok(ConvLayer {
            conv,
            norm,
            activation: cfg.feat_extract_activation,
        })
    }

    /// (batch, channels, time) in and out.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let xs = self.conv.forward(xs)?;
        let xs = match &self.norm {
            ConvNorm::None => xs,
            ConvNorm::Group(norm) => norm.forward(&xs)?,
            ConvNorm::Layer(norm) => norm.forward(&xs.transpose(1, 2)?)?.transpose(1, 2)?,
        };
        self.activation.apply(&xs)
    }
}

/// The convolutional positional embedding, whose weight is stored weight-normalised over
/// the kernel axis (`dim=2`): weight = g · v / ‖v‖, the norm taken over the other two axes.
struct PositionalConvEmbedding {
    conv: Conv1d,
    /// An even kernel makes one frame too many; transformers drops the last.
    drop_last: bool,
    activation: Activation,
}

impl PositionalConvEmbedding {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let hidden = cfg.hidden_size;
        let kernel = cfg.num_conv_pos_embeddings;
        let groups = cfg.num_conv_pos_embedding_groups;
        let vb = vb.pp("conv");
        let weight = if vb.contains_tensor("weight") {
            vb.get((hidden, hidden / groups, kernel), "weight")?
        } else {
            let g = vb.get((1, 1, kernel), "weight_g")?;
            let v = vb.get((hidden, hidden / groups, kernel), "weight_v")?;
            let norm = v.sqr()?.sum_keepdim(0)?.sum_keepdim(1)?.sqrt()?;
            v.broadcast_mul(&g.broadcast_div(&norm)?)?
        };
        let bias = vb.get(hidden, "bias")?;
        let conv_cfg = Conv1dConfig {
            padding: kernel / 2,
            groups,
            ..Default::default()
        };
        Ok(PositionalConvEmbedding {
            conv: Conv1d::new(weight, Some(bias), conv_cfg),
            drop_last: kernel.is_multiple_of(2),
            activation: cfg.feat_extract_activation,
        })
    }

    /// (batch, time, hidden) in and out.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut ys = self.conv.forward(&xs.transpose(1, 2)?)?;
        if self.drop_last {
            let frames = ys.dim(2)?;
            ys = ys.narrow(2, 0, frames - 1)?;
        }
        self.activation.apply(&ys)?.transpose(1, 2)
    }
}

struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Attention {
            q_proj: candle_nn::linear(h, h, vb.pp("q_proj"))?,
            k_proj: candle_nn::linear(h, h, vb.pp("k_proj"))?,
            v_proj: candle_nn::linear(h, h, vb.pp("v_proj"))?,
            out_proj: candle_nn::linear(h, h, vb.pp("out_proj"))?,
            heads: cfg.num_attention_heads,
            head_dim: h / cfg.num_attention_heads,
        })
    }

    /// `mask` is additive, (batch, 1, 1, time): 0 for frames to attend to, very negative
    /// for padding.
    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, t, h) = xs.dims3()?;
        let split = |x: Tensor| -> Result<Tensor> {
            x.reshape((b, t, self.heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let scale = (self.head_dim as f64).powf(-0.5);
        let q = split((self.q_proj.forward(xs)? * scale)?)?;
        let k = split(self.k_proj.forward(xs)?)?;
        let v = split(self.v_proj.forward(xs)?)?;
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = weights.matmul(&v)?.transpose(1, 2)?.reshape((b, t, h))?;
        self.out_proj.forward(&out)
    }
}

struct FeedForward {
    intermediate: Linear,
    output: Linear,
    activation: Activation,
}

impl FeedForward {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        Ok(FeedForward {
            intermediate: candle_nn::linear(
                cfg.hidden_size,
                cfg.intermediate_size,
                vb.pp("intermediate_dense"),
            )?,
            output: candle_nn::linear(
                cfg.intermediate_size,
                cfg.hidden_size,
                vb.pp("output_dense"),
            )?,
            activation: cfg.hidden_act,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let xs = self.activation.apply(&self.intermediate.forward(xs)?)?;
        self.output.forward(&xs)
    }
}

struct EncoderLayer {
    attention: Attention,
    layer_norm: LayerNorm,
    feed_forward: FeedForward,
    final_layer_norm: LayerNorm,
    /// Pre-norm (stable) layers normalise before each block; post-norm layers after.
    pre_norm: bool,
}

impl EncoderLayer {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let ln =
            |name: &str| candle_nn::layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp(name));
        Ok(EncoderLayer {
            attention: Attention::new(cfg, vb.pp("attention"))?,
            layer_norm: ln("layer_norm")?,
            feed_forward: FeedForward::new(cfg, vb.pp("feed_forward"))?,
            final_layer_norm: ln("final_layer_norm")?,
            pre_norm: cfg.do_stable_layer_norm,
        })
    }

    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        if self.pre_norm {
            let xs = (xs
                + self
                    .attention
                    .forward(&self.layer_norm.forward(xs)?, mask)?)?;
            &xs + self
                .feed_forward
                .forward(&self.final_layer_norm.forward(&xs)?)?
        } else {
            let xs = self
                .layer_norm
                .forward(&(xs + self.attention.forward(xs, mask)?)?)?;
            self.final_layer_norm
                .forward(&(&xs + self.feed_forward.forward(&xs)?)?)
        }
    }
}

/// What one forward pass gives.
pub struct Output {
    /// (batch, frames, hidden): the encoder's output, after the final layer norm of stable
    /// models.
    pub last_hidden_state: Tensor,
    /// transformers' `hidden_states`, when asked for: [0] is the input to the first layer,
    /// [i] the output of layer i.
    pub hidden_states: Vec<Tensor>,
    /// (batch, frames, vocab), for checkpoints with a CTC head.
    pub logits: Option<Tensor>,
}

/// `Wav2Vec2Model` with the optional CTC head of `Wav2Vec2ForCTC`.
pub struct Wav2Vec2 {
    config: Config,
    conv_layers: Vec<ConvLayer>,
    projection_norm: Option<LayerNorm>,
    projection: Linear,
    pos_conv: PositionalConvEmbedding,
    encoder_norm: LayerNorm,
    layers: Vec<EncoderLayer>,
    lm_head: Option<Linear>,
}

impl Wav2Vec2 {
    /// Loads from a `VarBuilder` over a checkpoint of `Wav2Vec2ForCTC` (tensors under
    /// `wav2vec2.` and `lm_head.`), `Wav2Vec2ForPreTraining` or a bare `Wav2Vec2Model`.
    pub fn load(config: &Config, vb: VarBuilder) -> Result<Self> {
        config.check().map_err(candle_core::Error::Msg)?;
        let lm_head = if vb.contains_tensor("lm_head.weight") {
            Some(candle_nn::linear(
                config.hidden_size,
                config.vocab_size,
                vb.pp("lm_head"),
            )?)
        } else {
            None
        };
        let base = if vb.contains_tensor("wav2vec2.feature_projection.projection.weight") {
            vb.pp("wav2vec2")
        } else {
            vb
        };
        let conv_layers = (0..config.conv_dim.len())
            .map(|i| {
                ConvLayer::new(
                    config,
                    i,
                    base.pp(format!("feature_extractor.conv_layers.{i}")),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let last_conv = *config.conv_dim.last().unwrap_or(&0);
        let fp = base.pp("feature_projection");
        let projection_norm = if config.feat_proj_layer_norm {
            Some(candle_nn::layer_norm(
                last_conv,
                config.layer_norm_eps,
                fp.pp("layer_norm"),
            )?)
        } else {
            None
        };
        let projection = candle_nn::linear(last_conv, config.hidden_size, fp.pp("projection"))?;
        let enc = base.pp("encoder");
        let pos_conv = PositionalConvEmbedding::new(config, enc.pp("pos_conv_embed"))?;
        let encoder_norm = candle_nn::layer_norm(
            config.hidden_size,
            config.layer_norm_eps,
            enc.pp("layer_norm"),
        )?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| EncoderLayer::new(config, enc.pp(format!("layers.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Wav2Vec2 {
            config: config.clone(),
            conv_layers,
            projection_norm,
            projection,
            pos_conv,
            encoder_norm,
            layers,
            lm_head,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn has_ctc_head(&self) -> bool {
        self.lm_head.is_some()
    }

    /// Runs the network on normalised input values, (batch, samples). `lengths` gives each
    /// clip's length in samples when the batch is padded; padded frames are then masked out
    /// of attention, as transformers does with an `attention_mask`.
    pub fn forward(
        &self,
        input_values: &Tensor,
        lengths: Option<&[usize]>,
        keep_hidden_states: bool,
    ) -> Result<Output> {
        let (batch, samples) = input_values.dims2()?;
        let mut xs = input_values.unsqueeze(1)?;
        for layer in &self.conv_layers {
            xs = layer.forward(&xs)?;
        }
        let mut xs = xs.transpose(1, 2)?;
        if let Some(norm) = &self.projection_norm {
            xs = norm.forward(&xs)?;
        }
        let mut xs = self.projection.forward(&xs)?;
        let frames = xs.dim(1)?;

        let mask = match lengths {
            Some(lengths) if lengths.iter().any(|&l| l < samples) => {
                if lengths.len() != batch {
                    candle_core::bail!("{} lengths for a batch of {batch}", lengths.len());
                }
                let keep: Vec<f32> = lengths
                    .iter()
                    .flat_map(|&l| {
                        let valid = self.config.frames_for(l);
                        (0..frames).map(move |f| if f < valid { 1.0 } else { 0.0 })
                    })
                    .collect();
                let keep =
                    Tensor::from_vec(keep, (batch, frames), xs.device())?.to_dtype(xs.dtype())?;
                // Padded frames are zeroed before the positional convolution sees them.
                xs = xs.broadcast_mul(&keep.unsqueeze(2)?)?;
                let additive = ((keep - 1.0)? * f32::MAX as f64)?;
                Some(additive.reshape((batch, 1, 1, frames))?)
            }
            _ => None,
        };

        let pos = self.pos_conv.forward(&xs)?;
        xs = (xs + pos)?;
        let stable = self.config.do_stable_layer_norm;
        if !stable {
            xs = self.encoder_norm.forward(&xs)?;
        }
        let mut hidden_states = Vec::new();
        for layer in &self.layers {
            if keep_hidden_states {
                hidden_states.push(xs.clone());
            }
            xs = layer.forward(&xs, mask.as_ref())?;
        }
        if keep_hidden_states {
            hidden_states.push(xs.clone());
        }
        if stable {
            xs = self.encoder_norm.forward(&xs)?;
        }
        let logits = match &self.lm_head {
            Some(head) => Some(head.forward(&xs)?),
            None => None,
        };
        Ok(Output {
            last_hidden_state: xs,
            hidden_states,
            logits,
        })
    }
}

/// The dtype models are loaded in: f32 everywhere, since the checks against the reference
/// are at f32 precision and CPU matmuls gain nothing from f16.
pub const DTYPE: DType = DType::F32;
