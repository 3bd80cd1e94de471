//! The one in-memory audio type.
//!
//! Samples are stored **planar** (one `Vec<f32>` per channel): every DSP step here
//! (STFT, filters, loudness weighting, resampling) works channel by channel, so planar
//! data is contiguous where the inner loops run. Interleaving happens only at the file
//! boundary (decoder output, WAV writer).

use super::error::{AudioError, Result};

/// Planar f32 audio at a fixed sample rate. All channels have the same length.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioBuffer {
    sample_rate: u32,
    channels: Vec<Vec<f32>>,
}

impl AudioBuffer {
    /// Build from planar channels; fails if there are no channels, lengths differ, or
    /// the rate is zero.
    pub fn new(sample_rate: u32, channels: Vec<Vec<f32>>) -> Result<Self> {
        if sample_rate == 0 {
            return Err(AudioError::Invalid("sample rate must be positive".into()));
        }
        let Some(first) = channels.first() else {
            return Err(AudioError::Invalid(
                "audio needs at least one channel".into(),
            ));
        };
        let n = first.len();
        if channels.iter().any(|c| c.len() != n) {
            return Err(AudioError::Invalid(
                "channels have different lengths".into(),
            ));
        }
        Ok(Self {
            sample_rate,
            channels,
        })
    }

    /// A single-channel buffer.
    pub fn mono(sample_rate: u32, samples: Vec<f32>) -> Result<Self> {
        Self::new(sample_rate, vec![samples])
    }

    /// Silence of the given shape.
    pub fn silence(sample_rate: u32, channels: usize, frames: usize) -> Result<Self> {
        Self::new(sample_rate, vec![vec![0.0; frames]; channels])
    }

    /// Build from interleaved samples (`frame0 ch0, frame0 ch1, …`).
    pub fn from_interleaved(sample_rate: u32, channels: usize, data: &[f32]) -> Result<Self> {
        if channels == 0 || !data.len().is_multiple_of(channels) {
            return Err(AudioError::Invalid(format!(
                "{} interleaved samples do not divide into {channels} channels",
                data.len()
            )));
        }
        let frames = data.len() / channels;
        let mut planes = vec![Vec::with_capacity(frames); channels];
        for frame in data.chunks_exact(channels) {
            for (plane, &s) in planes.iter_mut().zip(frame) {
                plane.push(s);
            }
        }
        Self::new(sample_rate, planes)
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn num_channels(&self) -> usize {
        self.channels.len()
    }

    /// Number of sample frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.channels[0].len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames() == 0
    }

    pub fn duration_secs(&self) -> f64 {
        self.frames() as f64 / f64::from(self.sample_rate)
    }

    pub fn channel(&self, index: usize) -> &[f32] {
        &self.channels[index]
    }

    pub fn channels(&self) -> &[Vec<f32>] {
        &self.channels
    }

    /// Mutable access to the planes; their lengths must stay equal (use
    /// [`AudioBuffer::truncate`] or build a new buffer to change the length).
    pub fn channels_mut(&mut self) -> &mut [Vec<f32>] {
        &mut self.channels
    }

    pub fn into_channels(self) -> Vec<Vec<f32>> {
        self.channels
    }

    /// Shorten every channel to `frames`.
    pub fn truncate(&mut self, frames: usize) {
        for c in &mut self.channels {
            c.truncate(frames);
        }
    }

    /// Append another buffer of the same rate and channel count.
    pub fn append(&mut self, other: &AudioBuffer) -> Result<()> {
        if other.sample_rate != self.sample_rate || other.num_channels() != self.num_channels() {
            return Err(AudioError::Invalid(format!(
                "cannot append {} ch @ {} Hz to {} ch @ {} Hz",
                other.num_channels(),
                other.sample_rate,
                self.num_channels(),
                self.sample_rate
            )));
        }
        for (a, b) in self.channels.iter_mut().zip(&other.channels) {
            a.extend_from_slice(b);
        }
        Ok(())
    }

    /// Interleaved copy of the samples.
    pub fn to_interleaved(&self) -> Vec<f32> {
        let ch = self.num_channels();
        let mut out = vec![0.0; self.frames() * ch];
        for (c, plane) in self.channels.iter().enumerate() {
            for (i, &s) in plane.iter().enumerate() {
                out[i * ch + c] = s;
            }
        }
        out
    }

    /// Mono downmix: the mean of the channels (what `librosa.load(mono=True)` does).
    pub fn to_mono(&self) -> Vec<f32> {
        downmix(&self.channels)
    }

    /// Largest absolute sample over all channels.
    pub fn peak(&self) -> f32 {
        self.channels
            .iter()
            .flat_map(|c| c.iter())
            .fold(0.0f32, |m, &s| m.max(s.abs()))
    }
}

/// Mean of the planes, frame by frame.
pub fn downmix(planes: &[Vec<f32>]) -> Vec<f32> {
    match planes {
        [] => Vec::new(),
        [only] => only.clone(),
        _ => {
            let n = planes[0].len();
            let scale = 1.0 / planes.len() as f32;
            let mut out = vec![0.0f32; n];
            for p in planes {
                for (o, &s) in out.iter_mut().zip(p) {
                    *o += s;
                }
            }
            for o in &mut out {
                *o *= scale;
            }
            out
        }
    }
}
