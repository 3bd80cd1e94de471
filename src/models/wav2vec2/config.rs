use serde::Deserialize;

/// The parts of a transformers `Wav2Vec2Config` (`config.json`) that inference reads.
/// Defaults are transformers' own, so a sparse `config.json` means what it means there.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(default = "defaults::vocab_size")]
    pub vocab_size: usize,
    #[serde(default = "defaults::hidden_size")]
    pub hidden_size: usize,
    #[serde(default = "defaults::num_hidden_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "defaults::num_attention_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "defaults::intermediate_size")]
    pub intermediate_size: usize,
    #[serde(default = "defaults::gelu")]
    pub hidden_act: Activation,
    #[serde(default = "defaults::layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "defaults::feat_extract_norm")]
    pub feat_extract_norm: FeatExtractNorm,
    #[serde(default = "defaults::gelu")]
    pub feat_extract_activation: Activation,
    #[serde(default = "defaults::conv_dim")]
    pub conv_dim: Vec<usize>,
    #[serde(default = "defaults::conv_stride")]
    pub conv_stride: Vec<usize>,
    #[serde(default = "defaults::conv_kernel")]
    pub conv_kernel: Vec<usize>,
    #[serde(default)]
    pub conv_bias: bool,
    #[serde(default = "defaults::num_conv_pos_embeddings")]
    pub num_conv_pos_embeddings: usize,
    #[serde(default = "defaults::num_conv_pos_embedding_groups")]
    pub num_conv_pos_embedding_groups: usize,
    #[serde(default)]
    pub do_stable_layer_norm: bool,
    #[serde(default = "defaults::yes")]
    pub feat_proj_layer_norm: bool,
    #[serde(default)]
    pub add_adapter: bool,
    #[serde(default)]
    pub adapter_attn_dim: Option<usize>,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default)]
    pub model_type: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatExtractNorm {
    Group,
    Layer,
}

/// Activation functions by their transformers names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Activation {
    /// The exact (erf) GELU; transformers' `"gelu"`.
    #[serde(rename = "gelu")]
    Gelu,
    #[serde(alias = "gelu_pytorch_tanh", rename = "gelu_new")]
    GeluTanh,
    #[serde(rename = "relu")]
    Relu,
    #[serde(alias = "silu", rename = "swish")]
    Silu,
}

impl Activation {
    pub fn apply(self, xs: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
        match self {
            Activation::Gelu => xs.gelu_erf(),
            Activation::GeluTanh => xs.gelu(),
            Activation::Relu => xs.relu(),
            Activation::Silu => xs.silu(),
        }
    }
}

impl Config {
    /// Input samples per output frame: the product of the convolution strides (320).
    pub fn samples_per_frame(&self) -> usize {
        self.conv_stride.iter().product()
    }

    /// Frames the convolutional encoder makes from `samples` input samples.
    pub fn frames_for(&self, samples: usize) -> usize {
        self.conv_kernel
            .iter()
            .zip(&self.conv_stride)
            .fold(
                samples,
                |len, (&k, &s)| {
                    if len < k { 0 } else { (len - k) / s + 1 }
                },
            )
    }

    /// Fewest samples that make one frame: the receptive field of the first frame.
    pub fn min_samples(&self) -> usize {
        let mut receptive = 1;
        for (k, s) in self.conv_kernel.iter().zip(&self.conv_stride).rev() {
            receptive = (receptive - 1) * s + k;
        }
        receptive
    }

    /// Problems that would make the model fail later with a worse message.
    pub fn check(&self) -> Result<(), String> {
        let layers = self.conv_dim.len();
        if layers == 0 || self.conv_stride.len() != layers || self.conv_kernel.len() != layers {
            return Err(format!(
                "conv_dim, conv_stride and conv_kernel must have one entry per layer \
                 (they have {}, {} and {})",
                self.conv_dim.len(),
                self.conv_stride.len(),
                self.conv_kernel.len()
            ));
        }
        if self.conv_stride.contains(&0) || self.conv_kernel.contains(&0) {
            return Err("conv_stride and conv_kernel must be positive".into());
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.num_conv_pos_embedding_groups == 0
            || !self
                .hidden_size
                .is_multiple_of(self.num_conv_pos_embedding_groups)
        {
            return Err(format!(
                "hidden_size {} is not a multiple of num_conv_pos_embedding_groups {}",
                self.hidden_size, self.num_conv_pos_embedding_groups
            ));
        }
        if self.add_adapter || self.adapter_attn_dim.is_some() {
            return Err(
                "checkpoints with adapters (add_adapter, adapter_attn_dim) are not supported"
                    .into(),
            );
        }
        if let Some(kind) = &self.model_type
            && kind != "wav2vec2"
        {
            return Err(format!("model_type is `{kind}`, not `wav2vec2`"));
        }
        Ok(())
    }
}

mod defaults {
    use super::{Activation, FeatExtractNorm};
    pub fn vocab_size() -> usize {
        32
    }
    pub fn hidden_size() -> usize {
        768
    }
    pub fn num_hidden_layers() -> usize {
        12
    }
    pub fn num_attention_heads() -> usize {
        12
    }
    pub fn intermediate_size() -> usize {
        3072
    }
    pub fn gelu() -> Activation {
        Activation::Gelu
    }
    pub fn layer_norm_eps() -> f64 {
        1e-5
    }
    pub fn feat_extract_norm() -> FeatExtractNorm {
        FeatExtractNorm::Group
    }
    pub fn conv_dim() -> Vec<usize> {
        vec![512; 7]
    }
    pub fn conv_stride() -> Vec<usize> {
        vec![5, 2, 2, 2, 2, 2, 2]
    }
    pub fn conv_kernel() -> Vec<usize> {
        vec![10, 3, 3, 3, 3, 2, 2]
    }
    pub fn num_conv_pos_embeddings() -> usize {
        128
    }
    pub fn num_conv_pos_embedding_groups() -> usize {
        16
    }
    pub fn yes() -> bool {
        true
    }
}

/// `preprocessor_config.json`: how audio becomes model input.
#[derive(Debug, Clone, Deserialize)]
pub struct PreprocessorConfig {
    #[serde(default = "default_rate")]
    pub sampling_rate: u32,
    #[serde(default = "defaults::yes")]
    pub do_normalize: bool,
    #[serde(default)]
    pub return_attention_mask: bool,
}

fn default_rate() -> u32 {
    16_000
}

impl Default for PreprocessorConfig {
    fn default() -> Self {
        PreprocessorConfig {
            sampling_rate: 16_000,
            do_normalize: true,
            return_attention_mask: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_geometry() {
        let c: Config = serde_json::from_str("{}").unwrap();
        assert_eq!(c.samples_per_frame(), 320);
        assert_eq!(c.min_samples(), 400);
        assert_eq!(c.frames_for(400), 1);
        assert_eq!(c.frames_for(399), 0);
        // One second at 16 kHz is 49 frames in transformers.
        assert_eq!(c.frames_for(16_000), 49);
        assert!(c.check().is_ok());
    }

    #[test]
    fn bad_geometry_is_named() {
        let c: Config = serde_json::from_str(r#"{"conv_stride": [5, 2]}"#).unwrap();
        assert!(c.check().unwrap_err().contains("conv_stride"));
        let c: Config = serde_json::from_str(r#"{"hidden_size": 100}"#).unwrap();
        assert!(c.check().unwrap_err().contains("num_attention_heads"));
    }
}
