//! Audio I/O and DSP: decoding, WAV writing, resampling, librosa-compatible features,
//! loudness (EBU R128), rhythm and structure analysis, comparison, and streaming
//! transforms. Pure functions over [`AudioBuffer`]; nothing here knows about the engine.
//!
//! - [`buffer`]: the one in-memory type (planar f32) and mono downmix.
//! - [`decode`] / [`encode`]: files in (symphonia, with the bad-file policies) and WAV
//!   out (hound, TPDF dither).
//! - [`resample`]: rubato FFT resampler, streaming.
//! - [`spectral`], [`pitch`], [`rhythm`]: the librosa building blocks (STFT, mel and
//!   chroma banks, YIN, onset strength, tempo, beat tracking, peak picking).
//! - [`features`], [`patterns`], [`loudness`], [`compare`], [`quality`], [`beatsync`]: the
//!   analysis results; [`frames`]: the per-frame MFCC and chroma behind the `features`
//!   means, for display.
//! - [`transform`]: gain, filter, fade, normalize, trim, mix, export, in memory and
//!   streamed file to file.
//! - [`playback`]: playing clips on the output device (cpal) from a lock-free real-time
//!   callback, with A/B switching.
//!
//! Reference numbers: `tools/make_audio_fixtures.py` (librosa 0.11, pyloudnorm) writes
//! `tests/fixtures/audio/reference.json`, which `tests/audio_features.rs` checks.

pub mod beatsync;
pub mod buffer;
pub mod cancel;
pub mod compare;
pub mod decode;
pub mod encode;
pub mod error;
pub mod features;
pub mod frames;
pub mod loudness;
pub mod patterns;
pub mod pitch;
pub mod playback;
pub mod quality;
pub mod resample;
pub mod rhythm;
pub mod spectral;
pub mod transform;

pub use beatsync::{BeatGrid, BeatSync, beat_synchronous};
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
pub use quality::{Quality, QualityParams, assess_quality};
pub use resample::{StreamResampler, resample};
pub use transform::{
    FilterSpec, NormalizeTarget, TransformReport, export_file, fade_file, filter_file, gain_file,
    mix_files, normalize_file, trim_file,
};

/// Most channels a file may have (beyond this a header is taken as corrupt).
pub const MAX_CHANNELS: usize = 64;
/// Lowest accepted sample rate in Hz.
pub const MIN_SAMPLE_RATE: u32 = 1_000;
/// Highest accepted sample rate in Hz.
pub const MAX_SAMPLE_RATE: u32 = 768_000;
