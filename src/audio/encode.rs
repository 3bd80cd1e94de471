//! WAV writing with hound: 16/24-bit PCM or 32-bit float, with TPDF dither when
//! quantising to integers. Writers stream, so output size is not bounded by memory.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::buffer::AudioBuffer;
use super::error::{AudioError, Result};

/// Output sample format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitDepth {
    Pcm16,
    Pcm24,
    Float32,
}

impl BitDepth {
    /// From a bit count as users write it: 16, 24 or 32 (float).
    pub fn from_bits(bits: u32) -> Option<Self> {
        match bits {
            16 => Some(Self::Pcm16),
            24 => Some(Self::Pcm24),
            32 => Some(Self::Float32),
            _ => None,
        }
    }

    pub fn bits(self) -> u16 {
        match self {
            Self::Pcm16 => 16,
            Self::Pcm24 => 24,
            Self::Float32 => 32,
        }
    }
}

/// Dither applied before quantising to integer PCM (ignored for float output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dither {
    None,
    /// Triangular PDF dither of ±1 LSB peak, from a seeded generator so that the same
    /// input and seed give byte-identical files (the engine caches by content).
    Tpdf {
        seed: u64,
    },
}

/// How to write a WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavSpec {
    pub bit_depth: BitDepth,
    pub dither: Dither,
}

impl WavSpec {
    /// The spec for a bit depth with the default policy: TPDF dither (seed 0) for
    /// integer formats, none for float.
    pub fn new(bit_depth: BitDepth) -> Self {
        let dither = match bit_depth {
            BitDepth::Float32 => Dither::None,
            _ => Dither::Tpdf { seed: 0 },
        };
        Self { bit_depth, dither }
    }
}

/// Small xorshift64* generator: deterministic, dependency-free, good enough for dither.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// TPDF noise in (−1, 1): the sum of two uniform variables in [−0.5, 0.5).
    pub fn tpdf(&mut self) -> f64 {
        self.next_f64() + self.next_f64() - 1.0
    }
}

/// Quantise one sample to a signed integer of `bits` bits: scale by 2^(bits−1), add
/// dither (in LSBs), round, clip. Full scale maps −1.0 to the minimum code exactly.
pub fn quantize(sample: f32, bits: u16, dither_lsb: f64) -> i32 {
    let scale = f64::from(1u32 << (bits - 1));
    let v = (f64::from(sample) * scale + dither_lsb).round();
    v.clamp(-scale, scale - 1.0) as i32
}

/// Streaming WAV writer.
pub struct WavWriter {
    path: PathBuf,
    inner: hound::WavWriter<BufWriter<File>>,
    spec: WavSpec,
    channels: usize,
    rng: Option<Rng>,
    frames: u64,
}

impl WavWriter {
    pub fn create(path: &Path, sample_rate: u32, channels: usize, spec: WavSpec) -> Result<Self> {
        let err = |reason: String| AudioError::Write {
            path: path.to_path_buf(),
            reason,
        };
        let ch = u16::try_from(channels)
            .ok()
            .filter(|&c| c >= 1 && usize::from(c) <= super::MAX_CHANNELS)
            .ok_or_else(|| err(format!("unsupported channel count {channels}")))?;
        let hspec = hound::WavSpec {
            channels: ch,
            sample_rate,
            bits_per_sample: spec.bit_depth.bits(),
            sample_format: match spec.bit_depth {
                BitDepth::Float32 => hound::SampleFormat::Float,
                _ => hound::SampleFormat::Int,
            },
        };
        let inner = hound::WavWriter::create(path, hspec).map_err(|e| err(e.to_string()))?;
        let rng = match (spec.bit_depth, spec.dither) {
            (BitDepth::Float32, _) | (_, Dither::None) => None,
            (_, Dither::Tpdf { seed }) => Some(Rng::new(seed)),
        };
        Ok(Self {
            path: path.to_path_buf(),
            inner,
            spec,
            channels,
            rng,
            frames: 0,
        })
    }

    fn err(&self, e: hound::Error) -> AudioError {
        AudioError::Write {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// Append a chunk; its channel count must match the writer's.
    pub fn write(&mut self, chunk: &AudioBuffer) -> Result<()> {
        if chunk.num_channels() != self.channels {
            return Err(AudioError::Write {
                path: self.path.clone(),
                reason: format!(
                    "chunk has {} channels, file has {}",
                    chunk.num_channels(),
                    self.channels
                ),
            });
        }
        let planes = chunk.channels();
        for i in 0..chunk.frames() {
            for plane in planes {
                let s = plane[i];
                let r = match self.spec.bit_depth {
                    BitDepth::Float32 => self.inner.write_sample(s),
                    depth => {
                        let d = self.rng.as_mut().map_or(0.0, Rng::tpdf);
                        self.inner.write_sample(quantize(s, depth.bits(), d))
                    }
                };
                r.map_err(|e| self.err(e))?;
            }
        }
        self.frames += chunk.frames() as u64;
        Ok(())
    }

    pub fn frames_written(&self) -> u64 {
        self.frames
    }

    /// Write the final header sizes and close the file.
    pub fn finalize(self) -> Result<()> {
        let path = self.path;
        self.inner.finalize().map_err(|e| AudioError::Write {
            path,
            reason: e.to_string(),
        })
    }
}

/// Write a whole buffer as WAV.
pub fn write_wav(path: &Path, audio: &AudioBuffer, spec: WavSpec) -> Result<()> {
    let mut w = WavWriter::create(path, audio.sample_rate(), audio.num_channels(), spec)?;
    w.write(audio)?;
    w.finalize()
}

/// Write an intermediate artifact: 32-bit float WAV, lossless for our f32 buffers.
pub fn write_f32_artifact(path: &Path, audio: &AudioBuffer) -> Result<()> {
    write_wav(path, audio, WavSpec::new(BitDepth::Float32))
}
