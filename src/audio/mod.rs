//! Audio I/O and DSP: decoding, WAV writing, resampling, librosa-compatible features,
//! loudness (EBU R128), rhythm and structure analysis, comparison, and streaming
//! transforms. Pure functions over [`AudioBuffer`]; nothing here knows about the engine.

pub mod buffer;
pub mod compare;
pub mod decode;
pub mod encode;
pub mod error;
pub mod features;
pub mod loudness;
pub mod patterns;
pub mod pitch;
pub mod resample;
pub mod rhythm;
pub mod spectral;
pub mod transform;

pub use buffer::{AudioBuffer, downmix};
pub use compare::{Comparison, compare};
pub use decode::{
    AudioInfo, AudioReader, DEFAULT_MAX_SAMPLES, DecodeOptions, NonFinitePolicy, decode_file,
    decode_file_with,
};
pub use encode::{BitDepth, Dither, WavSpec, WavWriter, write_f32_artifact, write_wav};
pub use error::{AudioError, Result};
pub use features::{FeatureParams, Features, extract_features};
pub use loudness::{LoudnessMeter, LoudnessReport, measure_loudness};
pub use patterns::{PatternParams, Patterns, analyze_patterns};
pub use resample::{StreamResampler, resample};

/// Most channels a file may have (beyond this a header is taken as corrupt).
pub const MAX_CHANNELS: usize = 64;
/// Lowest accepted sample rate in Hz.
pub const MIN_SAMPLE_RATE: u32 = 1_000;
/// Highest accepted sample rate in Hz.
pub const MAX_SAMPLE_RATE: u32 = 768_000;
