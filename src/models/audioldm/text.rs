//! The prompt side: the RoBERTa byte-level BPE tokenizer and the CLAP text encoder with its
//! projection (transformers' `ClapTextModelWithProjection`), whose output AudioLDM normalises
//! and feeds to the UNet as a class embedding.

use std::path::Path;

use candle_core::{D, IndexOp, Module, Result, Tensor};
use candle_nn::{self as nn, Activation, VarBuilder};
use candle_transformers::models::xlm_roberta::{Config as RobertaConfig, XLMRobertaModel};
use serde::Deserialize;
use tokenizers::Tokenizer;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::utils::truncation::{TruncationParams, TruncationStrategy};

use crate::models::ModelError;
use crate::models::error::read_json;

/// `text_encoder/config.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct ClapTextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "gelu")]
    pub hidden_act: Activation,
    #[serde(default = "positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "one")]
    pub type_vocab_size: usize,
    #[serde(default = "eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "one_u32")]
    pub pad_token_id: u32,
    pub projection_dim: usize,
    #[serde(default = "relu")]
    pub projection_hidden_act: Activation,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn gelu() -> Activation {
    Activation::Gelu
}
fn relu() -> Activation {
    Activation::Relu
}
fn positions() -> usize {
    514
}
fn one() -> usize {
    1
}
fn one_u32() -> u32 {
    1
}
fn eps() -> f64 {
    1e-12
}

impl ClapTextConfig {
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} does not split into {} attention heads",
                self.hidden_size, self.num_attention_heads
            ));
        }
        match self.position_embedding_type.as_deref() {
            None | Some("absolute") => Ok(()),
            Some(other) => Err(format!("unsupported position_embedding_type `{other}`")),
        }
    }

    fn roberta(&self) -> RobertaConfig {
        RobertaConfig {
            hidden_size: self.hidden_size,
            layer_norm_eps: self.layer_norm_eps,
            attention_probs_dropout_prob: 0.0,
            hidden_dropout_prob: 0.0,
            num_attention_heads: self.num_attention_heads,
            position_embedding_type: "absolute".into(),
            intermediate_size: self.intermediate_size,
            hidden_act: self.hidden_act,
            num_hidden_layers: self.num_hidden_layers,
            vocab_size: self.vocab_size,
            max_position_embeddings: self.max_position_embeddings,
            type_vocab_size: self.type_vocab_size,
            pad_token_id: self.pad_token_id,
        }
    }

    /// The longest token sequence the position embeddings allow (RoBERTa's positions
    /// start after the padding index).
    pub fn max_tokens(&self) -> usize {
        self.max_position_embeddings
            .saturating_sub(self.pad_token_id as usize + 1)
    }
}

/// The CLAP text tower: a RoBERTa encoder, the pooler over the first token, and the
/// two-layer projection.
pub struct ClapTextEncoder {
    roberta: XLMRobertaModel,
    pooler: nn::Linear,
    linear1: nn::Linear,
    linear2: nn::Linear,
    activation: Activation,
    pub config: ClapTextConfig,
}

impl ClapTextEncoder {
    pub fn new(vb: VarBuilder, config: ClapTextConfig) -> Result<Self> {
        let h = config.hidden_size;
        let p = config.projection_dim;
        let roberta = XLMRobertaModel::new(&config.roberta(), vb.pp("text_model"))?;
        let pooler = nn::linear(h, h, vb.pp("text_model.pooler.dense"))?;
        let linear1 = nn::linear(h, p, vb.pp("text_projection.linear1"))?;
        let linear2 = nn::linear(p, p, vb.pp("text_projection.linear2"))?;
        Ok(Self {
            roberta,
            pooler,
            linear1,
            linear2,
            activation: config.projection_hidden_act,
            config,
        })
    }

    /// The projected text embedding (`text_embeds`) of each row of token ids (batch, tokens).
    /// Rows are unpadded, so no attention mask is needed.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let mask = ids.ones_like()?;
        let types = ids.zeros_like()?;
        let hidden = self.roberta.forward(ids, &mask, &types, None, None, None)?;
        let first = hidden.i((.., 0))?;
        let pooled = self.pooler.forward(&first)?.tanh()?;
        let projected = self.activation.forward(&self.linear1.forward(&pooled)?)?;
        self.linear2.forward(&projected)
    }

    /// The embedding AudioLDM conditions on: `text_embeds` divided by its L2 norm, as
    /// `torch.nn.functional.normalize` does it (the norm floored at 1e-12).
    pub fn embed(&self, ids: &[u32]) -> Result<Tensor> {
        let ids = Tensor::new(ids, self.linear1.weight().device())?.unsqueeze(0)?;
        let embeds = self.forward(&ids)?;
        let norm = embeds
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        embeds.broadcast_div(&norm)
    }
}

/// The RoBERTa tokenizer, read from `tokenizer/tokenizer.json` or, without it, from
/// `vocab.json` and `merges.txt`; sequences are truncated to the model's limit as the
/// pipeline's `truncation=True` does.
pub struct PromptTokenizer {
    tokenizer: Tokenizer,
}

#[derive(Deserialize, Default)]
struct TokenizerConfig {
    #[serde(default)]
    model_max_length: Option<f64>,
    #[serde(default)]
    add_prefix_space: bool,
}

impl PromptTokenizer {
    /// From `tokenizer.json`, or from `vocab.json` + `merges.txt` when that is `None`.
    /// `config` is `tokenizer_config.json` when present; `limit` caps the length.
    pub fn load(
        tokenizer_json: Option<&Path>,
        vocab_merges: Option<(&Path, &Path)>,
        config: Option<&Path>,
        limit: usize,
    ) -> std::result::Result<Self, ModelError> {
        let cfg: TokenizerConfig = match config {
            Some(path) => read_json(path)?,
            None => TokenizerConfig::default(),
        };
        let mut tokenizer = match (tokenizer_json, vocab_merges) {
            (Some(path), _) => {
                Tokenizer::from_file(path).map_err(|e| ModelError::config(path, e))?
            }
            (None, Some((vocab, merges))) => {
                from_vocab_merges(vocab, merges, cfg.add_prefix_space)?
            }
            (None, None) => {
                return Err(ModelError::Input(
                    "the tokenizer needs tokenizer.json or vocab.json and merges.txt".into(),
                ));
            }
        };
        // `model_max_length` is a huge sentinel when unset; the position embeddings bound it.
        let max = cfg
            .model_max_length
            .filter(|m| m.is_finite() && *m >= 2.0)
            .map_or(limit, |m| (m as usize).min(limit));
        let label =
            tokenizer_json.map_or_else(|| "tokenizer".to_string(), |p| p.display().to_string());
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max,
                strategy: TruncationStrategy::LongestFirst,
                ..Default::default()
            }))
            .map_err(|e| ModelError::Config {
                path: label.into(),
                message: e.to_string(),
            })?;
        tokenizer.with_padding(None);
        Ok(Self { tokenizer })
    }

    /// Token ids of `text` with `<s>` and `</s>`.
    pub fn encode(&self, text: &str) -> std::result::Result<Vec<u32>, ModelError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| ModelError::Input(format!("cannot tokenize the prompt: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }
}

fn from_vocab_merges(
    vocab: &Path,
    merges: &Path,
    add_prefix_space: bool,
) -> std::result::Result<Tokenizer, ModelError> {
    let (Some(v), Some(m)) = (vocab.to_str(), merges.to_str()) else {
        return Err(ModelError::config(vocab, "the path is not valid UTF-8"));
    };
    let bpe = BPE::from_file(v, m)
        .build()
        .map_err(|e| ModelError::config(vocab, format!("with {}: {e}", merges.display())))?;
    let token_id = |token: &str| {
        bpe.get_vocab()
            .get(token)
            .copied()
            .ok_or_else(|| ModelError::config(vocab, format!("the vocabulary has no `{token}`")))
    };
    let (bos, eos) = (token_id("<s>")?, token_id("</s>")?);
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(add_prefix_space, true, true)));
    tokenizer.with_post_processor(Some(
        RobertaProcessing::new(("</s>".into(), eos), ("<s>".into(), bos))
            .trim_offsets(true)
            .add_prefix_space(add_prefix_space),
    ));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    Ok(tokenizer)
}
